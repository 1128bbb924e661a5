//! The harness against a mock SSE server with known timings, on loopback only.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{args, dead_url, start, MockConfig};
use lathe_bench::record::{ErrorKind, TokenSource};
use lathe_bench::serve::{run_bench, StopSignal};
use lathe_bench::tokens::{ChunkCounter, TokenCounter};

fn chunks() -> Arc<dyn TokenCounter> {
    Arc::new(ChunkCounter)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measures_ttft_itl_and_counts_http_errors() {
    let mock = start(MockConfig {
        fail_every: 4,
        ..MockConfig::slow()
    })
    .await;
    let a = args(&[
        "--base-url",
        &mock.url(),
        "--model",
        "m",
        "--concurrency",
        "4",
        "--num-requests",
        "8",
        "--warmup",
        "0",
        "--input-len",
        "16",
        "--slo",
        "ttft=300ms,tpot=50ms",
    ]);
    let report = run_bench(&a, chunks(), StopSignal::default())
        .await
        .unwrap();
    let run = &report.runs[0];
    let m = &run.metrics;
    assert_eq!((m.completed, m.failed), (6, 2), "{:?}", m.errors);
    // The server's speculative-decoding counters over the run's 8 requests, from /metrics.
    let spec = run
        .spec_decode
        .expect("the mock exports spec-decode counters");
    assert_eq!(
        (spec.drafts, spec.draft_tokens, spec.accepted_tokens),
        (16, 80, 56)
    );
    assert_eq!(spec.acceptance_rate, Some(0.7));
    assert_eq!(spec.mean_accepted_length, Some(4.5));
    assert_eq!(m.errors.get("http_500"), Some(&2));
    let sample = &run.error_samples[0];
    assert_eq!((sample.kind, sample.status), (ErrorKind::Http, Some(500)));
    assert!(sample.message.contains("boom"), "{}", sample.message);

    for r in run.records.iter().filter(|r| r.ok()) {
        let ttft_ms = r.ttft_s.unwrap() * 1e3;
        // The role-only chunk at t≈0 must not count as the first token.
        assert!((195.0..260.0).contains(&ttft_ms), "ttft {ttft_ms} ms");
        assert_eq!(r.itl_s.len(), 9);
        assert_eq!(
            (r.output_tokens, r.prompt_tokens, r.content_chunks),
            (10, 42, 10)
        );
        assert_eq!(r.token_source, TokenSource::Usage);
    }
    let ttft = m.ttft_ms.unwrap();
    assert!((ttft.mean - 200.0).abs() < 30.0, "mean ttft {}", ttft.mean);
    let itl = m.itl_ms.unwrap();
    assert_eq!(itl.count, 54);
    assert!(
        (17.0..35.0).contains(&itl.median),
        "median itl {}",
        itl.median
    );
    let tpot = m.tpot_ms.unwrap();
    assert!((17.0..35.0).contains(&tpot.mean), "mean tpot {}", tpot.mean);
    let e2e = m.e2e_ms.unwrap();
    assert!(
        (375.0..480.0).contains(&e2e.median),
        "median e2e {}",
        e2e.median
    );
    assert_eq!((m.total_output_tokens, m.total_input_tokens), (60, 6 * 42));
    assert_eq!(m.good_requests, Some(6));
    assert!((m.request_goodput.unwrap() - m.request_throughput).abs() < 1e-9);
    assert!((m.output_throughput - 60.0 / m.duration_s).abs() < 1e-9);
}

/// A counter that says every whitespace-separated word is two tokens.
struct TwoPerWord;

impl TokenCounter for TwoPerWord {
    fn name(&self) -> &str {
        "two-per-word"
    }
    fn count_text(&self, text: &str) -> Option<usize> {
        Some(text.split_whitespace().count() * 2)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_usage_counts_through_the_hook() {
    let mock = start(MockConfig::fast()).await;
    let base = [
        "--base-url",
        &mock.url(),
        "--model",
        "m",
        "--num-requests",
        "2",
        "--warmup",
        "0",
        "--input-len",
        "8",
    ];
    let mut words = base.to_vec();
    words.extend([
        "--endpoint",
        "completions",
        "--extra-body",
        r#"{"stream_options": null}"#,
    ]);
    let report = run_bench(&args(&words), chunks(), StopSignal::default())
        .await
        .unwrap();
    for r in &report.runs[0].records {
        assert_eq!((r.output_tokens, r.token_source), (5, TokenSource::Counter));
        assert_eq!(r.prompt_tokens, 8, "random prompts of 8 words");
    }
    for (path, body) in mock.bodies() {
        assert_eq!(path, "/v1/completions");
        assert!(body.get("stream_options").is_none() && body["stream"] == true);
    }
    let report = run_bench(&args(&words), Arc::new(TwoPerWord), StopSignal::default())
        .await
        .unwrap();
    assert_eq!(report.harness.token_counter, "two-per-word");
    for r in &report.runs[0].records {
        assert_eq!((r.output_tokens, r.prompt_tokens), (10, 16));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_errors_are_counted_and_fail_warmup() {
    let url = dead_url().await;
    let a = args(&[
        "--base-url",
        &url,
        "--model",
        "m",
        "--num-requests",
        "3",
        "--warmup",
        "0",
    ]);
    let report = run_bench(&a, chunks(), StopSignal::default())
        .await
        .unwrap();
    let m = &report.runs[0].metrics;
    assert_eq!((m.completed, m.failed), (0, 3));
    assert_eq!(m.errors.get("transport"), Some(&3));
    assert!(m.ttft_ms.is_none() && m.request_throughput == 0.0);

    let a = args(&[
        "--base-url",
        &url,
        "--model",
        "m",
        "--num-requests",
        "3",
        "--warmup",
        "2",
    ]);
    let err = run_bench(&a, chunks(), StopSignal::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("warmup"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poisson_rate_mode_sends_every_request() {
    let mock = start(MockConfig::fast()).await;
    let a = args(&[
        "--base-url",
        &mock.url(),
        "--model",
        "m",
        "--request-rate",
        "40",
        "--num-requests",
        "12",
        "--warmup",
        "1",
        "--input-len",
        "8",
        "--seed",
        "7",
    ]);
    let report = run_bench(&a, chunks(), StopSignal::default())
        .await
        .unwrap();
    let run = &report.runs[0];
    assert_eq!(
        (run.metrics.completed, run.request_rate, run.concurrency),
        (12, Some(40.0), None)
    );
    assert_eq!(
        mock.count.load(std::sync::atomic::Ordering::SeqCst),
        13,
        "12 measured + 1 warmup"
    );
    let starts: Vec<f64> = run.records.iter().map(|r| r.start_s).collect();
    assert!(starts[0] < 0.05, "first arrival at t=0, got {}", starts[0]);
    assert!(starts.windows(2).all(|w| w[0] <= w[1] + 1e-3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_signal_ends_the_run_and_keeps_measurements() {
    let mock = start(MockConfig {
        tokens: 40,
        ..MockConfig::slow()
    })
    .await;
    let a = args(&[
        "--base-url",
        &mock.url(),
        "--model",
        "m",
        "--concurrency",
        "2",
        "--num-requests",
        "50",
        "--warmup",
        "0",
        "--input-len",
        "8",
    ]);
    let stop = StopSignal::default();
    let s = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        s.stop();
    });
    let t = Instant::now();
    let report = run_bench(&a, chunks(), stop).await.unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    assert!(report.interrupted);
    let m = &report.runs[0].metrics;
    // Each request takes ~1 s: two finished, two were in flight at the stop.
    assert_eq!((m.completed, m.cancelled), (2, 2), "{m:?}");
    assert!(m.duration_s < 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fim_requests_carry_a_suffix_to_completions() {
    let mock = start(MockConfig::fast()).await;
    let a = args(&[
        "--base-url",
        &mock.url(),
        "--model",
        "m",
        "--workload",
        "code",
        "--code-mix",
        "fim=1",
        "--num-requests",
        "3",
        "--warmup",
        "0",
        "--input-len",
        "300",
    ]);
    let report = run_bench(&a, chunks(), StopSignal::default())
        .await
        .unwrap();
    assert_eq!(report.runs[0].metrics.completed, 3);
    let bodies = mock.bodies();
    assert_eq!(bodies.len(), 3);
    for (path, body) in bodies {
        assert_eq!(path, "/v1/completions");
        assert!(
            body["suffix"].as_str().is_some_and(|s| !s.is_empty()),
            "{body}"
        );
        assert!(body["prompt"].as_str().is_some_and(|s| !s.is_empty()));
    }
    assert!(report.runs[0].records.iter().all(|r| r.kind == "fim"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_sessions_resend_history_with_the_real_replies() {
    let mock = start(MockConfig::fast()).await;
    let a = args(&[
        "--base-url",
        &mock.url(),
        "--model",
        "m",
        "--workload",
        "agent",
        "--sessions",
        "2",
        "--turns",
        "3",
        "--warmup",
        "0",
        "--input-len",
        "64",
    ]);
    let report = run_bench(&a, chunks(), StopSignal::default())
        .await
        .unwrap();
    let run = &report.runs[0];
    assert_eq!((run.metrics.completed, run.concurrency), (6, Some(2)));
    let mut turns: Vec<(u64, u32)> = run.records.iter().map(|r| (r.session, r.turn)).collect();
    turns.sort();
    assert_eq!(
        turns,
        [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)],
        "2 whole sessions"
    );
    let bodies = mock.bodies();
    let system = &bodies[0].1["messages"][0];
    for turn in 0..3usize {
        let of_turn: Vec<_> = bodies
            .iter()
            .filter(|(_, b)| b["messages"].as_array().unwrap().len() == 2 + 2 * turn)
            .collect();
        assert_eq!(of_turn.len(), 2, "two sessions at turn {turn}");
        for (_, b) in of_turn {
            let msgs = b["messages"].as_array().unwrap();
            assert_eq!(&msgs[0], system, "every session shares the system prompt");
            for k in 0..turn {
                assert_eq!(msgs[2 + 2 * k]["role"], "assistant");
                assert_eq!(msgs[2 + 2 * k]["content"], "tok0 tok1 tok2 tok3 tok4 ");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duration_mode_stops_issuing_at_the_deadline() {
    let mock = start(MockConfig::fast()).await;
    let a = args(&[
        "--base-url",
        &mock.url(),
        "--model",
        "m",
        "--concurrency",
        "2",
        "--duration",
        "400ms",
        "--warmup",
        "0",
        "--input-len",
        "8",
    ]);
    let report = run_bench(&a, chunks(), StopSignal::default())
        .await
        .unwrap();
    let m = &report.runs[0].metrics;
    // ~45 ms a request, 2 at a time: about 16 in 400 ms; the last ones finish after the deadline.
    assert!(m.completed >= 4 && m.failed == 0, "{m:?}");
    assert!((0.4..1.0).contains(&m.duration_s), "{}", m.duration_s);
    let last_start = report.runs[0]
        .records
        .iter()
        .map(|r| r.start_s)
        .fold(0.0, f64::max);
    assert!(
        last_start < 0.42,
        "no request starts after the deadline: {last_start}"
    );
    assert_eq!(report.config.num_requests, None);
}
