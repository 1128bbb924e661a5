//! `/v1/messages` requests → the chat pipeline. An Anthropic Messages request is translated
//! into a chat completion request (`content.rs`: system and content blocks → messages;
//! `tools.rs`: tools and `tool_choice`) and validated by `validation::chat`, so it shares
//! templates, tool formats, constrained decoding and limits with `/v1/chat/completions` and
//! `/v1/responses`. Errors name the Anthropic field.
//!
//! `max_tokens` is a ceiling, as Anthropic treats it: Claude Code asks for 32000 whatever the
//! window, so the output gets what the window leaves up to that, instead of a 400.

mod content;
mod tools;

use serde_json::{json, Map, Value};

pub use content::BILLING_HEADER;

use super::chat::{validate as validate_chat, ValidChat};
use super::responses::usable_tools;
use crate::error::ApiError;
use crate::protocol::{ChatCompletionRequest, MessagesRequest, SamplingFields};
use crate::routes::common::from_value;
use crate::state::AppState;

/// Sampling fields copied from the Anthropic body to the chat request as they are.
const SAMPLING_KEYS: &[&str] = &["temperature", "top_p", "top_k", "stream"];

/// A checked Messages request: the chat request it became, and its stop sequences (to tell a
/// `stop_sequence` stop from the end of the turn).
pub struct ValidMessages {
    pub chat: ValidChat,
    pub stop_sequences: Vec<String>,
}

pub fn validate(state: &AppState, body: &Value) -> Result<ValidMessages, ApiError> {
    let req: MessagesRequest = from_value(body)?;
    let system = content::system_text(req.system.as_ref())?;
    let messages = content::messages(system, &req.messages)?;
    let declared = tools::tools(req.tools.as_deref().unwrap_or(&[]))?;
    let (tool_choice, parallel) = tools::tool_choice(req.tool_choice.as_ref())?;
    let forced = tool_choice
        .as_ref()
        .is_some_and(|c| c != "auto" && c != "none");
    let tools = usable_tools(state, declared, forced)?;
    let stop_sequences = req.stop_sequences.clone().unwrap_or_default();

    let mut chat = Map::new();
    chat.insert("messages".into(), Value::Array(messages));
    if let Some(m) = &req.model {
        chat.insert("model".into(), json!(m));
    }
    if !tools.is_empty() {
        chat.insert("tools".into(), Value::Array(tools));
        if let Some(c) = tool_choice {
            chat.insert("tool_choice".into(), c);
        }
        chat.insert("parallel_tool_calls".into(), json!(parallel));
    }
    if let Some(m) = req.max_tokens {
        chat.insert("max_tokens".into(), json!(m));
    }
    if !stop_sequences.is_empty() {
        chat.insert("stop".into(), json!(stop_sequences));
    }
    for key in SAMPLING_KEYS {
        if let Some(v) = body.get(*key).filter(|v| !v.is_null()) {
            chat.insert((*key).into(), v.clone());
        }
    }
    let chat = Value::Object(chat);
    let parse = || -> Result<(ChatCompletionRequest, SamplingFields), ApiError> {
        Ok((from_value(&chat)?, from_value(&chat)?))
    };
    let (chat_req, fields) = parse().map_err(anthropic_param)?;
    let mut valid = validate_chat(state, chat_req, fields).map_err(anthropic_param)?;
    // A ceiling, not a demand: `fit` caps what the window leaves by the default instead.
    if let Some(m) = valid.sampling.max_tokens.take() {
        valid.sampling.default_max_tokens = Some(m);
    }
    Ok(ValidMessages {
        chat: valid,
        stop_sequences,
    })
}

/// A chat-pipeline error, re-addressed to the Anthropic field it came from.
pub fn anthropic_param(mut e: ApiError) -> ApiError {
    let renamed = match e.param.as_deref() {
        Some(p) if p.starts_with("messages") => Some("messages"),
        Some("max_tokens" | "max_completion_tokens") => Some("max_tokens"),
        Some(p) if p.starts_with("stop") => Some("stop_sequences"),
        _ => None,
    };
    if let Some(r) = renamed {
        e.param = Some(r.to_string());
    }
    e
}
