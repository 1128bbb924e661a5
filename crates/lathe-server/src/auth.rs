//! API-key check: with `--api-key` set, the API routes require `Authorization: Bearer <key>`
//! or `x-api-key: <key>` (how Anthropic clients send it), compared in constant time. `/health`,
//! `/metrics` and `/openapi.json` stay open.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

pub async fn require_api_key(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(key) = &state.options().api_key {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        let ok = authorized(header(AUTHORIZATION.as_str()), key)
            || header(X_API_KEY).is_some_and(|k| key_matches(k, key));
        if !ok {
            return ApiError::unauthorized().into_response();
        }
    }
    next.run(req).await
}

/// Anthropic's API key header.
const X_API_KEY: &str = "x-api-key";

/// True when `header` is `Bearer <key>` (scheme case-insensitive).
pub fn authorized(header: Option<&str>, key: &str) -> bool {
    let Some(h) = header else { return false };
    let Some((scheme, token)) = h.split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer") && key_matches(token, key)
}

/// Constant-time comparison of a sent key (surrounding spaces ignored) with the server's.
fn key_matches(sent: &str, key: &str) -> bool {
    bool::from(sent.trim().as_bytes().ct_eq(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::{authorized, key_matches};

    #[test]
    fn bearer_header_forms() {
        assert!(authorized(Some("Bearer sk-1"), "sk-1"));
        assert!(authorized(Some("bearer sk-1"), "sk-1"));
        assert!(!authorized(Some("Bearer sk-2"), "sk-1"));
        assert!(!authorized(Some("Bearer sk-1x"), "sk-1"));
        assert!(!authorized(Some("Basic sk-1"), "sk-1"));
        assert!(!authorized(Some("sk-1"), "sk-1"));
        assert!(!authorized(None, "sk-1"));
    }

    #[test]
    fn x_api_key_values() {
        assert!(key_matches("sk-1", "sk-1"));
        assert!(key_matches(" sk-1 ", "sk-1"));
        assert!(!key_matches("sk-2", "sk-1"));
        assert!(!key_matches("", "sk-1"));
    }
}
