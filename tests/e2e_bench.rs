//! End-to-end: `lathe bench serve` against `lathe serve` on the default model (a small count),
//! and the JSON report carries every field a reader relies on.

mod common;

use std::process::Command;

#[test]
fn bench_serve_against_lathe_serve_writes_a_complete_report() {
    let (_server, port) = common::start_server(&[
        "--model",
        "smollm2-135m-instruct",
        "--max-model-len",
        "1024",
    ]);
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-{port}.json"));
    let status = Command::new(env!("CARGO_BIN_EXE_lathe"))
        .args([
            "bench",
            "serve",
            "--base-url",
            &format!("http://127.0.0.1:{port}"),
        ])
        .args([
            "--model",
            "smollm2-135m-instruct",
            "--workload",
            "random",
            "--input-len",
            "32",
        ])
        .args([
            "--output-len",
            "8",
            "--num-requests",
            "6",
            "--concurrency",
            "2",
            "--warmup",
            "1",
        ])
        .args(["--slo", "ttft=60s,tpot=10s", "--no-progress", "--out"])
        .arg(&out)
        .status()
        .expect("lathe bench serve runs");
    assert!(status.success(), "lathe bench serve failed: {status}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let text = report.to_string();
    for field in [
        "git_commit",
        "date",
        "config",
        "targets",
        "runs",
        "ttft_ms",
        "tpot_ms",
        "itl_ms",
        "e2e",
        "p99",
        "median",
        "request_throughput",
        "output_throughput",
        "total_token_throughput",
        "request_goodput",
        "completed",
        "failed",
        "errors",
    ] {
        assert!(text.contains(field), "report lacks `{field}`: {text}");
    }
    let completed: Vec<u64> = find_all(&report, "completed");
    assert!(
        completed.contains(&6),
        "expected 6 completed requests: {text}"
    );
}

/// Every number stored under `key` anywhere in the document.
fn find_all(v: &serde_json::Value, key: &str) -> Vec<u64> {
    match v {
        serde_json::Value::Object(m) => m
            .iter()
            .flat_map(|(k, x)| {
                let mut found = if k == key {
                    x.as_u64().into_iter().collect()
                } else {
                    vec![]
                };
                found.extend(find_all(x, key));
                found
            })
            .collect(),
        serde_json::Value::Array(a) => a.iter().flat_map(|x| find_all(x, key)).collect(),
        _ => vec![],
    }
}
