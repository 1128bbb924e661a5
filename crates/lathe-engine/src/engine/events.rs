//! What a request's stream carries.

use crate::sampler::TokenLogprobs;

/// Why generation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum FinishReason {
    /// EOS, a stop token or a stop string.
    Stop,
    /// max_tokens or the context window.
    Length,
    /// The request was cancelled.
    Abort,
    /// An internal failure, with its cause.
    Error(String),
}

impl FinishReason {
    /// The OpenAI `finish_reason` string.
    pub fn as_openai(&self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Abort => "abort",
            FinishReason::Error(_) => "error",
        }
    }
}

/// One generated token and the text it completes (possibly empty: an unfinished UTF-8
/// sequence, or text held back because it may begin a stop string).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenDelta {
    pub token: u32,
    pub text: String,
    pub logprobs: Option<TokenLogprobs>,
}

/// The end of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub reason: FinishReason,
    /// Text released at the end (held back for a stop string that never completed).
    pub text: String,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    /// Prompt tokens served from the prefix cache.
    pub cached_tokens: usize,
    /// The stop string or token that ended it.
    pub matched_stop: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    Token(TokenDelta),
    Finished(Finished),
}
