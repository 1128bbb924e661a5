//! Validation: raw protocol requests become `Valid*` types, or a 400 naming the field. Nothing
//! downstream re-checks a field. Two steps:
//! 1. `validate_*` (cheap, on the async runtime): types, ranges, model name, tools.
//! 2. `prepare_*` (blocking: chat template, tokenizer, grammar compilation — called from
//!    `spawn_blocking`): prompt tokens, context-window check, compiled constraints.

pub mod anthropic;
pub mod chat;
pub mod completions;
pub mod infill;
pub mod messages;
pub mod responses;
pub mod schema;

use lathe_core::SamplingParams;

use crate::error::ApiError;
use crate::protocol::SamplingFields;
use crate::state::ServerOptions;

/// Most stop strings per request.
const MAX_STOP: usize = 16;

/// The sampling fields, checked. `max_tokens` is settled once the prompt length is known.
#[derive(Debug, Clone)]
pub struct ValidSampling {
    pub params: SamplingParams,
    /// What the request asked for.
    pub max_tokens: Option<usize>,
    /// The server's limit for requests that set none (`--default-max-tokens`).
    pub default_max_tokens: Option<usize>,
    pub n: usize,
    pub stream: bool,
    pub include_usage: bool,
}

/// Checks the shared sampling fields. `logprobs`: top alternatives wanted per token, if any.
pub fn sampling(
    f: SamplingFields,
    max_tokens: Option<(i64, &'static str)>,
    logprobs: Option<usize>,
    opts: &ServerOptions,
) -> Result<ValidSampling, ApiError> {
    let max_tokens = match max_tokens {
        Some((v, name)) if v < 1 => {
            return Err(ApiError::invalid(
                name.to_string(),
                format!("{name} must be at least 1, got {v}"),
            ))
        }
        Some((v, _)) => Some(usize::try_from(v).unwrap_or(usize::MAX)),
        None => None,
    };
    let n = match f.n {
        None => 1,
        Some(n) if n >= 1 && n as usize <= opts.max_n => n as usize,
        Some(n) => {
            return Err(ApiError::invalid(
                "n".to_string(),
                format!("n must be in [1, {}], got {n}", opts.max_n),
            ))
        }
    };
    let top_k = match f.top_k {
        None | Some(-1) | Some(0) => 0,
        Some(k) if k > 0 => k as usize,
        Some(k) => {
            return Err(ApiError::invalid(
                "top_k".to_string(),
                format!("top_k must be -1 or positive, got {k}"),
            ))
        }
    };
    let stop = f.stop.map(|s| s.into_vec()).unwrap_or_default();
    if stop.len() > MAX_STOP {
        return Err(ApiError::invalid(
            "stop".to_string(),
            format!("at most {MAX_STOP} stop sequences are allowed"),
        ));
    }
    if f.logit_bias.as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(ApiError::invalid(
            "logit_bias".to_string(),
            "logit_bias is not supported",
        ));
    }
    let defaults = SamplingParams::default();
    let params = SamplingParams {
        max_tokens: max_tokens.unwrap_or(1),
        temperature: f
            .temperature
            .or(opts.default_temperature)
            .unwrap_or(defaults.temperature),
        top_k,
        top_p: f.top_p.unwrap_or(defaults.top_p),
        min_p: f.min_p.unwrap_or(defaults.min_p),
        repetition_penalty: f.repetition_penalty.unwrap_or(defaults.repetition_penalty),
        presence_penalty: f.presence_penalty.unwrap_or(0.0),
        frequency_penalty: f.frequency_penalty.unwrap_or(0.0),
        seed: f.seed.map(|s| s as u64),
        stop,
        stop_token_ids: f.stop_token_ids.unwrap_or_default(),
        ignore_eos: f.ignore_eos.unwrap_or(false),
        logprobs,
        speculative: f.speculative,
    };
    params.validate().map_err(|msg| {
        let param = msg.split_whitespace().next().map(str::to_string);
        ApiError::invalid(param, msg)
    })?;
    let stream = f.stream.unwrap_or(false);
    let include_usage = stream && f.stream_options.is_some_and(|o| o.include_usage);
    Ok(ValidSampling {
        params,
        max_tokens,
        default_max_tokens: opts.default_max_tokens,
        n,
        stream,
        include_usage,
    })
}

impl ValidSampling {
    /// The output budget for a prompt of `prompt_len` tokens (see [`fit_context`]); without an
    /// explicit `max_tokens`, the server default caps what the window leaves.
    pub fn fit(
        &self,
        prompt_len: usize,
        max_model_len: usize,
        prompt_param: &str,
    ) -> Result<usize, ApiError> {
        let room = fit_context(prompt_len, self.max_tokens, max_model_len, prompt_param)?;
        Ok(match (self.max_tokens, self.default_max_tokens) {
            (None, Some(d)) => room.min(d),
            _ => room,
        })
    }
}

/// Settles `max_tokens` against the context window: the prompt must leave room, and an
/// explicit `max_tokens` must fit; without one, generation may fill the window.
pub fn fit_context(
    prompt_len: usize,
    max_tokens: Option<usize>,
    max_model_len: usize,
    prompt_param: &str,
) -> Result<usize, ApiError> {
    if prompt_len >= max_model_len {
        return Err(ApiError::invalid(
            prompt_param.to_string(),
            format!(
                "This model's maximum context length is {max_model_len} tokens, but the prompt has {prompt_len} \
                 tokens. Shorten the prompt."
            ),
        )
        .with_code("context_length_exceeded"));
    }
    let room = max_model_len - prompt_len;
    match max_tokens {
        None => Ok(room),
        Some(m) if m <= room => Ok(m),
        Some(m) => Err(ApiError::invalid(
            "max_tokens".to_string(),
            format!(
                "This model's maximum context length is {max_model_len} tokens. However, you requested {} tokens \
                 ({prompt_len} in the prompt, {m} for the completion). Reduce the prompt or max_tokens.",
                prompt_len.saturating_add(m)
            ),
        )
        .with_code("context_length_exceeded")),
    }
}

/// `logprobs` top-k range shared by both endpoints.
pub fn check_top_logprobs(k: i64, param: &str) -> Result<usize, ApiError> {
    if (0..=20).contains(&k) {
        Ok(k as usize)
    } else {
        Err(ApiError::invalid(
            param.to_string(),
            format!("{param} must be in [0, 20], got {k}"),
        ))
    }
}

/// Tokenization failures are the client's (odd text) unless proven otherwise.
pub fn tokenize_error(e: anyhow::Error) -> ApiError {
    ApiError::bad_request(format!("tokenizing the prompt failed: {e:#}"))
}
