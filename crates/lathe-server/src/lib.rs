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
pub mod constrained;
pub mod error;
pub mod fim;
pub mod generate;
pub mod metrics;
pub mod openapi;
pub mod protocol;
pub mod reasoning;
pub mod routes;
pub mod sse;
pub mod state;
pub mod tool_parsers;
pub mod validation;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;

pub use error::ApiError;
pub use state::{AppState, ServerOptions};

/// The whole API as an axum router (test it with `tower::ServiceExt::oneshot`).
pub fn app(state: AppState) -> Router {
    routes::router(state)
}

/// How long in-flight requests may run on after a shutdown signal before they are cancelled.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Binds `addr` and serves until `shutdown` resolves; see [`serve_listener`].
pub async fn serve(
    state: AppState,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve_listener(state, listener, shutdown).await
}

/// Serves on a bound listener. When `shutdown` resolves the server stops accepting, lets
/// in-flight requests finish for up to [`SHUTDOWN_GRACE`], then stops the engine (which ends
/// what is left) and returns at most a few seconds later.
pub async fn serve_listener(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections, finishing in-flight requests");
        let _ = tx.send(true);
    };
    let app = app(state.clone());
    let server = axum::serve(listener, app).with_graceful_shutdown(signal);
    let mut rx2 = rx.clone();
    let watchdog = {
        let state = state.clone();
        async move {
            let _ = rx2.wait_for(|&s| s).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
            tracing::warn!(
                in_flight = state.in_flight(),
                "grace period over: cancelling in-flight requests"
            );
            if let Ok(engine) = state.engine() {
                engine.shutdown();
            }
            // Connections that still do not close (a client that stopped reading) are dropped.
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    };
    tokio::select! {
        r = server => r?,
        _ = watchdog => {}
    }
    drop(rx);
    if let Ok(engine) = state.engine() {
        engine.shutdown();
    }
    Ok(())
}
