//! Anthropic tools and `tool_choice` → their chat forms. Client tools (`{name, description,
//! input_schema}`) become function tools; server tools (a `type` such as `web_search_20250305`)
//! are skipped, lathe cannot run them, and so are `defer_loading` tools, which Anthropic also
//! keeps out of the prompt until a tool search loads them.

use serde_json::{json, Value};

use crate::error::ApiError;
use crate::protocol::AnthropicToolChoice;

/// The chat function tools for the declared tools.
pub(super) fn tools(decls: &[Value]) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::with_capacity(decls.len());
    for (i, t) in decls.iter().enumerate() {
        let at = |f: &str| format!("tools[{i}]{f}");
        match t.get("type").and_then(Value::as_str) {
            None | Some("custom") => {}
            Some(server) => {
                tracing::debug!(tool = server, "skipping a server tool lathe cannot run");
                continue;
            }
        }
        if t.get("defer_loading").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let name = t
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::invalid(at(".name"), "each tool needs a string `name`"))?;
        let schema = t
            .get("input_schema")
            .cloned()
            .unwrap_or_else(|| json!({"type": "object"}));
        let mut function = json!({"name": name, "parameters": schema});
        if let Some(d) = t.get("description").and_then(Value::as_str) {
            function["description"] = json!(d);
        }
        out.push(json!({"type": "function", "function": function}));
    }
    Ok(out)
}

/// `tool_choice` as the chat `tool_choice`, and whether parallel calls stay allowed.
pub(super) fn tool_choice(
    choice: Option<&AnthropicToolChoice>,
) -> Result<(Option<Value>, bool), ApiError> {
    let Some(c) = choice else {
        return Ok((None, true));
    };
    let parallel = c.disable_parallel_tool_use != Some(true);
    let chat = match c.kind.as_str() {
        "auto" => json!("auto"),
        "any" => json!("required"),
        "none" => json!("none"),
        "tool" => {
            let name = c.name.as_deref().ok_or_else(|| {
                ApiError::invalid(
                    "tool_choice.name".to_string(),
                    "`tool_choice` of type `tool` needs a `name`",
                )
            })?;
            json!({"type": "function", "function": {"name": name}})
        }
        other => {
            return Err(ApiError::invalid(
                "tool_choice.type".to_string(),
                format!("unknown tool_choice type `{other}` (auto, any, tool, none)"),
            ))
        }
    };
    Ok((Some(chat), parallel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_tools_become_functions_and_server_tools_are_skipped() {
        let decls = [
            json!({"name": "Bash", "description": "Run a command", "input_schema": {"type": "object",
                "properties": {"command": {"type": "string"}}}, "cache_control": {"type": "ephemeral"}}),
            json!({"type": "web_search_20250305", "name": "web_search"}),
            json!({"name": "Deferred", "input_schema": {"type": "object"}, "defer_loading": true}),
        ];
        let t = tools(&decls).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0]["function"]["name"], "Bash");
        assert_eq!(t[0]["function"]["description"], "Run a command");
        assert_eq!(
            t[0]["function"]["parameters"]["properties"]["command"]["type"],
            "string"
        );
        let err = tools(&[json!({"input_schema": {}})]).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("tools[0].name"));
    }

    #[test]
    fn tool_choice_maps_to_the_chat_modes() {
        let c = |kind: &str, name: Option<&str>, no_parallel: bool| AnthropicToolChoice {
            kind: kind.into(),
            name: name.map(str::to_string),
            disable_parallel_tool_use: Some(no_parallel),
        };
        assert_eq!(
            tool_choice(Some(&c("auto", None, false))).unwrap(),
            (Some(json!("auto")), true)
        );
        assert_eq!(
            tool_choice(Some(&c("any", None, true))).unwrap(),
            (Some(json!("required")), false)
        );
        assert_eq!(
            tool_choice(Some(&c("none", None, false))).unwrap().0,
            Some(json!("none"))
        );
        assert_eq!(
            tool_choice(Some(&c("tool", Some("Bash"), false)))
                .unwrap()
                .0,
            Some(json!({"type": "function", "function": {"name": "Bash"}}))
        );
        assert!(tool_choice(Some(&c("tool", None, false))).is_err());
        assert!(tool_choice(Some(&c("sometimes", None, false))).is_err());
        assert_eq!(tool_choice(None).unwrap(), (None, true));
    }
}
