//! Server-sent events in the OpenAI shapes: chat and completions send `data: {json}\n\n` per
//! chunk, then `data: [DONE]`; the Responses API names each event (`event: response.created`)
//! and sends no `[DONE]`.
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

/// The streaming response for `source`.
pub fn sse_response<S: SseSource>(source: S) -> Response {
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
    let mut resp = Sse::new(events).into_response();
    resp.extensions_mut().insert(LoggedByGeneration);
    resp
}

/// Serializes a chunk (our types always serialize).
pub fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| ApiError::internal(e).body().to_string())
}
