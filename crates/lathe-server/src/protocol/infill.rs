//! llama.cpp's `POST /infill` (what llama.vscode and llama.vim send) and its `/completion`-shaped
//! answer. Fields llama.cpp has and lathe does not use (`cache_prompt`, `t_max_prompt_ms`,
//! `samplers`...) are accepted and ignored; unknown fields too.

use serde::{Deserialize, Serialize};

use super::common::StopField;
use super::completions::ExtraFile;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct InfillRequest {
    pub model: Option<String>,
    #[serde(default)]
    pub input_prefix: String,
    #[serde(default)]
    pub input_suffix: String,
    #[serde(default)]
    pub input_extra: Vec<ExtraFile>,
    /// The start of the middle: text after the FIM middle token.
    #[serde(default)]
    pub prompt: String,
    /// lathe extension: the current file's name in the repo-level layout.
    pub filename: Option<String>,
    /// lathe extension: the repository name in the repo-level layout.
    pub repo_name: Option<String>,
    /// Tokens to generate; -1 (llama.cpp's default): until a stop or the window's end.
    pub n_predict: Option<i64>,
    /// Alias of `n_predict` (used when `n_predict` is absent).
    pub max_tokens: Option<i64>,
    pub temperature: Option<f32>,
    pub top_k: Option<i64>,
    pub top_p: Option<f32>,
    pub min_p: Option<f32>,
    /// llama.cpp's name of `repetition_penalty`.
    pub repeat_penalty: Option<f32>,
    pub presence_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
    /// -1 (llama.cpp's default) or absent: random.
    pub seed: Option<i64>,
    pub stop: Option<StopField>,
    pub ignore_eos: Option<bool>,
    pub stream: Option<bool>,
    /// Accepted, ignored: the prefix cache is always on.
    pub cache_prompt: Option<bool>,
    /// Accepted, ignored.
    pub t_max_prompt_ms: Option<i64>,
    /// Accepted, ignored.
    pub t_max_predict_ms: Option<i64>,
    /// Accepted, ignored (lathe's sampler order is fixed).
    pub samplers: Option<serde_json::Value>,
}

/// `/infill`'s answer, non-streaming, and the last streamed chunk (`stop: true`).
#[derive(Debug, Clone, Serialize)]
pub struct InfillResponse {
    pub index: usize,
    pub content: String,
    pub tokens: Vec<u32>,
    pub id_slot: i64,
    pub stop: bool,
    pub model: String,
    pub tokens_predicted: usize,
    pub tokens_evaluated: usize,
    /// Whether the prompt was cut to fit the context window.
    pub truncated: bool,
    /// `eos` (a stop token), `word` (a stop string), `limit` (n_predict or the window).
    pub stop_type: &'static str,
    pub stopping_word: String,
    pub tokens_cached: usize,
    pub has_new_line: bool,
    pub timings: InfillTimings,
}

/// A streamed piece (`stop: false`).
#[derive(Debug, Clone, Serialize)]
pub struct InfillChunk {
    pub index: usize,
    pub content: String,
    pub tokens: Vec<u32>,
    pub stop: bool,
    pub id_slot: i64,
    pub tokens_predicted: usize,
    pub tokens_evaluated: usize,
}

/// llama.cpp's `timings` object.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InfillTimings {
    pub cache_n: usize,
    pub prompt_n: usize,
    pub prompt_ms: f64,
    pub prompt_per_token_ms: f64,
    pub prompt_per_second: f64,
    pub predicted_n: usize,
    pub predicted_ms: f64,
    pub predicted_per_token_ms: f64,
    pub predicted_per_second: f64,
}
