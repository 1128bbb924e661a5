//! `POST /v1/messages` (the Anthropic Messages API, what Claude Code speaks; `?beta=true` is
//! the same route) and `POST /v1/messages/count_tokens`. Validated and prepared through the
//! chat pipeline (`validation/anthropic/`), run as one generation, answered as the message
//! object or as Anthropic's SSE events (`anthropic_stream.rs`); both shapes are built by the
//! same `MessageRun`. Errors get Anthropic's body from `anthropic_error.rs`.

use std::time::Instant;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use lathe_engine::{FinishReason, StreamEvent};
use serde_json::{json, Value};

use super::anthropic_output::BlockBuilder;
use super::anthropic_stream::MessagesStream;
use super::chat::{finish_error, ChatContext, ChoiceState};
use super::common::JsonBody;
use crate::error::ApiError;
use crate::generate::{blocking, Generation, Job, LoggedByGeneration};
use crate::protocol::{AnthropicUsage, MessageObject};
use crate::sse::sse_response;
use crate::state::AppState;
use crate::validation::anthropic::{anthropic_param, validate};
use crate::validation::chat::prepare;
use crate::validation::tokenize_error;

pub async fn messages(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    let valid = validate(&state, &body)?;
    let st = state.clone();
    let (valid, jobs, prompt_tokens, thinking_off) = blocking(move || {
        let p = prepare(&st, &valid.chat).map_err(anthropic_param)?;
        let jobs = Job::choices(&p.prompt, &p.params, p.grammar.as_ref(), 1)?;
        Ok((valid, jobs, p.prompt.len(), p.thinking_off))
    })
    .await?;
    let info = state.engine()?.info().clone();
    let ctx = ChatContext::new(
        "msg_",
        valid.chat.model.clone(),
        &info,
        valid.chat.tool_format,
        false,
    )
    .functions(valid.chat.functions.clone())
    .thinking_off(thinking_off)
    .single_call(!valid.chat.parallel_tool_calls);
    let gen = Generation::start(&state, &ctx.id, arrived, jobs)?;
    let run = MessageRun::new(ctx, gen, valid.stop_sequences, prompt_tokens);
    if valid.chat.sampling.stream {
        return Ok(sse_response(MessagesStream::new(run)));
    }
    let body = run.collect().await?;
    let mut resp = Json(body).into_response();
    resp.extensions_mut().insert(LoggedByGeneration);
    Ok(resp)
}

/// `{"input_tokens": n}`: the prompt the same request would have, tools included.
pub async fn count_tokens(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let valid = validate(&state, &body)?;
    let info = state.engine()?.info().clone();
    let n = blocking(move || {
        let ids = info
            .encode_chat_with(
                &valid.chat.messages,
                valid.chat.template_tools.as_deref(),
                &valid.chat.template_vars,
            )
            .map_err(tokenize_error)?;
        Ok(ids.len())
    })
    .await?;
    Ok(Json(json!({"input_tokens": n})))
}

/// One message being generated: engine events in, content blocks (and stream events) out.
pub(crate) struct MessageRun {
    ctx: ChatContext,
    gen: Generation,
    choice: ChoiceState,
    pub out: BlockBuilder,
    stop_sequences: Vec<String>,
    usage: AnthropicUsage,
    stop_reason: Option<&'static str>,
    stop_sequence: Option<String>,
}

impl MessageRun {
    fn new(
        ctx: ChatContext,
        gen: Generation,
        stop_sequences: Vec<String>,
        prompt_tokens: usize,
    ) -> Self {
        let choice = ChoiceState::new(&ctx);
        Self {
            ctx,
            gen,
            choice,
            out: BlockBuilder::default(),
            stop_sequences,
            usage: AnthropicUsage::new(prompt_tokens, 0, 0),
            stop_reason: None,
            stop_sequence: None,
        }
    }

    /// Processes the next engine event; `Some` once the run has ended (`Ok`: complete).
    pub async fn advance(&mut self) -> Option<Result<(), ApiError>> {
        let Some((_, ev)) = self.gen.next().await else {
            return Some(Err(ApiError::internal(
                "the generation ended without finishing",
            )));
        };
        match ev {
            StreamEvent::Token(t) => {
                let events = self.choice.on_token(&self.ctx, &t);
                if self.choice.take_stop() {
                    self.gen.stop(0);
                }
                self.out.push(events);
                None
            }
            StreamEvent::Finished(f) => {
                if let Some(err) = finish_error(&f) {
                    return Some(Err(err));
                }
                self.usage =
                    AnthropicUsage::new(f.prompt_tokens, f.cached_tokens, f.completion_tokens);
                self.stop_sequence = f
                    .matched_stop
                    .clone()
                    .filter(|s| self.stop_sequences.contains(s));
                let length = matches!(f.reason, FinishReason::Length);
                let events = self.choice.on_finish(f);
                self.out.push(events);
                self.out.finish();
                self.stop_reason = Some(self.stop_reason_of(length));
                Some(Ok(()))
            }
        }
    }

    /// Anthropic's `stop_reason` once the generation finished.
    fn stop_reason_of(&self, length: bool) -> &'static str {
        if self.choice.calls > 0 && !length {
            "tool_use"
        } else if length {
            "max_tokens"
        } else if self.stop_sequence.is_some() {
            "stop_sequence"
        } else {
            "end_turn"
        }
    }

    /// The message as it stands (empty content and no stop reason before the end).
    pub fn snapshot(&self) -> MessageObject {
        let ended = self.stop_reason.is_some();
        MessageObject {
            id: self.ctx.id.clone(),
            kind: "message",
            role: "assistant",
            content: if ended {
                self.out.blocks.clone()
            } else {
                Vec::new()
            },
            model: self.ctx.model.clone(),
            stop_reason: self.stop_reason,
            stop_sequence: self.stop_sequence.clone(),
            usage: self.usage.clone(),
        }
    }

    /// `message_delta`'s payload: how it ended, and the final usage.
    pub fn final_delta(&self) -> Value {
        json!({"type": "message_delta",
            "delta": {"stop_reason": self.stop_reason, "stop_sequence": self.stop_sequence},
            "usage": self.usage})
    }

    /// Runs to the end (non-streaming): the message, or the error to answer.
    async fn collect(mut self) -> Result<MessageObject, ApiError> {
        loop {
            let ended = self.advance().await;
            self.out.take_events();
            if let Some(result) = ended {
                return result.map(|()| self.snapshot());
            }
        }
    }
}
