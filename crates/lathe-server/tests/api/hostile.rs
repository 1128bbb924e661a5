//! The malformed-input battery: hostile or broken requests of every kind each get their 4xx
//! with the OpenAI error body, and the server answers a real request afterwards. (Socket-level
//! cases — slow clients, unparsable HTTP — are in tests/connections.rs.)

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use lathe_server::ServerOptions;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::common::*;

const CHAT: &str = "/v1/chat/completions";

/// Sends `body` with exactly the headers given (no default content type).
async fn raw(
    app: &axum::Router,
    path: &str,
    body: impl Into<Body>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(Method::POST).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(body.into()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("{status}: not JSON: {:?}", String::from_utf8_lossy(&bytes)));
    (status, v)
}

/// (name, path, body, headers, expected status, a word the message must contain)
type Case<'a> = (
    &'a str,
    &'a str,
    String,
    Vec<(&'a str, &'a str)>,
    u16,
    &'a str,
);

fn tool(parameters: Value) -> Value {
    json!([{"type": "function", "function": {"name": "f", "parameters": parameters}}])
}

#[tokio::test]
async fn every_hostile_request_gets_its_4xx_and_the_server_goes_on() {
    let app = lathe_server::app(state_with(ServerOptions {
        api_key: Some("sekrit".into()),
        ..ServerOptions::default()
    }));
    let auth = ("authorization", "Bearer sekrit");
    let json_ct = ("content-type", "application/json");
    let ok_chat = json!({"messages": user("hi"), "max_tokens": 2}).to_string();
    let banana = tool(json!({"type": "banana"}));
    let cyclic = json!({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"});
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));

    let body = |v: Value| v.to_string();
    let cases: Vec<Case> = vec![
        // Content types: JSON or none; a form or multipart body is not JSON.
        (
            "multipart",
            CHAT,
            ok_chat.clone(),
            vec![auth, ("content-type", "multipart/form-data; boundary=x")],
            415,
            "content type",
        ),
        (
            "form",
            CHAT,
            ok_chat.clone(),
            vec![auth, ("content-type", "application/x-www-form-urlencoded")],
            415,
            "content type",
        ),
        (
            "text",
            "/v1/completions",
            body(json!({"prompt": "a"})),
            vec![auth, ("content-type", "text/plain")],
            415,
            "application/json",
        ),
        // Auth variants.
        (
            "no key",
            CHAT,
            ok_chat.clone(),
            vec![json_ct],
            401,
            "API key",
        ),
        (
            "wrong key",
            CHAT,
            ok_chat.clone(),
            vec![json_ct, ("authorization", "Bearer nope")],
            401,
            "API key",
        ),
        (
            "no scheme",
            CHAT,
            ok_chat.clone(),
            vec![json_ct, ("authorization", "sekrit")],
            401,
            "API key",
        ),
        (
            "empty bearer",
            CHAT,
            ok_chat.clone(),
            vec![json_ct, ("authorization", "Bearer ")],
            401,
            "API key",
        ),
        // Bodies.
        (
            "deep nesting",
            CHAT,
            deep,
            vec![auth, json_ct],
            400,
            "malformed JSON",
        ),
        (
            "NaN",
            CHAT,
            r#"{"messages": [], "temperature": NaN}"#.into(),
            vec![auth, json_ct],
            400,
            "malformed JSON",
        ),
        (
            "infinity",
            CHAT,
            r#"{"messages": [{"role": "user", "content": "a"}], "temperature": 1e999}"#.into(),
            vec![auth, json_ct],
            400,
            "malformed JSON",
        ),
        // Out-of-range fields.
        (
            "temperature",
            CHAT,
            body(json!({"messages": user("a"), "temperature": 7})),
            vec![auth, json_ct],
            400,
            "temperature",
        ),
        (
            "n",
            CHAT,
            body(json!({"messages": user("a"), "n": 100000})),
            vec![auth, json_ct],
            400,
            "n",
        ),
        (
            "max_tokens",
            CHAT,
            body(json!({"messages": user("a"), "max_tokens": -1})),
            vec![auth, json_ct],
            400,
            "max_tokens",
        ),
        (
            "top_p",
            CHAT,
            body(json!({"messages": user("a"), "top_p": 0})),
            vec![auth, json_ct],
            400,
            "top_p",
        ),
        (
            "unknown role",
            CHAT,
            body(json!({"messages": [{"role": "wizard", "content": "a"}]})),
            vec![auth, json_ct],
            400,
            "role",
        ),
        (
            "unknown model",
            CHAT,
            body(json!({"messages": user("a"), "model": "gpt-9"})),
            vec![auth, json_ct],
            404,
            "gpt-9",
        ),
        // Tool schemas are checked whatever tool_choice says.
        (
            "banana schema, auto",
            CHAT,
            body(json!({"messages": user("a"), "tools": banana, "tool_choice": "auto"})),
            vec![auth, json_ct],
            400,
            "banana",
        ),
        (
            "banana schema, no choice",
            CHAT,
            body(json!({"messages": user("a"), "tools": banana})),
            vec![auth, json_ct],
            400,
            "banana",
        ),
        (
            "banana schema, forced",
            CHAT,
            body(json!({"messages": user("a"), "tools": banana, "tool_choice": "required"})),
            vec![auth, json_ct],
            400,
            "banana",
        ),
        (
            "banana schema, responses",
            "/v1/responses",
            body(
                json!({"input": "a", "tools": [{"type": "function", "name": "f", "parameters": {"type": "banana"}}]}),
            ),
            vec![auth, json_ct],
            400,
            "banana",
        ),
        // One top_logprobs rule for chat and responses.
        (
            "responses top_logprobs",
            "/v1/responses",
            body(json!({"input": "a", "top_logprobs": 21})),
            vec![auth, json_ct],
            400,
            "top_logprobs",
        ),
        (
            "responses negative top_logprobs",
            "/v1/responses",
            body(json!({"input": "a", "top_logprobs": -1})),
            vec![auth, json_ct],
            400,
            "top_logprobs",
        ),
        (
            "chat top_logprobs",
            CHAT,
            body(json!({"messages": user("a"), "logprobs": true, "top_logprobs": 21})),
            vec![auth, json_ct],
            400,
            "top_logprobs",
        ),
        // A schema no JSON value can start: refused before generation, not an empty "stop".
        (
            "cyclic $ref",
            CHAT,
            body(json!({"messages": user("a"), "response_format":
            {"type": "json_schema", "json_schema": {"name": "c", "schema": cyclic}}})),
            vec![auth, json_ct],
            400,
            "schema",
        ),
    ];
    for (name, path, payload, headers, want, needle) in cases {
        let (status, v) = raw(&app, path, payload, &headers).await;
        assert_eq!(status.as_u16(), want, "{name}: {v}");
        let msg = error_of(&v)["message"].as_str().unwrap();
        assert!(
            msg.to_lowercase().contains(&needle.to_lowercase()),
            "{name}: {msg:?} lacks {needle:?}"
        );
    }

    let (status, v) = raw(
        &app,
        CHAT,
        b"{\"messages\": \"\xff\"}".to_vec(),
        &[auth, json_ct],
    )
    .await;
    assert_eq!(status, 400, "invalid UTF-8: {v}");
    assert!(error_of(&v)["message"].as_str().unwrap().contains("UTF-8"));

    // A request without a content type is still read as JSON (the SDKs always send one; curl
    // users sometimes do not).
    let (status, v) = raw(&app, CHAT, ok_chat.clone(), &[auth]).await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = raw(
        &app,
        CHAT,
        ok_chat,
        &[auth, ("content-type", "application/json; charset=utf-8")],
    )
    .await;
    assert_eq!(status, 200, "{v}");
}

#[tokio::test]
async fn the_openapi_document_is_as_strict_as_validation_where_issues_were_found() {
    let (status, bytes) = get(&app(), "/openapi.json").await;
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    let chat = &doc["components"]["schemas"]["ChatCompletionRequest"];
    // Optional fields also take null: the field's own schema is the first of an anyOf.
    let named = &chat["properties"]["tool_choice"]["anyOf"][0]["oneOf"][1];
    assert_eq!(named["required"], json!(["type", "function"]), "{named}");
    let calls = &chat["properties"]["messages"]["items"]["properties"]["tool_calls"]["items"];
    assert_eq!(
        calls["properties"]["function"]["required"],
        json!(["name", "arguments"])
    );
    assert!(chat["dependentSchemas"]["top_logprobs"].is_object());
    let best_of = &doc["components"]["schemas"]["CompletionRequest"]["properties"]["best_of"];
    assert_eq!(best_of["anyOf"][0]["const"], 1, "{best_of}");
    // An open server (no --api-key) declares no security; a guarded one does.
    assert!(doc["paths"]["/v1/chat/completions"]["post"]
        .get("security")
        .is_none());
    let guarded = lathe_server::app(state_with(ServerOptions {
        api_key: Some("k".into()),
        ..ServerOptions::default()
    }));
    let (_, bytes) = get(&guarded, "/openapi.json").await;
    let guarded: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(guarded["paths"]["/v1/chat/completions"]["post"]["security"].is_array());
    // Token ids are bounded by the served vocabulary.
    let tokens = &doc["components"]["schemas"]["DetokenizeRequest"]["properties"]["tokens"];
    assert_eq!(tokens["items"]["maximum"], 49151, "{tokens}");
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            for status in ["400", "405", "500"] {
                assert!(
                    op["responses"][status].is_object(),
                    "{method} {path}: {status}"
                );
            }
            if op.get("requestBody").is_some() {
                for status in ["408", "413", "415", "429"] {
                    assert!(
                        op["responses"][status].is_object(),
                        "{method} {path}: {status}"
                    );
                }
            }
        }
    }
}
