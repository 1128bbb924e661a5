//! `POST /v1/chat/completions`: validate, prepare off the runtime, run `n` choices, answer in
//! one JSON body or as SSE (`chat_stream`). Tool calls are parsed out of the text by the
//! model's tool format, for both shapes through the same `ChoiceState`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use lathe_engine::tokenizer::TextTokenizer;
use lathe_engine::{FinishReason, Finished, StreamEvent, TokenDelta};

use super::chat_stream::ChatStream;
use super::common::{chat_logprob, from_value, special_markers, JsonBody};
use crate::error::ApiError;
use crate::generate::{blocking, Generation, Job, LoggedByGeneration};
use crate::protocol::*;
use crate::reasoning::{Piece, ThinkSplitter};
use crate::sse::sse_response;
use crate::state::AppState;
use crate::tool_parsers::{assemble, OneCallLimit, ParseEvent, ToolFormat, ToolParser};
use crate::validation::chat::{prepare, validate};

/// What every chunk and choice of one response shares.
pub(crate) struct ChatContext {
    pub id: String,
    pub model: String,
    pub created: u64,
    pub tokenizer: Arc<TextTokenizer>,
    pub tool_format: Option<&'static dyn ToolFormat>,
    /// The request's tools, for the parser of each choice.
    pub functions: Vec<FunctionDef>,
    pub markers: Vec<(u32, &'static str)>,
    pub logprobs: bool,
    /// The model thinks in `<think>` tags (registry `reasoning = "think_tags"`).
    pub reasoning: bool,
    /// At most one tool call per answer (`parallel_tool_calls: false`): the generation is
    /// stopped where a second call would begin.
    pub single_call: bool,
}

impl ChatContext {
    /// The shared context of a validated request against the loaded model.
    pub fn new(
        prefix: &str,
        model: String,
        info: &lathe_engine::ModelInfo,
        tool_format: Option<&'static dyn ToolFormat>,
        logprobs: bool,
    ) -> Self {
        Self {
            id: random_id(prefix, 24),
            model,
            created: unix_now(),
            markers: tool_format
                .map(|f| special_markers(&info.tokenizer, f.markers()))
                .unwrap_or_default(),
            tokenizer: info.tokenizer.clone(),
            tool_format,
            functions: Vec::new(),
            logprobs,
            reasoning: thinks_in_tags(info),
            single_call: false,
        }
    }

    /// The request's tools (the parsers read their schemas).
    pub fn functions(mut self, functions: Vec<FunctionDef>) -> Self {
        self.functions = functions;
        self
    }

    /// The prompt closed the think block (thinking turned off by the template): the output
    /// is all answer.
    pub fn thinking_off(mut self, off: bool) -> Self {
        self.reasoning &= !off;
        self
    }

    /// With `parallel_tool_calls: false`: at most one call per answer.
    pub fn single_call(mut self, single: bool) -> Self {
        self.single_call = single;
        self
    }
}

/// Whether this model writes `<think>` reasoning (its template, or models.toml).
pub(crate) fn thinks_in_tags(info: &lathe_engine::ModelInfo) -> bool {
    info.reasoning == lathe_models::registry::ReasoningFormat::ThinkTags
}

pub async fn chat_completions(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    let valid = validate(&state, from_value(&body)?, from_value(&body)?)?;
    let st = state.clone();
    let (valid, jobs, thinking_off) = blocking(move || {
        let p = prepare(&st, &valid)?;
        let jobs = Job::choices(&p.prompt, &p.params, p.grammar.as_ref(), valid.sampling.n)?;
        Ok((valid, jobs, p.thinking_off))
    })
    .await?;
    let info = state.engine()?.info().clone();
    let ctx = ChatContext::new(
        "chatcmpl-",
        valid.model.clone(),
        &info,
        valid.tool_format,
        valid.sampling.params.logprobs.is_some(),
    )
    .functions(valid.functions.clone())
    .thinking_off(thinking_off)
    .single_call(!valid.parallel_tool_calls);
    let gen = Generation::start(&state, &ctx.id, arrived, jobs)?;
    if valid.sampling.stream {
        return Ok(sse_response(ChatStream::new(
            ctx,
            gen,
            valid.sampling.n,
            valid.sampling.include_usage,
        )));
    }
    let body = collect(ctx, gen, valid.sampling.n).await?;
    let mut resp = Json(body).into_response();
    resp.extensions_mut().insert(LoggedByGeneration);
    Ok(resp)
}

/// Per-choice parsing state shared by every response shape: reasoning split off first, then
/// tool calls parsed out of the answer.
pub(crate) struct ChoiceState {
    parser: Option<Box<dyn ToolParser>>,
    thinking: Option<ThinkSplitter>,
    pub calls: usize,
    pub finished: Option<Finished>,
    /// `parallel_tool_calls: false`.
    one_call: Option<OneCallLimit>,
    /// Whether a cut still has to stop the engine request (see [`Self::take_stop`]).
    stop_pending: bool,
}

impl ChoiceState {
    pub fn new(ctx: &ChatContext) -> Self {
        Self {
            parser: ctx.tool_format.map(|f| f.parser(&ctx.functions)),
            thinking: ctx.reasoning.then(ThinkSplitter::new),
            calls: 0,
            finished: None,
            one_call: ctx.single_call.then(OneCallLimit::default),
            stop_pending: false,
        }
    }

    fn is_cut(&self) -> bool {
        self.one_call.as_ref().is_some_and(OneCallLimit::is_cut)
    }

    /// True once when the answer is complete before the model finished (a second tool call
    /// began with parallel calls off): the caller then stops the engine request
    /// ([`Generation::stop`]), whose `Finished` event still arrives.
    pub fn take_stop(&mut self) -> bool {
        std::mem::take(&mut self.stop_pending)
    }

    pub fn on_token(&mut self, ctx: &ChatContext, t: &TokenDelta) -> Vec<ParseEvent> {
        let mut text = String::new();
        if let Some((_, marker)) = ctx.markers.iter().find(|(id, _)| *id == t.token) {
            if !t.text.contains(marker) {
                text.push_str(marker);
            }
        }
        text.push_str(&t.text);
        self.feed(&text)
    }

    pub fn on_finish(&mut self, f: Finished) -> Vec<ParseEvent> {
        let mut ev = self.feed(&f.text);
        if let Some(tail) = self.thinking.as_mut().map(ThinkSplitter::finish) {
            ev.extend(self.classified(tail));
        }
        let cut = self.is_cut();
        if let (Some(p), false) = (&mut self.parser, cut) {
            let tail = p.finish();
            self.calls += tail
                .iter()
                .filter(|e| matches!(e, ParseEvent::CallStart { .. }))
                .count();
            ev.extend(tail);
        }
        self.finished = Some(f);
        ev
    }

    fn feed(&mut self, text: &str) -> Vec<ParseEvent> {
        match self.thinking.as_mut().map(|t| t.push(text)) {
            Some(pieces) => self.classified(pieces),
            None => self.parse(text),
        }
    }

    fn classified(&mut self, pieces: Vec<Piece>) -> Vec<ParseEvent> {
        let mut out = Vec::new();
        for p in pieces {
            match p {
                Piece::Reasoning(r) => out.push(ParseEvent::Reasoning(r)),
                Piece::Answer(a) => out.extend(self.parse(&a)),
            }
        }
        out
    }

    fn parse(&mut self, text: &str) -> Vec<ParseEvent> {
        if self.is_cut() {
            return Vec::new();
        }
        match &mut self.parser {
            Some(p) => {
                let mut ev = p.push(text);
                if let Some(limit) = &mut self.one_call {
                    self.stop_pending |= limit.apply(&mut ev);
                }
                self.calls += ev
                    .iter()
                    .filter(|e| matches!(e, ParseEvent::CallStart { .. }))
                    .count();
                ev
            }
            None if text.is_empty() => Vec::new(),
            None => vec![ParseEvent::Content(text.to_string())],
        }
    }

    /// OpenAI finish_reason: `tool_calls` when the choice ended by calling tools.
    pub fn finish_reason(&self) -> String {
        match self.finished.as_ref().map(|f| &f.reason) {
            Some(FinishReason::Stop) if self.calls > 0 => "tool_calls".into(),
            Some(r) => r.as_openai().into(),
            None => "abort".into(),
        }
    }
}

/// An engine-side failure of a finished choice, as the error to answer.
pub(crate) fn finish_error(f: &Finished) -> Option<ApiError> {
    match &f.reason {
        FinishReason::Error(e) => Some(ApiError::internal(format!("generation failed: {e}"))),
        FinishReason::Abort => Some(ApiError::unavailable(
            "the request was aborted (the server is shutting down)",
        )),
        _ => None,
    }
}

async fn collect(
    ctx: ChatContext,
    mut gen: Generation,
    n: usize,
) -> Result<ChatCompletionResponse, ApiError> {
    let mut states: Vec<ChoiceState> = (0..n).map(|_| ChoiceState::new(&ctx)).collect();
    let mut events: Vec<Vec<ParseEvent>> = vec![Vec::new(); n];
    let mut logprobs: Vec<ChatLogprobs> = vec![ChatLogprobs::default(); n];
    while let Some((i, ev)) = gen.next().await {
        match ev {
            StreamEvent::Token(t) => {
                events[i].extend(states[i].on_token(&ctx, &t));
                if states[i].take_stop() {
                    gen.stop(i);
                }
                if let (true, Some(lp)) = (ctx.logprobs, &t.logprobs) {
                    logprobs[i]
                        .content
                        .push(chat_logprob(&ctx.tokenizer, t.token, lp));
                }
            }
            StreamEvent::Finished(f) => {
                if let Some(err) = finish_error(&f) {
                    return Err(err);
                }
                events[i].extend(states[i].on_finish(f));
            }
        }
    }
    let mut usage = Usage::default();
    let mut choices = Vec::with_capacity(n);
    for (i, (st, (ev, lp))) in states
        .iter()
        .zip(events.into_iter().zip(logprobs))
        .enumerate()
    {
        let f = st
            .finished
            .as_ref()
            .ok_or_else(|| ApiError::internal("a choice ended without finishing"))?;
        if i == 0 {
            usage = Usage::new(f.prompt_tokens, 0, f.cached_tokens);
        }
        usage.completion_tokens += f.completion_tokens;
        let reasoning: String = ev
            .iter()
            .filter_map(|e| match e {
                ParseEvent::Reasoning(r) => Some(r.as_str()),
                _ => None,
            })
            .collect();
        let (content, tool_calls) = assemble(ev);
        choices.push(ChatChoice {
            index: i,
            message: ResponseMessage {
                role: "assistant",
                content,
                reasoning_content: ctx.reasoning.then_some(reasoning),
                tool_calls,
            },
            logprobs: ctx.logprobs.then_some(lp),
            finish_reason: st.finish_reason(),
        });
    }
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    Ok(ChatCompletionResponse {
        id: ctx.id,
        object: "chat.completion",
        created: ctx.created,
        model: ctx.model,
        choices,
        usage,
        system_fingerprint: None,
    })
}
