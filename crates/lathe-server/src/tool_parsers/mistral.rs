//! Mistral format: `[TOOL_CALLS]` (a special token) followed by a JSON array of
//! `{"name": "f", "arguments": {...}}` objects (tokenizer v3, Codestral), or by
//! `name[ARGS]{...}` / `name{...}` (tokenizer v11+), one marker per call.

use serde_json::Value;

use super::json_call::{CallScanner, ScanStatus};
use super::lazy::lazy_grammar;
use super::{partial_suffix, ContentGate, GrammarVocab, ParseEvent, ToolFormat, ToolParser};
use crate::protocol::FunctionDef;

const MARKER: &str = "[TOOL_CALLS]";
const ARGS: &str = "[ARGS]";
const ARG_KEYS: &[&str] = &["arguments", "parameters"];

pub struct Mistral;

/// `[call]`, or `[call, call, …]`.
fn array(parallel: bool) -> &'static str {
    if parallel {
        "\"[\" call (\", \" call)* \"]\""
    } else {
        "\"[\" call \"]\""
    }
}

impl ToolFormat for Mistral {
    fn name(&self) -> &'static str {
        "mistral"
    }

    fn parser(&self, _tools: &[FunctionDef]) -> Box<dyn ToolParser> {
        Box::new(MistralParser::default())
    }

    fn markers(&self) -> &'static [&'static str] {
        &[MARKER, ARGS]
    }

    fn required_grammar(
        &self,
        tools: &[FunctionDef],
        parallel: bool,
        literal: &dyn Fn(&str) -> String,
    ) -> String {
        format!(
            "start: {} {}\n{}",
            literal(MARKER),
            array(parallel),
            super::call_rules(tools, "arguments", "", "")
        )
    }

    /// The array form needs `[TOOL_CALLS]` to be one token; a vocabulary with `[ARGS]` as a
    /// token (tokenizer v11+) writes `name[ARGS]{...}` instead, which this grammar does not
    /// spell: no lazy grammar there.
    fn auto_grammar(
        &self,
        tools: &[FunctionDef],
        parallel: bool,
        vocab: &dyn GrammarVocab,
    ) -> Option<String> {
        if vocab.single_token(ARGS).is_some() {
            return None;
        }
        let id = vocab.single_token(MARKER)?;
        let tail = format!("<[{id}]> {}", array(parallel));
        let rules = super::call_rules(tools, "arguments", "", "");
        Some(lazy_grammar(id, vocab, &tail, &rules))
    }

    fn render_calls(&self, calls: &[(String, Value)]) -> String {
        let list: Vec<Value> = calls
            .iter()
            .map(|(name, args)| serde_json::json!({"name": name, "arguments": args}))
            .collect();
        format!("{MARKER}{}", Value::Array(list))
    }

    fn system_prompt(&self, tools: &[Value]) -> String {
        format!(
            "[AVAILABLE_TOOLS]{}[/AVAILABLE_TOOLS]",
            Value::Array(tools.to_vec())
        )
    }
}

#[derive(Default)]
enum Mode {
    #[default]
    Text,
    /// Just after the marker: what follows decides the variant.
    AfterMarker,
    /// Inside `[...]`: `scanner` is the object being read.
    Array(Option<CallScanner>),
    /// Reading a function name up to `[ARGS]` or `{`.
    Name,
    /// Reading the arguments of a named call (or a bare object).
    Args(CallScanner),
}

#[derive(Default)]
struct MistralParser {
    mode: Mode,
    buf: String,
    gate: ContentGate,
}

impl MistralParser {
    fn scan(&mut self, out: &mut Vec<ParseEvent>) -> Option<ScanStatus> {
        let scanner = match &mut self.mode {
            Mode::Array(Some(s)) | Mode::Args(s) => s,
            _ => return None,
        };
        let (ev, used, status) = scanner.push(&self.buf);
        self.gate.note_starts(&ev);
        out.extend(ev);
        self.buf.drain(..used);
        if status == ScanStatus::Failed && !scanner.started() {
            let raw = scanner.raw().to_string();
            self.gate.push(&raw, out);
        }
        Some(status)
    }

    fn run(&mut self, out: &mut Vec<ParseEvent>) {
        loop {
            match &mut self.mode {
                Mode::Text => {
                    if let Some(pos) = self.buf.find(MARKER) {
                        let before: String = self.buf.drain(..pos + MARKER.len()).collect();
                        self.gate.push(&before[..pos], out);
                        self.mode = Mode::AfterMarker;
                        continue;
                    }
                    let keep = partial_suffix(&self.buf, MARKER);
                    let text: String = self.buf.drain(..self.buf.len() - keep).collect();
                    self.gate.push(&text, out);
                    return;
                }
                Mode::AfterMarker => {
                    let t = self.buf.trim_start().to_string();
                    let Some(c) = t.chars().next() else { return };
                    self.buf = t;
                    self.mode = match c {
                        '[' => {
                            self.buf.remove(0);
                            Mode::Array(None)
                        }
                        '{' => Mode::Args(CallScanner::new(self.gate.calls, ARG_KEYS)),
                        _ => Mode::Name,
                    };
                }
                Mode::Array(slot @ None) => {
                    let t = self
                        .buf
                        .trim_start_matches(|c: char| c.is_whitespace() || c == ',')
                        .to_string();
                    self.buf = t;
                    match self.buf.chars().next() {
                        None => return,
                        Some('{') => *slot = Some(CallScanner::new(self.gate.calls, ARG_KEYS)),
                        Some(']') => {
                            self.buf.remove(0);
                            self.mode = Mode::Text;
                        }
                        Some(_) => self.mode = Mode::Text,
                    }
                }
                Mode::Name => {
                    let args_at = self.buf.find(ARGS).map(|p| (p, ARGS.len()));
                    let brace_at = self.buf.find('{').map(|p| (p, 0));
                    let Some((pos, skip)) = [args_at, brace_at].into_iter().flatten().min() else {
                        return;
                    };
                    let name = self.buf[..pos].trim().to_string();
                    self.buf.drain(..pos + skip);
                    let mut scanner = CallScanner::for_args(self.gate.calls, name);
                    let (ev, _, _) = scanner.push("");
                    self.gate.note_starts(&ev);
                    out.extend(ev);
                    self.mode = Mode::Args(scanner);
                }
                Mode::Array(Some(_)) | Mode::Args(_) => match self.scan(out) {
                    Some(ScanStatus::NeedMore) | None => return,
                    Some(ScanStatus::Done) => {
                        self.mode = match self.mode {
                            Mode::Array(_) => Mode::Array(None),
                            _ => Mode::Text,
                        }
                    }
                    Some(ScanStatus::Failed) => self.mode = Mode::Text,
                },
            }
        }
    }
}

impl ToolParser for MistralParser {
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
            Mode::Array(Some(mut s)) | Mode::Args(mut s) => {
                let ev = s.finish();
                if s.started() {
                    self.gate.note_starts(&ev);
                    out.extend(ev);
                } else {
                    self.gate.push(&format!("{}{rest}", s.raw()), &mut out);
                }
            }
            Mode::Text => self.gate.push(&rest, &mut out),
            _ => {}
        }
        self.gate.finish(&mut out);
        out
    }
}
