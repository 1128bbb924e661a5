//! Output items of a Responses run, built from the parser events of its one generation. The
//! same builder serves both shapes: it keeps the items (the non-streaming body, and the final
//! `response.completed`) and queues the stream events that describe each change, in the order
//! clients expect:
//!
//! ```text
//! message:   output_item.added → content_part.added → output_text.delta… → output_text.done
//!            → content_part.done → output_item.done
//! reasoning: output_item.added → reasoning_text.delta… → reasoning_text.done → output_item.done
//! function:  output_item.added → function_call_arguments.delta… → function_call_arguments.done
//!            → output_item.done
//! custom:    output_item.added → custom_tool_call_input.delta → custom_tool_call_input.done
//!            → output_item.done
//! ```
//!
//! One item is open at a time; anything of another kind closes it. A freeform (custom) call's
//! input is the `input` argument of the function the model called, so it is only known — and
//! sent — when the call is complete.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::protocol::{random_id, ChatTokenLogprob, OutputItem, OutputText, ReasoningText};
use crate::tool_parsers::ParseEvent;
use crate::validation::responses::ToolMap;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Open {
    Message,
    Reasoning,
    Call,
}

pub(crate) struct OutputBuilder {
    tools: ToolMap,
    pub items: Vec<OutputItem>,
    /// The kind of the last item, while it is still open.
    open: Option<Open>,
    /// Parser call index → item index.
    calls: HashMap<usize, usize>,
    /// Arguments text of open custom calls (by item index).
    custom_args: HashMap<usize, String>,
    events: Vec<Value>,
}

impl OutputBuilder {
    pub fn new(tools: ToolMap) -> Self {
        Self {
            tools,
            items: Vec::new(),
            open: None,
            calls: HashMap::new(),
            custom_args: HashMap::new(),
            events: Vec::new(),
        }
    }

    /// The stream events queued since the last call.
    pub fn take_events(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.events)
    }

    /// Applies the parser events of one token; its logprobs go with its first text delta.
    pub fn push(&mut self, events: Vec<ParseEvent>, mut logprobs: Option<ChatTokenLogprob>) {
        for ev in events {
            match ev {
                ParseEvent::Content(text) => self.text(text, logprobs.take()),
                ParseEvent::Reasoning(text) => self.reasoning(text),
                ParseEvent::CallStart { index, id, name } => self.call_start(index, id, &name),
                ParseEvent::CallArgs { index, fragment } => self.call_args(index, fragment),
            }
        }
    }

    /// Closes the open item (the generation ended).
    pub fn finish(&mut self) {
        self.close();
    }

    fn last(&self) -> (usize, &str) {
        let i = self.items.len() - 1;
        (i, self.items[i].id())
    }

    fn text(&mut self, text: String, logprobs: Option<ChatTokenLogprob>) {
        if self.open != Some(Open::Message) {
            self.open_item(
                Open::Message,
                OutputItem::Message {
                    id: random_id("msg_", 24),
                    status: "in_progress",
                    role: "assistant",
                    content: Vec::new(),
                },
            );
            let (i, id) = self.last();
            let part = OutputText::new(String::new());
            self.events
                .push(json!({"type": "response.content_part.added", "item_id": id,
                "output_index": i, "content_index": 0, "part": part}));
            if let Some(OutputItem::Message { content, .. }) = self.items.last_mut() {
                content.push(part);
            }
        }
        let (i, id) = self.last();
        let lp: Vec<ChatTokenLogprob> = logprobs.into_iter().collect();
        self.events
            .push(json!({"type": "response.output_text.delta", "item_id": id,
            "output_index": i, "content_index": 0, "delta": text, "logprobs": lp}));
        if let Some(OutputItem::Message { content, .. }) = self.items.last_mut() {
            content[0].text.push_str(&text);
            content[0].logprobs.extend(lp);
        }
    }

    fn reasoning(&mut self, text: String) {
        if self.open != Some(Open::Reasoning) {
            self.open_item(
                Open::Reasoning,
                OutputItem::Reasoning {
                    id: random_id("rs_", 24),
                    summary: Vec::new(),
                    content: vec![ReasoningText {
                        kind: "reasoning_text",
                        text: String::new(),
                    }],
                },
            );
        }
        let (i, id) = self.last();
        self.events.push(
            json!({"type": "response.reasoning_text.delta", "item_id": id,
            "output_index": i, "content_index": 0, "delta": text}),
        );
        if let Some(OutputItem::Reasoning { content, .. }) = self.items.last_mut() {
            content[0].text.push_str(&text);
        }
    }

    fn call_start(&mut self, index: usize, call_id: String, model_name: &str) {
        let tool = self.tools.resolve(model_name);
        let item = if tool.custom {
            OutputItem::CustomToolCall {
                id: random_id("ctc_", 24),
                call_id,
                name: tool.name,
                namespace: tool.namespace,
                input: String::new(),
                status: "in_progress",
            }
        } else {
            OutputItem::FunctionCall {
                id: random_id("fc_", 24),
                call_id,
                name: tool.name,
                namespace: tool.namespace,
                arguments: String::new(),
                status: "in_progress",
            }
        };
        self.open_item(Open::Call, item);
        let i = self.items.len() - 1;
        self.calls.insert(index, i);
        if tool.custom {
            self.custom_args.insert(i, String::new());
        }
    }

    fn call_args(&mut self, index: usize, fragment: String) {
        let Some(&i) = self.calls.get(&index) else {
            return;
        };
        if let Some(args) = self.custom_args.get_mut(&i) {
            args.push_str(&fragment);
            return;
        }
        if let OutputItem::FunctionCall { id, arguments, .. } = &mut self.items[i] {
            arguments.push_str(&fragment);
            self.events
                .push(json!({"type": "response.function_call_arguments.delta",
                "item_id": id, "output_index": i, "delta": fragment}));
        }
    }

    fn open_item(&mut self, kind: Open, item: OutputItem) {
        self.close();
        let i = self.items.len();
        self.events
            .push(json!({"type": "response.output_item.added", "output_index": i, "item": item}));
        self.items.push(item);
        self.open = Some(kind);
    }

    /// Completes the open item and queues its closing events.
    fn close(&mut self) {
        if self.open.take().is_none() {
            return;
        }
        let i = self.items.len() - 1;
        let custom_args = self.custom_args.remove(&i);
        let events = &mut self.events;
        match &mut self.items[i] {
            OutputItem::Message {
                id,
                status,
                content,
                ..
            } => {
                *status = "completed";
                let part = &content[0];
                events.push(json!({"type": "response.output_text.done", "item_id": id,
                    "output_index": i, "content_index": 0, "text": part.text, "logprobs": part.logprobs}));
                events.push(json!({"type": "response.content_part.done", "item_id": id,
                    "output_index": i, "content_index": 0, "part": part}));
            }
            OutputItem::Reasoning { id, content, .. } => {
                events.push(
                    json!({"type": "response.reasoning_text.done", "item_id": id,
                    "output_index": i, "content_index": 0, "text": content[0].text}),
                );
            }
            OutputItem::FunctionCall {
                id,
                name,
                arguments,
                status,
                ..
            } => {
                *status = "completed";
                events.push(json!({"type": "response.function_call_arguments.done",
                    "item_id": id, "output_index": i, "name": name, "arguments": arguments}));
            }
            OutputItem::CustomToolCall {
                id, input, status, ..
            } => {
                *status = "completed";
                *input = custom_input(custom_args.as_deref().unwrap_or(""));
                events.push(json!({"type": "response.custom_tool_call_input.delta",
                    "item_id": id, "output_index": i, "delta": input}));
                events.push(json!({"type": "response.custom_tool_call_input.done",
                    "item_id": id, "output_index": i, "input": input}));
            }
        }
        let item = &self.items[i];
        self.events
            .push(json!({"type": "response.output_item.done", "output_index": i, "item": item}));
    }
}

/// A freeform call's input: the `input` string of its arguments, or the arguments themselves
/// when the model wrote something else.
fn custom_input(arguments: &str) -> String {
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(o)) => match o.get("input") {
            Some(Value::String(s)) => s.clone(),
            _ => arguments.to_string(),
        },
        _ => arguments.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(events: &[Value]) -> Vec<&str> {
        events.iter().map(|e| e["type"].as_str().unwrap()).collect()
    }

    #[test]
    fn reasoning_then_text_then_a_call_open_and_close_items_in_order() {
        let mut b = OutputBuilder::new(ToolMap::default());
        b.push(vec![ParseEvent::Reasoning("think".into())], None);
        b.push(vec![ParseEvent::Content("Hi".into())], None);
        b.push(vec![ParseEvent::Content(" there".into())], None);
        b.push(
            vec![
                ParseEvent::CallStart {
                    index: 0,
                    id: "call_1".into(),
                    name: "ls".into(),
                },
                ParseEvent::CallArgs {
                    index: 0,
                    fragment: "{\"a\"".into(),
                },
            ],
            None,
        );
        b.push(
            vec![ParseEvent::CallArgs {
                index: 0,
                fragment: ": 1}".into(),
            }],
            None,
        );
        b.finish();
        let ev = b.take_events();
        assert_eq!(
            types(&ev),
            [
                "response.output_item.added",
                "response.reasoning_text.delta",
                "response.reasoning_text.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
            ]
        );
        assert_eq!(ev[8]["text"], "Hi there");
        assert_eq!(ev[14]["arguments"], "{\"a\": 1}");
        let done: Vec<usize> = ev
            .iter()
            .filter(|e| e["type"] == "response.output_item.done")
            .map(|e| e["output_index"].as_u64().unwrap() as usize)
            .collect();
        assert_eq!(done, [0, 1, 2]);
        assert_eq!(b.items.len(), 3);
        assert!(
            matches!(&b.items[2], OutputItem::FunctionCall { arguments, status: "completed", call_id, .. }
            if arguments == "{\"a\": 1}" && call_id == "call_1")
        );
    }

    #[test]
    fn custom_and_namespaced_calls_map_back_to_their_tools() {
        let body = json!({"input": "x", "tools": [
            {"type": "custom", "name": "apply_patch"},
            {"type": "namespace", "name": "agents", "tools": [{"type": "function", "name": "spawn"}]}
        ]});
        let tools = crate::validation::responses::tool_map_for_tests(&body);
        let mut b = OutputBuilder::new(tools);
        b.push(
            vec![
                ParseEvent::CallStart {
                    index: 0,
                    id: "c0".into(),
                    name: "apply_patch".into(),
                },
                ParseEvent::CallArgs {
                    index: 0,
                    fragment: "{\"input\": \"*** Begin Patch\\n\"}".into(),
                },
                ParseEvent::CallStart {
                    index: 1,
                    id: "c1".into(),
                    name: "agents__spawn".into(),
                },
                ParseEvent::CallArgs {
                    index: 1,
                    fragment: "{}".into(),
                },
            ],
            None,
        );
        b.finish();
        let ev = b.take_events();
        assert!(types(&ev).contains(&"response.custom_tool_call_input.done"));
        assert_eq!(
            b.items[0],
            OutputItem::CustomToolCall {
                id: b.items[0].id().to_string(),
                call_id: "c0".into(),
                name: "apply_patch".into(),
                namespace: None,
                input: "*** Begin Patch\n".into(),
                status: "completed",
            }
        );
        assert!(
            matches!(&b.items[1], OutputItem::FunctionCall { name, namespace: Some(ns), .. }
            if name == "spawn" && ns == "agents")
        );
    }
}
