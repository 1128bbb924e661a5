//! `/v1/messages` (the Anthropic Messages API, as Claude Code speaks it): the request and the
//! message object. Stream events are built in `routes/anthropic_*`.
//!
//! System blocks, message content blocks and tools stay `Value`s here: their types are told
//! apart and checked in `validation/anthropic/`, which names the offending block in its 400.
//! Unknown fields (`context_management`, `output_config`, `cache_control`, …) are ignored.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The fields lathe reads; `temperature`, `top_p`, `top_k` and `stream` are copied to the chat
/// request as they are.
#[derive(Debug, Clone, Deserialize)]
pub struct MessagesRequest {
    pub model: Option<String>,
    pub max_tokens: Option<i64>,
    /// A string, or a list of text blocks.
    pub system: Option<Value>,
    pub messages: Vec<AnthropicMessage>,
    pub tools: Option<Vec<Value>>,
    pub tool_choice: Option<AnthropicToolChoice>,
    pub stop_sequences: Option<Vec<String>>,
    /// `{type: enabled, budget_tokens}`, `{type: adaptive}` or `{type: disabled}`: accepted;
    /// a thinking model's reasoning comes back as `thinking` blocks either way.
    pub thinking: Option<Value>,
    pub metadata: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AnthropicMessage {
    pub role: String,
    /// A string, or a list of content blocks.
    pub content: Value,
}

/// `tool_choice`: `{type: auto | any | none}` or `{type: tool, name}`.
#[derive(Debug, Clone, Deserialize)]
pub struct AnthropicToolChoice {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: Option<String>,
    pub disable_parallel_tool_use: Option<bool>,
}

/// The message object (the non-streaming body, and `message_start`'s snapshot).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MessageObject {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub role: &'static str,
    pub content: Vec<ContentBlock>,
    pub model: String,
    /// end_turn | max_tokens | stop_sequence | tool_use (null while streaming).
    pub stop_reason: Option<&'static str>,
    pub stop_sequence: Option<String>,
    pub usage: AnthropicUsage,
}

/// One block of the answer.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    Text {
        text: String,
    },
    /// `signature` is empty: the reasoning is not signed (and is dropped when sent back).
    Thinking {
        thinking: String,
        signature: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
}

/// Token counts. `input_tokens` counts the prompt tokens not read from the cache, as Anthropic
/// does: prompt = `input_tokens + cache_read_input_tokens`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct AnthropicUsage {
    pub input_tokens: usize,
    pub output_tokens: usize,
    pub cache_creation_input_tokens: usize,
    pub cache_read_input_tokens: usize,
}

impl AnthropicUsage {
    pub fn new(prompt_tokens: usize, cached_tokens: usize, output_tokens: usize) -> Self {
        Self {
            input_tokens: prompt_tokens.saturating_sub(cached_tokens),
            output_tokens,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: cached_tokens,
        }
    }
}
