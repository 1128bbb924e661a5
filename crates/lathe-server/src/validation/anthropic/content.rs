//! Anthropic `system` and `messages` → chat messages: text blocks joined, `tool_use` blocks
//! as the assistant turn's `tool_calls`, `tool_result` blocks as `tool` messages (before the
//! user's text of the same turn), thinking blocks accepted and left out of the prompt. Images
//! and documents are refused: the served models take text only.
//!
//! Claude Code starts its system prompt with an `x-anthropic-billing-header: …` text block that
//! changes on every request; it is dropped, or no two requests would share a cached prefix.

use serde_json::{json, Value};

use crate::error::ApiError;
use crate::protocol::AnthropicMessage;

/// The start of Claude Code's per-request billing block.
pub const BILLING_HEADER: &str = "x-anthropic-billing-header:";

/// The system prompt's text, without the billing block; `None` when nothing is left.
pub(super) fn system_text(system: Option<&Value>) -> Result<Option<String>, ApiError> {
    let text = match system {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => without_billing_line(s).to_string(),
        Some(Value::Array(blocks)) => {
            let mut texts = Vec::with_capacity(blocks.len());
            for (i, b) in blocks.iter().enumerate() {
                let t = text_of(b, &format!("system[{i}]"))?;
                if !t.starts_with(BILLING_HEADER) {
                    texts.push(t);
                }
            }
            texts.join("\n")
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "system".to_string(),
                "`system` must be a string or a list of text blocks",
            ))
        }
    };
    Ok((!text.is_empty()).then_some(text))
}

/// A system string whose first line is the billing header, without that line.
fn without_billing_line(s: &str) -> &str {
    if !s.starts_with(BILLING_HEADER) {
        return s;
    }
    s.split_once('\n').map_or("", |(_, rest)| rest)
}

/// The chat messages of the conversation, after the system prompt (if any).
pub(super) fn messages(
    system: Option<String>,
    messages: &[AnthropicMessage],
) -> Result<Vec<Value>, ApiError> {
    if messages.is_empty() {
        return Err(ApiError::invalid(
            "messages".to_string(),
            "`messages` must contain at least one message",
        ));
    }
    let mut out = Vec::with_capacity(messages.len() + 1);
    if let Some(s) = system {
        out.push(json!({"role": "system", "content": s}));
    }
    for (i, m) in messages.iter().enumerate() {
        let at = format!("messages[{i}]");
        match m.role.as_str() {
            "user" => user_turn(&m.content, &at, &mut out)?,
            "assistant" => out.push(assistant_turn(&m.content, &at)?),
            // Claude Code sends mid-conversation system turns (environment, reminders).
            "system" => {
                out.push(json!({"role": "system", "content": plain_text(&m.content, &at)?}))
            }
            other => {
                return Err(ApiError::invalid(
                    format!("{at}.role"),
                    format!("unknown role `{other}` (user, assistant)"),
                ))
            }
        }
    }
    Ok(out)
}

/// A user turn: its tool results as `tool` messages, then its text as a user message.
fn user_turn(content: &Value, at: &str, out: &mut Vec<Value>) -> Result<(), ApiError> {
    let blocks = match content {
        Value::String(s) => {
            out.push(json!({"role": "user", "content": s}));
            return Ok(());
        }
        Value::Array(b) => b,
        _ => return Err(not_content(at)),
    };
    let mut texts = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let bat = format!("{at}.content[{j}]");
        match block_type(b, &bat)? {
            "text" => texts.push(text_of(b, &bat)?),
            "tool_result" => out.push(tool_result(b, &bat)?),
            "thinking" | "redacted_thinking" => {}
            other => return Err(unsupported(other, &bat)),
        }
    }
    if !texts.is_empty() {
        out.push(json!({"role": "user", "content": texts.join("\n")}));
    }
    Ok(())
}

/// A `tool_result` block as the chat `tool` message answering its call.
fn tool_result(b: &Value, at: &str) -> Result<Value, ApiError> {
    let id = b
        .get("tool_use_id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::invalid(
                format!("{at}.tool_use_id"),
                "a `tool_result` block needs a string `tool_use_id`",
            )
        })?;
    let text = match b.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(c) => plain_text(c, at)?,
    };
    let text = if b.get("is_error").and_then(Value::as_bool) == Some(true) {
        format!("Error: {text}")
    } else {
        text
    };
    Ok(json!({"role": "tool", "tool_call_id": id, "content": text}))
}

/// An assistant turn: its text, and its `tool_use` blocks as calls; thinking is dropped.
fn assistant_turn(content: &Value, at: &str) -> Result<Value, ApiError> {
    let blocks = match content {
        Value::String(s) => return Ok(json!({"role": "assistant", "content": s})),
        Value::Array(b) => b,
        _ => return Err(not_content(at)),
    };
    let mut texts = Vec::new();
    let mut calls = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let bat = format!("{at}.content[{j}]");
        match block_type(b, &bat)? {
            "text" => texts.push(text_of(b, &bat)?),
            "tool_use" => calls.push(tool_use(b, &bat)?),
            // Reasoning means nothing to the next turn's prompt (templates drop it too).
            "thinking" | "redacted_thinking" => {}
            other => return Err(unsupported(other, &bat)),
        }
    }
    let mut msg = json!({"role": "assistant", "content": texts.join("\n")});
    if !calls.is_empty() {
        msg["tool_calls"] = Value::Array(calls);
    }
    Ok(msg)
}

/// A `tool_use` block as a chat tool call (arguments as JSON text).
fn tool_use(b: &Value, at: &str) -> Result<Value, ApiError> {
    let field = |f: &str| {
        b.get(f).and_then(Value::as_str).ok_or_else(|| {
            ApiError::invalid(
                format!("{at}.{f}"),
                format!("a `tool_use` block needs a string `{f}`"),
            )
        })
    };
    let (id, name) = (field("id")?, field("name")?);
    let input = b.get("input").cloned().unwrap_or_else(|| json!({}));
    Ok(json!({"id": id, "type": "function",
        "function": {"name": name, "arguments": input.to_string()}}))
}

/// Text of a string or of a list of text blocks (system turns, tool results).
fn plain_text(content: &Value, at: &str) -> Result<String, ApiError> {
    match content {
        Value::String(s) => Ok(s.clone()),
        Value::Array(blocks) => {
            let mut texts = Vec::with_capacity(blocks.len());
            for (j, b) in blocks.iter().enumerate() {
                let bat = format!("{at}.content[{j}]");
                match block_type(b, &bat)? {
                    "text" => texts.push(text_of(b, &bat)?),
                    other => return Err(unsupported(other, &bat)),
                }
            }
            Ok(texts.join("\n"))
        }
        _ => Err(not_content(at)),
    }
}

fn block_type<'a>(b: &'a Value, at: &str) -> Result<&'a str, ApiError> {
    b.get("type").and_then(Value::as_str).ok_or_else(|| {
        ApiError::invalid(
            format!("{at}.type"),
            "each content block needs a string `type`",
        )
    })
}

/// The `text` of a text block.
fn text_of(b: &Value, at: &str) -> Result<String, ApiError> {
    match (block_type(b, at)?, b.get("text").and_then(Value::as_str)) {
        ("text", Some(t)) => Ok(t.to_string()),
        ("text", None) => Err(ApiError::invalid(
            format!("{at}.text"),
            "a text block needs a string `text`",
        )),
        (other, _) => Err(unsupported(other, at)),
    }
}

fn unsupported(kind: &str, at: &str) -> ApiError {
    let why = match kind {
        "image" | "document" => "this model takes text only",
        _ => "lathe reads text, tool_use, tool_result and thinking blocks",
    };
    ApiError::invalid(
        format!("{at}.type"),
        format!("content block type `{kind}` is not supported here ({why})"),
    )
}

fn not_content(at: &str) -> ApiError {
    ApiError::invalid(
        format!("{at}.content"),
        "content must be a string or a list of content blocks",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: Value) -> AnthropicMessage {
        AnthropicMessage {
            role: role.into(),
            content,
        }
    }

    #[test]
    fn the_billing_block_is_dropped_from_the_system_prompt() {
        let system = json!([
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.332.0b8; cc_entrypoint=sdk-cli;"},
            {"type": "text", "text": "You are a Claude agent.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Be brief."}
        ]);
        assert_eq!(
            system_text(Some(&system)).unwrap().as_deref(),
            Some("You are a Claude agent.\nBe brief.")
        );
        let s = json!("x-anthropic-billing-header: cch=1;\nHello");
        assert_eq!(system_text(Some(&s)).unwrap().as_deref(), Some("Hello"));
        assert_eq!(
            system_text(Some(&json!("plain"))).unwrap().as_deref(),
            Some("plain")
        );
        let only = json!([{"type": "text", "text": "x-anthropic-billing-header: a"}]);
        assert_eq!(system_text(Some(&only)).unwrap(), None);
    }

    #[test]
    fn a_tool_round_trip_becomes_chat_turns() {
        let history = [
            msg("user", json!("list files")),
            msg(
                "assistant",
                json!([
                    {"type": "thinking", "thinking": "hmm", "signature": ""},
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}
                ]),
            ),
            msg(
                "user",
                json!([
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "a.txt"}]},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "boom", "is_error": true},
                    {"type": "text", "text": "thanks", "cache_control": {"type": "ephemeral"}}
                ]),
            ),
            msg("system", json!([{"type": "text", "text": "# Environment"}])),
        ];
        let m = messages(Some("sys".into()), &history).unwrap();
        assert_eq!(m[0], json!({"role": "system", "content": "sys"}));
        assert_eq!(m[1], json!({"role": "user", "content": "list files"}));
        assert_eq!(m[2]["content"], "Let me look.");
        let call = &m[2]["tool_calls"][0];
        assert_eq!(call["id"], "toolu_1");
        assert_eq!(call["function"]["name"], "Bash");
        let args: Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args, json!({"command": "ls"}));
        assert_eq!(
            m[3],
            json!({"role": "tool", "tool_call_id": "toolu_1", "content": "a.txt"})
        );
        assert_eq!(m[4]["content"], "Error: boom");
        assert_eq!(m[5], json!({"role": "user", "content": "thanks"}));
        assert_eq!(m[6], json!({"role": "system", "content": "# Environment"}));
        assert_eq!(m.len(), 7);
    }

    #[test]
    fn images_and_malformed_blocks_are_named() {
        let image = json!([{"type": "image", "source": {"type": "base64", "data": "x"}}]);
        let err = messages(None, &[msg("user", image)]).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("messages[0].content[0].type"));
        assert!(err.message.contains("text only"), "{}", err.message);
        let bad = json!([{"type": "tool_use", "name": "x", "input": {}}]);
        let err = messages(None, &[msg("user", json!("hi")), msg("assistant", bad)]).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("messages[1].content[0].id"));
        let err = messages(None, &[]).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("messages"));
    }
}
