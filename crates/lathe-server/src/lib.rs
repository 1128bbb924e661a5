//! lathe-server: the OpenAI-compatible HTTP API over the lathe engine (axum).
//!
//! ```text
//! HTTP ─ routes/ (one file per endpoint) ─ protocol/ (serde types)
//!      ─ validation/ (→ Valid* types; 400 naming the field) ─ spawn_blocking: template,
//!        tokenizer, grammar compile ─ generate.rs (admission, EngineHandle::submit, merged
//!        choice streams) ─ JSON body or sse.rs
//! ```
//!
//! Decisions:
//! - One error type (`ApiError`) renders every failure as the OpenAI error body; framework
//!   errors (404 route, 405, 413) and handler panics are re-dressed the same way.
//! - The response body owns the engine streams: a client that disconnects drops them, which
//!   cancels its requests and frees their KV blocks.
//! - Admission is a counter: at most `engine_slots + max_queue` generations in flight, past that
//!   429 with `Retry-After` — never an unbounded wait.
//! - Tool calls are parsed per model family (`tool_parsers/`), forced calls and JSON output are
//!   enforced by llguidance token masks (`constrained.rs`).
//! - No global state: metrics live in the `AppState`, so tests can build many servers.
//!
//! Not supported (refused with a 400 naming the field, never ignored silently): `logit_bias`,
//! `best_of` other than `n`, image/audio content parts, the deprecated `functions` /
//! `function_call`. Echoed prompt tokens carry `null` logprobs (the engine scores output only).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let engine = lathe_engine::start(lathe_engine::EngineConfig::default())?;
//! let state = lathe_server::AppState::new(engine, lathe_server::ServerOptions::default());
//! let addr = "127.0.0.1:8000".parse()?;
//! lathe_server::serve(state, addr, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

pub mod auth;
pub mod conn_io;
pub mod constrained;
pub mod error;
pub mod fim;
pub mod generate;
pub mod listener;
pub mod metrics;
pub mod openapi;
pub mod protocol;
pub mod reasoning;
pub mod routes;
pub mod sse;
pub mod state;
pub mod tool_parsers;
pub mod validation;

use axum::Router;
use std::future::Future;
use std::net::SocketAddr;

pub use error::ApiError;
pub use listener::{serve_listener, SHUTDOWN_GRACE};
pub use state::{AppState, ServerOptions};

/// The whole API as an axum router (test it with `tower::ServiceExt::oneshot`).
pub fn app(state: AppState) -> Router {
    routes::router(state)
}

/// Binds `addr` and serves until `shutdown` resolves; see [`serve_listener`].
pub async fn serve(
    state: AppState,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve_listener(state, listener, shutdown).await
}
