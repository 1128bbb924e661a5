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

/// The document.
pub fn document() -> Value {
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
        if protected {
            op["security"] = json!([{"bearer": []}]);
            op["responses"]["401"] = json!({"$ref": "#/components/responses/Error"});
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
            "responses": {"Error": {"description": "OpenAI-style error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
            "schemas": schemas()
        }
    })
}

fn schemas() -> Value {
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
        "stop_token_ids": {"type": "array", "items": {"type": "integer"}},
        "ignore_eos": {"type": "boolean"},
        "n": {"type": "integer", "minimum": 1, "maximum": 16},
        "stream": {"type": "boolean"},
        "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
        "user": {"type": "string"}
    });
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
        "ChatCompletionRequest": with(json!({
            "model": {"type": "string"},
            "messages": {"type": "array", "items": {"type": "object", "required": ["role"], "properties": {
                "role": {"enum": ["system", "developer", "user", "assistant", "tool"]},
                "content": {"oneOf": [{"type": "string"}, {"type": "null"}, {"type": "array", "items": {"type": "object", "properties": {"type": {"const": "text"}, "text": {"type": "string"}}}}]},
                "name": {"type": "string"}, "tool_call_id": {"type": "string"},
                "tool_calls": {"type": "array", "items": {"type": "object", "required": ["function"], "properties": {
                    "id": {"type": "string"}, "type": {"const": "function"},
                    "function": {"type": "object", "required": ["name", "arguments"], "properties": {
                        "name": {"type": "string"}, "arguments": {"type": "string", "description": "JSON text"}
                    }}
                }}}
            }}},
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
            "response_format": {"type": "object", "properties": {"type": {"enum": ["text", "json_object", "json_schema"]}, "json_schema": {"type": "object"}}}
        }), &["messages"]),
        "CompletionRequest": with(json!({
            "model": {"type": "string"},
            "prompt": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}, {"type": "array", "items": {"type": "integer"}}, {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}}]},
            "suffix": {"type": "string", "description": "fill-in-the-middle; needs a model with FIM tokens"},
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
            "tool_choice": {"oneOf": [{"enum": ["none", "auto", "required"]}, {"type": "object"}]},
            "parallel_tool_calls": {"type": "boolean"},
            "text": {"type": "object", "properties": {"format": {"type": "object", "properties": {"type": {"enum": ["text", "json_object", "json_schema"]}}}}},
            "max_output_tokens": {"type": "integer", "minimum": 1},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "stream": {"type": "boolean"},
            "store": {"type": "boolean", "description": "accepted; lathe never stores responses"},
            "previous_response_id": {"type": "string", "description": "refused: send the history in input"},
            "include": {"type": "array", "items": {"type": "string"}},
            "top_logprobs": {"type": "integer", "minimum": 0, "maximum": 20},
            "reasoning": {"type": "object"}, "metadata": {"type": "object"}
        }},
        "TokenizeRequest": {"type": "object", "properties": {
            "model": {"type": "string"}, "prompt": {"type": "string"}, "messages": {"type": "array"},
            "add_special_tokens": {"type": "boolean"}, "add_generation_prompt": {"type": "boolean"},
            "return_token_strs": {"type": "boolean"}
        }},
        "DetokenizeRequest": {"type": "object", "required": ["tokens"], "properties": {
            "model": {"type": "string"}, "tokens": {"type": "array", "items": {"type": "integer"}}
        }}
    });
    // Chat refuses top_logprobs without logprobs: true, as OpenAI does.
    all["ChatCompletionRequest"]["dependentSchemas"] = json!({
        "top_logprobs": {"required": ["logprobs"], "properties": {"logprobs": {"const": true}}}
    });
    all
}
