//! A streamed Responses run repeats `response.in_progress` while it waits for the engine (a
//! long prefill): real events, because Codex's 300 s idle timeout does not count SSE comments.
//! Its own binary: the keep-alive interval is read once per process, and here it is 20 ms.

use axum::body::Body;
use axum::http::Request;
use lathe_engine::EngineConfig;
use lathe_server::{AppState, ServerOptions};
use serde_json::{json, Value};
use tower::ServiceExt;

/// `(event name, payload)` of each SSE event.
fn events(body: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut name = None;
    for line in body.lines() {
        if let Some(n) = line.strip_prefix("event: ") {
            name = Some(n.to_string());
        } else if let Some(d) = line.strip_prefix("data: ") {
            let v: Value = serde_json::from_str(d).unwrap();
            out.push((name.take().expect("every Responses event is named"), v));
        }
    }
    out
}

#[tokio::test]
async fn a_waiting_responses_stream_repeats_in_progress_events() {
    std::env::set_var("LATHE_SSE_KEEP_ALIVE_SECS", "0.02");
    let engine = lathe_engine::start(EngineConfig {
        model: "smollm2-135m-instruct".into(),
        cpu_kv_cache_bytes: 256 << 20,
        ..EngineConfig::default()
    })
    .unwrap();
    let app = lathe_server::app(AppState::new(engine, ServerOptions::default()));
    // ~600 prompt tokens: a prefill far longer than the 20 ms interval.
    let prompt = "The quick brown fox jumps over the lazy dog. ".repeat(60);
    let body = json!({"input": prompt, "stream": true, "max_output_tokens": 4, "temperature": 0});
    let req = Request::post("/v1/responses")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let ev = events(std::str::from_utf8(&bytes).unwrap());
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[0], "response.created", "{names:?}");
    let first_output = names
        .iter()
        .position(|n| n.starts_with("response.output"))
        .expect("the run produced output");
    let beats = names[..first_output]
        .iter()
        .filter(|n| **n == "response.in_progress")
        .count();
    assert!(
        beats >= 2,
        "in_progress repeated while the prefill ran: {names:?}"
    );
    // Each beat is a well-formed event of the same response, in sequence.
    for (i, (name, v)) in ev.iter().enumerate() {
        assert_eq!(v["type"], name.as_str());
        assert_eq!(v["sequence_number"], i as u64, "{names:?}");
        if name == "response.in_progress" {
            assert_eq!(v["response"]["status"], "in_progress");
            assert_eq!(v["response"]["id"], ev[0].1["response"]["id"]);
        }
    }
    assert!(
        names.last().unwrap().starts_with("response.completed")
            || *names.last().unwrap() == "response.incomplete",
        "{names:?}"
    );
}
