//! The socket as hyper sees it, with two additions that only the byte stream can give:
//!
//! - A write-stall clock: when the kernel's send buffer is full (a client that stopped reading),
//!   the time since writes started blocking. The listener closes such a connection after
//!   `--client-stall-timeout`, which drops the response body and with it the engine requests,
//!   so a reader that went away never holds KV blocks or grows output buffers for long.
//! - OpenAI bodies on hyper's own error responses: a request line or header block that hyper
//!   cannot parse (garbage, a NUL in a header, a 64 KB URI, too many or too large headers) is
//!   answered by hyper itself with a bare `400`/`414`/`431` before any of our code runs. Those
//!   answers are recognised here (a 4xx head with `content-length: 0` and no content type,
//!   which no lathe route sends) and rewritten with the JSON error body.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::ApiError;

/// Since when writes to a connection have been blocked (0: they are not).
#[derive(Debug, Default)]
pub struct WriteClock {
    blocked_since_ms: AtomicU64,
}

fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    // +1 so that 0 stays free to mean "not blocked".
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

impl WriteClock {
    fn blocked(&self) {
        let _ = self.blocked_since_ms.compare_exchange(
            0,
            now_ms(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    fn progressed(&self) {
        self.blocked_since_ms.store(0, Ordering::Relaxed);
    }

    /// How long writes have been blocked, if they are.
    pub fn blocked_for(&self) -> Option<Duration> {
        match self.blocked_since_ms.load(Ordering::Relaxed) {
            0 => None,
            since => Some(Duration::from_millis(now_ms().saturating_sub(since))),
        }
    }

    /// Resolves once writes have been blocked for `limit` without a byte getting through.
    pub async fn stalled_for(&self, limit: Duration) {
        let tick = (limit / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        loop {
            tokio::time::sleep(tick).await;
            if self.blocked_for().is_some_and(|d| d >= limit) {
                return;
            }
        }
    }
}

/// A connection's stream: reads pass through; writes feed the [`WriteClock`] and have hyper's
/// bare error answers dressed (see the module doc).
pub struct GuardedStream<S> {
    inner: S,
    clock: Arc<WriteClock>,
    /// A dressed error answer still being written: bytes and how many are out.
    replacement: Option<(Vec<u8>, usize)>,
}

impl<S> GuardedStream<S> {
    pub fn new(inner: S, clock: Arc<WriteClock>) -> Self {
        Self {
            inner,
            clock,
            replacement: None,
        }
    }
}

impl<S: AsyncWrite + Unpin> GuardedStream<S> {
    /// Writes what is left of the replacement; Ready once it is all out.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, done)) = &mut self.replacement {
            if *done == bytes.len() {
                self.replacement = None;
                break;
            }
            let n = ready!(self.poll_inner_write(cx, None))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            let Some((_, done)) = &mut self.replacement else {
                break;
            };
            *done += n;
        }
        Poll::Ready(Ok(()))
    }

    /// One write of `buf` (or of the replacement's rest when `buf` is None), timed.
    fn poll_inner_write(
        &mut self,
        cx: &mut Context<'_>,
        buf: Option<&[u8]>,
    ) -> Poll<io::Result<usize>> {
        let bytes = match (buf, &self.replacement) {
            (Some(b), _) => b,
            (None, Some((r, done))) => &r[*done..],
            (None, None) => return Poll::Ready(Ok(0)),
        };
        match Pin::new(&mut self.inner).poll_write(cx, bytes) {
            Poll::Pending => {
                self.clock.blocked();
                Poll::Pending
            }
            Poll::Ready(r) => {
                self.clock.progressed();
                Poll::Ready(r)
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for GuardedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GuardedStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_replacement(cx))?;
        if let Some(dressed) = dress_bare_error(buf) {
            // hyper is told its bytes went out; ours go in their place (what a full socket
            // does not take now goes out on the next write, flush or shutdown).
            this.replacement = Some((dressed, 0));
            if let Poll::Ready(Err(e)) = this.poll_replacement(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        this.poll_inner_write(cx, Some(buf))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_replacement(cx))?;
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => {
                self.clock.blocked();
                Poll::Pending
            }
            r => r,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_replacement(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// hyper's own answer to an unparsable request, re-made with the OpenAI error body; `None` for
/// anything else.
pub fn dress_bare_error(buf: &[u8]) -> Option<Vec<u8>> {
    let rest = buf.strip_prefix(b"HTTP/1.1 4")?;
    let head_len = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    if head_len + 4 != buf.len() || rest.len() < 2 {
        return None;
    }
    let head = std::str::from_utf8(&buf[..head_len]).ok()?;
    let mut lines = head.split("\r\n");
    let code: u16 = lines.next()?.get(9..12)?.parse().ok()?;
    let mut bodiless = false;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        if name.eq_ignore_ascii_case("content-type") {
            return None;
        }
        if name.eq_ignore_ascii_case("content-length") {
            bodiless = value.trim() == "0";
        }
    }
    if !bodiless {
        return None;
    }
    let status = StatusCode::from_u16(code).ok()?;
    let message = match status {
        StatusCode::URI_TOO_LONG => "The request URI is longer than the server accepts.",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            "The request headers are too large or too many (at most 100 headers and about 400 KB)."
        }
        _ => "The request could not be parsed as HTTP/1.1 (malformed request line or header).",
    };
    tracing::info!(target: "lathe_server::request", status = code, error = message, "request");
    let body = ApiError::with_status(status, message).body().to_string();
    Some(
        format!(
            "HTTP/1.1 {code} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            status.canonical_reason().unwrap_or("Error"),
            body.len()
        )
        .into_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_bodiless_4xx_heads_are_dressed() {
        let bare =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let dressed = String::from_utf8(dress_bare_error(bare).unwrap()).unwrap();
        assert!(dressed.starts_with("HTTP/1.1 431 "), "{dressed}");
        let (head, body) = dressed.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");

        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n";
        assert!(dress_bare_error(ours).is_none(), "a typed answer is ours");
        let with_body = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}";
        assert!(dress_bare_error(with_body).is_none());
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert!(dress_bare_error(ok).is_none());
        assert!(dress_bare_error(b"data: HTTP/1.1 400\r\n\r\n").is_none());
    }
}
