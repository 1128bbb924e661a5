//! `/v1/responses` requests → the chat pipeline. The Responses API is translated into a chat
//! completion request (input items → messages in `input.rs`, tools → function tools in
//! `tools.rs`, `text.format` → `response_format`) and validated by `validation::chat`, so both
//! endpoints share templates, tool formats, constrained decoding and limits. Errors name the
//! Responses field.

mod input;
mod tools;

use serde_json::{json, Map, Value};

#[cfg(test)]
pub use tools::tool_map_for_tests;
pub use tools::{ToolEntry, ToolMap};

use super::chat::{validate as validate_chat, ValidChat};
use crate::error::ApiError;
use crate::protocol::{ChatCompletionRequest, ResponsesRequest, SamplingFields};
use crate::state::AppState;

/// `include` value that asks for token logprobs of the output text.
const INCLUDE_LOGPROBS: &str = "message.output_text.logprobs";

/// Sampling fields copied from the Responses body to the chat request as they are.
const SAMPLING_KEYS: &[&str] = &[
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "repetition_penalty",
    "stop",
    "stop_token_ids",
    "ignore_eos",
    "stream",
];

/// A checked Responses request: the chat request it became, and what the output needs.
pub struct ValidResponses {
    pub chat: ValidChat,
    pub tools: ToolMap,
    pub logprobs: bool,
    pub echo: Echo,
}

/// Request fields the response object repeats (flattened into it).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Echo {
    pub instructions: Option<String>,
    pub max_output_tokens: Option<i64>,
    pub metadata: Value,
    pub parallel_tool_calls: bool,
    pub reasoning: Value,
    pub store: bool,
    pub temperature: f32,
    pub top_p: f32,
    pub text: Value,
    pub tool_choice: Value,
    pub tools: Vec<Value>,
    pub user: Option<String>,
}

pub fn validate(state: &AppState, body: &Value) -> Result<ValidResponses, ApiError> {
    let req: ResponsesRequest = crate::routes::common::from_value(body)?;
    if req.previous_response_id.is_some() {
        return Err(ApiError::invalid(
            "previous_response_id".to_string(),
            "lathe does not store responses: send the whole conversation in `input` (with `store: false`) \
             instead of `previous_response_id`",
        ));
    }
    if req.background == Some(true) {
        return Err(ApiError::invalid(
            "background".to_string(),
            "background responses need stored responses, which lathe does not keep",
        ));
    }
    let input = req
        .input
        .as_ref()
        .ok_or_else(|| ApiError::invalid("input".to_string(), "`input` is required"))?;
    let declared = req.tools.clone().unwrap_or_default();
    let (tools, map) = tools::tools(&declared)?;
    let (tools, tool_choice) = tools::tool_choice(req.tool_choice.as_ref(), tools)?;
    let forced = tool_choice
        .as_ref()
        .is_some_and(|c| c != "auto" && c != "none");
    let tools = usable_tools(state, tools, forced)?;
    let tool_choice = tool_choice.filter(|_| !tools.is_empty());
    let messages = input::messages(req.instructions.as_deref(), input)?;
    let logprobs = req
        .include
        .as_ref()
        .is_some_and(|i| i.iter().any(|s| s == INCLUDE_LOGPROBS));

    let mut chat = Map::new();
    chat.insert("messages".into(), Value::Array(messages));
    if let Some(m) = &req.model {
        chat.insert("model".into(), json!(m));
    }
    if !tools.is_empty() {
        chat.insert("tools".into(), Value::Array(tools));
    }
    if let Some(c) = tool_choice {
        chat.insert("tool_choice".into(), c);
    }
    if let Some(p) = req.parallel_tool_calls {
        chat.insert("parallel_tool_calls".into(), json!(p));
    }
    if let Some(f) = req.text.as_ref().and_then(|t| t.format.as_ref()) {
        chat.insert("response_format".into(), response_format(f));
    }
    // `reasoning.effort` is the template variable `reasoning_effort` (checked by the chat
    // validation, errors renamed back by `responses_error`).
    if let Some(effort) = req.reasoning.as_ref().and_then(|r| r.get("effort")) {
        chat.insert("reasoning_effort".into(), effort.clone());
    }
    if let Some(m) = req.max_output_tokens {
        chat.insert("max_completion_tokens".into(), json!(m));
    }
    // One range rule with chat, whether or not logprobs are included.
    if let Some(k) = req.top_logprobs {
        super::check_top_logprobs(k, "top_logprobs")?;
    }
    if logprobs {
        chat.insert("logprobs".into(), json!(true));
        chat.insert("top_logprobs".into(), json!(req.top_logprobs.unwrap_or(0)));
    }
    for key in SAMPLING_KEYS {
        if let Some(v) = body.get(*key).filter(|v| !v.is_null()) {
            chat.insert((*key).into(), v.clone());
        }
    }
    let chat = Value::Object(chat);
    let parse = |v: &Value| -> Result<(ChatCompletionRequest, SamplingFields), ApiError> {
        let c = crate::routes::common::from_value(v)?;
        let f = crate::routes::common::from_value(v)?;
        Ok((c, f))
    };
    let (chat_req, fields) = parse(&chat).map_err(responses_error)?;
    let valid = validate_chat(state, chat_req, fields).map_err(responses_error)?;
    let echo = Echo {
        instructions: req.instructions.clone(),
        max_output_tokens: req.max_output_tokens,
        metadata: req.metadata.clone().unwrap_or_else(|| json!({})),
        parallel_tool_calls: req.parallel_tool_calls.unwrap_or(true),
        reasoning: req.reasoning.clone().unwrap_or(Value::Null),
        store: req.store.unwrap_or(false),
        temperature: valid.sampling.params.temperature,
        top_p: valid.sampling.params.top_p,
        text: req
            .text
            .as_ref()
            .map(|t| serde_json::to_value(t).unwrap_or_default())
            .unwrap_or_else(|| json!({"format": {"type": "text"}})),
        tool_choice: req.tool_choice.clone().unwrap_or_else(|| json!("auto")),
        tools: declared,
        user: req.user.clone(),
    };
    Ok(ValidResponses {
        chat: valid,
        tools: map,
        logprobs,
        echo,
    })
}

/// The request's tools, or none when the model cannot call tools and is not forced to: agent
/// frontends always send their tools, and such a model still answers in text (a forced call is
/// still refused by the chat validation).
pub(crate) fn usable_tools(
    state: &AppState,
    tools: Vec<Value>,
    forced: bool,
) -> Result<Vec<Value>, ApiError> {
    if tools.is_empty() || forced || model_calls_tools(state)? {
        return Ok(tools);
    }
    tracing::info!(
        tools = tools.len(),
        "the model has no tool-call format: answering without the request's tools"
    );
    Ok(Vec::new())
}

/// Whether the served model has a tool-call format lathe parses.
fn model_calls_tools(state: &AppState) -> Result<bool, ApiError> {
    let engine = state.engine()?;
    Ok(crate::tool_parsers::format(engine.info().tool_format.as_str()).is_some())
}

/// A chat-pipeline error, re-addressed to the Responses field it came from.
pub fn responses_error(mut e: ApiError) -> ApiError {
    if let Some(p) = &e.param {
        let renamed = if p.starts_with("messages") {
            Some("input")
        } else if p.starts_with("response_format") {
            Some("text.format")
        } else if p == "max_completion_tokens" || p == "max_tokens" {
            Some("max_output_tokens")
        } else if p == "reasoning_effort" {
            Some("reasoning.effort")
        } else {
            None
        };
        if let Some(r) = renamed {
            e.param = Some(r.to_string());
        }
    }
    e.message = e
        .message
        .replace("max_completion_tokens", "max_output_tokens")
        .replace("max_tokens", "max_output_tokens");
    e
}

/// `text.format` as a chat `response_format`.
fn response_format(f: &crate::protocol::TextFormat) -> Value {
    match f.kind.as_str() {
        "json_schema" => json!({"type": "json_schema", "json_schema": {
            "name": f.name.clone().unwrap_or_else(|| "output".into()),
            "schema": f.schema.clone().unwrap_or_else(|| json!({"type": "object"})),
            "strict": f.strict,
        }}),
        other => json!({"type": other}),
    }
}
