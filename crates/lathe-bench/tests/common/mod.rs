//! A mock OpenAI-compatible SSE server on 127.0.0.1:0 with known timings, for the harness tests.
//!
//! Every streamed response: a role-only chunk at once, the first content chunk after `ttft`,
//! `tokens − 1` more content chunks `gap` apart, a finish chunk, a usage chunk (only when the
//! request asked for `stream_options.include_usage`), then `[DONE]`. Every `fail_every`-th
//! request (1-based) gets a 500 with an OpenAI error body instead. Request bodies are kept.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use lathe_bench::serve::ServeArgs;
use serde_json::{json, Value};

#[derive(Clone, Copy)]
pub struct MockConfig {
    pub ttft: Duration,
    pub gap: Duration,
    pub tokens: usize,
    /// Every n-th request fails with 500 (0: never).
    pub fail_every: usize,
}

impl MockConfig {
    /// First token after 200 ms, then 20 ms gaps, 10 tokens.
    pub fn slow() -> Self {
        MockConfig {
            ttft: Duration::from_millis(200),
            gap: Duration::from_millis(20),
            tokens: 10,
            fail_every: 0,
        }
    }

    /// First token after 20 ms, then 5 ms gaps, 5 tokens.
    pub fn fast() -> Self {
        MockConfig {
            ttft: Duration::from_millis(20),
            gap: Duration::from_millis(5),
            tokens: 5,
            fail_every: 0,
        }
    }
}

pub struct Mock {
    pub addr: SocketAddr,
    pub bodies: Arc<Mutex<Vec<(String, Value)>>>,
    pub count: Arc<AtomicUsize>,
}

impl Mock {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn bodies(&self) -> Vec<(String, Value)> {
        self.bodies.lock().unwrap().clone()
    }
}

#[derive(Clone)]
struct AppState {
    cfg: MockConfig,
    bodies: Arc<Mutex<Vec<(String, Value)>>>,
    count: Arc<AtomicUsize>,
}

fn sse(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

async fn handler(State(st): State<AppState>, uri: Uri, Json(body): Json<Value>) -> Response {
    let n = st.count.fetch_add(1, Ordering::SeqCst) + 1;
    st.bodies
        .lock()
        .unwrap()
        .push((uri.path().to_string(), body.clone()));
    if st.cfg.fail_every > 0 && n % st.cfg.fail_every == 0 {
        let err = json!({"error": {"message": "boom: injected failure", "type": "server_error"}});
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(err)).into_response();
    }
    let chat = uri.path().ends_with("/chat/completions");
    let usage = body.pointer("/stream_options/include_usage") == Some(&Value::Bool(true));
    let piece = |text: &str, finish: Value| {
        if chat {
            json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]})
        } else {
            json!({"object": "text_completion", "choices": [{"index": 0, "text": text, "finish_reason": finish}]})
        }
    };
    let cfg = st.cfg;
    let mut events: Vec<(Duration, Bytes)> = Vec::new();
    if chat {
        let role = json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]});
        events.push((Duration::ZERO, sse(&role)));
    }
    for i in 0..cfg.tokens {
        let delay = if i == 0 { cfg.ttft } else { cfg.gap };
        events.push((delay, sse(&piece(&format!("tok{i} "), Value::Null))));
    }
    events.push((Duration::ZERO, sse(&piece("", json!("length")))));
    if usage {
        let u = json!({"choices": [], "usage": {"prompt_tokens": 42, "completion_tokens": cfg.tokens, "total_tokens": 42 + cfg.tokens}});
        events.push((Duration::ZERO, sse(&u)));
    }
    events.push((Duration::ZERO, Bytes::from_static(b"data: [DONE]\n\n")));
    let stream = futures::stream::unfold(events.into_iter(), |mut it| async move {
        let (delay, bytes) = it.next()?;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Some((Ok::<_, Infallible>(bytes), it))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

/// Speculative-decoding counters as a speculating server would export them: per request
/// served so far, 2 drafts of 5 tokens, 7 of them accepted (split over two label sets, which
/// the scraper must add up).
async fn metrics(State(st): State<AppState>) -> String {
    let n = st.count.load(Ordering::SeqCst);
    format!(
        "# TYPE vllm:spec_decode_num_drafts_total counter\n\
         vllm:spec_decode_num_drafts_total{{model_name=\"m\",engine=\"0\"}} {}\n\
         vllm:spec_decode_num_drafts_total{{model_name=\"m\",engine=\"1\"}} {}\n\
         vllm:spec_decode_num_draft_tokens_total {}\n\
         vllm:spec_decode_num_accepted_tokens_total {}\n",
        n,
        n,
        10 * n,
        7 * n
    )
}

/// Starts a mock on a free loopback port; it lives as long as the test's runtime.
pub async fn start(cfg: MockConfig) -> Mock {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let state = AppState {
        cfg,
        bodies: bodies.clone(),
        count: count.clone(),
    };
    let app = Router::new()
        .route("/v1/chat/completions", post(handler))
        .route("/v1/completions", post(handler))
        .route("/metrics", get(metrics))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app).await.unwrap();
    });
    Mock {
        addr,
        bodies,
        count,
    }
}

/// A loopback URL nothing listens on.
pub async fn dead_url() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: ServeArgs,
}

/// `ServeArgs` from command-line words (no progress bar, no API key).
pub fn args(words: &[&str]) -> ServeArgs {
    let mut argv = vec!["bench", "--no-progress"];
    argv.extend_from_slice(words);
    let mut a = Cli::try_parse_from(argv).expect("valid arguments").args;
    a.api_key = None;
    a
}
