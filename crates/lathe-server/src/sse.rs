//! Server-sent events in the OpenAI shape: `data: {json}\n\n` per chunk, then `data: [DONE]`.
//!
//! The response body owns its source (and through it the engine streams), so a client that
//! disconnects drops the body, the source, and the engine requests with it. A panic while
//! producing chunks becomes an error event, never a torn connection without explanation.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, StreamExt};

use crate::error::ApiError;
use crate::generate::{panic_message, LoggedByGeneration};

/// Produces the chunks of one streamed response.
pub trait SseSource: Send + 'static {
    /// The next JSON payloads to send; `None` when the response is complete.
    fn next_batch(&mut self) -> impl Future<Output = Option<Vec<String>>> + Send;
}

/// The streaming response for `source`.
pub fn sse_response<S: SseSource>(source: S) -> Response {
    let chunks = stream::unfold(Some(source), |slot| async move {
        let mut src = slot?;
        let batch = src.next_batch().await?;
        Some((stream::iter(batch), Some(src)))
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
                    Some(err.body().to_string())
                }
            };
            futures::future::ready(out)
        });
    let events = guarded
        .chain(stream::once(async { "[DONE]".to_string() }))
        .map(|data| Ok::<_, Infallible>(Event::default().data(data)));
    let mut resp = Sse::new(events).into_response();
    resp.extensions_mut().insert(LoggedByGeneration);
    resp
}

/// Serializes a chunk (our types always serialize).
pub fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| ApiError::internal(e).body().to_string())
}
