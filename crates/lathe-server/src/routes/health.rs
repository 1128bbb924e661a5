//! `GET /health`: 200 once the model is loaded, 503 (with Retry-After) while it loads. Never
//! behind the API key.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::error::ErrorMessage;
use crate::state::AppState;

pub async fn health(State(state): State<AppState>) -> Response {
    if state.is_ready() {
        return (StatusCode::OK, Json(json!({"status": "ok"}))).into_response();
    }
    let mut resp = (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "5")],
        Json(json!({"status": "loading"})),
    )
        .into_response();
    resp.extensions_mut()
        .insert(ErrorMessage("the model is loading".into()));
    resp
}
