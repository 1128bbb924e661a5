//! Chat templates: the model's Jinja template rendered with minijinja the way HF
//! `transformers.apply_chat_template` renders it.
//!
//! Decisions:
//! - One compiled template per model, built once (`ChatTemplate::new`); syntax errors surface
//!   at load time, not on the first request.
//! - The environment mirrors HF's: `trim_blocks` + `lstrip_blocks`, `raise_exception`,
//!   `strftime_now`, a Python-faithful `tojson` (see `pyjson`), Python string/dict/list
//!   methods through minijinja-contrib's pycompat callback, lenient undefined values (Jinja2's
//!   default), and `{% generation %}` blocks (HF's assistant-mask extension) treated as plain
//!   blocks.
//! - Messages are normalised like vLLM does before rendering: content-part arrays become one
//!   string (text parts joined by "\n"; other part types are an error, this engine is
//!   text-only), and tool-call `arguments` given as a JSON string become an object, because
//!   templates write them with `| tojson` and expect a mapping.
//! - `tools` is passed as given (OpenAI shape) and is `none` when absent, like HF.
//! - A request may add variables (vLLM's `chat_template_kwargs`, `reasoning_effort`: what
//!   Qwen3's `enable_thinking` and gpt-oss's `reasoning_effort` read); they never replace the
//!   variables set here ([`RESERVED_VARS`]), which the server refuses anyway.

mod pyjson;
mod strftime;

use anyhow::{bail, Context, Result};
use minijinja::{context, Environment, Error, ErrorKind, Value};
use serde_json::Value as Json;

const TEMPLATE_NAME: &str = "chat";

/// The variables `render` sets itself; extra variables by these names are ignored.
pub const RESERVED_VARS: &[&str] = &[
    "messages",
    "tools",
    "add_generation_prompt",
    "bos_token",
    "eos_token",
];

/// A compiled chat template plus the special tokens it may reference.
#[derive(Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: Option<String>,
    eos_token: Option<String>,
}

impl ChatTemplate {
    /// Compiles `source`; a syntax error is an error here.
    pub fn new(source: &str, bos_token: Option<String>, eos_token: Option<String>) -> Result<Self> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime::strftime_now);
        env.add_filter("tojson", pyjson::tojson);
        env.add_template_owned(TEMPLATE_NAME, neutralize_generation_tags(source))
            .context("compiling chat template")?;
        Ok(Self {
            env,
            bos_token,
            eos_token,
        })
    }

    /// Renders a conversation. `messages` are OpenAI-style objects; `tools` OpenAI-style
    /// function definitions; `add_generation_prompt` opens the assistant's turn.
    pub fn render(
        &self,
        messages: &[Json],
        tools: Option<&[Json]>,
        add_generation_prompt: bool,
    ) -> Result<String> {
        self.render_with(
            messages,
            tools,
            add_generation_prompt,
            &serde_json::Map::new(),
        )
    }

    /// [`Self::render`] with extra template variables (`{"enable_thinking": false}`); those
    /// named in [`RESERVED_VARS`] are ignored.
    pub fn render_with(
        &self,
        messages: &[Json],
        tools: Option<&[Json]>,
        add_generation_prompt: bool,
        extra: &serde_json::Map<String, Json>,
    ) -> Result<String> {
        let messages = messages
            .iter()
            .enumerate()
            .map(|(i, m)| normalize_message(m).with_context(|| format!("messages[{i}]")))
            .collect::<Result<Vec<_>>>()?;
        let tools = tools.map(Value::from_serialize).unwrap_or(Value::from(()));
        let ctx = context! {
            messages => Value::from_serialize(&messages),
            tools => tools,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos_token.as_deref().unwrap_or(""),
            eos_token => self.eos_token.as_deref().unwrap_or(""),
            // Merged in after the keys above, which win.
            ..Value::from_serialize(extra)
        };
        let tmpl = self.env.get_template(TEMPLATE_NAME)?;
        tmpl.render(ctx).map_err(describe)
    }
}

/// `raise_exception(msg)`: templates use it to reject conversations they cannot express.
fn raise_exception(msg: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, msg))
}

/// A render error with its message first: `raise_exception` texts are meant for the user.
fn describe(err: Error) -> anyhow::Error {
    let detail = err.detail().map(str::to_owned);
    match (err.kind(), detail) {
        (ErrorKind::InvalidOperation, Some(msg)) => {
            anyhow::Error::new(err).context(format!("chat template: {msg}"))
        }
        _ => anyhow::Error::new(err).context("rendering chat template"),
    }
}

/// Flattens content parts and parses string tool-call arguments (see module docs).
fn normalize_message(message: &Json) -> Result<Json> {
    let Json::Object(map) = message else {
        bail!("a message must be an object");
    };
    let mut map = map.clone();
    if let Some(Json::Array(parts)) = map.get("content") {
        let flat = flatten_parts(parts)?;
        map.insert("content".into(), Json::String(flat));
    }
    if let Some(Json::Array(calls)) = map.get_mut("tool_calls") {
        for call in calls.iter_mut() {
            if let Some(args @ Json::String(_)) = call.pointer_mut("/function/arguments") {
                let parsed = serde_json::from_str::<Json>(args.as_str().unwrap_or_default());
                if let Ok(obj @ Json::Object(_)) = parsed {
                    *args = obj;
                }
            }
        }
    }
    Ok(Json::Object(map))
}

fn flatten_parts(parts: &[Json]) -> Result<String> {
    let mut texts = Vec::with_capacity(parts.len());
    for part in parts {
        match part {
            Json::String(s) => texts.push(s.as_str()),
            Json::Object(p) => {
                let ty = p.get("type").and_then(Json::as_str).unwrap_or("text");
                match (ty, p.get("text").and_then(Json::as_str)) {
                    ("text" | "input_text", Some(text)) => texts.push(text),
                    ("text" | "input_text", None) => bail!("text content part without `text`"),
                    (other, _) => bail!("content part type {other:?} is not supported (text only)"),
                }
            }
            _ => bail!("a content part must be an object"),
        }
    }
    Ok(texts.join("\n"))
}

/// Rewrites `{% generation %}`/`{% endgeneration %}` (HF's AssistantTracker extension,
/// unknown to minijinja) into `{% if true %}`/`{% endif %}`, keeping whitespace-control marks.
fn neutralize_generation_tags(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(pos) = rest.find("{%") {
        let (before, tag) = rest.split_at(pos + 2);
        out.push_str(before);
        let marker_len = usize::from(tag.starts_with('-') || tag.starts_with('+'));
        let (marker, body) = tag.split_at(marker_len);
        let trimmed = body.trim_start();
        let ws = &body[..body.len() - trimmed.len()];
        let keyword_end = trimmed
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(trimmed.len());
        let replacement = match &trimmed[..keyword_end] {
            "generation" => Some("if true"),
            "endgeneration" => Some("endif"),
            _ => None,
        };
        out.push_str(marker);
        out.push_str(ws);
        match replacement {
            Some(r) => {
                out.push_str(r);
                rest = &trimmed[keyword_end..];
            }
            None => rest = trimmed,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_tags_become_plain_blocks() {
        let src = "a{%- generation -%}b{% endgeneration %}c{% if x %}{% endif %}";
        assert_eq!(
            neutralize_generation_tags(src),
            "a{%- if true -%}b{% endif %}c{% if x %}{% endif %}"
        );
    }

    /// The end of Qwen3's template: thinking is turned off by an empty think block.
    const QWEN3_TAIL: &str = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}\
        {% if add_generation_prompt %}<|im_start|>assistant\n\
        {% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}{% endif %}\
        {% if reasoning_effort is defined %}effort={{ reasoning_effort }}{% endif %}";

    fn vars(v: Json) -> serde_json::Map<String, Json> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn extra_variables_reach_the_template() {
        let tpl = ChatTemplate::new(QWEN3_TAIL, None, None).unwrap();
        let msgs = [serde_json::json!({"role": "user", "content": "hi"})];
        let plain = tpl.render(&msgs, None, true).unwrap();
        assert_eq!(
            plain,
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
        let thinking = tpl
            .render_with(
                &msgs,
                None,
                true,
                &vars(serde_json::json!({"enable_thinking": true})),
            )
            .unwrap();
        assert_eq!(thinking, plain);
        let off = tpl
            .render_with(
                &msgs,
                None,
                true,
                &vars(serde_json::json!({"enable_thinking": false})),
            )
            .unwrap();
        assert_eq!(off, format!("{plain}<think>\n\n</think>\n\n"));
        let effort = tpl
            .render_with(
                &msgs,
                None,
                true,
                &vars(serde_json::json!({"reasoning_effort": "low"})),
            )
            .unwrap();
        assert_eq!(effort, format!("{plain}effort=low"));
    }

    #[test]
    fn extra_variables_never_replace_the_reserved_ones() {
        let tpl = ChatTemplate::new(QWEN3_TAIL, Some("<s>".into()), None).unwrap();
        let msgs = [serde_json::json!({"role": "user", "content": "hi"})];
        let plain = tpl.render(&msgs, None, true).unwrap();
        let extra = vars(serde_json::json!({
            "messages": [], "add_generation_prompt": false, "tools": [1], "bos_token": "X", "eos_token": "Y"
        }));
        assert_eq!(tpl.render_with(&msgs, None, true, &extra).unwrap(), plain);
        for name in RESERVED_VARS {
            assert!(extra.contains_key(*name), "{name}");
        }
    }
}
