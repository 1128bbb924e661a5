//! Streaming `/v1/messages`: named SSE events in Anthropic's order. `message_start` (the
//! message with empty content and the prompt's token count) and a `ping` open the stream; the
//! block builder's `content_block_*` events follow as tokens arrive; `message_delta` (stop
//! reason, final usage) and `message_stop` close it. A failure after the stream started ends it
//! with an `error` event in Anthropic's error shape. No `[DONE]` follows.
//!
//! Heartbeat: while no event is ready for [`keep_alive_interval`] (a long CPU prefill of Claude
//! Code's ~15k-token prompt), `ping` is sent again, an event clients parse and skip.

use serde_json::{json, Value};

use super::anthropic::MessageRun;
use super::anthropic_error::stream_error;
use crate::sse::{keep_alive_interval, SseFrame, SseSource};

pub(crate) struct MessagesStream {
    run: MessageRun,
    opened: bool,
    done: bool,
}

impl MessagesStream {
    pub fn new(run: MessageRun) -> Self {
        Self {
            run,
            opened: false,
            done: false,
        }
    }
}

fn frames(events: Vec<Value>) -> Vec<SseFrame> {
    events
        .into_iter()
        .map(|e| SseFrame {
            event: e["type"].as_str().map(str::to_string),
            data: crate::sse::json(&e),
        })
        .collect()
}

fn ping() -> Value {
    json!({"type": "ping"})
}

impl SseSource for MessagesStream {
    type Frame = SseFrame;
    const DONE_MARKER: bool = false;

    async fn next_batch(&mut self) -> Option<Vec<SseFrame>> {
        if self.done {
            return None;
        }
        if !self.opened {
            self.opened = true;
            let start = json!({"type": "message_start", "message": self.run.snapshot()});
            return Some(frames(vec![start, ping()]));
        }
        // `advance` only awaits the next engine event before doing anything: cancel-safe.
        let ended = match tokio::time::timeout(keep_alive_interval(), self.run.advance()).await {
            Ok(ended) => ended,
            Err(_) => return Some(frames(vec![ping()])),
        };
        let mut events = self.run.out.take_events();
        match ended {
            None => {}
            Some(Ok(())) => {
                self.done = true;
                events.push(self.run.final_delta());
                events.push(json!({"type": "message_stop"}));
            }
            Some(Err(err)) => {
                self.done = true;
                events.push(stream_error(&err));
            }
        }
        Some(frames(events))
    }
}
