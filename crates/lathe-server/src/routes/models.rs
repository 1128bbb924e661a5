//! `GET /v1/models` and `GET /v1/models/{id}`.

use axum::extract::{Path, State};
use axum::Json;

use crate::error::ApiError;
use crate::protocol::{unix_now, ModelCard, ModelList};
use crate::state::AppState;

fn cards(state: &AppState) -> Result<Vec<ModelCard>, ApiError> {
    let info = state.engine()?.info().clone();
    let mut names = state.options().served_model_names.clone();
    if names.is_empty() {
        names.push(info.id.clone());
    }
    Ok(names
        .into_iter()
        .map(|id| ModelCard {
            id,
            object: "model",
            created: unix_now(),
            owned_by: "lathe",
            root: info.id.clone(),
            max_model_len: info.max_model_len,
        })
        .collect())
}

pub async fn list(State(state): State<AppState>) -> Result<Json<ModelList>, ApiError> {
    Ok(Json(ModelList {
        object: "list",
        data: cards(&state)?,
    }))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ModelCard>, ApiError> {
    let resolved = state.resolve_model(Some(&id))?;
    let mut card = cards(&state)?.remove(0);
    card.id = resolved;
    Ok(Json(card))
}
