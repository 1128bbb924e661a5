//! llama.cpp's `/infill` requests → the `ValidCompletion` of one FIM prompt, prepared and run by
//! the `/v1/completions` code (`completions::prepare`).

use super::completions::{extra_files, fim_unsupported, PromptInput, ValidCompletion};
use super::sampling;
use crate::error::ApiError;
use crate::fim::{model_fim, FimRequest};
use crate::protocol::{InfillRequest, SamplingFields};
use crate::state::AppState;

pub fn validate(state: &AppState, req: InfillRequest) -> Result<ValidCompletion, ApiError> {
    let model = state.resolve_model(req.model.as_deref())?;
    let info = state.engine()?.info().clone();
    if model_fim(&info).is_none() {
        return Err(fim_unsupported(&model, "input_prefix"));
    }
    // llama.cpp: n_predict -1 = no limit; max_tokens is the OpenAI-style alias.
    let max_tokens = match (req.n_predict, req.max_tokens) {
        (Some(-1), _) => None,
        (Some(n), _) => Some((n, "n_predict")),
        (None, Some(-1)) => None,
        (None, Some(n)) => Some((n, "max_tokens")),
        (None, None) => None,
    };
    let fields = SamplingFields {
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        min_p: req.min_p,
        presence_penalty: req.presence_penalty,
        frequency_penalty: req.frequency_penalty,
        repetition_penalty: req.repeat_penalty,
        seed: req.seed.filter(|&s| s >= 0),
        stop: req.stop,
        ignore_eos: req.ignore_eos,
        stream: req.stream,
        ..SamplingFields::default()
    };
    let sampling = sampling(fields, max_tokens, None, state.options())?;
    Ok(ValidCompletion {
        model,
        prompts: vec![PromptInput::Text(req.input_prefix)],
        fim: Some(FimRequest {
            prefix: String::new(),
            suffix: req.input_suffix,
            middle: req.prompt,
            extra: extra_files(req.input_extra),
            repo_name: req.repo_name,
            filename: req.filename,
        }),
        prompt_param: "input_prefix",
        echo: false,
        sampling,
    })
}
