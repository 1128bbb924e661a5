//! Anthropic error bodies for the `/v1/messages` routes: `{"type": "error", "error": {"type",
//! "message"}}` with Anthropic's status codes. Every failure is still an `ApiError` inside the
//! server; this layer re-dresses the answer at the route boundary (handler errors and the API
//! key check alike), so the OpenAI routes are untouched.

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::error::{ApiError, ErrorMessage};

/// Anthropic's status and error type for one of our statuses. A busy or unavailable server is
/// `overloaded_error` (529), which Claude Code retries.
pub fn status_and_type(status: StatusCode) -> (StatusCode, &'static str) {
    let overloaded = StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    match status.as_u16() {
        400 | 422 => (StatusCode::BAD_REQUEST, "invalid_request_error"),
        401 => (status, "authentication_error"),
        403 => (status, "permission_error"),
        404 => (status, "not_found_error"),
        413 => (status, "request_too_large"),
        429 => (status, "rate_limit_error"),
        503 | 529 => (overloaded, "overloaded_error"),
        s if s >= 500 => (status, "api_error"),
        _ => (status, "invalid_request_error"),
    }
}

/// The Anthropic error object (also the payload of a stream's `error` event).
pub fn error_body(status: StatusCode, message: &str) -> Value {
    let (_, kind) = status_and_type(status);
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// `err` as an Anthropic stream `error` event payload.
pub fn stream_error(err: &ApiError) -> Value {
    error_body(err.status, &err.message)
}

/// Middleware: our error answers (marked by `ErrorMessage`) get the Anthropic body and status;
/// the message, `Retry-After` and the log marker are kept.
pub async fn anthropic_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let failed = resp.status().is_client_error() || resp.status().is_server_error();
    let Some(message) = resp.extensions().get::<ErrorMessage>().cloned() else {
        return resp;
    };
    if !failed {
        return resp;
    }
    let (status, _) = status_and_type(resp.status());
    let mut out = (status, Json(error_body(resp.status(), &message.0))).into_response();
    if let Some(retry) = resp.headers().get(header::RETRY_AFTER) {
        out.headers_mut().insert(header::RETRY_AFTER, retry.clone());
    }
    out.extensions_mut().insert(message);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_anthropic_error_types() {
        let t = |s: u16| {
            let (st, kind) = status_and_type(StatusCode::from_u16(s).unwrap());
            (st.as_u16(), kind)
        };
        assert_eq!(t(400), (400, "invalid_request_error"));
        assert_eq!(t(401), (401, "authentication_error"));
        assert_eq!(t(404), (404, "not_found_error"));
        assert_eq!(t(413), (413, "request_too_large"));
        assert_eq!(t(429), (429, "rate_limit_error"));
        assert_eq!(t(500), (500, "api_error"));
        assert_eq!(t(503), (529, "overloaded_error"));
        let body = error_body(StatusCode::BAD_REQUEST, "bad");
        assert_eq!(
            body,
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}})
        );
    }
}
