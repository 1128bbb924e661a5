//! `POST /tokenize` and `POST /detokenize` (vLLM's shapes). `/tokenize` takes a `prompt`
//! (tokenized as `/v1/completions` would) or chat `messages` (rendered by the chat template as
//! `/v1/chat/completions` would).

use axum::extract::State;
use axum::Json;

use super::common::{from_value, JsonBody};
use crate::error::ApiError;
use crate::generate::blocking;
use crate::protocol::{DetokenizeRequest, DetokenizeResponse, TokenizeRequest, TokenizeResponse};
use crate::state::AppState;
use crate::tool_parsers;
use crate::validation::{messages, tokenize_error};

pub async fn tokenize(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Json<TokenizeResponse>, ApiError> {
    let req: TokenizeRequest = from_value(&body)?;
    state.resolve_model(req.model.as_deref())?;
    let st = state.clone();
    let resp = blocking(move || {
        let info = st.engine()?.info().clone();
        let tok = &info.tokenizer;
        let tokens = match (req.prompt, req.messages) {
            (Some(p), None) => if req.add_special_tokens.unwrap_or(true) {
                info.encode_raw(&p)
            } else {
                tok.encode(&p, false)
            }
            .map_err(tokenize_error)?,
            (None, Some(msgs)) => {
                let template = info.chat_template.as_ref().ok_or_else(|| {
                    ApiError::bad_request(format!("model `{}` has no chat template", info.id))
                })?;
                let caps = messages::TemplateCaps::of(tok.chat_template());
                let format = tool_parsers::format(info.tool_format.as_str());
                let decls: Option<Vec<serde_json::Value>> = req.tools.map(|t| {
                    t.iter()
                        .map(|t| serde_json::to_value(t).unwrap_or_default())
                        .collect()
                });
                let normalized = messages::normalize(&msgs, decls.as_deref(), format, caps)?;
                let template_tools = decls.filter(|_| caps.tools);
                let text = template
                    .render(
                        &normalized,
                        template_tools.as_deref(),
                        req.add_generation_prompt.unwrap_or(true),
                    )
                    .map_err(|e| {
                        ApiError::invalid(
                            "messages".to_string(),
                            format!("the chat template failed: {e:#}"),
                        )
                    })?;
                tok.encode(&text, false).map_err(tokenize_error)?
            }
            _ => {
                return Err(ApiError::bad_request(
                    "give exactly one of `prompt` and `messages`",
                ))
            }
        };
        let token_strs = req.return_token_strs.unwrap_or(false).then(|| {
            tokens
                .iter()
                .map(|&id| tok.id_to_token(id).unwrap_or_default())
                .collect()
        });
        Ok(TokenizeResponse {
            count: tokens.len(),
            max_model_len: info.max_model_len,
            tokens,
            token_strs,
        })
    })
    .await?;
    Ok(Json(resp))
}

pub async fn detokenize(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Json<DetokenizeResponse>, ApiError> {
    let req: DetokenizeRequest = from_value(&body)?;
    state.resolve_model(req.model.as_deref())?;
    let info = state.engine()?.info().clone();
    let vocab = info.tokenizer.vocab_size() as i64;
    let mut ids = Vec::with_capacity(req.tokens.len());
    for (i, &t) in req.tokens.iter().enumerate() {
        if !(0..vocab).contains(&t) {
            return Err(ApiError::invalid(
                format!("tokens[{i}]"),
                format!("token id {t} is outside the vocabulary (size {vocab})"),
            ));
        }
        ids.push(t as u32);
    }
    let prompt =
        blocking(move || info.tokenizer.decode(&ids, false).map_err(tokenize_error)).await?;
    Ok(Json(DetokenizeResponse { prompt }))
}
