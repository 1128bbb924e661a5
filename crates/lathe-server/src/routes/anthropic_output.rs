//! Content blocks of a `/v1/messages` answer, built from the parser events of its one
//! generation. Like the Responses output builder it serves both shapes: it keeps the blocks
//! (the non-streaming body) and queues the stream events that describe each change:
//!
//! ```text
//! text:      content_block_start → text_delta…       → content_block_stop
//! thinking:  content_block_start → thinking_delta… → signature_delta → content_block_stop
//! tool_use:  content_block_start → input_json_delta… → content_block_stop
//! ```
//!
//! One block is open at a time; anything of another kind closes it. A call's `input` is the
//! JSON object of its arguments, known when the call is complete; `tool_use` ids are the
//! parser's call ids with Anthropic's `toolu_` prefix.

use serde_json::{json, Value};

use crate::protocol::ContentBlock;
use crate::tool_parsers::ParseEvent;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Open {
    Text,
    Thinking,
    /// The parser's index of the call.
    Call(usize),
}

#[derive(Default)]
pub(crate) struct BlockBuilder {
    pub blocks: Vec<ContentBlock>,
    open: Option<Open>,
    /// Arguments text of the open call.
    args: String,
    events: Vec<Value>,
}

impl BlockBuilder {
    /// The stream events queued since the last call.
    pub fn take_events(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.events)
    }

    pub fn push(&mut self, events: Vec<ParseEvent>) {
        for ev in events {
            match ev {
                ParseEvent::Content(t) if t.is_empty() => {}
                ParseEvent::Content(t) => self.text(t),
                ParseEvent::Reasoning(t) => self.thinking(t),
                ParseEvent::CallStart { index, id, name } => self.call_start(index, &id, name),
                ParseEvent::CallArgs { index, fragment } => self.call_args(index, fragment),
            }
        }
    }

    /// Closes the open block (the generation ended).
    pub fn finish(&mut self) {
        self.close();
    }

    fn text(&mut self, text: String) {
        if self.open != Some(Open::Text) {
            self.open_block(
                Open::Text,
                ContentBlock::Text {
                    text: String::new(),
                },
            );
        }
        self.delta(json!({"type": "text_delta", "text": text}));
        if let Some(ContentBlock::Text { text: t }) = self.blocks.last_mut() {
            t.push_str(&text);
        }
    }

    fn thinking(&mut self, text: String) {
        if self.open != Some(Open::Thinking) {
            self.open_block(
                Open::Thinking,
                ContentBlock::Thinking {
                    thinking: String::new(),
                    signature: String::new(),
                },
            );
        }
        self.delta(json!({"type": "thinking_delta", "thinking": text}));
        if let Some(ContentBlock::Thinking { thinking, .. }) = self.blocks.last_mut() {
            thinking.push_str(&text);
        }
    }

    fn call_start(&mut self, index: usize, call_id: &str, name: String) {
        let id = format!("toolu_{}", call_id.trim_start_matches("call_"));
        self.open_block(
            Open::Call(index),
            ContentBlock::ToolUse {
                id,
                name,
                input: json!({}),
            },
        );
    }

    fn call_args(&mut self, index: usize, fragment: String) {
        if self.open != Some(Open::Call(index)) || fragment.is_empty() {
            return;
        }
        self.args.push_str(&fragment);
        self.delta(json!({"type": "input_json_delta", "partial_json": fragment}));
    }

    fn delta(&mut self, delta: Value) {
        let index = self.blocks.len() - 1;
        self.events
            .push(json!({"type": "content_block_delta", "index": index, "delta": delta}));
    }

    fn open_block(&mut self, kind: Open, block: ContentBlock) {
        self.close();
        let index = self.blocks.len();
        self.events
            .push(json!({"type": "content_block_start", "index": index, "content_block": block}));
        self.blocks.push(block);
        self.open = Some(kind);
    }

    /// Completes the open block and queues its closing events.
    fn close(&mut self) {
        let Some(kind) = self.open.take() else {
            return;
        };
        match kind {
            Open::Thinking => self.delta(json!({"type": "signature_delta", "signature": ""})),
            Open::Call(_) => {
                let args = std::mem::take(&mut self.args);
                if let Some(ContentBlock::ToolUse { input, name, .. }) = self.blocks.last_mut() {
                    *input = call_input(name, &args);
                }
            }
            Open::Text => {}
        }
        let index = self.blocks.len() - 1;
        self.events
            .push(json!({"type": "content_block_stop", "index": index}));
    }
}

/// A call's `input`: its arguments as a JSON object (`{}` when the model wrote none, or
/// something that is not an object).
fn call_input(name: &str, args: &str) -> Value {
    if args.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(args) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            tracing::warn!(
                tool = name,
                args,
                "tool call arguments are not a JSON object"
            );
            json!({})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(events: &[Value]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e["delta"]["type"].as_str() {
                Some(d) => format!("{}:{d}", e["type"].as_str().unwrap()),
                None => e["type"].as_str().unwrap().to_string(),
            })
            .collect()
    }

    #[test]
    fn thinking_text_and_a_call_become_blocks_in_order() {
        let mut b = BlockBuilder::default();
        b.push(vec![ParseEvent::Reasoning("hmm".into())]);
        b.push(vec![ParseEvent::Content("Hi".into())]);
        b.push(vec![ParseEvent::Content(" there".into())]);
        b.push(vec![
            ParseEvent::CallStart {
                index: 0,
                id: "call_abc".into(),
                name: "Bash".into(),
            },
            ParseEvent::CallArgs {
                index: 0,
                fragment: "{\"command\"".into(),
            },
        ]);
        b.push(vec![ParseEvent::CallArgs {
            index: 0,
            fragment: ": \"ls\"}".into(),
        }]);
        b.finish();
        let ev = b.take_events();
        assert_eq!(
            types(&ev),
            [
                "content_block_start",
                "content_block_delta:thinking_delta",
                "content_block_delta:signature_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta:text_delta",
                "content_block_delta:text_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta:input_json_delta",
                "content_block_delta:input_json_delta",
                "content_block_stop",
            ]
        );
        let indexes: Vec<u64> = ev.iter().map(|e| e["index"].as_u64().unwrap()).collect();
        assert_eq!(indexes, [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
        assert_eq!(ev[8]["content_block"]["input"], json!({}));
        assert_eq!(
            b.blocks,
            [
                ContentBlock::Thinking {
                    thinking: "hmm".into(),
                    signature: String::new()
                },
                ContentBlock::Text {
                    text: "Hi there".into()
                },
                ContentBlock::ToolUse {
                    id: "toolu_abc".into(),
                    name: "Bash".into(),
                    input: json!({"command": "ls"})
                },
            ]
        );
    }

    #[test]
    fn arguments_that_are_not_an_object_give_an_empty_input() {
        assert_eq!(call_input("x", "[1]"), json!({}));
        assert_eq!(call_input("x", ""), json!({}));
        assert_eq!(call_input("x", "{\"a\": 1}"), json!({"a": 1}));
    }
}
