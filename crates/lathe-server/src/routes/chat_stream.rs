//! Streaming chat completions: `chat.completion.chunk`s. Each choice opens with a chunk whose
//! delta carries the role, then content and tool-call deltas as they are generated (a call's
//! id and name first, then its arguments fragment by fragment), then exactly one chunk with its
//! finish_reason. With `stream_options.include_usage`, a last chunk with empty `choices`
//! carries the usage. `[DONE]` follows (sse.rs).

use lathe_engine::StreamEvent;

use super::chat::{finish_error, ChatContext, ChoiceState};
use super::common::chat_logprob;
use crate::generate::Generation;
use crate::protocol::*;
use crate::sse::{json, SseSource};
use crate::tool_parsers::ParseEvent;

pub(crate) struct ChatStream {
    ctx: ChatContext,
    gen: Generation,
    states: Vec<ChoiceState>,
    include_usage: bool,
    usage: Usage,
    opened: bool,
    done: bool,
}

impl ChatStream {
    pub fn new(ctx: ChatContext, gen: Generation, n: usize, include_usage: bool) -> Self {
        let states = (0..n).map(|_| ChoiceState::new(&ctx)).collect();
        Self {
            ctx,
            gen,
            states,
            include_usage,
            usage: Usage::default(),
            opened: false,
            done: false,
        }
    }

    fn chunk(&self, choices: Vec<ChunkChoice>, usage: Option<Usage>) -> String {
        json(&ChatCompletionChunk {
            id: self.ctx.id.clone(),
            object: "chat.completion.chunk",
            created: self.ctx.created,
            model: self.ctx.model.clone(),
            choices,
            usage,
            system_fingerprint: None,
        })
    }

    fn choice(index: usize, delta: ChunkDelta) -> ChunkChoice {
        ChunkChoice {
            index,
            delta,
            logprobs: None,
            finish_reason: None,
        }
    }

    /// Chunks for parser events of choice `i` (adjacent content merged; one chunk per call
    /// event, as OpenAI sends them). `logprobs` rides on the first chunk.
    fn event_chunks(
        &self,
        i: usize,
        events: Vec<ParseEvent>,
        mut logprobs: Option<ChatLogprobs>,
    ) -> Vec<String> {
        let mut deltas: Vec<ChunkDelta> = Vec::new();
        for ev in events {
            match ev {
                ParseEvent::Content(s) => match deltas.last_mut() {
                    Some(ChunkDelta {
                        content: Some(c), ..
                    }) => c.push_str(&s),
                    _ => deltas.push(ChunkDelta {
                        content: Some(s),
                        ..Default::default()
                    }),
                },
                ParseEvent::CallStart { index, id, name } => deltas.push(ChunkDelta {
                    tool_calls: vec![ToolCallDelta {
                        index,
                        id: Some(id),
                        kind: Some("function"),
                        function: FunctionDelta {
                            name: Some(name),
                            arguments: String::new(),
                        },
                    }],
                    ..Default::default()
                }),
                ParseEvent::Reasoning(r) => match deltas.last_mut() {
                    Some(ChunkDelta {
                        reasoning_content: Some(c),
                        ..
                    }) => c.push_str(&r),
                    _ => deltas.push(ChunkDelta {
                        reasoning_content: Some(r),
                        ..Default::default()
                    }),
                },
                ParseEvent::CallArgs { index, fragment } => deltas.push(ChunkDelta {
                    tool_calls: vec![ToolCallDelta {
                        index,
                        id: None,
                        kind: None,
                        function: FunctionDelta {
                            name: None,
                            arguments: fragment,
                        },
                    }],
                    ..Default::default()
                }),
            }
        }
        if deltas.is_empty() && logprobs.is_some() {
            deltas.push(ChunkDelta {
                content: Some(String::new()),
                ..Default::default()
            });
        }
        deltas
            .into_iter()
            .map(|d| {
                let mut c = Self::choice(i, d);
                c.logprobs = logprobs.take();
                self.chunk(vec![c], None)
            })
            .collect()
    }

    fn on_event(&mut self, i: usize, ev: StreamEvent) -> Vec<String> {
        match ev {
            StreamEvent::Token(t) => {
                let events = self.states[i].on_token(&self.ctx, &t);
                if self.states[i].take_stop() {
                    self.gen.stop(i);
                }
                let lp = match (self.ctx.logprobs, &t.logprobs) {
                    (true, Some(lp)) => Some(ChatLogprobs {
                        content: vec![chat_logprob(&self.ctx.tokenizer, t.token, lp)],
                    }),
                    _ => None,
                };
                self.event_chunks(i, events, lp)
            }
            StreamEvent::Finished(f) => {
                if let Some(err) = finish_error(&f) {
                    self.done = true;
                    return vec![err.body().to_string()];
                }
                if self.usage.prompt_tokens == 0 {
                    self.usage = Usage::new(f.prompt_tokens, 0, f.cached_tokens);
                }
                self.usage.completion_tokens += f.completion_tokens;
                let events = self.states[i].on_finish(f);
                let mut out = self.event_chunks(i, events, None);
                let mut last = Self::choice(i, ChunkDelta::default());
                last.finish_reason = Some(self.states[i].finish_reason());
                out.push(self.chunk(vec![last], None));
                out
            }
        }
    }
}

impl SseSource for ChatStream {
    type Frame = String;

    async fn next_batch(&mut self) -> Option<Vec<String>> {
        if self.done {
            return None;
        }
        if !self.opened {
            self.opened = true;
            let opening = (0..self.states.len())
                .map(|i| {
                    let delta = ChunkDelta {
                        role: Some("assistant"),
                        content: Some(String::new()),
                        ..Default::default()
                    };
                    self.chunk(vec![Self::choice(i, delta)], None)
                })
                .collect();
            return Some(opening);
        }
        match self.gen.next().await {
            Some((i, ev)) => Some(self.on_event(i, ev)),
            None => {
                self.done = true;
                if !self.include_usage {
                    return None;
                }
                let mut usage = self.usage.clone();
                usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
                Some(vec![self.chunk(Vec::new(), Some(usage))])
            }
        }
    }
}
