//! Hermes / Qwen format: each call is a JSON object between tags,
//! `<tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>`, possibly after some text.
//!
//! Small Qwen2.5-Coder models often write the same object in a fenced block instead
//! (```` ```json\n{"name": …, "arguments": …}\n``` ````); like llama.cpp's Hermes parser we
//! take that as a call too, and so a bare object `{"name": …, "arguments": …}` (what the 0.5B
//! writes once a conversation already holds calls; llama.cpp's Hermes parser takes it too). An
//! object or fenced block that is not a call stays text.

use serde_json::Value;

use super::json_call::{CallScanner, ScanStatus};
use super::lazy::lazy_grammar;
use super::{
    call_rules, partial_suffix, ContentGate, GrammarVocab, ParseEvent, ToolFormat, ToolParser,
};
use crate::constrained::lark_string;
use crate::protocol::FunctionDef;

const OPEN: &str = "<tool_call>";
const CLOSE: &str = "</tool_call>";
/// (opener, closer) pairs a call may sit between; the first is the format's own.
const WRAPPERS: &[(&str, &str)] = &[(OPEN, CLOSE), ("```json\n", "```")];
/// `Mode::Call` index of a bare call (no wrapper around the object).
const BARE: usize = WRAPPERS.len();
const ARG_KEYS: &[&str] = &["arguments", "parameters"];
const NAME_KEY: &str = "\"name\"";

fn opener(w: usize) -> &'static str {
    WRAPPERS.get(w).map_or("", |(open, _)| open)
}

fn closer(w: usize) -> &'static str {
    WRAPPERS.get(w).map_or("", |(_, close)| close)
}

/// Where a bare call object starts: a `{` whose first key is `"name"`.
fn bare_call_start(buf: &str) -> Option<usize> {
    buf.match_indices('{')
        .map(|(p, _)| p)
        .find(|&p| buf[p + 1..].trim_start().starts_with(NAME_KEY))
}

/// Bytes at the end of `buf` that may still become a bare call start (`{`, `{ "na`).
fn partial_bare_call(buf: &str) -> usize {
    match buf.rfind('{') {
        Some(p) if NAME_KEY.starts_with(buf[p + 1..].trim_start()) => buf.len() - p,
        _ => 0,
    }
}

pub struct Hermes;

/// One call, or calls one per line.
fn calls(parallel: bool) -> &'static str {
    if parallel {
        "call (\"\\n\" call)*"
    } else {
        "call"
    }
}

/// The end of a call: a newline and the closing tag.
fn close(literal: &dyn Fn(&str) -> String) -> String {
    format!("{} {}", lark_string("\n"), literal(CLOSE))
}

impl ToolFormat for Hermes {
    fn name(&self) -> &'static str {
        "hermes"
    }

    fn parser(&self, _tools: &[FunctionDef]) -> Box<dyn ToolParser> {
        Box::new(HermesParser::default())
    }

    fn markers(&self) -> &'static [&'static str] {
        &[OPEN, CLOSE]
    }

    fn required_grammar(
        &self,
        tools: &[FunctionDef],
        parallel: bool,
        literal: &dyn Fn(&str) -> String,
    ) -> String {
        let open = format!("{} {}", literal(OPEN), lark_string("\n"));
        format!(
            "start: {}\n{}",
            calls(parallel),
            call_rules(tools, "arguments", &open, &close(literal))
        )
    }

    /// Needs `<tool_call>` to be one token (Qwen2.5: id 151657).
    fn auto_grammar(
        &self,
        tools: &[FunctionDef],
        parallel: bool,
        vocab: &dyn GrammarVocab,
    ) -> Option<String> {
        let id = vocab.single_token(OPEN)?;
        let open = format!("<[{id}]> {}", lark_string("\n"));
        let rules = call_rules(tools, "arguments", &open, &close(&|s| vocab.literal(s)));
        Some(lazy_grammar(id, vocab, calls(parallel), &rules))
    }

    fn render_calls(&self, calls: &[(String, Value)]) -> String {
        calls
            .iter()
            .map(|(name, args)| {
                let obj = serde_json::json!({"name": name, "arguments": args});
                format!("{OPEN}\n{obj}\n{CLOSE}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn system_prompt(&self, tools: &[Value]) -> String {
        format!(
            "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n\
             You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{}\n</tools>\n\n\
             For each function call, return a json object with function name and arguments within \
             <tool_call></tool_call> XML tags:\n<tool_call>\n{{\"name\": <function-name>, \"arguments\": <args-json-object>}}\n</tool_call>",
            super::tools_json(tools)
        )
    }
}

#[derive(Default)]
enum Mode {
    #[default]
    Text,
    /// Inside a call opened by `WRAPPERS[w]`.
    Call(CallScanner, usize),
    AfterCall(usize),
}

#[derive(Default)]
struct HermesParser {
    mode: Mode,
    buf: String,
    gate: ContentGate,
}

impl HermesParser {
    fn run(&mut self, out: &mut Vec<ParseEvent>) {
        loop {
            match &mut self.mode {
                Mode::Text => {
                    let first = WRAPPERS
                        .iter()
                        .enumerate()
                        .filter_map(|(w, (open, _))| self.buf.find(open).map(|p| (p, w)))
                        .chain(bare_call_start(&self.buf).map(|p| (p, BARE)))
                        .min();
                    if let Some((pos, w)) = first {
                        let open = opener(w);
                        let before: String = self.buf.drain(..pos + open.len()).collect();
                        self.gate.push(&before[..pos], out);
                        self.mode = Mode::Call(CallScanner::new(self.gate.calls, ARG_KEYS), w);
                        continue;
                    }
                    let keep = WRAPPERS
                        .iter()
                        .map(|(open, _)| partial_suffix(&self.buf, open))
                        .chain([partial_bare_call(&self.buf)])
                        .max()
                        .unwrap_or(0);
                    let text: String = self.buf.drain(..self.buf.len() - keep).collect();
                    self.gate.push(&text, out);
                    return;
                }
                Mode::Call(scanner, w) => {
                    let w = *w;
                    let (ev, used, status) = scanner.push(&self.buf);
                    self.gate.note_starts(&ev);
                    out.extend(ev);
                    self.buf.drain(..used);
                    match status {
                        ScanStatus::NeedMore => return,
                        // A complete object that named no function is not a call: text.
                        ScanStatus::Done if !scanner.started() => {
                            let raw = format!("{}{}", opener(w), scanner.raw());
                            self.gate.push(&raw, out);
                            self.mode = Mode::Text;
                        }
                        ScanStatus::Done => self.mode = Mode::AfterCall(w),
                        ScanStatus::Failed => {
                            let raw = format!("{}{}", opener(w), scanner.raw());
                            let started = scanner.started();
                            self.mode = Mode::Text;
                            if !started {
                                self.gate.push(&raw, out);
                            }
                        }
                    }
                }
                Mode::AfterCall(w) => {
                    let close = closer(*w);
                    let trimmed = self.buf.trim_start();
                    if close.is_empty() {
                        self.mode = Mode::Text;
                    } else if trimmed.starts_with(close) {
                        let cut = self.buf.len() - trimmed.len() + close.len();
                        self.buf.drain(..cut);
                        self.mode = Mode::Text;
                    } else if close.starts_with(trimmed) {
                        return; // maybe the closing tag is still coming
                    } else {
                        self.mode = Mode::Text;
                    }
                }
            }
        }
    }
}

impl ToolParser for HermesParser {
    fn push(&mut self, text: &str) -> Vec<ParseEvent> {
        let mut out = Vec::new();
        self.buf.push_str(text);
        self.run(&mut out);
        out
    }

    fn finish(&mut self) -> Vec<ParseEvent> {
        let mut out = Vec::new();
        self.run(&mut out);
        let rest = std::mem::take(&mut self.buf);
        match std::mem::take(&mut self.mode) {
            Mode::Call(mut scanner, w) => {
                let ev = scanner.finish();
                if scanner.started() {
                    self.gate.note_starts(&ev);
                    out.extend(ev);
                } else {
                    let open = opener(w);
                    self.gate
                        .push(&format!("{open}{}{rest}", scanner.raw()), &mut out);
                }
            }
            Mode::AfterCall(w) if closer(w).starts_with(rest.trim()) => {}
            Mode::Text | Mode::AfterCall(_) => self.gate.push(&rest, &mut out),
        }
        self.gate.finish(&mut out);
        out
    }
}
