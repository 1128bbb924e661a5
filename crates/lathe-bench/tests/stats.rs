//! Statistics on synthetic timings: numpy-equivalent percentiles, vLLM's TPOT/ITL/goodput
//! definitions, and the seeded Poisson arrival process.

use std::time::Duration;

use lathe_bench::metrics::{Metrics, Slo};
use lathe_bench::record::{ErrorKind, RequestError, RequestRecord, TokenSource};
use lathe_bench::serve::args::{parse_duration, parse_slo};
use lathe_bench::serve::arrivals::PoissonArrivals;
use lathe_bench::serve::{Sweep, SweepParam};
use lathe_bench::stats::{cdf_points, percentile, Summary};

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

#[test]
fn percentiles_match_numpy_linear() {
    let v: Vec<f64> = (1..=10).map(f64::from).collect();
    // np.percentile(np.arange(1, 11), [0, 50, 90, 99, 100]) = [1, 5.5, 9.1, 9.91, 10]
    for (p, want) in [
        (0.0, 1.0),
        (50.0, 5.5),
        (90.0, 9.1),
        (99.0, 9.91),
        (100.0, 10.0),
    ] {
        close(percentile(&v, p), want);
    }
    // x = [3, 1, 4, 1, 5, 9, 2, 6]: median 3.5, p90 6.9, p99 8.79, mean 3.875,
    // np.std (ddof=0) = sqrt(52.875 / 8)
    let s = Summary::of(&[3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]).unwrap();
    close(s.median, 3.5);
    close(s.p90, 6.9);
    close(s.p99, 8.79);
    close(s.mean, 3.875);
    close(s.std, (52.875f64 / 8.0).sqrt());
    assert_eq!((s.min, s.max, s.count), (1.0, 9.0, 8));
    let one = Summary::of(&[0.25]).unwrap();
    assert_eq!((one.median, one.p99, one.std), (0.25, 0.25, 0.0));
    assert!(Summary::of(&[]).is_none());
    let ms = s.scaled(1000.0);
    close(ms.p90, 6900.0);
}

#[test]
fn cdf_is_monotone_and_ends_at_one() {
    let v: Vec<f64> = (0..1000).rev().map(f64::from).collect();
    let pts = cdf_points(&v, 100);
    assert!(pts.len() <= 101);
    assert!(pts.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 < w[1].1));
    assert_eq!(*pts.last().unwrap(), (999.0, 1.0));
    assert_eq!(pts[0], (0.0, 0.001));
}

fn rec(ttft: f64, itl: &[f64], out: usize) -> RequestRecord {
    RequestRecord {
        id: 0,
        kind: "random".into(),
        session: 0,
        turn: 0,
        start_s: 0.0,
        ttft_s: Some(ttft),
        itl_s: itl.to_vec(),
        e2e_s: ttft + itl.iter().sum::<f64>(),
        prompt_tokens: 100,
        output_tokens: out,
        content_chunks: itl.len() + 1,
        token_source: TokenSource::Usage,
        error: None,
    }
}

fn failed() -> RequestRecord {
    RequestRecord::failed(
        9,
        0.0,
        0.01,
        RequestError::new(ErrorKind::Http, Some(503), "busy"),
    )
}

#[test]
fn tpot_and_itl_follow_vllm() {
    // 5 tokens in 4 chunks (one chunk carried two tokens): ITL has 3 gaps, TPOT divides by 4.
    let r = rec(0.2, &[0.01, 0.02, 0.03], 5);
    close(r.tpot_s().unwrap(), 0.06 / 4.0);
    assert_eq!(rec(0.2, &[], 1).tpot_s(), None, "one token: no TPOT");
    assert_eq!(failed().tpot_s(), None);

    let records = vec![
        rec(0.1, &[0.01, 0.03], 3),
        rec(0.3, &[0.02], 2),
        rec(0.5, &[], 1),
        failed(),
    ];
    let m = Metrics::compute(&records, 2.0, 0, &Slo::default());
    assert_eq!((m.completed, m.failed), (3, 1));
    assert_eq!(m.errors.get("http_503"), Some(&1));
    assert_eq!((m.total_input_tokens, m.total_output_tokens), (300, 6));
    close(m.request_throughput, 1.5);
    close(m.output_throughput, 3.0);
    close(m.total_token_throughput, 153.0);
    // ITL pools every gap of every successful request: [10, 30, 20] ms.
    let itl = m.itl_ms.unwrap();
    assert_eq!(itl.count, 3);
    close(itl.mean, 20.0);
    close(itl.median, 20.0);
    // TPOT only for requests with > 1 token: (40 ms / 2) and (20 ms / 1).
    let tpot = m.tpot_ms.unwrap();
    assert_eq!(tpot.count, 2);
    close(tpot.mean, 20.0);
    let ttft = m.ttft_ms.unwrap();
    close(ttft.median, 300.0);
    close(ttft.p90, 460.0); // rank 1.8 between 300 and 500
    close(m.e2e_ms.unwrap().max, 500.0);
    assert_eq!(m.request_goodput, None);
}

#[test]
fn goodput_counts_requests_meeting_every_slo() {
    // Dyadic values, so that "exactly at the SLO" is exact in floating point.
    let slo = Slo {
        ttft: Some(Duration::from_millis(250)),
        tpot: Some(Duration::from_micros(31_250)),
        e2e: None,
    };
    let records = vec![
        rec(0.125, &[0.015625, 0.015625], 3), // ttft 125, tpot 15.6: good
        rec(0.25, &[0.03125, 0.03125], 3),    // ttft and tpot exactly at the SLO: good
        rec(0.375, &[0.015625], 2),           // ttft too slow
        rec(0.125, &[0.0625, 0.015625], 3),   // tpot 39: too slow
        rec(0.125, &[], 1),                   // one token: TPOT 0, good
        failed(),                             // never good
    ];
    let m = Metrics::compute(&records, 4.0, 0, &slo);
    assert_eq!(m.good_requests, Some(3));
    close(m.request_goodput.unwrap(), 0.75);
    // e2e: 156, 312, 391, 203, 125 ms: only the last within 130 ms
    let e2e_only = Slo {
        e2e: Some(Duration::from_millis(130)),
        ..Slo::default()
    };
    assert_eq!(
        Metrics::compute(&records, 1.0, 0, &e2e_only).good_requests,
        Some(1)
    );
}

#[test]
fn poisson_arrivals_have_the_right_mean_and_are_seeded() {
    let gaps: Vec<f64> = {
        let mut a = PoissonArrivals::new(8.0, 42);
        (0..20_000).map(|_| a.next_gap_s()).collect()
    };
    let n = gaps.len() as f64;
    let mean = gaps.iter().sum::<f64>() / n;
    assert!((mean - 0.125).abs() < 0.125 * 0.03, "mean gap {mean}");
    // Exponential: standard deviation equals the mean; P(gap > mean) = 1/e.
    let sd = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert!((sd / mean - 1.0).abs() < 0.05, "cv {}", sd / mean);
    let above = gaps.iter().filter(|&&g| g > 0.125).count() as f64 / n;
    assert!((above - (-1f64).exp()).abs() < 0.02, "tail {above}");
    assert!(gaps.iter().all(|g| *g >= 0.0 && g.is_finite()));
    let again: Vec<f64> = PoissonArrivals::new(8.0, 42)
        .take(5)
        .map(|d| d.as_secs_f64())
        .collect();
    assert!(again.iter().zip(&gaps).all(|(a, b)| (a - b).abs() < 1e-9));
    let other: Vec<f64> = PoissonArrivals::new(8.0, 43)
        .take(5)
        .map(|d| d.as_secs_f64())
        .collect();
    assert_ne!(other, again);
}

#[test]
fn parses_slo_duration_and_sweep() {
    let slo = parse_slo("ttft=500ms,tpot=50ms,e2e=10s").unwrap();
    assert_eq!(slo.ttft, Some(Duration::from_millis(500)));
    assert_eq!(slo.tpot, Some(Duration::from_millis(50)));
    assert_eq!(slo.e2e, Some(Duration::from_secs(10)));
    assert_eq!(
        parse_slo("ttft:250").unwrap().ttft,
        Some(Duration::from_millis(250)),
        "vLLM style, ms"
    );
    assert!(parse_slo("latency=1s").is_err());
    assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
    assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
    assert_eq!(parse_duration("60").unwrap(), Duration::from_secs(60));
    assert!(parse_duration("5 parsecs").is_err());
    let s: Sweep = "concurrency=1,4,16,64".parse().unwrap();
    assert_eq!(
        (s.param, s.values),
        (SweepParam::Concurrency, vec![1.0, 4.0, 16.0, 64.0])
    );
    assert!("concurrency=1.5".parse::<Sweep>().is_err());
    assert!("request-rate=0.5,2".parse::<Sweep>().is_ok());
    assert!("batch=1".parse::<Sweep>().is_err());
}
