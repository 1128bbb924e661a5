//! `/v1/responses` (the OpenAI Responses API, as Codex CLI speaks it): request and the
//! response object with its output items. Stream events are built in `routes/responses_*`.
//!
//! Input items and tools stay `Value`s here: their many types are told apart and checked in
//! `validation/responses/`, which names the offending item in its 400.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::chat::ChatTokenLogprob;
pub use crate::validation::responses::Echo;

/// The fields lathe reads; sampling fields (`temperature`, `top_p`, `stream`, vLLM's extras)
/// are read from the same body as `SamplingFields`. Unknown fields are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct ResponsesRequest {
    pub model: Option<String>,
    pub instructions: Option<String>,
    /// A string (one user message) or a list of items.
    pub input: Option<Value>,
    pub tools: Option<Vec<Value>>,
    pub tool_choice: Option<Value>,
    pub parallel_tool_calls: Option<bool>,
    pub text: Option<TextConfig>,
    pub max_output_tokens: Option<i64>,
    pub top_logprobs: Option<i64>,
    pub include: Option<Vec<String>>,
    pub previous_response_id: Option<String>,
    pub store: Option<bool>,
    pub background: Option<bool>,
    pub reasoning: Option<Value>,
    pub metadata: Option<Value>,
    pub user: Option<String>,
}

/// `text`: the output format (and verbosity, ignored).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TextConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<TextFormat>,
}

/// `text.format`: text | json_object | json_schema (name, schema, strict at this level).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TextFormat {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// The response object (non-streaming body, and the snapshot in lifecycle events).
#[derive(Debug, Clone, Serialize)]
pub struct ResponseObject {
    pub id: String,
    pub object: &'static str,
    pub created_at: u64,
    /// in_progress | completed | incomplete | failed
    pub status: &'static str,
    pub model: String,
    pub output: Vec<OutputItem>,
    pub error: Option<ResponseError>,
    pub incomplete_details: Option<IncompleteDetails>,
    pub previous_response_id: Option<String>,
    pub truncation: &'static str,
    pub usage: Option<ResponseUsage>,
    /// What the request set (instructions, tools, sampling, metadata, …).
    #[serde(flatten)]
    pub echo: Echo,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ResponseError {
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IncompleteDetails {
    pub reason: &'static str,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ResponseUsage {
    pub input_tokens: usize,
    pub input_tokens_details: InputTokensDetails,
    pub output_tokens: usize,
    pub output_tokens_details: OutputTokensDetails,
    pub total_tokens: usize,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct InputTokensDetails {
    pub cached_tokens: usize,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct OutputTokensDetails {
    pub reasoning_tokens: usize,
}

/// One output item.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputItem {
    Message {
        id: String,
        status: &'static str,
        role: &'static str,
        content: Vec<OutputText>,
    },
    Reasoning {
        id: String,
        summary: Vec<Value>,
        content: Vec<ReasoningText>,
    },
    FunctionCall {
        id: String,
        call_id: String,
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        arguments: String,
        status: &'static str,
    },
    CustomToolCall {
        id: String,
        call_id: String,
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        input: String,
        status: &'static str,
    },
}

impl OutputItem {
    pub fn id(&self) -> &str {
        match self {
            OutputItem::Message { id, .. }
            | OutputItem::Reasoning { id, .. }
            | OutputItem::FunctionCall { id, .. }
            | OutputItem::CustomToolCall { id, .. } => id,
        }
    }
}

/// An `output_text` content part.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OutputText {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub text: String,
    pub annotations: Vec<Value>,
    pub logprobs: Vec<ChatTokenLogprob>,
}

impl OutputText {
    pub fn new(text: String) -> Self {
        Self {
            kind: "output_text",
            text,
            annotations: Vec::new(),
            logprobs: Vec::new(),
        }
    }
}

/// A `reasoning_text` content part.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReasoningText {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub text: String,
}
