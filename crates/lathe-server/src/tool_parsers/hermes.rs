//! Hermes / Qwen format: each call is a JSON object between tags,
//! `<tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>`, possibly after some text.
//! The default model's registry entry uses it too.

use serde_json::Value;

use super::json_call::{CallScanner, ScanStatus};
use super::{partial_suffix, ContentGate, ParseEvent, ToolFormat, ToolParser};
use crate::protocol::FunctionDef;

const OPEN: &str = "<tool_call>";
const CLOSE: &str = "</tool_call>";
const ARG_KEYS: &[&str] = &["arguments", "parameters"];

pub struct Hermes;

impl ToolFormat for Hermes {
    fn name(&self) -> &'static str {
        "hermes"
    }

    fn parser(&self) -> Box<dyn ToolParser> {
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
        let open = format!(
            "{} {}",
            literal(OPEN),
            super::super::constrained::lark_string("\n")
        );
        let close = format!(
            "{} {}",
            super::super::constrained::lark_string("\n"),
            literal(CLOSE)
        );
        let start = if parallel {
            "start: call (\"\\n\" call)*\n"
        } else {
            "start: call\n"
        };
        format!(
            "{start}{}",
            super::call_rules(tools, "arguments", &open, &close)
        )
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
    Call(CallScanner),
    AfterCall,
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
                    if let Some(pos) = self.buf.find(OPEN) {
                        let before: String = self.buf.drain(..pos + OPEN.len()).collect();
                        self.gate.push(&before[..pos], out);
                        self.mode = Mode::Call(CallScanner::new(self.gate.calls, ARG_KEYS));
                        continue;
                    }
                    let keep = partial_suffix(&self.buf, OPEN);
                    let text: String = self.buf.drain(..self.buf.len() - keep).collect();
                    self.gate.push(&text, out);
                    return;
                }
                Mode::Call(scanner) => {
                    let (ev, used, status) = scanner.push(&self.buf);
                    self.gate.note_starts(&ev);
                    out.extend(ev);
                    self.buf.drain(..used);
                    match status {
                        ScanStatus::NeedMore => return,
                        ScanStatus::Done => self.mode = Mode::AfterCall,
                        ScanStatus::Failed => {
                            let raw = format!("{OPEN}{}", scanner.raw());
                            let started = scanner.started();
                            self.mode = Mode::Text;
                            if !started {
                                self.gate.push(&raw, out);
                            }
                        }
                    }
                }
                Mode::AfterCall => {
                    let trimmed = self.buf.trim_start();
                    if trimmed.starts_with(CLOSE) {
                        let cut = self.buf.len() - trimmed.len() + CLOSE.len();
                        self.buf.drain(..cut);
                        self.mode = Mode::Text;
                    } else if CLOSE.starts_with(trimmed) {
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
            Mode::Call(mut scanner) => {
                let ev = scanner.finish();
                if scanner.started() {
                    self.gate.note_starts(&ev);
                    out.extend(ev);
                } else {
                    self.gate
                        .push(&format!("{OPEN}{}{rest}", scanner.raw()), &mut out);
                }
            }
            Mode::AfterCall if CLOSE.starts_with(rest.trim()) => {}
            Mode::Text | Mode::AfterCall => self.gate.push(&rest, &mut out),
        }
        self.gate.finish(&mut out);
        out
    }
}
