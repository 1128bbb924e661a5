//! `/v1/completions` (legacy text completion, also the fill-in-the-middle endpoint).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::common::Usage;

/// The completion-specific fields; sampling fields come as `SamplingFields`.
#[derive(Debug, Clone, Deserialize)]
pub struct CompletionRequest {
    pub model: Option<String>,
    pub prompt: Option<PromptField>,
    pub suffix: Option<String>,
    pub max_tokens: Option<i64>,
    pub echo: Option<bool>,
    /// Number of top alternatives per token (OpenAI: 0..=5; we allow up to 20).
    pub logprobs: Option<i64>,
    pub best_of: Option<i64>,
    /// lathe extension: other files of the project, laid out before the current one in the
    /// repo-level FIM format (needs `suffix`).
    pub extra_context: Option<Vec<ExtraFile>>,
    /// lathe extension: the repository name of the repo-level FIM layout.
    pub repo_name: Option<String>,
    /// lathe extension: the current file's name in the repo-level FIM layout.
    pub filename: Option<String>,
}

/// One other file of the project (`extra_context`, and `/infill`'s `input_extra`).
#[derive(Debug, Clone, Deserialize)]
pub struct ExtraFile {
    #[serde(default)]
    pub filename: Option<String>,
    #[serde(default)]
    pub text: String,
}

/// `prompt`: a string, a list of strings, a list of token ids, or a list of such lists.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PromptField {
    Text(String),
    Tokens(Vec<u32>),
    TextBatch(Vec<String>),
    TokenBatch(Vec<Vec<u32>>),
}

#[derive(Debug, Clone, Serialize)]
pub struct CompletionResponse {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<CompletionChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    pub system_fingerprint: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CompletionChoice {
    pub index: usize,
    pub text: String,
    pub logprobs: Option<CompletionLogprobs>,
    pub finish_reason: Option<String>,
}

/// The legacy logprobs object: parallel arrays, one entry per token.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CompletionLogprobs {
    pub tokens: Vec<String>,
    pub token_logprobs: Vec<Option<f32>>,
    pub top_logprobs: Vec<Option<BTreeMap<String, f32>>>,
    pub text_offset: Vec<usize>,
}

impl CompletionLogprobs {
    pub fn extend(&mut self, other: CompletionLogprobs) {
        self.tokens.extend(other.tokens);
        self.token_logprobs.extend(other.token_logprobs);
        self.top_logprobs.extend(other.top_logprobs);
        self.text_offset.extend(other.text_offset);
    }
}
