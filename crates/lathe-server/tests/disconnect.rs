//! A client that disconnects mid-stream cancels its request and frees its KV blocks. Its own
//! binary (own engine) so that no other test's requests hold blocks while we count them.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use lathe_engine::EngineConfig;
use lathe_server::{AppState, ServerOptions};
use serde_json::json;
use tower::ServiceExt;

#[tokio::test]
async fn dropping_the_stream_cancels_and_frees_blocks() {
    let engine = lathe_engine::start(EngineConfig {
        max_model_len: Some(2048),
        cpu_kv_cache_bytes: 256 << 20,
        model: "smollm2-135m-instruct".into(),
        ..Default::default()
    })
    .expect("the default model loads");
    let stats = engine.stats();
    let total = stats.total_blocks.load(Ordering::Relaxed);
    let state = AppState::new(engine.clone(), ServerOptions::default());
    let app = lathe_server::app(state.clone());

    for path in ["/v1/chat/completions", "/v1/completions", "/v1/responses"] {
        let body = json!({"messages": [{"role": "user", "content": "Write a long story."}], "prompt": "Once upon a time",
            "input": "Write a long story.", "max_tokens": 1000, "max_output_tokens": 1000, "ignore_eos": true, "stream": true});
        let req = Request::builder()
            .method("POST")
            .uri(path)
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let mut body = resp.into_body();
        let mut seen = 0;
        while seen < 4 {
            let frame = body.frame().await.expect("stream ended early").unwrap();
            if frame.is_data() {
                seen += 1;
            }
        }
        // Stats are published after each engine step, so give the step that sent the first
        // tokens a moment to finish.
        let deadline = Instant::now() + Duration::from_secs(10);
        while stats.free_blocks.load(Ordering::Relaxed) == total {
            assert!(
                Instant::now() < deadline,
                "{path}: a running request holds blocks"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(body); // the client goes away

        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let free = stats.free_blocks.load(Ordering::Relaxed);
            let running =
                stats.running.load(Ordering::Relaxed) + stats.waiting.load(Ordering::Relaxed);
            if free == total && running == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{path}: blocks not freed: {free}/{total}, {running} requests left"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(state.in_flight(), 0);
    }

    // And the server still serves.
    let req = Request::builder()
        .method("POST")
        .uri("/v1/completions")
        .body(Body::from(
            json!({"prompt": "Hi", "max_tokens": 2}).to_string(),
        ))
        .unwrap();
    assert_eq!(app.oneshot(req).await.unwrap().status(), 200);
}

/// A failure after a Responses stream started (here the engine shuts down under it) ends the
/// stream with `response.failed` carrying an error code, not a torn connection.
#[tokio::test]
async fn a_stream_cut_by_shutdown_ends_with_response_failed() {
    let engine = lathe_engine::start(EngineConfig {
        max_model_len: Some(2048),
        cpu_kv_cache_bytes: 64 << 20,
        model: "smollm2-135m-instruct".into(),
        ..Default::default()
    })
    .expect("the default model loads");
    let app = lathe_server::app(AppState::new(engine.clone(), ServerOptions::default()));
    let body = json!({"input": "Write a long story.", "max_output_tokens": 1000, "ignore_eos": true, "stream": true});
    let req = Request::builder()
        .method("POST")
        .uri("/v1/responses")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut text = String::new();
    while !text.contains("response.output_text.delta") {
        let frame = body.frame().await.expect("stream ended early").unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(std::str::from_utf8(&data).unwrap());
        }
    }
    engine.shutdown();
    let rest = tokio::time::timeout(Duration::from_secs(30), body.collect())
        .await
        .expect("the stream ends after shutdown")
        .unwrap()
        .to_bytes();
    text.push_str(std::str::from_utf8(&rest).unwrap());
    let last = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .next_back()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(v["type"], "response.failed", "{v}");
    assert_eq!(v["response"]["status"], "failed");
    assert!(v["response"]["error"]["code"].is_string(), "{v}");
    assert!(v["response"]["error"]["message"].is_string(), "{v}");
}
