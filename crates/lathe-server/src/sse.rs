//! Server-sent events in the OpenAI shapes: chat and completions send `data: {json}\n\n` per
//! chunk, then `data: [DONE]`; the Responses API names each event (`event: response.created`)
//! and sends no `[DONE]`.
//!
//! The response body owns its source (and through it the engine streams), so a client that
//! disconnects drops the body, the source, and the engine requests with it. A panic while
//! producing chunks becomes an error event, never a torn connection without explanation.
//!
//! Keep-alive: while no event is ready (a long CPU prefill before the first token), every
//! stream sends the SSE comment `: keep-alive` each [`keep_alive_interval`] (10 s;
//! `LATHE_SSE_KEEP_ALIVE_SECS` sets it), so a client's idle timeout (Codex: 300 s) never fires.
//! Clients skip comment lines, and some (Codex) do not count them against their idle timeout:
//! the Responses stream also repeats `response.in_progress` (see `routes::responses_stream`).

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, StreamExt};

use crate::error::ApiError;
use crate::generate::{panic_message, LoggedByGeneration};

/// One event: an optional event name and its JSON payload.
#[derive(Debug, Clone)]
pub struct SseFrame {
    pub event: Option<String>,
    pub data: String,
}

impl From<String> for SseFrame {
    fn from(data: String) -> Self {
        Self { event: None, data }
    }
}

/// Produces the chunks of one streamed response.
pub trait SseSource: Send + 'static {
    /// What a batch holds: JSON strings, or named frames.
    type Frame: Into<SseFrame> + Send;
    /// Whether the stream ends with `data: [DONE]`.
    const DONE_MARKER: bool = true;
    /// The next payloads to send; `None` when the response is complete.
    fn next_batch(&mut self) -> impl Future<Output = Option<Vec<Self::Frame>>> + Send;
}

/// Default time without an event after which a stream sends `: keep-alive`.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// The keep-alive interval: `LATHE_SSE_KEEP_ALIVE_SECS` (seconds, fractions allowed, > 0),
/// else [`KEEP_ALIVE`]. Read once.
pub fn keep_alive_interval() -> Duration {
    static INTERVAL: OnceLock<Duration> = OnceLock::new();
    *INTERVAL.get_or_init(|| {
        std::env::var("LATHE_SSE_KEEP_ALIVE_SECS")
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .map_or(KEEP_ALIVE, Duration::from_secs_f64)
    })
}

/// The streaming response for `source`.
pub fn sse_response<S: SseSource>(source: S) -> Response {
    sse_response_with(source, keep_alive_interval())
}

/// [`sse_response`] with a given keep-alive interval.
pub fn sse_response_with<S: SseSource>(source: S, keep_alive: Duration) -> Response {
    let chunks = stream::unfold(Some(source), |slot| async move {
        let mut src = slot?;
        let batch = src.next_batch().await?;
        let frames: Vec<SseFrame> = batch.into_iter().map(Into::into).collect();
        Some((stream::iter(frames), Some(src)))
    })
    .flatten();
    let guarded = AssertUnwindSafe(chunks)
        .catch_unwind()
        .scan(false, |failed, item| {
            let out = match item {
                _ if *failed => None,
                Ok(payload) => Some(payload),
                Err(p) => {
                    *failed = true;
                    let err =
                        ApiError::internal(format!("panic while streaming: {}", panic_message(&p)));
                    Some(SseFrame {
                        event: (!S::DONE_MARKER).then(|| "error".to_string()),
                        data: err.body().to_string(),
                    })
                }
            };
            futures::future::ready(out)
        });
    let done = S::DONE_MARKER.then(|| SseFrame::from("[DONE]".to_string()));
    let events = guarded.chain(stream::iter(done)).map(|f| {
        // The name goes first: clients read `event:` as the header of the `data:` after it.
        let ev = match f.event {
            Some(name) => Event::default().event(name),
            None => Event::default(),
        };
        Ok::<_, Infallible>(ev.data(f.data))
    });
    let mut resp = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(keep_alive).text("keep-alive"))
        .into_response();
    resp.extensions_mut().insert(LoggedByGeneration);
    resp
}

/// Serializes a chunk (our types always serialize).
pub fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| ApiError::internal(e).body().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sleeps before its one chunk, like a request in a long prefill.
    struct Slow(bool);

    impl SseSource for Slow {
        type Frame = String;

        async fn next_batch(&mut self) -> Option<Vec<String>> {
            if self.0 {
                return None;
            }
            self.0 = true;
            tokio::time::sleep(Duration::from_millis(300)).await;
            Some(vec!["{\"x\":1}".to_string()])
        }
    }

    #[tokio::test]
    async fn an_idle_stream_sends_keep_alive_comments_until_its_first_event() {
        let resp = sse_response_with(Slow(false), Duration::from_millis(50));
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = std::str::from_utf8(&body).unwrap();
        let (before, after) = text.split_once("data: {\"x\":1}").expect(text);
        assert!(
            before.matches(": keep-alive\n\n").count() >= 3,
            "keep-alives while waiting: {text:?}"
        );
        assert_eq!(after, "\n\ndata: [DONE]\n\n", "nothing idles after the end");
    }

    #[test]
    fn the_default_interval_is_well_under_client_idle_timeouts() {
        assert!(keep_alive_interval() <= Duration::from_secs(60));
    }
}
