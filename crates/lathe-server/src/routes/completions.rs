//! `POST /v1/completions`: text completion, also fill-in-the-middle (`suffix`). Choice
//! `p * n + j` is the j-th sample of prompt p. `echo` prepends the prompt; `logprobs` uses the
//! legacy parallel-array shape (prompt tokens get `null` logprobs when echoed).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use lathe_engine::tokenizer::TextTokenizer;
use lathe_engine::{StreamEvent, TokenDelta};

use super::chat::finish_error;
use super::common::{from_value, token_text, JsonBody};
use crate::error::ApiError;
use crate::generate::{blocking, Generation, Job, LoggedByGeneration};
use crate::protocol::*;
use crate::sse::{json, sse_response, SseSource};
use crate::state::AppState;
use crate::validation::completions::{prepare, validate, ValidCompletion};

pub(super) struct Ctx {
    pub id: String,
    pub model: String,
    pub created: u64,
    pub tokenizer: Arc<TextTokenizer>,
    pub logprobs: bool,
}

/// One choice being built.
#[derive(Default)]
pub(super) struct ChoiceAcc {
    pub text: String,
    logprobs: CompletionLogprobs,
    finish_reason: Option<String>,
    /// The echoed prompt, sent ahead of the first generated text.
    echo: Option<(String, CompletionLogprobs)>,
}

/// A started completion: what `/v1/completions` and `/infill` both answer from.
pub(super) struct Run {
    pub ctx: Ctx,
    pub gen: Generation,
    pub accs: Vec<ChoiceAcc>,
    pub valid: ValidCompletion,
    /// Per prompt: whether its FIM prompt was cut to fit the window.
    pub truncated: Vec<bool>,
}

/// Prepares a validated request off the runtime and submits its choices.
pub(super) async fn start(
    state: &AppState,
    valid: ValidCompletion,
    arrived: Instant,
) -> Result<Run, ApiError> {
    let st = state.clone();
    let (valid, prepared) = blocking(move || {
        let p = prepare(&st, &valid)?;
        Ok((valid, p))
    })
    .await?;
    let info = state.engine()?.info().clone();
    let ctx = Ctx {
        id: random_id("cmpl-", 24),
        model: valid.model.clone(),
        created: unix_now(),
        tokenizer: info.tokenizer.clone(),
        logprobs: valid.sampling.params.logprobs.is_some(),
    };
    let n = valid.sampling.n;
    let mut jobs = Vec::with_capacity(prepared.len() * n);
    let mut accs = Vec::with_capacity(prepared.len() * n);
    for p in &prepared {
        jobs.extend(Job::choices(&p.prompt, &p.params, None, n)?);
        for _ in 0..n {
            let mut acc = ChoiceAcc::default();
            if valid.echo {
                acc.echo = Some((p.text.clone(), echo_logprobs(&ctx, &p.prompt)));
            }
            accs.push(acc);
        }
    }
    let gen = Generation::start(state, &ctx.id, arrived, jobs)?;
    Ok(Run {
        ctx,
        gen,
        accs,
        valid,
        truncated: prepared.iter().map(|p| p.truncated).collect(),
    })
}

pub async fn completions(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    let valid = validate(&state, from_value(&body)?, from_value(&body)?)?;
    let Run {
        ctx,
        gen,
        accs,
        valid,
        ..
    } = start(&state, valid, arrived).await?;
    let n = valid.sampling.n;
    if valid.sampling.stream {
        let stream = CompletionStream {
            ctx,
            gen,
            accs,
            include_usage: valid.sampling.include_usage,
            usage: Usage::default(),
            n,
            done: false,
        };
        return Ok(sse_response(stream));
    }
    let body = collect(ctx, gen, accs, n).await?;
    let mut resp = Json(body).into_response();
    resp.extensions_mut().insert(LoggedByGeneration);
    Ok(resp)
}

/// Logprobs of echoed prompt tokens: their text, no values (the engine scores only output).
fn echo_logprobs(ctx: &Ctx, prompt: &[u32]) -> CompletionLogprobs {
    let mut lp = CompletionLogprobs::default();
    if !ctx.logprobs {
        return lp;
    }
    let mut offset = 0;
    for &id in prompt {
        let t = token_text(&ctx.tokenizer, id);
        lp.text_offset.push(offset);
        offset += t.len();
        lp.tokens.push(t);
        lp.token_logprobs.push(None);
        lp.top_logprobs.push(None);
    }
    lp
}

impl ChoiceAcc {
    /// Appends a token; returns the text and logprobs it adds (echo first, once).
    pub fn push(
        &mut self,
        ctx: &Ctx,
        t: Option<&TokenDelta>,
        tail: &str,
    ) -> (String, CompletionLogprobs) {
        let mut text = String::new();
        let mut lp = CompletionLogprobs::default();
        if let Some((echo, echo_lp)) = self.echo.take() {
            text.push_str(&echo);
            lp.extend(echo_lp);
        }
        if let Some(t) = t {
            if let (true, Some(l)) = (ctx.logprobs, &t.logprobs) {
                let top: BTreeMap<String, f32> = l
                    .top
                    .iter()
                    .map(|&(id, v)| (token_text(&ctx.tokenizer, id), v))
                    .collect();
                lp.text_offset.push(self.text.len() + text.len());
                lp.tokens.push(token_text(&ctx.tokenizer, t.token));
                lp.token_logprobs.push(Some(l.logprob));
                lp.top_logprobs.push(Some(top));
            }
            text.push_str(&t.text);
        }
        text.push_str(tail);
        self.text.push_str(&text);
        self.logprobs.extend(lp.clone());
        (text, lp)
    }
}

async fn collect(
    ctx: Ctx,
    mut gen: Generation,
    mut accs: Vec<ChoiceAcc>,
    n: usize,
) -> Result<CompletionResponse, ApiError> {
    let mut usage = Usage::default();
    while let Some((i, ev)) = gen.next().await {
        match ev {
            StreamEvent::Token(t) => {
                accs[i].push(&ctx, Some(&t), "");
            }
            StreamEvent::Finished(f) => {
                if let Some(err) = finish_error(&f) {
                    return Err(err);
                }
                accs[i].push(&ctx, None, &f.text);
                accs[i].finish_reason = Some(f.reason.as_openai().to_string());
                count_usage(&mut usage, i, n, &f);
            }
        }
    }
    let choices = accs
        .into_iter()
        .enumerate()
        .map(|(index, a)| CompletionChoice {
            index,
            text: a.text,
            logprobs: ctx.logprobs.then_some(a.logprobs),
            finish_reason: a.finish_reason,
        })
        .collect();
    Ok(CompletionResponse {
        id: ctx.id,
        object: "text_completion",
        created: ctx.created,
        model: ctx.model,
        choices,
        usage: Some(usage),
        system_fingerprint: None,
    })
}

/// Prompt tokens count once per prompt (choice j = 0), completion tokens per choice.
fn count_usage(usage: &mut Usage, i: usize, n: usize, f: &lathe_engine::Finished) {
    if i.is_multiple_of(n) {
        usage.add(&Usage::new(f.prompt_tokens, 0, f.cached_tokens));
    }
    usage.completion_tokens += f.completion_tokens;
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
}

struct CompletionStream {
    ctx: Ctx,
    gen: Generation,
    accs: Vec<ChoiceAcc>,
    include_usage: bool,
    usage: Usage,
    n: usize,
    done: bool,
}

impl CompletionStream {
    fn chunk(
        &self,
        index: usize,
        text: String,
        lp: CompletionLogprobs,
        finish: Option<String>,
    ) -> String {
        self.chunk_of(
            vec![CompletionChoice {
                index,
                text,
                logprobs: self.ctx.logprobs.then_some(lp),
                finish_reason: finish,
            }],
            None,
        )
    }

    fn chunk_of(&self, choices: Vec<CompletionChoice>, usage: Option<Usage>) -> String {
        json(&CompletionResponse {
            id: self.ctx.id.clone(),
            object: "text_completion",
            created: self.ctx.created,
            model: self.ctx.model.clone(),
            choices,
            usage,
            system_fingerprint: None,
        })
    }
}

impl SseSource for CompletionStream {
    type Frame = String;

    async fn next_batch(&mut self) -> Option<Vec<String>> {
        if self.done {
            return None;
        }
        match self.gen.next().await {
            Some((i, StreamEvent::Token(t))) => {
                let (text, lp) = self.accs[i].push(&self.ctx, Some(&t), "");
                if text.is_empty() && lp.tokens.is_empty() {
                    return Some(Vec::new());
                }
                Some(vec![self.chunk(i, text, lp, None)])
            }
            Some((i, StreamEvent::Finished(f))) => {
                if let Some(err) = finish_error(&f) {
                    self.done = true;
                    return Some(vec![err.body().to_string()]);
                }
                count_usage(&mut self.usage, i, self.n, &f);
                let (text, lp) = self.accs[i].push(&self.ctx, None, &f.text);
                Some(vec![self.chunk(
                    i,
                    text,
                    lp,
                    Some(f.reason.as_openai().to_string()),
                )])
            }
            None => {
                self.done = true;
                self.include_usage
                    .then(|| vec![self.chunk_of(Vec::new(), Some(self.usage.clone()))])
            }
        }
    }
}
