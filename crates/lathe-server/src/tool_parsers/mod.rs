//! Tool calls, per model family (registry field `tool_format`): one file per format, each with
//! its streaming parser (generated text in, content and tool-call events out), the grammar that
//! forces a call (`tool_choice` required or named), the lazy grammar of `tool_choice: auto`
//! (`lazy.rs`: free text, then only valid calls), and the text conventions used when a chat
//! template does not handle tools itself.
//!
//! The same parser serves streaming and non-streaming responses (`assemble` folds its events),
//! so both always agree.

mod hermes;
mod json_call;
mod lazy;
mod llama3_json;
mod mistral;
mod qwen3_coder;

pub use json_call::{CallScanner, ScanStatus};
pub use lazy::GrammarVocab;

use serde_json::Value;

use crate::protocol::{FunctionCall, FunctionDef, ResponseToolCall};

/// What a parser finds in generated text.
#[derive(Debug, Clone, PartialEq)]
pub enum ParseEvent {
    /// Plain text for `content`.
    Content(String),
    /// A tool call begins: its index among this choice's calls, id and function name.
    CallStart {
        index: usize,
        id: String,
        name: String,
    },
    /// More of the arguments JSON text of call `index`.
    CallArgs { index: usize, fragment: String },
    /// Reasoning text of a thinking model (never produced by the tool parsers themselves; see
    /// `reasoning.rs`).
    Reasoning(String),
}

/// Incremental parser of one generation.
pub trait ToolParser: Send {
    fn push(&mut self, text: &str) -> Vec<ParseEvent>;
    /// The generation ended: flush what is held back.
    fn finish(&mut self) -> Vec<ParseEvent>;
}

/// A tool-call format.
pub trait ToolFormat: Send + Sync {
    fn name(&self) -> &'static str;
    /// A parser for one generation; `tools` are the request's (a format whose values are
    /// typed by the tool schemas reads them, the others ignore them).
    fn parser(&self, tools: &[FunctionDef]) -> Box<dyn ToolParser>;
    /// Marker strings that may be special tokens (the detokenizer drops special tokens, so the
    /// server re-inserts these when their token is generated).
    fn markers(&self) -> &'static [&'static str] {
        &[]
    }
    /// Lark grammar allowing only calls to `tools` in this format (`parallel`: one or more).
    /// `literal` spells a marker (a special token by id, or a quoted string).
    fn required_grammar(
        &self,
        tools: &[FunctionDef],
        parallel: bool,
        literal: &dyn Fn(&str) -> String,
    ) -> String;
    /// Lark grammar for `tool_choice: auto`: free text, then optionally calls to `tools` (one
    /// unless `parallel`), then only the end of the turn. `None` when the format's call cannot
    /// be recognized at its first token (no single-token marker): no constraint then.
    fn auto_grammar(
        &self,
        _tools: &[FunctionDef],
        _parallel: bool,
        _vocab: &dyn GrammarVocab,
    ) -> Option<String> {
        None
    }
    /// Calls of an assistant message of the history as the model writes them.
    fn render_calls(&self, calls: &[(String, Value)]) -> String;
    /// Tool instructions for a chat template that ignores `tools`.
    fn system_prompt(&self, tools: &[Value]) -> String;
}

/// The format for a registry `tool_format`, if lathe implements it.
pub fn format(name: &str) -> Option<&'static dyn ToolFormat> {
    match name {
        "hermes" | "qwen" | "qwen2_5" => Some(&hermes::Hermes),
        "llama3_json" | "llama3" => Some(&llama3_json::Llama3Json),
        "mistral" => Some(&mistral::Mistral),
        "qwen3_coder" | "qwen3_xml" => Some(&qwen3_coder::Qwen3Coder),
        _ => None,
    }
}

/// Names `format` knows (for error messages and docs).
pub const IMPLEMENTED: &[&str] = &["hermes", "llama3_json", "mistral", "qwen3_coder"];

/// Folds parser events into the message content and the tool calls of a non-streaming reply.
pub fn assemble(
    events: impl IntoIterator<Item = ParseEvent>,
) -> (Option<String>, Vec<ResponseToolCall>) {
    let mut content = String::new();
    let mut calls: Vec<ResponseToolCall> = Vec::new();
    for ev in events {
        match ev {
            ParseEvent::Content(s) => content.push_str(&s),
            ParseEvent::CallStart { id, name, .. } => calls.push(ResponseToolCall {
                id,
                kind: "function",
                function: FunctionCall {
                    name,
                    arguments: String::new(),
                },
            }),
            ParseEvent::CallArgs { index, fragment } => {
                if let Some(c) = calls.get_mut(index) {
                    c.function.arguments.push_str(&fragment);
                }
            }
            ParseEvent::Reasoning(_) => {}
        }
    }
    let content = if calls.is_empty() {
        Some(content)
    } else {
        Some(content.trim().to_string()).filter(|c| !c.is_empty())
    };
    (content, calls)
}

/// `parallel_tool_calls: false`: an answer holds at most one call. Events from the start of a
/// second call on are dropped, and the caller stops the generation there.
#[derive(Debug, Default)]
pub struct OneCallLimit {
    cut: bool,
}

impl OneCallLimit {
    /// Drops what follows a second call's start (everything, once cut); true when this batch
    /// made the cut.
    pub fn apply(&mut self, events: &mut Vec<ParseEvent>) -> bool {
        if self.cut {
            events.clear();
            return false;
        }
        let second = events
            .iter()
            .position(|e| matches!(e, ParseEvent::CallStart { index, .. } if *index >= 1));
        if let Some(at) = second {
            events.truncate(at);
            self.cut = true;
        }
        self.cut
    }

    pub fn is_cut(&self) -> bool {
        self.cut
    }
}

/// Runs a whole text through a parser.
pub fn parse_all(parser: &mut dyn ToolParser, text: &str) -> Vec<ParseEvent> {
    let mut ev = parser.push(text);
    ev.extend(parser.finish());
    ev
}

/// Content that is only whitespace is held back until more text shows whether it matters;
/// after a tool call it is dropped (the newlines between calls are not content).
#[derive(Debug, Default)]
pub(crate) struct ContentGate {
    held: String,
    pub calls: usize,
}

impl ContentGate {
    pub fn push(&mut self, text: &str, out: &mut Vec<ParseEvent>) {
        if text.is_empty() {
            return;
        }
        self.held.push_str(text);
        if !self.held.trim().is_empty() {
            out.push(ParseEvent::Content(std::mem::take(&mut self.held)));
        }
    }

    /// Counts the calls starting in `events`; whitespace held in front of them is dropped.
    pub fn note_starts(&mut self, events: &[ParseEvent]) {
        for e in events {
            if matches!(e, ParseEvent::CallStart { .. }) {
                self.held.clear();
                self.calls += 1;
            }
        }
    }

    pub fn finish(&mut self, out: &mut Vec<ParseEvent>) {
        let held = std::mem::take(&mut self.held);
        if self.calls == 0 && !held.is_empty() {
            out.push(ParseEvent::Content(held));
        }
    }
}

/// Length of the longest suffix of `text` that begins `tag` (text to hold back).
pub(crate) fn partial_suffix(text: &str, tag: &str) -> usize {
    let max = tag.len().saturating_sub(1).min(text.len());
    (1..=max)
        .rev()
        .find(|&n| {
            text.is_char_boundary(text.len() - n) && tag.starts_with(&text[text.len() - n..])
        })
        .unwrap_or(0)
}

/// Lark rules `call: call_0 | call_1 | …`, one alternative per tool:
/// `open {"name": "<name>", "<args_key>": <parameters schema>} close`. `open` and `close` are
/// Lark fragments (quoted text or special tokens).
pub(crate) fn call_rules(tools: &[FunctionDef], args_key: &str, open: &str, close: &str) -> String {
    use crate::constrained::{json_rule, lark_string};
    let mut alts = Vec::new();
    let mut rules = String::new();
    for (i, f) in tools.iter().enumerate() {
        let head = format!(
            "{{\"name\": {}, \"{args_key}\": ",
            serde_json::to_string(&f.name).unwrap_or_default()
        );
        let schema = f
            .parameters
            .clone()
            .unwrap_or_else(|| serde_json::json!({"type": "object"}));
        let args = json_rule(&schema)
            .unwrap_or_else(|_| json_rule(&serde_json::json!({"type": "object"})).expect("static"));
        let seq = [
            open.to_string(),
            lark_string(&head),
            format!("args_{i}"),
            lark_string("}"),
            close.to_string(),
        ];
        let seq: Vec<&str> = seq
            .iter()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .collect();
        rules.push_str(&format!("call_{i}: {}\n", seq.join(" ")));
        rules.push_str(&format!("args_{i}: {args}\n"));
        alts.push(format!("call_{i}"));
    }
    format!("call: {}\n{rules}", alts.join(" | "))
}

/// The tool declarations as the OpenAI request had them (for prompts and templates).
pub(crate) fn tools_json(tools: &[Value]) -> String {
    tools
        .iter()
        .map(|t| serde_json::to_string(t).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests;
