//! API-key check: with `--api-key` set, the API routes require `Authorization: Bearer <key>`,
//! compared in constant time. `/health`, `/metrics` and `/openapi.json` stay open.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

pub async fn require_api_key(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(key) = &state.options().api_key {
        if !authorized(
            req.headers()
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
            key,
        ) {
            return ApiError::unauthorized().into_response();
        }
    }
    next.run(req).await
}

/// True when `header` is `Bearer <key>` (scheme case-insensitive).
pub fn authorized(header: Option<&str>, key: &str) -> bool {
    let Some(h) = header else { return false };
    let Some((scheme, token)) = h.split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer")
        && bool::from(token.trim().as_bytes().ct_eq(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::authorized;

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
}
