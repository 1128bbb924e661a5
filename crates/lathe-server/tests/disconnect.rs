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
        ..Default::default()
    })
    .expect("the default model loads");
    let stats = engine.stats();
    let total = stats.total_blocks.load(Ordering::Relaxed);
    let state = AppState::new(engine.clone(), ServerOptions::default());
    let app = lathe_server::app(state.clone());

    for path in ["/v1/chat/completions", "/v1/completions"] {
        let body = json!({"messages": [{"role": "user", "content": "Write a long story."}], "prompt": "Once upon a time",
            "max_tokens": 1000, "ignore_eos": true, "stream": true});
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
        assert!(
            stats.free_blocks.load(Ordering::Relaxed) < total,
            "a running request holds blocks"
        );
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
