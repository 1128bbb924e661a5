//! The full command against two mock servers side by side with a sweep: table, JSON, SVG.

mod common;

use common::{args, start, MockConfig};
use lathe_bench::serve::run_serve;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_over_two_servers_writes_every_field() {
    let (a, b) = (
        start(MockConfig::fast()).await,
        start(MockConfig {
            fail_every: 3,
            ..MockConfig::fast()
        })
        .await,
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("res/results.json");
    let plots = dir.path().join("plots");
    let (url_a, url_b) = (
        format!("lathe={}", a.url()),
        format!("other={}/v1", b.url()),
    );
    let words = [
        "--base-url",
        &url_a,
        "--base-url",
        &url_b,
        "--model",
        "m1",
        "--model",
        "m2",
        "--sweep",
        "concurrency=1,2",
        "--num-requests",
        "4",
        "--warmup",
        "2",
        "--input-len",
        "16",
        "--slo",
        "ttft=2s,tpot=1s,e2e=5s",
        "--detailed",
        "--seed",
        "3",
        "--out",
        out.to_str().unwrap(),
        "--plot-dir",
        plots.to_str().unwrap(),
    ];
    run_serve(args(&words)).await.unwrap();

    let j: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(j["harness"]["version"], env!("CARGO_PKG_VERSION"));
    let commit = j["harness"]["git_commit"].as_str().unwrap();
    assert!(
        commit == "unknown"
            || (commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{commit}"
    );
    assert_eq!(j["harness"]["token_counter"], "chunks");
    let date = j["date"].as_str().unwrap();
    assert!(
        date.len() == 20 && date.ends_with('Z') && &date[10..11] == "T",
        "{date}"
    );
    assert_eq!(j["config"]["base_url"][1], url_b);
    assert_eq!(j["config"]["num_requests"], 4);
    assert_eq!(j["config"]["slo"]["ttft"], 2.0);
    assert!(j["config"].get("api_key").is_none());
    assert_eq!(j["targets"][0]["label"], "lathe");
    assert_eq!(j["targets"][1]["model"], "m2");
    assert_eq!(j["sweep"]["param"], "concurrency");
    assert_eq!(j["interrupted"], false);

    let runs = j["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4, "2 servers × 2 points");
    let labels: Vec<(&str, u64)> = runs
        .iter()
        .map(|r| {
            (
                r["target"].as_str().unwrap(),
                r["concurrency"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        labels,
        [("lathe", 1), ("lathe", 2), ("other", 1), ("other", 2)]
    );
    for r in runs {
        let m = &r["metrics"];
        for k in [
            "duration_s",
            "completed",
            "failed",
            "cancelled",
            "total_input_tokens",
            "total_output_tokens",
            "request_throughput",
            "output_throughput",
            "total_token_throughput",
            "request_goodput",
            "good_requests",
            "requests_with_usage",
            "errors",
        ] {
            assert!(!m[k].is_null(), "metrics.{k} missing in {m}");
        }
        for metric in ["ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"] {
            for k in ["mean", "median", "p90", "p99", "std", "min", "max", "count"] {
                assert!(m[metric][k].is_number(), "{metric}.{k} missing");
            }
        }
        assert_eq!(r["requests"].as_array().unwrap().len(), 4);
        assert!(r["requests"][0]["itl_s"].is_array());
        assert_eq!(
            r["base_url"],
            if r["target"] == "lathe" {
                a.url()
            } else {
                format!("{}/v1", b.url())
            }
        );
    }
    // The first server never fails; the second fails every third request (warmups included).
    assert_eq!(runs[0]["metrics"]["failed"], 0);
    assert_eq!(runs[0]["metrics"]["completed"], 4);
    assert_eq!(runs[0]["metrics"]["good_requests"], 4);
    // Warmups (2 per point) take requests 1-2 and 7-8: measured 3 and 6, 9 and 12 fail.
    let failed: Vec<u64> = runs[2..]
        .iter()
        .map(|r| r["metrics"]["errors"]["http_500"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(failed, [2, 2]);
    assert_eq!(runs[2]["error_samples"][0]["status"], 500);
    // Same seed → the same prompts to both servers.
    let prompts = |m: &common::Mock| -> Vec<String> {
        let mut p: Vec<String> = m
            .bodies()
            .iter()
            .map(|(_, b)| b["messages"][0]["content"].as_str().unwrap().to_string())
            .collect();
        p.sort();
        p
    };
    assert_eq!(prompts(&a), prompts(&b));

    for f in [
        "ttft_cdf",
        "itl_cdf",
        "e2e_cdf",
        "sweep_throughput",
        "sweep_tpot",
        "sweep_ttft",
    ] {
        let svg = std::fs::read_to_string(plots.join(format!("{f}.svg"))).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{f}"
        );
        assert!(svg.contains("<polyline"), "{f} has no line");
    }
    let tp = std::fs::read_to_string(plots.join("sweep_throughput.svg")).unwrap();
    assert!(tp.contains(">lathe<") && tp.contains(">other<"));
}
