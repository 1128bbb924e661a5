//! Qwen3-Coder format (vLLM's `qwen3_coder` parser): XML-ish calls whose parameter values are
//! raw text, typed afterwards by the tool's JSON schema.
//!
//! ```text
//! <tool_call>
//! <function=get_weather>
//! <parameter=city>
//! Paris
//! </parameter>
//! <parameter=days>
//! 3
//! </parameter>
//! </function>
//! </tool_call>
//! ```
//!
//! Decisions:
//! - A call starts (`CallStart`) once `<function=NAME>` is complete; each parameter is sent as
//!   one arguments fragment when its `</parameter>` arrives (`{"city": "Paris"`, then
//!   `, "days": 3`), and `}` at `</function>`: the fragments always concatenate to a JSON
//!   object, whatever the chunking.
//! - A value is the text between `<parameter=NAME>` and `</parameter>`, less one leading and
//!   one trailing newline. Its JSON type follows `parameters.properties.NAME` of the tool
//!   (`string` stays text; `integer`/`number`/`boolean` parsed, text when they do not parse;
//!   `object`/`array` parsed as JSON, or as a Python literal with `True`/`None`/'quotes'); an
//!   unknown parameter or tool: JSON if the text parses, else the text. `null` is null for any
//!   type but string.
//! - Before the call has started, anything that does not fit (`<tool_call>` followed by other
//!   text, a malformed `<function=` name, the end of the text) is content, as written. Once it
//!   has started, the call is closed at the end of the text: a parameter left open takes the
//!   rest of the text (cut at `</function>` if the model forgot `</parameter>`), and text
//!   between parameters that is no tag is dropped.
//! - Several `<function=…>` blocks in one `<tool_call>` are several calls (as vLLM reads them).

use std::collections::HashMap;

use serde_json::Value;

use super::lazy::lazy_grammar;
use super::{partial_suffix, ContentGate, GrammarVocab, ParseEvent, ToolFormat, ToolParser};
use crate::constrained::lark_string;
use crate::protocol::{random_id, FunctionDef};

const OPEN: &str = "<tool_call>";
const CLOSE: &str = "</tool_call>";
const FUNC: &str = "<function=";
const FUNC_CLOSE: &str = "</function>";
const PARAM: &str = "<parameter=";
const PARAM_CLOSE: &str = "</parameter>";
/// A function or parameter name longer than this (without its `>`) is not a tag.
const MAX_NAME: usize = 256;

pub struct Qwen3Coder;

impl ToolFormat for Qwen3Coder {
    fn name(&self) -> &'static str {
        "qwen3_coder"
    }

    fn parser(&self, tools: &[FunctionDef]) -> Box<dyn ToolParser> {
        Box::new(Qwen3CoderParser::new(tools))
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
        format!(
            "start: {}\n{}",
            calls(parallel),
            call_rules(tools, &literal(OPEN), &literal(CLOSE))
        )
    }

    /// Needs `<tool_call>` to be one token (Qwen2.5/Qwen3: id 151657).
    fn auto_grammar(
        &self,
        tools: &[FunctionDef],
        parallel: bool,
        vocab: &dyn GrammarVocab,
    ) -> Option<String> {
        let id = vocab.single_token(OPEN)?;
        let rules = call_rules(tools, &format!("<[{id}]>"), &vocab.literal(CLOSE));
        Some(lazy_grammar(id, vocab, calls(parallel), &rules))
    }

    fn render_calls(&self, calls: &[(String, Value)]) -> String {
        calls
            .iter()
            .map(|(name, args)| {
                let mut s = format!("{OPEN}\n{FUNC}{name}>\n");
                if let Value::Object(map) = args {
                    for (k, v) in map {
                        let text = match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        s.push_str(&format!("{PARAM}{k}>\n{text}\n{PARAM_CLOSE}\n"));
                    }
                }
                s.push_str(&format!("{FUNC_CLOSE}\n{CLOSE}"));
                s
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn system_prompt(&self, tools: &[Value]) -> String {
        let mut s =
            String::from("# Tools\n\nYou have access to the following functions:\n\n<tools>");
        for t in tools {
            s.push_str(&describe_tool(t.get("function").unwrap_or(t)));
        }
        s.push_str(
            "\n</tools>\n\n\
             If you choose to call a function ONLY reply in the following format with NO suffix:\n\n\
             <tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n\
             <parameter=example_parameter_2>\nThis is the value for the second parameter\nthat can span\nmultiple lines\n\
             </parameter>\n</function>\n</tool_call>\n\n\
             <IMPORTANT>\nReminder:\n\
             - Function calls MUST follow the specified format: an inner <function=...></function> block must be nested within <tool_call></tool_call> XML tags\n\
             - Required parameters MUST be specified\n\
             - You may provide optional reasoning for your function call in natural language BEFORE the function call, but NOT after\n\
             - If there is no function call available, answer the question like normal with your current knowledge and do not tell the user about function calls\n\
             </IMPORTANT>",
        );
        s
    }
}

/// One call, or calls one per line.
fn calls(parallel: bool) -> &'static str {
    if parallel {
        "call (\"\\n\" call)*"
    } else {
        "call"
    }
}

/// Lark rules of `call`: `open`, one `<function=…>` block of one of `tools` with parameters
/// their schemas name (any name where a tool has no `properties`), `close`. Values are free
/// text up to `</parameter>`; their types are not enforced.
fn call_rules(tools: &[FunctionDef], open: &str, close_tag: &str) -> String {
    let mut out = format!("call: {open} \"\\n\" function \"\\n\" {close_tag}\n");
    let alts: Vec<String> = (0..tools.len()).map(|i| format!("fn_{i}")).collect();
    out.push_str(&format!("function: {}\n", alts.join(" | ")));
    for (i, f) in tools.iter().enumerate() {
        let head = lark_string(&format!("{FUNC}{}>\n", f.name));
        let close = lark_string(FUNC_CLOSE);
        match param_names(f) {
            // No schema of its parameters: any name.
            None => {
                out.push_str(&format!(
                    "fn_{i}: {head} param_{i}* {close}\n\
                     param_{i}: {} PARAM_NAME \">\\n\" value \"\\n\"\n",
                    lark_string(PARAM)
                ));
            }
            Some(names) if names.is_empty() => {
                out.push_str(&format!("fn_{i}: {head} {close}\n"));
            }
            Some(names) => {
                let alts: Vec<String> = names
                    .iter()
                    .map(|p| format!("{} value \"\\n\"", lark_string(&format!("{PARAM}{p}>\n"))))
                    .collect();
                out.push_str(&format!(
                    "fn_{i}: {head} param_{i}* {close}\nparam_{i}: {}\n",
                    alts.join(" | ")
                ));
            }
        }
    }
    // Free text up to the first `</parameter>` (lazy: it ends there), tag included.
    if out.contains(" value ") {
        out.push_str("value[lazy]: /(.|\\n)*<\\/parameter>/\n");
    }
    if out.contains("PARAM_NAME") {
        out.push_str("PARAM_NAME: /[A-Za-z0-9_.\\-]+/\n");
    }
    out
}

/// One tool in the XML of Qwen3-Coder's chat template.
fn describe_tool(f: &Value) -> String {
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    let mut s = format!("\n<function>\n<name>{}</name>", text(f.get("name")));
    if let Some(d) = f.get("description") {
        s.push_str(&format!(
            "\n<description>{}</description>",
            text(Some(d)).trim()
        ));
    }
    s.push_str("\n<parameters>");
    let params = f.get("parameters");
    if let Some(Value::Object(props)) = params.and_then(|p| p.get("properties")) {
        for (name, p) in props {
            s.push_str(&format!("\n<parameter>\n<name>{name}</name>"));
            if let Some(t) = p.get("type") {
                s.push_str(&format!("\n<type>{}</type>", text(Some(t))));
            }
            if let Some(d) = p.get("description") {
                s.push_str(&format!(
                    "\n<description>{}</description>",
                    text(Some(d)).trim()
                ));
            }
            if let Some(e) = p.get("enum") {
                s.push_str(&format!("\n<enum>{e}</enum>"));
            }
            s.push_str("\n</parameter>");
        }
    }
    if let Some(r) = params.and_then(|p| p.get("required")) {
        s.push_str(&format!("\n<required>{r}</required>"));
    }
    s.push_str("\n</parameters>\n</function>");
    s
}

/// The parameter names a tool declares (`parameters.properties`); `None` without properties.
fn param_names(f: &FunctionDef) -> Option<Vec<String>> {
    f.parameters
        .as_ref()
        .and_then(|p| p.get("properties"))
        .and_then(Value::as_object)
        .map(|props| props.keys().cloned().collect())
}

/// The JSON type a property schema declares: `type` (the first non-null one of a list), else
/// that of the first `anyOf`/`oneOf` branch that has one.
fn schema_type(schema: &Value) -> Option<String> {
    match schema.get("type") {
        Some(Value::String(t)) => return Some(t.to_ascii_lowercase()),
        Some(Value::Array(ts)) => {
            if let Some(t) = ts.iter().filter_map(Value::as_str).find(|t| *t != "null") {
                return Some(t.to_ascii_lowercase());
            }
        }
        _ => {}
    }
    ["anyOf", "oneOf"]
        .iter()
        .filter_map(|k| schema.get(*k).and_then(Value::as_array))
        .flatten()
        .filter_map(schema_type)
        .find(|t| t != "null")
}

/// A raw parameter value as JSON, typed by its declared type (`None`: not declared).
pub(crate) fn convert(raw: &str, ty: Option<&str>) -> Value {
    let text = || Value::String(raw.to_string());
    let Some(ty) = ty else {
        return serde_json::from_str(raw).unwrap_or_else(|_| text());
    };
    let t = raw.trim();
    if matches!(ty, "string" | "str" | "text" | "varchar" | "char" | "enum") {
        return text();
    }
    if t.eq_ignore_ascii_case("null") {
        return Value::Null;
    }
    let int = |t: &str| -> Option<Value> {
        t.parse::<i64>()
            .map(Value::from)
            .or_else(|_| t.parse::<u64>().map(Value::from))
            .ok()
    };
    if ty == "integer"
        || ["int", "uint", "long", "short", "unsigned"]
            .iter()
            .any(|p| ty.starts_with(p))
    {
        return int(t).unwrap_or_else(text);
    }
    if ty == "number" || ty.starts_with("num") || ty.starts_with("float") || ty == "double" {
        if let Some(v) = int(t) {
            return v;
        }
        return t
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(text);
    }
    if matches!(ty, "boolean" | "bool" | "binary") {
        return match t.to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => text(),
        };
    }
    // object, array, or a type we do not know: JSON, else a Python literal, else the text.
    serde_json::from_str(t)
        .ok()
        .or_else(|| python_literal(t).and_then(|j| serde_json::from_str(&j).ok()))
        .unwrap_or_else(text)
}

/// `{'a': True, 'b': None}` as JSON text: single-quoted strings and Python's constants; `None`
/// for anything else that is not JSON syntax (the caller then tries JSON and fails).
fn python_literal(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push('"');
                let mut esc = false;
                loop {
                    let ch = chars.next()?;
                    if esc {
                        match ch {
                            '\'' => out.push('\''),
                            _ => {
                                out.push('\\');
                                out.push(ch);
                            }
                        }
                        esc = false;
                    } else if ch == '\\' {
                        esc = true;
                    } else if ch == c {
                        break;
                    } else if ch == '"' {
                        out.push_str("\\\"");
                    } else {
                        out.push(ch);
                    }
                }
                out.push('"');
            }
            c if c.is_ascii_alphabetic() => {
                let mut word = String::from(c);
                while let Some(&n) = chars.peek() {
                    if !n.is_ascii_alphanumeric() && n != '_' {
                        break;
                    }
                    word.push(n);
                    chars.next();
                }
                out.push_str(match word.as_str() {
                    "True" | "true" => "true",
                    "False" | "false" => "false",
                    "None" | "null" => "null",
                    _ => return None,
                });
            }
            '(' => out.push('['),
            ')' => out.push(']'),
            c => out.push(c),
        }
    }
    Some(out)
}

/// Where a name tag stands: `NAME>` complete, more text needed, or not a tag.
enum Name {
    Done { name: String, len: usize },
    NeedMore,
    Bad,
}

/// Reads `NAME>` at the start of `s` (after `<function=` or `<parameter=`).
fn read_name(s: &str) -> Name {
    match s.find('>') {
        Some(p) => {
            let raw = &s[..p];
            let name = raw.trim();
            if p > MAX_NAME || name.is_empty() || raw.contains(['<', '\n']) {
                Name::Bad
            } else {
                Name::Done {
                    name: name.to_string(),
                    len: p + 1,
                }
            }
        }
        None if s.len() > MAX_NAME || s.contains(['<', '\n']) => Name::Bad,
        None => Name::NeedMore,
    }
}

/// Strips one leading and one trailing newline (`\r\n` too).
fn strip_newlines(v: &str) -> &str {
    let v = v
        .strip_prefix("\r\n")
        .or_else(|| v.strip_prefix('\n'))
        .unwrap_or(v);
    v.strip_suffix("\r\n")
        .or_else(|| v.strip_suffix('\n'))
        .unwrap_or(v)
}

#[derive(Debug, Clone, PartialEq)]
enum Mode {
    /// Content, looking for `<tool_call>`.
    Text,
    /// After `<tool_call>` (`after_call`: after a `</function>` inside it): `<function=` next.
    Block { after_call: bool },
    /// Inside a function, between parameters.
    Func,
    /// Inside the value of this parameter.
    Param(String),
}

/// The call being read.
struct Current {
    index: usize,
    /// Property schemas of the tool, if it is one of the request's.
    props: Option<serde_json::Map<String, Value>>,
    params: usize,
}

struct Qwen3CoderParser {
    /// Tool name → its `parameters.properties` (empty map when it declares none).
    tools: HashMap<String, serde_json::Map<String, Value>>,
    mode: Mode,
    buf: String,
    gate: ContentGate,
    cur: Option<Current>,
    /// How much of `buf` a value's closing tag was already looked for in.
    scanned: usize,
}

impl Qwen3CoderParser {
    fn new(tools: &[FunctionDef]) -> Self {
        let tools = tools
            .iter()
            .map(|f| {
                let props = f
                    .parameters
                    .as_ref()
                    .and_then(|p| p.get("properties"))
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                (f.name.clone(), props)
            })
            .collect();
        Self {
            tools,
            mode: Mode::Text,
            buf: String::new(),
            gate: ContentGate::default(),
            cur: None,
            scanned: 0,
        }
    }

    fn start_call(&mut self, name: String, out: &mut Vec<ParseEvent>) {
        let index = self.gate.calls;
        let ev = [ParseEvent::CallStart {
            index,
            id: random_id("call_", 24),
            name: name.clone(),
        }];
        self.gate.note_starts(&ev);
        out.extend(ev);
        self.cur = Some(Current {
            index,
            props: self.tools.get(&name).cloned(),
            params: 0,
        });
    }

    fn emit_param(&mut self, name: &str, raw: &str, out: &mut Vec<ParseEvent>) {
        let Some(cur) = self.cur.as_mut() else { return };
        let ty = cur
            .props
            .as_ref()
            .and_then(|p| p.get(name))
            .and_then(schema_type);
        let value = convert(strip_newlines(raw), ty.as_deref());
        let key = serde_json::to_string(name).unwrap_or_default();
        let sep = if cur.params == 0 { "{" } else { ", " };
        cur.params += 1;
        out.push(ParseEvent::CallArgs {
            index: cur.index,
            fragment: format!("{sep}{key}: {value}"),
        });
    }

    fn end_call(&mut self, out: &mut Vec<ParseEvent>) {
        if let Some(cur) = self.cur.take() {
            let fragment = if cur.params == 0 { "{}" } else { "}" };
            out.push(ParseEvent::CallArgs {
                index: cur.index,
                fragment: fragment.into(),
            });
        }
    }

    /// Not a call after all: `<tool_call>` goes out as content and the rest is read as text.
    fn fail_block(&mut self, after_call: bool, out: &mut Vec<ParseEvent>) {
        if !after_call {
            self.gate.push(OPEN, out);
        }
        self.mode = Mode::Text;
    }

    fn run(&mut self, out: &mut Vec<ParseEvent>) {
        loop {
            match self.mode.clone() {
                Mode::Text => {
                    if let Some(pos) = self.buf.find(OPEN) {
                        let before: String = self.buf.drain(..pos + OPEN.len()).collect();
                        self.gate.push(&before[..pos], out);
                        self.mode = Mode::Block { after_call: false };
                        continue;
                    }
                    let keep = partial_suffix(&self.buf, OPEN);
                    let text: String = self.buf.drain(..self.buf.len() - keep).collect();
                    self.gate.push(&text, out);
                    return;
                }
                Mode::Block { after_call } => {
                    let t = self.buf.trim_start();
                    let ws = self.buf.len() - t.len();
                    if let Some(rest) = t.strip_prefix(FUNC) {
                        match read_name(rest) {
                            Name::Done { name, len } => {
                                self.buf.drain(..ws + FUNC.len() + len);
                                self.start_call(name, out);
                                self.mode = Mode::Func;
                            }
                            Name::NeedMore => return,
                            Name::Bad => self.fail_block(after_call, out),
                        }
                    } else if after_call && t.starts_with(CLOSE) {
                        self.buf.drain(..ws + CLOSE.len());
                        self.mode = Mode::Text;
                    } else if FUNC.starts_with(t) || (after_call && CLOSE.starts_with(t)) {
                        return; // a tag may still be coming (or only whitespace so far)
                    } else {
                        self.fail_block(after_call, out);
                    }
                }
                Mode::Func => {
                    let param = self.buf.find(PARAM);
                    let close = self.buf.find(FUNC_CLOSE);
                    match (param, close) {
                        (Some(p), c) if c.is_none_or(|c| p < c) => {
                            match read_name(&self.buf[p + PARAM.len()..]) {
                                Name::Done { name, len } => {
                                    self.buf.drain(..p + PARAM.len() + len);
                                    self.scanned = 0;
                                    self.mode = Mode::Param(name);
                                }
                                Name::NeedMore => {
                                    self.buf.drain(..p);
                                    return;
                                }
                                // Not a tag: dropped like any text between parameters.
                                Name::Bad => {
                                    self.buf.drain(..p + PARAM.len());
                                }
                            }
                        }
                        (_, Some(c)) => {
                            self.buf.drain(..c + FUNC_CLOSE.len());
                            self.end_call(out);
                            self.mode = Mode::Block { after_call: true };
                        }
                        _ => {
                            let keep = partial_suffix(&self.buf, PARAM)
                                .max(partial_suffix(&self.buf, FUNC_CLOSE));
                            self.buf.drain(..self.buf.len() - keep);
                            return;
                        }
                    }
                }
                Mode::Param(name) => {
                    // Only the new text (and a tag it may complete) is searched: long values
                    // arrive a token at a time.
                    let mut from = self
                        .scanned
                        .min(self.buf.len())
                        .saturating_sub(PARAM_CLOSE.len() - 1);
                    while !self.buf.is_char_boundary(from) {
                        from -= 1;
                    }
                    let Some(p) = self.buf[from..].find(PARAM_CLOSE).map(|p| p + from) else {
                        self.scanned = self.buf.len();
                        return;
                    };
                    self.scanned = 0;
                    let raw: String = self.buf.drain(..p + PARAM_CLOSE.len()).collect();
                    self.emit_param(&name, &raw[..p], out);
                    self.mode = Mode::Func;
                }
            }
        }
    }
}

impl ToolParser for Qwen3CoderParser {
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
        match std::mem::replace(&mut self.mode, Mode::Text) {
            Mode::Text => self.gate.push(&rest, &mut out),
            Mode::Block { after_call: false } => {
                self.gate.push(&format!("{OPEN}{rest}"), &mut out);
            }
            Mode::Block { after_call: true } => {
                if !CLOSE.starts_with(rest.trim()) {
                    self.gate.push(&rest, &mut out);
                }
            }
            Mode::Func => self.end_call(&mut out),
            Mode::Param(name) => {
                // The model forgot `</parameter>` (or was cut off): the value runs to
                // `</function>`, else to the end, less a partial closing tag.
                let value = match rest.find(FUNC_CLOSE) {
                    Some(c) => &rest[..c],
                    None => &rest[..rest.len() - partial_suffix(&rest, PARAM_CLOSE)],
                };
                self.emit_param(&name, value, &mut out);
                self.end_call(&mut out);
            }
        }
        self.gate.finish(&mut out);
        out
    }
}

#[cfg(test)]
#[path = "qwen3_coder_tests.rs"]
mod tests;
