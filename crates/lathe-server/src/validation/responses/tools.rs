//! Responses tools → chat function tools: `function` tools pass through; `namespace` tools
//! are flattened to functions named `{namespace}__{name}` (mapped back on output by
//! `ToolMap`); `custom` (freeform) tools become functions taking one string `input`, their
//! grammar given to the model in the description; hosted tools (web_search,
//! image_generation, …) are skipped — lathe cannot run them.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::error::ApiError;

/// What a tool name the model calls stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolEntry {
    pub name: String,
    pub namespace: Option<String>,
    /// A freeform tool: the call is a `custom_tool_call` whose input is the `input` argument.
    pub custom: bool,
}

/// The model's tool names → the Responses tools they stand for.
#[derive(Debug, Clone, Default)]
pub struct ToolMap {
    entries: HashMap<String, ToolEntry>,
}

impl ToolMap {
    /// The function name the model sees for a (namespaced) tool.
    pub fn model_name(namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) => format!("{ns}__{name}"),
            None => name.to_string(),
        }
    }

    /// Records a declared tool; returns the name the model sees.
    fn register(&mut self, name: &str, namespace: Option<&str>, custom: bool) -> String {
        let model_name = Self::model_name(namespace, name);
        let entry = ToolEntry {
            name: name.to_string(),
            namespace: namespace.map(str::to_string),
            custom,
        };
        self.entries.insert(model_name.clone(), entry);
        model_name
    }

    /// The tool behind a called name; unknown names are plain functions of that name.
    pub fn resolve(&self, model_name: &str) -> ToolEntry {
        self.entries
            .get(model_name)
            .cloned()
            .unwrap_or_else(|| ToolEntry {
                name: model_name.to_string(),
                namespace: None,
                custom: false,
            })
    }
}

/// The chat function tools for the declared Responses tools, and the map back.
pub(super) fn tools(decls: &[Value]) -> Result<(Vec<Value>, ToolMap), ApiError> {
    let mut out = Vec::new();
    let mut map = ToolMap::default();
    for (i, t) in decls.iter().enumerate() {
        let at = format!("tools[{i}]");
        match t.get("type").and_then(Value::as_str) {
            Some("function") => out.push(function_tool(t, None, &at, &mut map)?),
            Some("custom") => out.push(custom_tool(t, None, &at, &mut map)?),
            Some("namespace") => {
                let ns = required_str(t, "name", &at)?;
                let nested = t.get("tools").and_then(Value::as_array).ok_or_else(|| {
                    ApiError::invalid(format!("{at}.tools"), "a namespace needs a `tools` list")
                })?;
                for (j, n) in nested.iter().enumerate() {
                    let at = format!("{at}.tools[{j}]");
                    match n.get("type").and_then(Value::as_str) {
                        Some("function") => out.push(function_tool(n, Some(ns), &at, &mut map)?),
                        Some("custom") => out.push(custom_tool(n, Some(ns), &at, &mut map)?),
                        other => {
                            tracing::debug!(?other, "skipping a namespaced tool lathe cannot run")
                        }
                    }
                }
            }
            Some(other) => tracing::debug!(tool = other, "skipping a hosted tool lathe cannot run"),
            None => {
                return Err(ApiError::invalid(
                    format!("{at}.type"),
                    "each tool needs a `type`",
                ))
            }
        }
    }
    Ok((out, map))
}

fn required_str<'a>(t: &'a Value, field: &str, at: &str) -> Result<&'a str, ApiError> {
    t.get(field).and_then(Value::as_str).ok_or_else(|| {
        ApiError::invalid(
            format!("{at}.{field}"),
            format!("a tool needs a string `{field}`"),
        )
    })
}

fn function_tool(
    t: &Value,
    namespace: Option<&str>,
    at: &str,
    map: &mut ToolMap,
) -> Result<Value, ApiError> {
    let model_name = map.register(required_str(t, "name", at)?, namespace, false);
    let mut function = json!({"name": model_name});
    for key in ["description", "parameters", "strict"] {
        if let Some(v) = t.get(key).filter(|v| !v.is_null()) {
            function[key] = v.clone();
        }
    }
    Ok(json!({"type": "function", "function": function}))
}

/// A freeform tool as a function of one string: the grammar (if any) goes into the
/// description, so the model sees what the input must look like.
fn custom_tool(
    t: &Value,
    namespace: Option<&str>,
    at: &str,
    map: &mut ToolMap,
) -> Result<Value, ApiError> {
    let model_name = map.register(required_str(t, "name", at)?, namespace, true);
    let mut description = t
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    description
        .push_str("\n\nFreeform tool: pass the raw input text as the string argument `input`.");
    let format = t.get("format");
    if format.and_then(|f| f.get("type")).and_then(Value::as_str) == Some("grammar") {
        let syntax = format
            .and_then(|f| f.get("syntax"))
            .and_then(Value::as_str)
            .unwrap_or("lark");
        let definition = format
            .and_then(|f| f.get("definition"))
            .and_then(Value::as_str)
            .unwrap_or("");
        description.push_str(&format!(
            " The input must follow this {syntax} grammar:\n{definition}"
        ));
    }
    Ok(json!({"type": "function", "function": {
        "name": model_name,
        "description": description.trim_start(),
        "parameters": {
            "type": "object",
            "properties": {"input": {"type": "string"}},
            "required": ["input"],
            "additionalProperties": false
        }
    }}))
}

/// The chat `tool_choice` (and the tools left after `allowed_tools`).
pub(super) fn tool_choice(
    choice: Option<&Value>,
    mut tools: Vec<Value>,
) -> Result<(Vec<Value>, Option<Value>), ApiError> {
    let param = || "tool_choice".to_string();
    let named = |c: &Value| -> Result<String, ApiError> {
        let name = c
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::invalid(param(), "a named tool_choice needs a `name`"))?;
        Ok(ToolMap::model_name(
            c.get("namespace").and_then(Value::as_str),
            name,
        ))
    };
    let Some(c) = choice else {
        return Ok((tools, None));
    };
    let chat = match c {
        Value::String(_) => c.clone(),
        Value::Object(_) => match c.get("type").and_then(Value::as_str) {
            Some("function") | Some("custom") => {
                json!({"type": "function", "function": {"name": named(c)?}})
            }
            Some("allowed_tools") => {
                let allowed: Vec<String> = c
                    .get("tools")
                    .and_then(Value::as_array)
                    .ok_or_else(|| {
                        ApiError::invalid(param(), "`allowed_tools` needs a `tools` list")
                    })?
                    .iter()
                    .map(named)
                    .collect::<Result<_, _>>()?;
                tools.retain(|t| {
                    t["function"]["name"]
                        .as_str()
                        .is_some_and(|n| allowed.iter().any(|a| a == n))
                });
                c.get("mode").cloned().unwrap_or_else(|| json!("auto"))
            }
            Some(other) => {
                return Err(ApiError::invalid(
                    param(),
                    format!("tool_choice `{other}` names a hosted tool, which lathe cannot run"),
                ))
            }
            None => return Err(ApiError::invalid(param(), "tool_choice needs a `type`")),
        },
        _ => {
            return Err(ApiError::invalid(
                param(),
                "tool_choice must be a string or an object",
            ))
        }
    };
    Ok((tools, Some(chat)))
}

#[cfg(test)]
pub fn tool_map_for_tests(body: &Value) -> ToolMap {
    let decls = body["tools"].as_array().cloned().unwrap_or_default();
    tools(&decls).expect("valid tools").1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_are_flattened_and_hosted_ones_skipped() {
        let decls = vec![
            json!({"type": "function", "name": "exec", "parameters": {"type": "object"}}),
            json!({"type": "namespace", "name": "ns", "description": "d", "tools": [
                {"type": "function", "name": "inner", "parameters": {"type": "object"}}
            ]}),
            json!({"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}),
            json!({"type": "web_search", "external_web_access": false}),
            json!({"type": "image_generation"}),
        ];
        let (tools, map) = tools(&decls).unwrap();
        let names: Vec<&str> = tools
            .iter()
            .map(|t| t["function"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["exec", "ns__inner", "apply_patch"]);
        assert!(tools[2]["function"]["description"]
            .as_str()
            .unwrap()
            .contains("start: /.+/"));
        assert_eq!(
            map.resolve("ns__inner"),
            ToolEntry {
                name: "inner".into(),
                namespace: Some("ns".into()),
                custom: false
            }
        );
        assert!(map.resolve("apply_patch").custom);
        assert_eq!(map.resolve("other").name, "other");
    }

    #[test]
    fn allowed_tools_narrow_the_tool_list() {
        let (tools, _) = tools(&[
            json!({"type": "function", "name": "a"}),
            json!({"type": "function", "name": "b"}),
        ])
        .unwrap();
        let choice = json!({"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "b"}]});
        let (left, c) = tool_choice(Some(&choice), tools).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0]["function"]["name"], "b");
        assert_eq!(c, Some(json!("required")));
        let bad = json!({"type": "web_search"});
        assert!(tool_choice(Some(&bad), Vec::new()).is_err());
    }
}
