//! The router: one file per endpoint, plus the layers every request goes through.
//!
//! Layers, outside in: the access layer (counts every answer by route and status, writes the
//! log line of requests that no generation logs, and gives framework errors — unknown route,
//! wrong method, oversized body — the OpenAI error body), the body limit, panic catching (a
//! panic in a handler is a 500 with a body, logged with its message), tracing spans.

mod anthropic;
mod anthropic_error;
mod anthropic_output;
mod anthropic_stream;
mod chat;
mod chat_stream;
pub mod common;
mod completions;
mod health;
mod infill;
mod metrics;
mod models;
mod responses;
mod responses_output;
mod responses_stream;
mod tokenize;

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::error::{ApiError, ErrorMessage};
use crate::generate::LoggedByGeneration;
use crate::state::AppState;

/// Every route (see `openapi::ROUTES`, which documents the same set).
pub fn router(state: AppState) -> Router {
    let limit = state.options().max_body_bytes;
    let api = Router::new()
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/v1/completions", post(completions::completions))
        .route("/v1/responses", post(responses::responses))
        .route("/infill", post(infill::infill))
        .route("/v1/models", get(models::list))
        .route("/v1/models/{id}", get(models::get))
        .route("/tokenize", post(tokenize::tokenize))
        .route("/detokenize", post(tokenize::detokenize))
        .route_layer(from_fn_with_state(
            state.clone(),
            crate::auth::require_api_key,
        ));
    // Anthropic's error bodies for the Anthropic routes, the API key check included.
    let anthropic = Router::new()
        .route("/v1/messages", post(anthropic::messages))
        .route("/v1/messages/count_tokens", post(anthropic::count_tokens))
        .route_layer(from_fn_with_state(
            state.clone(),
            crate::auth::require_api_key,
        ))
        .route_layer(axum::middleware::from_fn(anthropic_error::anthropic_errors));
    let open = Router::new()
        .route("/health", get(health::health))
        .route("/metrics", get(metrics::metrics))
        .route("/openapi.json", get(openapi));
    layered(api.merge(anthropic).merge(open), state, limit)
}

/// The shared layers around `routes`.
fn layered(routes: Router<AppState>, state: AppState, body_limit: usize) -> Router {
    routes
        .fallback(not_found)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(from_fn_with_state(state.clone(), access))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn openapi(State(state): State<AppState>) -> Json<serde_json::Value> {
    let info = state.engine().ok().map(|e| e.info().clone());
    Json(crate::openapi::document(crate::openapi::Served {
        auth: state.options().api_key.is_some(),
        vocab_size: info.as_ref().map(|i| i.tokenizer.vocab_size()),
        fim: info
            .as_ref()
            .is_none_or(|i| crate::fim::model_fim(i).is_some()),
    }))
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ))
}

fn panic_response(p: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let msg = crate::generate::panic_message(&p);
    ApiError::internal(format!("a request handler panicked: {msg}")).into_response()
}

/// Counts and logs each request and gives framework errors an OpenAI body.
async fn access(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let mut resp = next.run(req).await;
    let status = resp.status();
    if (status.is_client_error() || status.is_server_error())
        && resp.extensions().get::<ErrorMessage>().is_none()
    {
        resp = framework_error(&state, resp);
    }
    state
        .metrics()
        .record_request(route.as_deref().unwrap_or("unmatched"), status.as_u16());
    if resp.extensions().get::<LoggedByGeneration>().is_none() {
        let error = resp
            .extensions()
            .get::<ErrorMessage>()
            .map(|e| e.0.as_str())
            .unwrap_or("");
        let duration_ms = format!("{:.1}", start.elapsed().as_secs_f64() * 1e3);
        let status = status.as_u16();
        // Probes (health checks, scrapes) log at debug so they do not drown the request log.
        if matches!(path.as_str(), "/health" | "/metrics") && status < 400 {
            tracing::debug!(target: "lathe_server::request", %method, %path, status, %duration_ms, "request");
        } else {
            tracing::info!(target: "lathe_server::request", %method, %path, status, %duration_ms, error, "request");
        }
    }
    resp
}

/// An error response some layer or axum itself made, re-made with the OpenAI body.
fn framework_error(state: &AppState, resp: Response) -> Response {
    let status = resp.status();
    let err = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::payload_too_large(state.options().max_body_bytes)
        }
        StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::with_status(status, "method not allowed on this route")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::with_status(status, "unsupported media type")
        }
        s => ApiError::with_status(s, s.canonical_reason().unwrap_or("error").to_string()),
    };
    let allow = resp.headers().get(header::ALLOW).cloned();
    let mut out = err.into_response();
    if let Some(a) = allow {
        out.headers_mut().insert(header::ALLOW, a);
    }
    out
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::ServerOptions;

    async fn boom() -> &'static str {
        panic!("kaboom")
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_500_with_a_body_and_the_server_goes_on() {
        let state = AppState::loading(ServerOptions::default());
        let app = layered(
            Router::new()
                .route("/boom", get(boom))
                .route("/health", get(health::health)),
            state,
            1024,
        );
        let resp = app
            .clone()
            .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(
            v["error"]["message"].as_str().unwrap().contains("kaboom"),
            "{v}"
        );
        let resp = app
            .oneshot(Request::get("/health").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
