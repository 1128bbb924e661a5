//! `POST /v1/responses`: the Responses API (stateless: the client re-sends the history each
//! turn). Validated and prepared through the chat pipeline (`validation/responses/`), run as
//! one generation, answered as the response object or as named SSE events
//! (`responses_stream.rs`); both shapes are built by the same `ResponseRun`.

use std::time::Instant;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use lathe_engine::{FinishReason, StreamEvent};

use super::chat::{finish_error, ChatContext, ChoiceState};
use super::common::{chat_logprob, JsonBody};
use super::responses_output::OutputBuilder;
use super::responses_stream::ResponsesStream;
use crate::error::ApiError;
use crate::generate::{blocking, Generation, Job, LoggedByGeneration};
use crate::protocol::*;
use crate::sse::sse_response;
use crate::state::AppState;
use crate::tool_parsers::ParseEvent;
use crate::validation::chat::prepare;
use crate::validation::responses::{responses_error, validate};

pub async fn responses(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    let valid = validate(&state, &body)?;
    let st = state.clone();
    let (valid, jobs, thinking_off) = blocking(move || {
        let p = prepare(&st, &valid.chat).map_err(responses_error)?;
        let jobs = Job::choices(&p.prompt, &p.params, p.grammar.as_ref(), 1)?;
        Ok((valid, jobs, p.thinking_off))
    })
    .await?;
    let info = state.engine()?.info().clone();
    let ctx = ChatContext::new(
        "resp_",
        valid.chat.model.clone(),
        &info,
        valid.chat.tool_format,
        valid.logprobs,
    )
    .functions(valid.chat.functions.clone())
    .thinking_off(thinking_off)
    .single_call(!valid.chat.parallel_tool_calls);
    let gen = Generation::start(&state, &ctx.id, arrived, jobs)?;
    let run = ResponseRun::new(ctx, gen, OutputBuilder::new(valid.tools), valid.echo);
    if valid.chat.sampling.stream {
        return Ok(sse_response(ResponsesStream::new(run)));
    }
    let body = run.collect().await?;
    let mut resp = Json(body).into_response();
    resp.extensions_mut().insert(LoggedByGeneration);
    Ok(resp)
}

/// How a run ended.
pub(crate) enum Outcome {
    /// `completed`, or `incomplete` with its reason.
    Done(Option<IncompleteDetails>),
    Failed(ApiError),
}

/// One response being generated: engine events in, output items (and stream events) out.
pub(crate) struct ResponseRun {
    ctx: ChatContext,
    gen: Generation,
    choice: ChoiceState,
    pub out: OutputBuilder,
    echo: Echo,
    usage: ResponseUsage,
    created_at: u64,
}

impl ResponseRun {
    fn new(ctx: ChatContext, gen: Generation, out: OutputBuilder, echo: Echo) -> Self {
        let choice = ChoiceState::new(&ctx);
        Self {
            created_at: ctx.created,
            ctx,
            gen,
            choice,
            out,
            echo,
            usage: ResponseUsage::default(),
        }
    }

    /// Processes the next engine event; `Some` once the run has ended.
    pub async fn advance(&mut self) -> Option<Outcome> {
        let Some((_, ev)) = self.gen.next().await else {
            return Some(Outcome::Failed(ApiError::internal(
                "the generation ended without finishing",
            )));
        };
        match ev {
            StreamEvent::Token(t) => {
                let events = self.choice.on_token(&self.ctx, &t);
                if self.choice.take_stop() {
                    self.gen.stop(0);
                }
                if events.iter().any(|e| matches!(e, ParseEvent::Reasoning(_))) {
                    self.usage.output_tokens_details.reasoning_tokens += 1;
                }
                let lp = match (self.ctx.logprobs, &t.logprobs) {
                    (true, Some(lp)) => Some(chat_logprob(&self.ctx.tokenizer, t.token, lp)),
                    _ => None,
                };
                self.out.push(events, lp);
                None
            }
            StreamEvent::Finished(f) => {
                if let Some(err) = finish_error(&f) {
                    return Some(Outcome::Failed(err));
                }
                self.usage.input_tokens = f.prompt_tokens;
                self.usage.input_tokens_details.cached_tokens = f.cached_tokens;
                self.usage.output_tokens = f.completion_tokens;
                self.usage.total_tokens = f.prompt_tokens + f.completion_tokens;
                let length = matches!(f.reason, FinishReason::Length);
                let events = self.choice.on_finish(f);
                self.out.push(events, None);
                self.out.finish();
                Some(Outcome::Done(length.then_some(IncompleteDetails {
                    reason: "max_output_tokens",
                })))
            }
        }
    }

    /// The response object as it stands.
    pub fn snapshot(
        &self,
        status: &'static str,
        error: Option<ResponseError>,
        incomplete: Option<IncompleteDetails>,
    ) -> ResponseObject {
        let ended = status != "in_progress";
        ResponseObject {
            id: self.ctx.id.clone(),
            object: "response",
            created_at: self.created_at,
            status,
            model: self.ctx.model.clone(),
            output: if ended {
                self.out.items.clone()
            } else {
                Vec::new()
            },
            error,
            incomplete_details: incomplete,
            previous_response_id: None,
            truncation: "disabled",
            usage: ended.then(|| self.usage.clone()),
            echo: self.echo.clone(),
        }
    }

    /// The final object of an ended run.
    pub fn ended(&self, outcome: Outcome) -> (ResponseObject, Option<ApiError>) {
        match outcome {
            Outcome::Done(None) => (self.snapshot("completed", None, None), None),
            Outcome::Done(Some(d)) => (self.snapshot("incomplete", None, Some(d)), None),
            Outcome::Failed(err) => {
                let error = ResponseError {
                    code: err.code.unwrap_or("server_error"),
                    message: err.message.clone(),
                };
                (self.snapshot("failed", Some(error), None), Some(err))
            }
        }
    }

    /// Runs to the end (non-streaming): the response object, or the error to answer.
    async fn collect(mut self) -> Result<ResponseObject, ApiError> {
        loop {
            if let Some(outcome) = self.advance().await {
                self.out.take_events();
                return match self.ended(outcome) {
                    (_, Some(err)) => Err(err),
                    (body, None) => Ok(body),
                };
            }
            self.out.take_events();
        }
    }
}
