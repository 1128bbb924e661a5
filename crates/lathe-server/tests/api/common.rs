//! Shared test fixtures: ONE engine for the whole test binary (the default model, loaded on first
//! use), a router per test over it, and request/SSE helpers over `oneshot` (no socket).

use std::sync::OnceLock;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use lathe_engine::{EngineConfig, EngineHandle};
use lathe_server::{AppState, ServerOptions};
use serde_json::Value;
use tower::ServiceExt;

/// Context window of the test engine (small, so the overflow test tokenizes little).
pub const MAX_MODEL_LEN: usize = 2048;

pub fn engine() -> EngineHandle {
    static ENGINE: OnceLock<EngineHandle> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn".into());
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
            lathe_engine::start(EngineConfig {
                max_model_len: Some(MAX_MODEL_LEN),
                cpu_kv_cache_bytes: 512 << 20,
                model: "smollm2-135m-instruct".into(),
                ..EngineConfig::default()
            })
            .expect("the default model loads")
        })
        .clone()
}

pub fn state_with(opts: ServerOptions) -> AppState {
    AppState::new(engine(), opts)
}

pub fn app() -> Router {
    lathe_server::app(state_with(ServerOptions::default()))
}

/// Sends one request; returns status, headers and the whole body.
pub async fn send(
    app: &Router,
    method: Method,
    path: &str,
    body: impl Into<Body>,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Bytes) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(body.into()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, headers, bytes)
}

pub async fn post(app: &Router, path: &str, body: Value) -> (StatusCode, Value) {
    let (status, _, bytes) = send(app, Method::POST, path, body.to_string(), &[]).await;
    (
        status,
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into())),
    )
}

pub async fn get(app: &Router, path: &str) -> (StatusCode, Bytes) {
    let (status, _, bytes) = send(app, Method::GET, path, Body::empty(), &[]).await;
    (status, bytes)
}

/// The `data:` payloads of an SSE body; asserts it ends with `[DONE]` and drops that.
pub fn sse_payloads(body: &Bytes) -> Vec<Value> {
    let text = std::str::from_utf8(body).unwrap();
    let datas: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(
        datas.last(),
        Some(&"[DONE]"),
        "stream must end with [DONE]: {text}"
    );
    datas[..datas.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// Asserts the OpenAI error body and returns the error object.
pub fn error_of(body: &Value) -> &Value {
    let e = &body["error"];
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "no error message: {body}"
    );
    assert!(e["type"].is_string(), "no error type: {body}");
    assert!(
        e.get("param").is_some() && e.get("code").is_some(),
        "param/code missing: {body}"
    );
    e
}

pub fn user(text: &str) -> Value {
    serde_json::json!([{"role": "user", "content": text}])
}
