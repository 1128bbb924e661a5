//! `/v1/responses` requests → the chat pipeline. The Responses API is translated into a chat
//! completion request (input items → messages, tools → function tools, `text.format` →
//! `response_format`) and validated by `validation::chat`, so both endpoints share templates,
//! tool formats, constrained decoding and limits. Errors name the Responses field.
//!
//! Tools: `function` tools pass through; `namespace` tools are flattened to functions named
//! `{namespace}__{name}` (mapped back on output); `custom` (freeform) tools become functions
//! taking one string `input`, their grammar given to the model in the description; hosted tools
//! (web_search, image_generation, …) are skipped — lathe cannot run them.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::chat::{validate as validate_chat, ValidChat};
use crate::error::ApiError;
use crate::protocol::{ChatCompletionRequest, ResponsesRequest, SamplingFields};
use crate::state::AppState;

/// `include` value that asks for token logprobs of the output text.
const INCLUDE_LOGPROBS: &str = "message.output_text.logprobs";

/// Sampling fields copied from the Responses body to the chat request as they are.
const SAMPLING_KEYS: &[&str] = &[
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "repetition_penalty",
    "stop",
    "stop_token_ids",
    "ignore_eos",
    "stream",
];

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

/// A checked Responses request: the chat request it became, and what the output needs.
pub struct ValidResponses {
    pub chat: ValidChat,
    pub tools: ToolMap,
    pub logprobs: bool,
    pub echo: Echo,
}

/// Request fields the response object repeats (flattened into it).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Echo {
    pub instructions: Option<String>,
    pub max_output_tokens: Option<i64>,
    pub metadata: Value,
    pub parallel_tool_calls: bool,
    pub reasoning: Value,
    pub store: bool,
    pub temperature: f32,
    pub top_p: f32,
    pub text: Value,
    pub tool_choice: Value,
    pub tools: Vec<Value>,
    pub user: Option<String>,
}

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

pub fn validate(state: &AppState, body: &Value) -> Result<ValidResponses, ApiError> {
    let req: ResponsesRequest = crate::routes::common::from_value(body)?;
    if req.previous_response_id.is_some() {
        return Err(ApiError::invalid(
            "previous_response_id".to_string(),
            "lathe does not store responses: send the whole conversation in `input` (with `store: false`) \
             instead of `previous_response_id`",
        ));
    }
    if req.background == Some(true) {
        return Err(ApiError::invalid(
            "background".to_string(),
            "background responses need stored responses, which lathe does not keep",
        ));
    }
    let input = req
        .input
        .as_ref()
        .ok_or_else(|| ApiError::invalid("input".to_string(), "`input` is required"))?;
    let declared = req.tools.clone().unwrap_or_default();
    let (tools, map) = tools(&declared)?;
    let (mut tools, tool_choice) = tool_choice(req.tool_choice.as_ref(), tools)?;
    // Agent frontends always send their tools; a model that cannot call tools still answers
    // in text when it is not forced to call one (a forced call is still refused).
    let forced = tool_choice
        .as_ref()
        .is_some_and(|c| c != "auto" && c != "none");
    if !tools.is_empty() && !forced && !model_calls_tools(state)? {
        tracing::info!(
            tools = tools.len(),
            "the model has no tool-call format: answering without the request's tools"
        );
        tools.clear();
    }
    let tool_choice = tool_choice.filter(|_| !tools.is_empty());
    let messages = messages(req.instructions.as_deref(), input)?;
    let logprobs = req
        .include
        .as_ref()
        .is_some_and(|i| i.iter().any(|s| s == INCLUDE_LOGPROBS));

    let mut chat = Map::new();
    chat.insert("messages".into(), Value::Array(messages));
    if let Some(m) = &req.model {
        chat.insert("model".into(), json!(m));
    }
    if !tools.is_empty() {
        chat.insert("tools".into(), Value::Array(tools));
    }
    if let Some(c) = tool_choice {
        chat.insert("tool_choice".into(), c);
    }
    if let Some(p) = req.parallel_tool_calls {
        chat.insert("parallel_tool_calls".into(), json!(p));
    }
    if let Some(f) = req.text.as_ref().and_then(|t| t.format.as_ref()) {
        chat.insert("response_format".into(), response_format(f));
    }
    if let Some(m) = req.max_output_tokens {
        chat.insert("max_completion_tokens".into(), json!(m));
    }
    if logprobs {
        chat.insert("logprobs".into(), json!(true));
        chat.insert("top_logprobs".into(), json!(req.top_logprobs.unwrap_or(0)));
    }
    for key in SAMPLING_KEYS {
        if let Some(v) = body.get(*key).filter(|v| !v.is_null()) {
            chat.insert((*key).into(), v.clone());
        }
    }
    let chat = Value::Object(chat);
    let parse = |v: &Value| -> Result<(ChatCompletionRequest, SamplingFields), ApiError> {
        let c = crate::routes::common::from_value(v)?;
        let f = crate::routes::common::from_value(v)?;
        Ok((c, f))
    };
    let (chat_req, fields) = parse(&chat).map_err(responses_error)?;
    let valid = validate_chat(state, chat_req, fields).map_err(responses_error)?;
    let echo = Echo {
        instructions: req.instructions.clone(),
        max_output_tokens: req.max_output_tokens,
        metadata: req.metadata.clone().unwrap_or_else(|| json!({})),
        parallel_tool_calls: req.parallel_tool_calls.unwrap_or(true),
        reasoning: req.reasoning.clone().unwrap_or(Value::Null),
        store: req.store.unwrap_or(false),
        temperature: valid.sampling.params.temperature,
        top_p: valid.sampling.params.top_p,
        text: req
            .text
            .as_ref()
            .map(|t| serde_json::to_value(t).unwrap_or_default())
            .unwrap_or_else(|| json!({"format": {"type": "text"}})),
        tool_choice: req.tool_choice.clone().unwrap_or_else(|| json!("auto")),
        tools: declared,
        user: req.user.clone(),
    };
    Ok(ValidResponses {
        chat: valid,
        tools: map,
        logprobs,
        echo,
    })
}

/// Whether the served model has a tool-call format lathe parses.
fn model_calls_tools(state: &AppState) -> Result<bool, ApiError> {
    let engine = state.engine()?;
    let format = engine
        .info()
        .entry
        .as_ref()
        .map(|e| e.tool_format.as_str())
        .unwrap_or("none");
    Ok(crate::tool_parsers::format(format).is_some())
}

/// A chat-pipeline error, re-addressed to the Responses field it came from.
pub fn responses_error(mut e: ApiError) -> ApiError {
    if let Some(p) = &e.param {
        let renamed = if p.starts_with("messages") {
            Some("input")
        } else if p.starts_with("response_format") {
            Some("text.format")
        } else if p == "max_completion_tokens" || p == "max_tokens" {
            Some("max_output_tokens")
        } else {
            None
        };
        if let Some(r) = renamed {
            e.param = Some(r.to_string());
        }
    }
    e.message = e
        .message
        .replace("max_completion_tokens", "max_output_tokens")
        .replace("max_tokens", "max_output_tokens");
    e
}

// ---- input items → chat messages ----

fn messages(instructions: Option<&str>, input: &Value) -> Result<Vec<Value>, ApiError> {
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

// ---- tools ----

/// The chat function tools for the declared Responses tools, and the map back.
fn tools(decls: &[Value]) -> Result<(Vec<Value>, ToolMap), ApiError> {
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
fn tool_choice(
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

/// `text.format` as a chat `response_format`.
fn response_format(f: &crate::protocol::TextFormat) -> Value {
    match f.kind.as_str() {
        "json_schema" => json!({"type": "json_schema", "json_schema": {
            "name": f.name.clone().unwrap_or_else(|| "output".into()),
            "schema": f.schema.clone().unwrap_or_else(|| json!({"type": "object"})),
            "strict": f.strict,
        }}),
        other => json!({"type": other}),
    }
}

/// The tool map of a body's `tools` (for tests of the output side).
#[cfg(test)]
pub fn tool_map_for_tests(body: &Value) -> ToolMap {
    let decls = body["tools"].as_array().cloned().unwrap_or_default();
    tools(&decls).expect("valid tools").1
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
