//! A real SIGINT (Ctrl-C) during `run_serve`: the run stops and still writes its report.
//! Its own test binary, so the signal reaches no other test.

mod common;

use std::time::{Duration, Instant};

use common::{args, start, MockConfig};
use lathe_bench::serve::run_serve;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_still_writes_what_was_measured() {
    let mock = start(MockConfig {
        tokens: 20,
        ..MockConfig::slow()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let a = args(&[
        "--base-url",
        &mock.url(),
        "--model",
        "m",
        "--concurrency",
        "2",
        "--num-requests",
        "100",
        "--warmup",
        "0",
        "--input-len",
        "8",
        "--out",
        out.to_str().unwrap(),
    ]);
    let t = Instant::now();
    let run = tokio::spawn(run_serve(a));
    // run_serve installs its handler first thing; by 1.2 s two requests (~0.6 s each) finished.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let status = std::process::Command::new("kill")
        .args(["-INT", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    run.await.unwrap().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "stopped promptly: {:?}",
        t.elapsed()
    );
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(j["interrupted"], true);
    let m = &j["runs"][0]["metrics"];
    assert!(m["completed"].as_u64().unwrap() >= 2, "{m}");
    assert!(m["completed"].as_u64().unwrap() < 100);
    assert!(m["ttft_ms"]["mean"].as_f64().unwrap() >= 195.0);
}
