//! `/v1/completions` requests → `ValidCompletion` → one prepared prompt per input prompt.

use super::{check_top_logprobs, sampling, tokenize_error, ValidSampling};
use crate::error::ApiError;
use crate::protocol::{CompletionRequest, PromptField, SamplingFields};
use crate::state::AppState;

/// Most prompts in one request.
const MAX_PROMPTS: usize = 64;

#[derive(Debug, Clone)]
pub enum PromptInput {
    Text(String),
    Tokens(Vec<u32>),
}

pub struct ValidCompletion {
    pub model: String,
    pub prompts: Vec<PromptInput>,
    pub suffix: Option<String>,
    pub echo: bool,
    pub sampling: ValidSampling,
}

/// One prompt ready for the engine.
pub struct PreparedPrompt {
    pub prompt: Vec<u32>,
    /// The prompt as text (for `echo`).
    pub text: String,
    pub params: lathe_core::SamplingParams,
}

pub fn validate(
    state: &AppState,
    req: CompletionRequest,
    fields: SamplingFields,
) -> Result<ValidCompletion, ApiError> {
    let model = state.resolve_model(req.model.as_deref())?;
    let info = state.engine()?.info().clone();
    let prompts = match req.prompt {
        None => {
            return Err(ApiError::invalid(
                "prompt".to_string(),
                "prompt is required",
            ))
        }
        Some(PromptField::Text(s)) => vec![PromptInput::Text(s)],
        Some(PromptField::TextBatch(v)) => v.into_iter().map(PromptInput::Text).collect(),
        Some(PromptField::Tokens(t)) => vec![PromptInput::Tokens(t)],
        Some(PromptField::TokenBatch(v)) => v.into_iter().map(PromptInput::Tokens).collect(),
    };
    if prompts.is_empty() || prompts.len() > MAX_PROMPTS {
        return Err(ApiError::invalid(
            "prompt".to_string(),
            format!("give between 1 and {MAX_PROMPTS} prompts"),
        ));
    }
    let vocab = info.tokenizer.vocab_size() as u32;
    for p in &prompts {
        if let PromptInput::Tokens(t) = p {
            if let Some(bad) = t.iter().find(|&&id| id >= vocab) {
                return Err(ApiError::invalid(
                    "prompt".to_string(),
                    format!("token id {bad} is outside the vocabulary (size {vocab})"),
                ));
            }
        }
    }
    if let Some(b) = req.best_of {
        if b != fields.n.unwrap_or(1) {
            return Err(ApiError::invalid(
                "best_of".to_string(),
                "best_of other than n is not supported",
            ));
        }
    }
    if req.suffix.is_some() {
        if info.fim.is_none() {
            return Err(ApiError::invalid(
                "suffix".to_string(),
                format!("model `{model}` does not support fill-in-the-middle: it has no FIM tokens, so `suffix` cannot be used"),
            )
            .with_code("fim_not_supported"));
        }
        if prompts.iter().any(|p| matches!(p, PromptInput::Tokens(_))) {
            return Err(ApiError::invalid(
                "suffix".to_string(),
                "suffix needs a text prompt, not token ids",
            ));
        }
    }
    let top = req
        .logprobs
        .map(|k| check_top_logprobs(k, "logprobs"))
        .transpose()?;
    let sampling = sampling(
        fields,
        req.max_tokens.map(|v| (v, "max_tokens")),
        top,
        state.options(),
    )?;
    Ok(ValidCompletion {
        model,
        prompts,
        suffix: req.suffix,
        echo: req.echo.unwrap_or(false),
        sampling,
    })
}

/// Tokenizes every prompt (FIM layout with a suffix) and fits each to the context (blocking).
pub fn prepare(state: &AppState, v: &ValidCompletion) -> Result<Vec<PreparedPrompt>, ApiError> {
    let info = state.engine()?.info().clone();
    let tok = &info.tokenizer;
    let mut out = Vec::with_capacity(v.prompts.len());
    for p in &v.prompts {
        let (prompt, text) = match (p, &v.suffix, &info.fim) {
            (PromptInput::Text(t), Some(suffix), Some(fim)) => {
                let bos = if tok.add_bos() {
                    tok.bos_token_id()
                } else {
                    None
                };
                let ids = crate::fim::fim_prompt(tok.inner(), fim, t, suffix, bos)
                    .map_err(|e| ApiError::invalid("suffix".to_string(), e))?;
                (ids, t.clone())
            }
            (PromptInput::Text(t), _, _) => {
                (info.encode_raw(t).map_err(tokenize_error)?, t.clone())
            }
            (PromptInput::Tokens(ids), _, _) => {
                let text = if v.echo {
                    tok.decode(ids, false).map_err(tokenize_error)?
                } else {
                    String::new()
                };
                (ids.clone(), text)
            }
        };
        if prompt.is_empty() {
            return Err(ApiError::invalid(
                "prompt".to_string(),
                "the prompt is empty",
            ));
        }
        let max_tokens = v.sampling.fit(prompt.len(), info.max_model_len, "prompt")?;
        let params = lathe_core::SamplingParams {
            max_tokens,
            ..v.sampling.params.clone()
        };
        out.push(PreparedPrompt {
            prompt,
            text,
            params,
        });
    }
    Ok(out)
}
