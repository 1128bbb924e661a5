//! Streaming `/v1/responses`: named SSE events, each with a `sequence_number`.
//! `response.created` and `response.in_progress` open the stream; the output builder's item
//! events follow as tokens arrive; `response.completed` (or `response.incomplete` when
//! `max_output_tokens` cut it short) closes it with the whole response and its usage. A failure
//! after the stream started — the engine failed or shut down — ends it with `response.failed`,
//! whose `response.error.code` says why. No `[DONE]` follows.
//!
//! Heartbeat: while no event is ready for [`keep_alive_interval`] (a long CPU prefill),
//! `response.in_progress` is sent again. SSE comments are not enough here: Codex's idle timer
//! (300 s) counts parsed events, and its SSE parser drops comment lines.

use serde_json::{json, Value};

use super::responses::ResponseRun;
use crate::sse::{keep_alive_interval, SseFrame, SseSource};

pub(crate) struct ResponsesStream {
    run: ResponseRun,
    sequence: u64,
    opened: bool,
    done: bool,
}

impl ResponsesStream {
    pub fn new(run: ResponseRun) -> Self {
        Self {
            run,
            sequence: 0,
            opened: false,
            done: false,
        }
    }

    fn frame(&mut self, mut event: Value) -> SseFrame {
        event["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        SseFrame {
            event: event["type"].as_str().map(str::to_string),
            data: crate::sse::json(&event),
        }
    }

    fn frames(&mut self, events: Vec<Value>) -> Vec<SseFrame> {
        events.into_iter().map(|e| self.frame(e)).collect()
    }
}

impl SseSource for ResponsesStream {
    type Frame = SseFrame;
    const DONE_MARKER: bool = false;

    async fn next_batch(&mut self) -> Option<Vec<SseFrame>> {
        if self.done {
            return None;
        }
        if !self.opened {
            self.opened = true;
            let snapshot = self.run.snapshot("in_progress", None, None);
            return Some(self.frames(vec![
                json!({"type": "response.created", "response": snapshot}),
                json!({"type": "response.in_progress", "response": snapshot}),
            ]));
        }
        // `advance` only awaits the next engine event before doing anything: cancel-safe.
        let outcome = match tokio::time::timeout(keep_alive_interval(), self.run.advance()).await {
            Ok(outcome) => outcome,
            Err(_) => {
                let snapshot = self.run.snapshot("in_progress", None, None);
                let beat = json!({"type": "response.in_progress", "response": snapshot});
                return Some(self.frames(vec![beat]));
            }
        };
        let mut events = self.run.out.take_events();
        if let Some(outcome) = outcome {
            self.done = true;
            let (response, _) = self.run.ended(outcome);
            let kind = match response.status {
                "completed" => "response.completed",
                "incomplete" => "response.incomplete",
                _ => "response.failed",
            };
            events.push(json!({"type": kind, "response": response}));
        }
        Some(self.frames(events))
    }
}
