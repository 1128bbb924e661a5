//! Responses input items → chat messages: system and developer turns merged, calls attached
//! to the assistant turn they belong to, tool outputs as `tool` messages; reasoning and
//! hosted-tool history accepted and left out of the prompt.

use serde_json::{json, Value};

use super::tools::ToolMap;
use crate::error::ApiError;

/// Input item types of hosted tools: history lathe cannot act on, skipped.
const HOSTED_ITEMS: &[&str] = &[
    "web_search_call",
    "file_search_call",
    "image_generation_call",
    "code_interpreter_call",
    "computer_call",
    "computer_call_output",
    "local_shell_call",
    "local_shell_call_output",
    "mcp_call",
    "mcp_list_tools",
    "mcp_approval_request",
    "mcp_approval_response",
    "tool_search_call",
    "tool_search_output",
];

pub(super) fn messages(instructions: Option<&str>, input: &Value) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    if let Some(text) = instructions.filter(|s| !s.is_empty()) {
        push_system(&mut out, text);
    }
    match input {
        Value::String(s) => out.push(json!({"role": "user", "content": s})),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                item_messages(i, item, &mut out)?;
            }
        }
        _ => {
            return Err(ApiError::invalid(
                "input".to_string(),
                "`input` must be a string or a list of input items",
            ))
        }
    }
    if out.iter().all(|m| m["role"] == "system") {
        return Err(ApiError::invalid(
            "input".to_string(),
            "`input` has no user message, assistant message or tool output",
        ));
    }
    Ok(out)
}

/// System and developer messages in a row become one system message (many templates accept
/// only one, at the start).
fn push_system(out: &mut Vec<Value>, text: &str) {
    if let Some(last) = out.last_mut().filter(|m| m["role"] == "system") {
        let joined = format!("{}\n\n{text}", last["content"].as_str().unwrap_or(""));
        last["content"] = Value::String(joined);
    } else {
        out.push(json!({"role": "system", "content": text}));
    }
}

fn item_messages(i: usize, item: &Value, out: &mut Vec<Value>) -> Result<(), ApiError> {
    let at = |f: &str| format!("input[{i}]{f}");
    let kind = match item.get("type").and_then(Value::as_str) {
        Some(k) => k,
        None if item.get("role").is_some() => "message",
        None => {
            return Err(ApiError::invalid(
                at(".type"),
                "each input item needs a `type` (or a `role` for a message)",
            ))
        }
    };
    let str_field = |f: &str| -> Result<&str, ApiError> {
        item.get(f).and_then(Value::as_str).ok_or_else(|| {
            ApiError::invalid(
                at(&format!(".{f}")),
                format!("a `{kind}` item needs a string `{f}`"),
            )
        })
    };
    match kind {
        "message" => {
            let role = str_field("role")?;
            let text = content_text(item.get("content").unwrap_or(&Value::Null), &at(".content"))?;
            match role {
                "system" | "developer" => push_system(out, &text),
                "user" | "assistant" => out.push(json!({"role": role, "content": text})),
                other => {
                    return Err(ApiError::invalid(
                        at(".role"),
                        format!("unknown role `{other}` (user, assistant, system, developer)"),
                    ))
                }
            }
        }
        "function_call" => {
            let name = ToolMap::model_name(
                item.get("namespace").and_then(Value::as_str),
                str_field("name")?,
            );
            let args = item
                .get("arguments")
                .and_then(Value::as_str)
                .unwrap_or("{}");
            push_call(out, str_field("call_id")?, &name, args.to_string());
        }
        "custom_tool_call" => {
            let name = ToolMap::model_name(
                item.get("namespace").and_then(Value::as_str),
                str_field("name")?,
            );
            let args = json!({"input": str_field("input")?}).to_string();
            push_call(out, str_field("call_id")?, &name, args);
        }
        "function_call_output" | "custom_tool_call_output" => {
            let call_id = str_field("call_id")?;
            let output = match item.get("output") {
                Some(Value::String(s)) => s.clone(),
                Some(v @ Value::Array(_)) => content_text(v, &at(".output"))?,
                _ => {
                    return Err(ApiError::invalid(
                        at(".output"),
                        format!("a `{kind}` item needs an `output` string or list of content parts"),
                    ))
                }
            };
            out.push(json!({"role": "tool", "tool_call_id": call_id, "content": output}));
        }
        // Reasoning (its encrypted content means nothing to another model) and compaction
        // summaries are accepted and left out of the prompt.
        "reasoning" | "compaction" | "compaction_summary" => {}
        k if HOSTED_ITEMS.contains(&k) => {
            tracing::debug!(item = k, "skipping a hosted-tool item of the history");
        }
        "item_reference" => {
            return Err(ApiError::invalid(
                at(".type"),
                "`item_reference` needs stored responses, which lathe does not keep; send the item itself",
            ))
        }
        other => {
            return Err(ApiError::invalid(
                at(".type"),
                format!(
                    "unknown input item type `{other}` (message, function_call, function_call_output, \
                     custom_tool_call, custom_tool_call_output, reasoning)"
                ),
            ))
        }
    }
    Ok(())
}

/// Adds a call to the assistant turn in progress (calls right after an assistant message, or
/// after other calls, belong to that turn).
fn push_call(out: &mut Vec<Value>, call_id: &str, name: &str, arguments: String) {
    let call = json!({"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}});
    match out.last_mut().filter(|m| m["role"] == "assistant") {
        Some(last) => match last.get_mut("tool_calls").and_then(Value::as_array_mut) {
            Some(calls) => calls.push(call),
            None => {
                last["tool_calls"] = json!([call]);
            }
        },
        None => out.push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
    }
}

/// Text of a message's content: a string, or its text parts joined by newlines.
fn content_text(content: &Value, param: &str) -> Result<String, ApiError> {
    match content {
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut texts = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
                let field = if kind == "refusal" { "refusal" } else { "text" };
                match (kind, part.get(field).and_then(Value::as_str)) {
                    ("input_text" | "output_text" | "text" | "refusal", Some(t)) => {
                        texts.push(t.to_string())
                    }
                    ("input_text" | "output_text" | "text" | "refusal", None) => {
                        return Err(ApiError::invalid(
                            format!("{param}[{j}].{field}"),
                            format!("a `{kind}` part needs a string `{field}`"),
                        ))
                    }
                    (other, _) => {
                        return Err(ApiError::invalid(
                            format!("{param}[{j}].type"),
                            format!("content part type `{other}` is not supported (this model takes text only)"),
                        ))
                    }
                }
            }
            Ok(texts.join("\n"))
        }
        _ => Err(ApiError::invalid(
            param.to_string(),
            "content must be a string or a list of content parts",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codex_history_becomes_chat_turns() {
        let input = json!([
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "be brief"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list files"}]},
            {"type": "reasoning", "summary": [], "encrypted_content": "xyz"},
            {"type": "function_call", "call_id": "c1", "name": "spawn", "namespace": "agents", "arguments": "{\"a\":1}"},
            {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "*** Begin Patch"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"},
            {"type": "custom_tool_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "done"}]},
            {"type": "web_search_call", "id": "ws1", "status": "completed"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "all set"}]}
        ]);
        let m = messages(Some("sys"), &input).unwrap();
        assert_eq!(m.len(), 6, "{m:#?}");
        assert_eq!(
            m[0],
            json!({"role": "system", "content": "sys\n\nbe brief"})
        );
        assert_eq!(m[1]["role"], "user");
        let calls = m[2]["tool_calls"].as_array().unwrap();
        assert_eq!(calls[0]["function"]["name"], "agents__spawn");
        assert_eq!(calls[1]["function"]["name"], "apply_patch");
        let args: Value =
            serde_json::from_str(calls[1]["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args, json!({"input": "*** Begin Patch"}));
        assert_eq!(
            m[3],
            json!({"role": "tool", "tool_call_id": "c1", "content": "ok"})
        );
        assert_eq!(m[4]["content"], "done");
        assert_eq!(m[5], json!({"role": "assistant", "content": "all set"}));
    }

    #[test]
    fn bad_items_are_named() {
        let err = messages(None, &json!([{"type": "item_reference", "id": "x"}])).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("input[0].type"));
        let err = messages(None, &json!([{"type": "message", "role": "user", "content": [{"type": "input_image", "image_url": "u"}]}])).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("input[0].content[0].type"));
        let err = messages(None, &json!(5)).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("input"));
    }
}
