//! `/v1/completions` requests → `ValidCompletion` → one prepared prompt per input prompt.

use super::{check_top_logprobs, sampling, tokenize_error, ValidSampling};
use crate::error::ApiError;
use crate::fim::{fim_prompt, model_fim, FileChunk, FimRequest, FimVocab, DEFAULT_EXTRA_FILENAME};
use crate::protocol::{CompletionRequest, ExtraFile, PromptField, SamplingFields};
use crate::state::AppState;

/// Output tokens a FIM prompt leaves room for when the request sets no `max_tokens` and the
/// server no default, should the prompt have to be cut to fit.
pub const FIM_RESERVE_TOKENS: usize = 256;

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
    /// Fill-in-the-middle: everything but the prefix, which is each prompt.
    pub fim: Option<FimRequest>,
    /// The field errors about the prompt name (`prompt`, `/infill`'s `input_prefix`).
    pub prompt_param: &'static str,
    pub echo: bool,
    pub sampling: ValidSampling,
}

/// One prompt ready for the engine.
pub struct PreparedPrompt {
    pub prompt: Vec<u32>,
    /// The prompt as text (for `echo`).
    pub text: String,
    pub params: lathe_core::SamplingParams,
    /// A FIM prompt cut to fit the window.
    pub truncated: bool,
}

/// `extra_context` / `input_extra` entries as files (llama.cpp's name for a nameless one).
pub fn extra_files(extra: Vec<ExtraFile>) -> Vec<FileChunk> {
    extra
        .into_iter()
        .map(|e| FileChunk {
            filename: e
                .filename
                .unwrap_or_else(|| DEFAULT_EXTRA_FILENAME.to_string()),
            text: e.text,
        })
        .collect()
}

/// The 400 for a model without FIM tokens.
pub fn fim_unsupported(model: &str, param: &str) -> ApiError {
    ApiError::invalid(
        param.to_string(),
        format!("model `{model}` does not support fill-in-the-middle: it has no FIM tokens, so `{param}` cannot be used"),
    )
    .with_code("fim_not_supported")
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
    let fim_extra =
        req.extra_context.is_some() || req.repo_name.is_some() || req.filename.is_some();
    if fim_extra && req.suffix.is_none() {
        let param = if req.extra_context.is_some() {
            "extra_context"
        } else if req.repo_name.is_some() {
            "repo_name"
        } else {
            "filename"
        };
        return Err(ApiError::invalid(
            param.to_string(),
            format!("`{param}` is part of a fill-in-the-middle prompt: it needs `suffix`"),
        ));
    }
    if req.suffix.is_some() {
        if model_fim(&info).is_none() {
            return Err(fim_unsupported(&model, "suffix"));
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
        fim: req.suffix.map(|suffix| FimRequest {
            suffix,
            extra: extra_files(req.extra_context.unwrap_or_default()),
            repo_name: req.repo_name,
            filename: req.filename,
            ..Default::default()
        }),
        prompt_param: "prompt",
        echo: req.echo.unwrap_or(false),
        sampling,
    })
}

/// Tokenizes every prompt (FIM layout with a suffix, cut to fit the window) and fits each to
/// the context (blocking).
pub fn prepare(state: &AppState, v: &ValidCompletion) -> Result<Vec<PreparedPrompt>, ApiError> {
    let info = state.engine()?.info().clone();
    let tok = &info.tokenizer;
    let fim_vocab = match &v.fim {
        Some(_) => {
            let fim = model_fim(&info).ok_or_else(|| fim_unsupported(&v.model, v.prompt_param))?;
            Some(
                FimVocab::of_model(tok, &fim)
                    .map_err(|e| ApiError::invalid(v.prompt_param.to_string(), e))?,
            )
        }
        None => None,
    };
    let mut out = Vec::with_capacity(v.prompts.len());
    for p in &v.prompts {
        let mut stop_ids = Vec::new();
        let mut truncated = false;
        let (prompt, text) = match (p, &v.fim, &fim_vocab) {
            (PromptInput::Text(t), Some(f), Some(vocab)) => {
                let req = FimRequest {
                    prefix: t.clone(),
                    ..f.clone()
                };
                let fim = fim_prompt(tok.inner(), vocab, &req, fim_budget(v, info.max_model_len))
                    .map_err(|e| {
                    ApiError::invalid(v.prompt_param.to_string(), e)
                        .with_code("context_length_exceeded")
                })?;
                truncated = fim.truncated;
                stop_ids.clone_from(&vocab.stop);
                (fim.ids, t.clone())
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
                v.prompt_param.to_string(),
                "the prompt is empty",
            ));
        }
        let max_tokens = v
            .sampling
            .fit(prompt.len(), info.max_model_len, v.prompt_param)?;
        let mut params = lathe_core::SamplingParams {
            max_tokens,
            ..v.sampling.params.clone()
        };
        for id in stop_ids {
            if !params.stop_token_ids.contains(&id) {
                params.stop_token_ids.push(id);
            }
        }
        out.push(PreparedPrompt {
            prompt,
            text,
            params,
            truncated,
        });
    }
    Ok(out)
}

/// Prompt tokens a FIM prompt may take: the window less the output asked for (the server
/// default, else [`FIM_RESERVE_TOKENS`]). An output that alone fills the window is left to
/// `fit` to refuse.
fn fim_budget(v: &ValidCompletion, max_model_len: usize) -> usize {
    let reserve = v
        .sampling
        .max_tokens
        .or(v.sampling.default_max_tokens)
        .unwrap_or(FIM_RESERVE_TOKENS.min(max_model_len / 2));
    if reserve >= max_model_len {
        usize::MAX
    } else {
        max_model_len - reserve
    }
}
