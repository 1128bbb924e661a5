//! Pieces every route uses: the JSON body extractor (OpenAI error bodies for malformed JSON,
//! wrong types, invalid UTF-8 and oversized bodies), logprob formatting, tool-call markers.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};
use lathe_engine::sampler::TokenLogprobs;
use lathe_engine::tokenizer::TextTokenizer;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;
use crate::protocol::{ChatTokenLogprob, TopLogprob};
use crate::state::AppState;

/// A JSON request body, parsed but not yet typed (see [`from_value`]). The content type must
/// be JSON when it is given (415 otherwise: a form or multipart body is not read as JSON); a
/// request without one is accepted. The body must arrive within the body-read timeout (408).
pub struct JsonBody(pub Value);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        check_json_content_type(req.headers())?;
        let timeout = state.options().body_read_timeout;
        let read = tokio::time::timeout(timeout, Bytes::from_request(req, state)).await;
        let bytes = read
            .map_err(|_| {
                ApiError::with_status(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "the request body did not arrive within {} s",
                        timeout.as_secs_f64()
                    ),
                )
            })?
            .map_err(|rej| {
                if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::payload_too_large(state.options().max_body_bytes)
                } else {
                    ApiError::bad_request(format!("could not read the request body: {rej}"))
                }
            })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// 415 unless the content type is absent or JSON (`application/json`, `…+json`).
pub fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let mime = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json")) {
        return Ok(());
    }
    Err(ApiError::with_status(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!(
            "unsupported content type `{}`: send the body as `application/json`",
            value.to_str().unwrap_or("(not text)")
        ),
    ))
}

/// Syntax check: UTF-8, then JSON.
pub fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(ApiError::bad_request(format!(
            "the request body is not valid UTF-8: {e}"
        )));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "the request body is empty; expected a JSON object",
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON in the request body: {e}")))
}

/// Types a parsed body; a missing or wrongly typed field is a 400 whose `param` names it.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let param = (path != "." && !path.is_empty()).then_some(path.clone());
        let at = if param.is_some() {
            format!(" (field `{path}`)")
        } else {
            String::new()
        };
        ApiError::invalid(param, format!("invalid request{at}: {inner}"))
    })
}

/// Text of one token for logprob listings.
pub fn token_text(tok: &TextTokenizer, id: u32) -> String {
    tok.decode(&[id], false).unwrap_or_default()
}

/// The chat-shaped logprob entry of a sampled token.
pub fn chat_logprob(tok: &TextTokenizer, token: u32, lp: &TokenLogprobs) -> ChatTokenLogprob {
    let text = token_text(tok, token);
    ChatTokenLogprob {
        bytes: text.as_bytes().to_vec(),
        token: text,
        logprob: lp.logprob,
        top_logprobs: lp
            .top
            .iter()
            .map(|&(id, logprob)| {
                let t = token_text(tok, id);
                TopLogprob {
                    bytes: t.as_bytes().to_vec(),
                    token: t,
                    logprob,
                }
            })
            .collect(),
    }
}

/// Token ids of a format's marker strings that are special tokens (the detokenizer drops
/// those, so the server feeds the marker text to the parser itself).
pub fn special_markers(tok: &TextTokenizer, markers: &[&'static str]) -> Vec<(u32, &'static str)> {
    if markers.is_empty() {
        return Vec::new();
    }
    let added = tok.inner().get_added_tokens_decoder();
    markers
        .iter()
        .filter_map(|m| {
            let id = tok.token_to_id(m)?;
            added.get(&id).filter(|t| t.special).map(|_| (id, *m))
        })
        .collect()
}
