//! What one request measured: timings, token counts, and how it failed.
//!
//! All times are seconds (`f64`), relative to the request's own send time except `start_s`,
//! which is relative to the start of the run. Reports convert to milliseconds.

use serde::{Deserialize, Serialize};

/// Why a request failed. The report counts failures by [`RequestError::key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The server answered with a non-2xx status.
    Http,
    /// Connecting, sending or reading failed (refused, reset, TLS, ...).
    Transport,
    /// The request ran past `--timeout`.
    Timeout,
    /// The stream carried an error event or a chunk that is not valid JSON.
    Stream,
    /// The stream ended without a single content chunk (vLLM counts this as a failure too).
    NoContent,
}

/// A failed request: its kind, HTTP status when there was one, and the (truncated) message/body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestError {
    pub kind: ErrorKind,
    pub status: Option<u16>,
    pub message: String,
}

impl RequestError {
    /// Longest message or body kept, in characters.
    pub const MAX_MESSAGE: usize = 500;

    pub fn new(kind: ErrorKind, status: Option<u16>, message: impl Into<String>) -> Self {
        let message: String = message.into();
        let message = if message.chars().count() > Self::MAX_MESSAGE {
            let mut m: String = message.chars().take(Self::MAX_MESSAGE).collect();
            m.push('…');
            m
        } else {
            message
        };
        RequestError {
            kind,
            status,
            message,
        }
    }

    /// Key the report counts by: `http_500`, `transport`, `timeout`, `stream`, `no_content`.
    pub fn key(&self) -> String {
        match (self.kind, self.status) {
            (ErrorKind::Http, Some(s)) => format!("http_{s}"),
            (ErrorKind::Http, None) => "http".into(),
            (ErrorKind::Transport, _) => "transport".into(),
            (ErrorKind::Timeout, _) => "timeout".into(),
            (ErrorKind::Stream, _) => "stream".into(),
            (ErrorKind::NoContent, _) => "no_content".into(),
        }
    }
}

/// Where a request's token counts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenSource {
    /// The server's `usage` object.
    Usage,
    /// The harness's [`crate::tokens::TokenCounter`] (chunk counts by default).
    Counter,
}

/// Everything measured about one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Issue order within the run (0-based).
    pub id: u64,
    /// Workload kind of the request (`random`, `fim`, `edit`, `agent`, ...).
    pub kind: String,
    /// Conversation the request belongs to, and its turn (0-based); single-shot workloads have
    /// one turn per conversation.
    pub session: u64,
    pub turn: u32,
    /// Send time relative to the start of the run.
    pub start_s: f64,
    /// Time to the first content chunk; `None` when none arrived.
    pub ttft_s: Option<f64>,
    /// Gaps between consecutive content chunks.
    pub itl_s: Vec<f64>,
    /// Time to the end of the response stream (or to the failure).
    pub e2e_s: f64,
    pub prompt_tokens: usize,
    pub output_tokens: usize,
    /// SSE chunks that carried content.
    pub content_chunks: usize,
    pub token_source: TokenSource,
    pub error: Option<RequestError>,
}

impl RequestRecord {
    /// A request that failed before any measurement beyond its latency.
    pub fn failed(id: u64, start_s: f64, e2e_s: f64, error: RequestError) -> Self {
        RequestRecord {
            id,
            kind: String::new(),
            session: 0,
            turn: 0,
            start_s,
            ttft_s: None,
            itl_s: Vec::new(),
            e2e_s,
            prompt_tokens: 0,
            output_tokens: 0,
            content_chunks: 0,
            token_source: TokenSource::Counter,
            error: Some(error),
        }
    }

    pub fn ok(&self) -> bool {
        self.error.is_none()
    }

    /// Time per output token after the first, as vLLM defines it: `(e2e − ttft) / (n − 1)`,
    /// only for successful requests with more than one output token.
    pub fn tpot_s(&self) -> Option<f64> {
        match (self.ok(), self.ttft_s) {
            (true, Some(ttft)) if self.output_tokens > 1 => {
                Some((self.e2e_s - ttft) / (self.output_tokens - 1) as f64)
            }
            _ => None,
        }
    }
}
