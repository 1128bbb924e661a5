//! Chat messages → the JSON the chat template renders.
//!
//! Templates differ in what they understand. Ones written for tool use (Qwen, Hermes, Llama 3.1)
//! read `tools`, assistant `tool_calls` and `tool` messages themselves; for the others (plain
//! ChatML such as the default model's) we write the same information as text in the model's
//! tool format: the tool declarations become a system prompt, past calls become assistant
//! text, tool results become `<tool_response>` user turns.

use serde_json::{json, Value};

use crate::error::ApiError;
use crate::protocol::ChatMessage;
use crate::tool_parsers::ToolFormat;

/// What the chat template handles itself (from its source text).
#[derive(Debug, Clone, Copy, Default)]
pub struct TemplateCaps {
    pub tools: bool,
    pub tool_calls: bool,
    pub tool_role: bool,
}

impl TemplateCaps {
    pub fn of(source: Option<&str>) -> Self {
        let s = source.unwrap_or("");
        Self {
            tools: s.contains("tools"),
            tool_calls: s.contains("tool_calls"),
            tool_role: s.contains("tool"),
        }
    }
}

/// Normalizes the messages for the template; `tools` are the declarations (OpenAI shape) when
/// the request offers them, `format` how this model writes calls.
pub fn normalize(
    messages: &[ChatMessage],
    tools: Option<&[Value]>,
    format: Option<&dyn ToolFormat>,
    caps: TemplateCaps,
) -> Result<Vec<Value>, ApiError> {
    if messages.is_empty() {
        return Err(ApiError::invalid(
            "messages".to_string(),
            "messages must contain at least one message",
        ));
    }
    let mut out = Vec::with_capacity(messages.len() + 1);
    for (i, m) in messages.iter().enumerate() {
        out.push(message(i, m, format, caps)?);
    }
    if let (Some(tools), Some(format), false) = (tools, format, caps.tools) {
        let prompt = format.system_prompt(tools);
        match out.first_mut() {
            Some(first) if first["role"] == "system" => {
                let old = first["content"].as_str().unwrap_or("").to_string();
                first["content"] = Value::String(format!("{old}\n\n{prompt}"));
            }
            _ => out.insert(0, json!({"role": "system", "content": prompt})),
        }
    }
    Ok(out)
}

fn message(
    i: usize,
    m: &ChatMessage,
    format: Option<&dyn ToolFormat>,
    caps: TemplateCaps,
) -> Result<Value, ApiError> {
    let param = |field: &str| format!("messages[{i}].{field}");
    let content = content_text(&m.content, &param("content"))?;
    let role = match m.role.as_str() {
        "system" | "developer" => "system",
        "user" => "user",
        "assistant" => "assistant",
        "tool" => "tool",
        "function" => {
            return Err(ApiError::invalid(
                param("role"),
                "the deprecated `function` role is not supported; use `tool`",
            ))
        }
        other => {
            return Err(ApiError::invalid(
                param("role"),
                format!("unknown role `{other}`"),
            ))
        }
    };
    if content.is_none()
        && !(role == "assistant" && m.tool_calls.as_ref().is_some_and(|c| !c.is_empty()))
    {
        return Err(ApiError::invalid(
            param("content"),
            format!("a `{}` message needs content", m.role),
        ));
    }
    let mut text = content.unwrap_or_default();
    let mut msg = json!({"role": role});
    if let Some(name) = &m.name {
        msg["name"] = json!(name);
    }
    if role == "assistant" {
        if let Some(calls) = m.tool_calls.as_ref().filter(|c| !c.is_empty()) {
            let parsed: Vec<(String, Value)> = calls
                .iter()
                .map(|c| {
                    let args = serde_json::from_str(&c.function.arguments)
                        .unwrap_or_else(|_| Value::String(c.function.arguments.clone()));
                    (c.function.name.clone(), args)
                })
                .collect();
            match (caps.tool_calls, format) {
                (false, Some(f)) => {
                    let rendered = f.render_calls(&parsed);
                    text = if text.is_empty() {
                        rendered
                    } else {
                        format!("{text}\n{rendered}")
                    };
                }
                _ => {
                    let list: Vec<Value> = calls
                        .iter()
                        .zip(&parsed)
                        .map(|(c, (name, args))| {
                            json!({"id": c.id, "type": "function", "function": {"name": name, "arguments": args}})
                        })
                        .collect();
                    msg["tool_calls"] = Value::Array(list);
                }
            }
        }
    }
    if role == "tool" {
        if !caps.tool_role && format.is_some() {
            msg["role"] = json!("user");
            text = format!("<tool_response>\n{text}\n</tool_response>");
        } else if let Some(id) = &m.tool_call_id {
            msg["tool_call_id"] = json!(id);
        }
    }
    msg["content"] = Value::String(text);
    Ok(msg)
}

/// A message's text: a string, or the text parts of a content array joined by newlines.
/// `null` is `None`; non-text parts are refused.
fn content_text(content: &Value, param: &str) -> Result<Option<String>, ApiError> {
    match content {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Array(parts) => {
            let mut texts = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
                match (kind, part.get("text").and_then(Value::as_str)) {
                    ("text", Some(t)) => texts.push(t.to_string()),
                    ("text", None) => {
                        return Err(ApiError::invalid(format!("{param}[{j}].text"), "a text part needs a `text` string"))
                    }
                    (other, _) => {
                        return Err(ApiError::invalid(
                            format!("{param}[{j}].type"),
                            format!("content part type `{other}` is not supported (this model takes text only)"),
                        ))
                    }
                }
            }
            Ok(Some(texts.join("\n")))
        }
        _ => Err(ApiError::invalid(
            param.to_string(),
            "content must be a string, an array of content parts, or null",
        )),
    }
}
