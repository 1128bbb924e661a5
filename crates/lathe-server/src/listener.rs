//! The accept loop: HTTP/1.1 connections served by hyper with the limits a public endpoint
//! needs, which `axum::serve` does not expose.
//!
//! - Header-read timeout (`--header-timeout`): a client that does not send a whole request
//!   head in time (slowloris), or leaves a keep-alive connection idle that long, is closed.
//! - At most `--max-connections` open connections; past that, new ones wait in the kernel's
//!   listen backlog until one closes (logged when the limit is reached).
//! - A client that stops reading its response for `--client-stall-timeout` is disconnected,
//!   which cancels its requests (see `conn_io`). The body-read timeout is the JSON extractor's.
//! - Graceful shutdown: stop accepting, let in-flight requests finish for [`SHUTDOWN_GRACE`],
//!   then stop the engine (which ends what is left) and drop what still does not close.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::conn_io::{GuardedStream, WriteClock};
use crate::state::AppState;

/// How long in-flight requests may run on after a shutdown signal before they are cancelled.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves on a bound listener until `shutdown` resolves (see the module doc), then returns
/// within [`SHUTDOWN_GRACE`] plus a few seconds.
pub async fn serve_listener(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let opts = state.options().clone();
    let app = crate::app(state.clone());
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(opts.max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                tracing::warn!(
                    max_connections = opts.max_connections,
                    "connection limit reached: new connections wait until one closes"
                );
                tokio::select! {
                    p = slots.clone().acquire_owned() => p?,
                    _ = &mut shutdown => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let clock = Arc::new(WriteClock::default());
        let io = TokioIo::new(GuardedStream::new(stream, clock.clone()));
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(opts.header_read_timeout)
            .serve_connection(io, TowerToHyperService::new(app.clone()));
        let conn = graceful.watch(conn);
        let stall = opts.client_stall_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            tokio::select! {
                r = conn => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "connection closed with an error");
                    }
                }
                _ = clock.stalled_for(stall) => {
                    tracing::warn!(
                        %peer,
                        stalled_secs = stall.as_secs_f64(),
                        "the client stopped reading its response: connection closed, its requests cancelled"
                    );
                }
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    let watchdog = {
        let state = state.clone();
        async move {
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
        _ = graceful.shutdown() => {}
        _ = watchdog => {}
    }
    if let Ok(engine) = state.engine() {
        engine.shutdown();
    }
    Ok(())
}
