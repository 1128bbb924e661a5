//! `GET /openapi.json`: the OpenAPI 3.1 document of what this server serves. Written by hand
//! from the same route table the router is tested against (every route is documented, nothing
//! undocumented is routed), with the request fields we accept.

use serde_json::{json, Value};

/// (method, path, summary, request schema, protected by the API key)
pub const ROUTES: &[(&str, &str, &str, Option<&str>, bool)] = &[
    (
        "post",
        "/v1/chat/completions",
        "Chat completion (JSON or SSE stream)",
        Some("ChatCompletionRequest"),
        true,
    ),
    (
        "post",
        "/v1/completions",
        "Text completion and fill-in-the-middle (JSON or SSE stream)",
        Some("CompletionRequest"),
        true,
    ),
    (
        "post",
        "/v1/responses",
        "Responses API, stateless (JSON or named SSE events)",
        Some("ResponsesRequest"),
        true,
    ),
    (
        "post",
        "/v1/messages",
        "Anthropic Messages API, for Claude Code (JSON or Anthropic SSE events; Anthropic error bodies)",
        Some("MessagesRequest"),
        true,
    ),
    (
        "post",
        "/v1/messages/count_tokens",
        "Prompt tokens of a Messages request",
        Some("MessagesRequest"),
        true,
    ),
    ("get", "/v1/models", "List the served model", None, true),
    ("get", "/v1/models/{id}", "One served model", None, true),
    (
        "post",
        "/tokenize",
        "Tokenize a prompt or chat messages",
        Some("TokenizeRequest"),
        true,
    ),
    (
        "post",
        "/detokenize",
        "Token ids to text",
        Some("DetokenizeRequest"),
        true,
    ),
    (
        "get",
        "/health",
        "200 when the model is loaded, 503 while loading",
        None,
        false,
    ),
    ("get", "/metrics", "Prometheus metrics", None, false),
    ("get", "/openapi.json", "This document", None, false),
];

/// What the document says about the server it describes, so that it states exactly what this
/// server accepts (fuzzers such as schemathesis hold it to that).
#[derive(Debug, Clone, Copy, Default)]
pub struct Served {
    /// The API routes require a key (they then declare bearer security).
    pub auth: bool,
    /// Token ids must be below this (once the model is loaded).
    pub vocab_size: Option<usize>,
    /// The model has FIM tokens (`suffix` is accepted).
    pub fim: bool,
}

/// The document.
pub fn document(served: Served) -> Value {
    let mut paths = serde_json::Map::new();
    for &(method, path, summary, body, protected) in ROUTES {
        let mut op = json!({
            "summary": summary,
            "responses": {
                "200": {"description": "OK"},
                "400": {"$ref": "#/components/responses/Error"},
                "404": {"$ref": "#/components/responses/Error"},
                "405": {"$ref": "#/components/responses/Error"},
                "500": {"$ref": "#/components/responses/Error"},
                "503": {"$ref": "#/components/responses/Error"}
            }
        });
        if let Some(schema) = body {
            op["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
            });
            for status in ["408", "413", "415", "429"] {
                op["responses"][status] = json!({"$ref": "#/components/responses/Error"});
            }
        }
        if protected && served.auth {
            op["security"] = json!([{"bearer": []}]);
            op["responses"]["401"] = json!({"$ref": "#/components/responses/Error"});
        }
        if path.starts_with("/v1/messages") {
            anthropic_errors(&mut op);
        }
        if path.contains("{id}") {
            op["parameters"] = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]);
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "lathe",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "OpenAI-compatible inference server of the lathe engine"
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {
                "Error": {"description": "OpenAI-style error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "AnthropicError": {"description": "Anthropic-style error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AnthropicError"}}}}
            },
            "schemas": schemas(served)
        }
    })
}

/// The Anthropic routes answer errors in Anthropic's shape, and 503 as 529 (overloaded).
fn anthropic_errors(op: &mut Value) {
    let Some(responses) = op["responses"].as_object_mut() else {
        return;
    };
    if responses.remove("503").is_some() {
        responses.insert("529".into(), json!({}));
    }
    for (status, r) in responses.iter_mut() {
        if status != "200" {
            *r = json!({"$ref": "#/components/responses/AnthropicError"});
        }
    }
}

fn schemas(served: Served) -> Value {
    let token = match served.vocab_size {
        Some(v) => json!({"type": "integer", "minimum": 0, "maximum": v.saturating_sub(1)}),
        None => json!({"type": "integer", "minimum": 0}),
    };
    let suffix = if served.fim {
        json!({"type": "string", "description": "fill-in-the-middle"})
    } else {
        json!({"type": "null", "description": "this model has no FIM tokens"})
    };
    let sampling = json!({
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "top_k": {"type": "integer", "description": "-1 or 0 disables"},
        "min_p": {"type": "number", "minimum": 0, "maximum": 1},
        "presence_penalty": {"type": "number", "minimum": -2, "maximum": 2},
        "frequency_penalty": {"type": "number", "minimum": -2, "maximum": 2},
        "repetition_penalty": {"type": "number", "exclusiveMinimum": 0},
        "seed": {"type": "integer"},
        "stop": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 16}]},
        "stop_token_ids": {"type": "array", "items": token},
        "ignore_eos": {"type": "boolean"},
        "n": {"type": "integer", "minimum": 1, "maximum": 16},
        "stream": {"type": "boolean"},
        "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
        "user": {"type": "string"},
        "speculative": {"type": "string", "enum": ["off", "ngram", "draft"],
            "description": "lathe extension: speculative decoding for this request (draft needs --speculative-model); absent follows --speculative"}
    });
    // One chat message; the list must not be empty.
    let messages = json!({"type": "array", "minItems": 1, "items": {"type": "object", "required": ["role"],
            // A tool result has content.
            "if": {"required": ["role"], "properties": {"role": {"const": "tool"}}},
            "then": {"required": ["content"], "properties": {"content": {"not": {"type": "null"}}}},
            "properties": {
        "role": {"enum": ["system", "developer", "user", "assistant", "tool"]},
        "content": {"oneOf": [{"type": "string"}, {"type": "null"}, {"type": "array", "items": {"type": "object", "required": ["type", "text"], "properties": {"type": {"const": "text"}, "text": {"type": "string"}}}}]},
        "name": {"type": "string"}, "tool_call_id": {"type": "string"},
        "tool_calls": {"type": "array", "items": {"type": "object", "required": ["function"], "properties": {
            "id": {"type": "string"}, "type": {"const": "function"},
            "function": {"type": "object", "required": ["name", "arguments"], "properties": {
                "name": {"type": "string"}, "arguments": {"type": "string", "description": "JSON text"}
            }}
        }}}
    }}});
    let with = |extra: Value, required: &[&str]| {
        let mut props = sampling.as_object().cloned().unwrap_or_default();
        props.extend(extra.as_object().cloned().unwrap_or_default());
        json!({"type": "object", "required": required, "properties": props})
    };
    let mut all = json!({
        "Error": {
            "type": "object",
            "properties": {"error": {"type": "object", "properties": {
                "message": {"type": "string"}, "type": {"type": "string"},
                "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}
            }}}
        },
        "AnthropicError": {
            "type": "object", "required": ["type", "error"],
            "properties": {"type": {"const": "error"}, "error": {"type": "object", "required": ["type", "message"], "properties": {
                "type": {"enum": ["invalid_request_error", "authentication_error", "permission_error", "not_found_error",
                    "request_too_large", "rate_limit_error", "api_error", "overloaded_error"]},
                "message": {"type": "string"}
            }}}
        },
        "ChatCompletionRequest": with(json!({
            "model": {"type": "string"},
            "messages": messages.clone(),
            "max_tokens": {"type": "integer", "minimum": 1},
            "max_completion_tokens": {"type": "integer", "minimum": 1},
            "logprobs": {"type": "boolean"},
            "top_logprobs": {"type": "integer", "minimum": 0, "maximum": 20},
            "tools": {"type": "array", "items": {"type": "object", "required": ["type", "function"], "properties": {
                "type": {"const": "function"},
                "function": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
                    "description": {"type": "string"},
                    "parameters": {"type": "object", "description": "a JSON schema (checked against the meta-schema)"},
                    "strict": {"type": "boolean"}
                }}
            }}},
            "tool_choice": {"oneOf": [
                {"enum": ["none", "auto", "required"]},
                {"type": "object", "required": ["type", "function"], "properties": {
                    "type": {"const": "function"},
                    "function": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
                }}
            ]},
            "parallel_tool_calls": {"type": "boolean"},
            "response_format": {"type": "object", "properties": {"type": {"enum": ["text", "json_object", "json_schema"]}, "json_schema": {"type": "object"}}},
            "chat_template_kwargs": {"type": "object", "description": "extra chat-template variables (e.g. {\"enable_thinking\": false} for Qwen3); messages, tools, add_generation_prompt, bos_token and eos_token cannot be set"},
            "reasoning_effort": {"enum": ["none", "minimal", "low", "medium", "high", "xhigh"], "description": "passed to the chat template as reasoning_effort"}
        }), &["messages"]),
        "CompletionRequest": with(json!({
            "model": {"type": "string"},
            "prompt": {"oneOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
                {"type": "array", "minItems": 1, "items": token},
                {"type": "array", "minItems": 1, "items": {"type": "array", "minItems": 1, "items": token}}
            ]},
            "suffix": suffix,
            "max_tokens": {"type": "integer", "minimum": 1},
            "echo": {"type": "boolean"},
            "logprobs": {"type": "integer", "minimum": 0, "maximum": 20},
            "best_of": {"const": 1, "description": "accepted only equal to n (no candidates beyond n are drawn)"}
        }), &["prompt"]),
        "ResponsesRequest": {"type": "object", "required": ["input"], "properties": {
            "model": {"type": "string"},
            "instructions": {"type": "string"},
            "input": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "object", "properties": {
                "type": {"enum": ["message", "function_call", "function_call_output", "custom_tool_call", "custom_tool_call_output", "reasoning"]}
            }}}]},
            "tools": {"type": "array", "items": {"type": "object", "properties": {"type": {"type": "string", "description": "function, namespace and custom are used; hosted tool types are skipped"}}}},
            "tool_choice": {"oneOf": [{"enum": ["none", "auto", "required"]}, {"type": "object", "required": ["type"]}]},
            "parallel_tool_calls": {"type": "boolean"},
            "text": {"type": "object", "properties": {"format": {"type": "object", "required": ["type"], "properties": {"type": {"enum": ["text", "json_object", "json_schema"]}}}}},
            "max_output_tokens": {"type": "integer", "minimum": 1},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "stream": {"type": "boolean"},
            "store": {"type": "boolean", "description": "accepted; lathe never stores responses"},
            "previous_response_id": {"type": "null", "description": "lathe stores nothing: send the history in input"},
            "include": {"type": "array", "items": {"type": "string"}},
            "top_logprobs": {"type": "integer", "minimum": 0, "maximum": 20},
            "reasoning": {"type": "object", "properties": {"effort": {"enum": ["none", "minimal", "low", "medium", "high", "xhigh"], "description": "passed to the chat template as reasoning_effort"}}}, "metadata": {"type": "object"}
        }},
        "MessagesRequest": {"type": "object", "required": ["messages"], "properties": {
            "model": {"type": "string"},
            "max_tokens": {"type": "integer", "minimum": 1, "description": "a ceiling: capped by what the context window leaves"},
            "system": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}], "description": "a leading x-anthropic-billing-header block is dropped"},
            "messages": {"type": "array", "minItems": 1, "items": {"type": "object", "required": ["role", "content"], "properties": {
                "role": {"enum": ["user", "assistant", "system"]},
                "content": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "object", "properties": {
                    "type": {"enum": ["text", "tool_use", "tool_result", "thinking", "redacted_thinking"]}
                }}}]}
            }}},
            "tools": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"}, "description": {"type": "string"}, "input_schema": {"type": "object"}
            }}},
            "tool_choice": {"type": "object", "properties": {"type": {"enum": ["auto", "any", "tool", "none"]}, "name": {"type": "string"}, "disable_parallel_tool_use": {"type": "boolean"}}},
            "stop_sequences": {"type": "array", "items": {"type": "string"}, "maxItems": 16},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "top_k": {"type": "integer"},
            "stream": {"type": "boolean"},
            "thinking": {"type": "object", "description": "accepted; a thinking model's reasoning comes back as thinking blocks"},
            "metadata": {"type": "object"}
        }},
        "TokenizeRequest": {"type": "object", "oneOf": [{"required": ["prompt"]}, {"required": ["messages"]}], "properties": {
            "model": {"type": "string"}, "prompt": {"type": "string"}, "messages": messages,
            "add_special_tokens": {"type": "boolean"}, "add_generation_prompt": {"type": "boolean"},
            "return_token_strs": {"type": "boolean"}
        }},
        "DetokenizeRequest": {"type": "object", "required": ["tokens"], "properties": {
            "model": {"type": "string"}, "tokens": {"type": "array", "items": token}
        }}
    });
    // Optional fields may be sent as null (serde reads a null as absent).
    for schema in all.as_object_mut().into_iter().flat_map(|m| m.values_mut()) {
        nullable_optionals(schema);
    }
    // Chat refuses top_logprobs without logprobs: true, as OpenAI does.
    all["ChatCompletionRequest"]["dependentSchemas"] = json!({
        "top_logprobs": {"required": ["logprobs"], "properties": {"logprobs": {"const": true}}}
    });
    all
}

/// Lets every property of `schema` that is not required also be `null`.
fn nullable_optionals(schema: &mut Value) {
    let required: Vec<String> = schema["required"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    for (name, prop) in props.iter_mut() {
        if required.contains(name) {
            continue;
        }
        match prop.get_mut("type") {
            Some(Value::String(t)) if t != "null" => {
                let t = t.clone();
                prop["type"] = json!([t, "null"]);
            }
            Some(_) => {}
            None => *prop = json!({"anyOf": [prop.take(), {"type": "null"}]}),
        }
    }
}
