//! Llama 3.x JSON format: the whole reply is one or more JSON objects,
//! `{"name": "f", "parameters": {...}}`, separated by `;`, optionally after `<|python_tag|>`.
//! A reply that does not start with `{` is plain content.

use serde_json::Value;

use super::json_call::{CallScanner, ScanStatus};
use super::{ContentGate, ParseEvent, ToolFormat, ToolParser};
use crate::protocol::FunctionDef;

const PYTHON_TAG: &str = "<|python_tag|>";
const ARG_KEYS: &[&str] = &["parameters", "arguments"];

pub struct Llama3Json;

impl ToolFormat for Llama3Json {
    fn name(&self) -> &'static str {
        "llama3_json"
    }

    fn parser(&self, _tools: &[FunctionDef]) -> Box<dyn ToolParser> {
        Box::new(Llama3Parser::default())
    }

    fn markers(&self) -> &'static [&'static str] {
        &[PYTHON_TAG]
    }

    fn required_grammar(
        &self,
        tools: &[FunctionDef],
        parallel: bool,
        _literal: &dyn Fn(&str) -> String,
    ) -> String {
        let start = if parallel {
            "start: call (\"; \" call)*\n"
        } else {
            "start: call\n"
        };
        format!("{start}{}", super::call_rules(tools, "parameters", "", ""))
    }

    fn render_calls(&self, calls: &[(String, Value)]) -> String {
        calls
            .iter()
            .map(|(name, args)| serde_json::json!({"name": name, "parameters": args}).to_string())
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn system_prompt(&self, tools: &[Value]) -> String {
        format!(
            "Given the following functions, please respond with a JSON for a function call with its proper \
             arguments that best answers the given prompt.\n\nRespond in the format {{\"name\": function name, \
             \"parameters\": dictionary of argument name and its value}}. Do not use variables.\n\n{}",
            super::tools_json(tools)
        )
    }
}

#[derive(Default)]
enum Mode {
    /// Nothing but whitespace (or the python tag) seen yet.
    #[default]
    Start,
    Calls(Option<CallScanner>),
    Text,
}

#[derive(Default)]
struct Llama3Parser {
    mode: Mode,
    buf: String,
    gate: ContentGate,
}

impl Llama3Parser {
    fn run(&mut self, out: &mut Vec<ParseEvent>) {
        loop {
            match &mut self.mode {
                Mode::Start => {
                    let t = self.buf.trim_start();
                    let t = t.strip_prefix(PYTHON_TAG).unwrap_or(t).trim_start();
                    if t.is_empty() || PYTHON_TAG.starts_with(self.buf.trim_start()) {
                        return;
                    }
                    if t.starts_with('{') {
                        self.buf = t.to_string();
                        self.mode = Mode::Calls(None);
                    } else {
                        self.mode = Mode::Text;
                    }
                }
                Mode::Text => {
                    let text = std::mem::take(&mut self.buf);
                    self.gate.push(&text, out);
                    return;
                }
                Mode::Calls(slot) => {
                    let Some(scanner) = slot else {
                        let t = self
                            .buf
                            .trim_start_matches(|c: char| c.is_whitespace() || c == ';')
                            .to_string();
                        if t.is_empty() {
                            self.buf.clear();
                            return;
                        }
                        let is_object = t.starts_with('{');
                        self.buf = t;
                        if !is_object {
                            self.mode = Mode::Text;
                            continue;
                        }
                        *slot = Some(CallScanner::new(self.gate.calls, ARG_KEYS));
                        continue;
                    };
                    let (ev, used, status) = scanner.push(&self.buf);
                    self.gate.note_starts(&ev);
                    out.extend(ev);
                    self.buf.drain(..used);
                    match status {
                        ScanStatus::NeedMore => return,
                        ScanStatus::Done => *slot = None,
                        ScanStatus::Failed => {
                            if !scanner.started() {
                                let raw = scanner.raw().to_string();
                                self.gate.push(&raw, out);
                            }
                            self.mode = Mode::Text;
                        }
                    }
                }
            }
        }
    }
}

impl ToolParser for Llama3Parser {
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
            Mode::Calls(Some(mut scanner)) => {
                let ev = scanner.finish();
                if scanner.started() {
                    self.gate.note_starts(&ev);
                    out.extend(ev);
                } else {
                    self.gate
                        .push(&format!("{}{rest}", scanner.raw()), &mut out);
                }
            }
            _ => self.gate.push(&rest, &mut out),
        }
        self.gate.finish(&mut out);
        out
    }
}
