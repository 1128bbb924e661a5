//! `POST /infill`: llama.cpp's fill-in-the-middle endpoint, so that llama.vscode and llama.vim
//! work unmodified. The request becomes a one-prompt `/v1/completions` FIM request
//! (`validation/infill.rs`) and runs through the same preparation and generation
//! (`completions::start`); only the answer has llama.cpp's `/completion` shape: `content`,
//! `stop`, `tokens_predicted`, `tokens_evaluated`, `truncated`, `tokens_cached`, `timings`.
//! Streaming sends `data: {content, stop: false}` pieces and a last `stop: true` object with
//! the totals, and no `[DONE]` (as llama.cpp).

use std::time::Instant;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use lathe_engine::{FinishReason, Finished, StreamEvent};

use super::chat::finish_error;
use super::common::{from_value, JsonBody};
use super::completions::{start, Run};
use crate::error::ApiError;
use crate::generate::LoggedByGeneration;
use crate::protocol::{InfillChunk, InfillResponse, InfillTimings};
use crate::sse::{json, sse_response, SseSource};
use crate::state::AppState;
use crate::validation::infill::validate;

pub async fn infill(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    let valid = validate(&state, from_value(&body)?)?;
    let run = start(&state, valid, arrived).await?;
    let mut infill = Infill {
        truncated: run.truncated.first().copied().unwrap_or(false),
        run,
        arrived,
        first_token: None,
        tokens: 0,
        done: false,
    };
    if infill.run.valid.sampling.stream {
        return Ok(sse_response(infill));
    }
    let mut last = None;
    while let Some((i, ev)) = infill.run.gen.next().await {
        match ev {
            StreamEvent::Token(t) => {
                infill.saw_token();
                infill.run.accs[i].push(&infill.run.ctx, Some(&t), "");
            }
            StreamEvent::Finished(f) => {
                if let Some(err) = finish_error(&f) {
                    return Err(err);
                }
                infill.run.accs[i].push(&infill.run.ctx, None, &f.text);
                last = Some(f);
            }
        }
    }
    let f = last.ok_or_else(|| ApiError::internal("the generation ended without finishing"))?;
    let content = std::mem::take(&mut infill.run.accs[0].text);
    let mut resp = Json(infill.response(content, &f)).into_response();
    resp.extensions_mut().insert(LoggedByGeneration);
    Ok(resp)
}

/// One `/infill` generation being answered.
struct Infill {
    run: Run,
    truncated: bool,
    arrived: Instant,
    first_token: Option<Instant>,
    tokens: usize,
    done: bool,
}

impl Infill {
    fn saw_token(&mut self) {
        self.tokens += 1;
        self.first_token.get_or_insert_with(Instant::now);
    }

    /// The final object: all of `content`, the totals and timings.
    fn response(&self, content: String, f: &Finished) -> InfillResponse {
        let (stop_type, stopping_word) = match (&f.reason, &f.matched_stop) {
            (FinishReason::Length, _) => ("limit", String::new()),
            (_, Some(m)) if self.run.valid.sampling.params.stop.contains(m) => ("word", m.clone()),
            _ => ("eos", String::new()),
        };
        InfillResponse {
            index: 0,
            has_new_line: content.contains('\n'),
            content,
            tokens: Vec::new(),
            id_slot: 0,
            stop: true,
            model: self.run.ctx.model.clone(),
            tokens_predicted: f.completion_tokens,
            tokens_evaluated: f.prompt_tokens,
            truncated: self.truncated,
            stop_type,
            stopping_word,
            tokens_cached: f.cached_tokens,
            timings: self.timings(f),
        }
    }

    /// llama.cpp's timings: prompt = arrival to first token, predicted = first token to now.
    fn timings(&self, f: &Finished) -> InfillTimings {
        let now = Instant::now();
        let first = self.first_token.unwrap_or(now);
        let prompt_ms = (first - self.arrived).as_secs_f64() * 1e3;
        let predicted_ms = (now - first).as_secs_f64() * 1e3;
        let prompt_n = f.prompt_tokens.saturating_sub(f.cached_tokens);
        let per = |ms: f64, n: usize| if n == 0 { 0.0 } else { ms / n as f64 };
        let rate = |ms: f64, n: usize| if ms <= 0.0 { 0.0 } else { n as f64 * 1e3 / ms };
        InfillTimings {
            cache_n: f.cached_tokens,
            prompt_n,
            prompt_ms,
            prompt_per_token_ms: per(prompt_ms, prompt_n),
            prompt_per_second: rate(prompt_ms, prompt_n),
            predicted_n: f.completion_tokens,
            predicted_ms,
            predicted_per_token_ms: per(predicted_ms, f.completion_tokens),
            predicted_per_second: rate(predicted_ms, f.completion_tokens),
        }
    }
}

impl SseSource for Infill {
    type Frame = String;
    const DONE_MARKER: bool = false;

    async fn next_batch(&mut self) -> Option<Vec<String>> {
        if self.done {
            return None;
        }
        match self.run.gen.next().await {
            Some((i, StreamEvent::Token(t))) => {
                self.saw_token();
                let (content, _) = self.run.accs[i].push(&self.run.ctx, Some(&t), "");
                Some(vec![json(&InfillChunk {
                    index: 0,
                    content,
                    tokens: vec![t.token],
                    stop: false,
                    id_slot: 0,
                    tokens_predicted: self.tokens,
                    tokens_evaluated: self.run.gen.record.prompt_tokens,
                })])
            }
            Some((_, StreamEvent::Finished(f))) => {
                self.done = true;
                if let Some(err) = finish_error(&f) {
                    return Some(vec![err.body().to_string()]);
                }
                Some(vec![json(&self.response(f.text.clone(), &f))])
            }
            None => None,
        }
    }
}
