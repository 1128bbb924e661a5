//! Every bad request gets a 4xx with the OpenAI error body, and the server keeps serving.

use axum::http::Method;
use lathe_server::ServerOptions;
use serde_json::{json, Value};

use crate::common::*;

const CHAT: &str = "/v1/chat/completions";

async fn expect(
    app: &axum::Router,
    path: &str,
    body: Value,
    status: u16,
    param: Option<&str>,
    needle: &str,
) {
    let (s, b) = post(app, path, body.clone()).await;
    assert_eq!(s.as_u16(), status, "{body} -> {b}");
    let e = error_of(&b);
    if let Some(p) = param {
        assert_eq!(e["param"], p, "{body} -> {b}");
    }
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains(needle), "{body}: {msg:?} lacks {needle:?}");
}

#[tokio::test]
async fn field_errors_name_the_field() {
    let app = app();
    let m = user("hi");
    expect(
        &app,
        CHAT,
        json!({"messages": m, "model": "gpt-9"}),
        404,
        Some("model"),
        "gpt-9",
    )
    .await;
    expect(
        &app,
        CHAT,
        json!({"model": "smollm2-135m-instruct"}),
        400,
        None,
        "messages",
    )
    .await;
    expect(
        &app,
        CHAT,
        json!({"messages": m, "temperature": "hot"}),
        400,
        Some("temperature"),
        "invalid type",
    )
    .await;
    expect(
        &app,
        CHAT,
        json!({"messages": "hello"}),
        400,
        Some("messages"),
        "invalid type",
    )
    .await;
    expect(
        &app,
        CHAT,
        json!({"messages": m, "max_tokens": -1}),
        400,
        Some("max_tokens"),
        "at least 1",
    )
    .await;
    expect(
        &app,
        CHAT,
        json!({"messages": m, "max_tokens": 0}),
        400,
        Some("max_tokens"),
        "at least 1",
    )
    .await;
    expect(
        &app,
        CHAT,
        json!({"messages": m, "max_tokens": 1_000_000_000}),
        400,
        Some("max_tokens"),
        "context length",
    )
    .await;
    expect(
        &app,
        CHAT,
        json!({"messages": m, "temperature": 2.5}),
        400,
        Some("temperature"),
        "[0, 2]",
    )
    .await;
    expect(
        &app,
        CHAT,
        json!({"messages": m, "top_p": 0}),
        400,
        Some("top_p"),
        "top_p",
    )
    .await;
    expect(
        &app,
        CHAT,
        json!({"messages": m, "top_p": 1.5}),
        400,
        Some("top_p"),
        "top_p",
    )
    .await;
    expect(
        &app,
        CHAT,
        json!({"messages": m, "presence_penalty": 3}),
        400,
        Some("presence_penalty"),
        "[-2, 2]",
    )
    .await;
    expect(
        &app,
        CHAT,
        json!({"messages": m, "n": 0}),
        400,
        Some("n"),
        "n must be",
    )
    .await;
    expect(
        &app,
        CHAT,
        json!({"messages": m, "n": 1000}),
        400,
        Some("n"),
        "n must be",
    )
    .await;
    expect(
        &app,
        CHAT,
        json!({"messages": m, "logprobs": true, "top_logprobs": 21}),
        400,
        Some("top_logprobs"),
        "[0, 20]",
    )
    .await;
    expect(
        &app,
        CHAT,
        json!({"messages": m, "stop": ["a", ""]}),
        400,
        Some("stop"),
        "empty",
    )
    .await;
    expect(
        &app,
        CHAT,
        json!({"messages": []}),
        400,
        Some("messages"),
        "at least one",
    )
    .await;
    expect(
        &app,
        CHAT,
        json!({"messages": [{"role": "wizard", "content": "x"}]}),
        400,
        Some("messages[0].role"),
        "wizard",
    )
    .await;
    expect(&app, CHAT, json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}), 400, Some("messages[0].content[0].type"), "image_url").await;
    expect(
        &app,
        CHAT,
        json!({"messages": m, "tool_choice": "required"}),
        400,
        Some("tool_choice"),
        "requires tools",
    )
    .await;
    expect(
        &app,
        CHAT,
        json!({"messages": m, "response_format": {"type": "xml"}}),
        400,
        Some("response_format.type"),
        "xml",
    )
    .await;
    expect(
        &app,
        "/v1/completions",
        json!({"max_tokens": 3}),
        400,
        Some("prompt"),
        "required",
    )
    .await;
    expect(
        &app,
        "/v1/completions",
        json!({"prompt": [999_999_999u32]}),
        400,
        Some("prompt"),
        "vocabulary",
    )
    .await;
    expect(
        &app,
        "/v1/completions",
        json!({"prompt": "x", "logprobs": -1}),
        400,
        Some("logprobs"),
        "[0, 20]",
    )
    .await;
    // Still serving.
    let (s, _) = post(&app, CHAT, json!({"messages": m, "max_tokens": 2})).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn prompt_longer_than_the_context_window_says_the_lengths() {
    let app = app();
    let long = "word ".repeat(MAX_MODEL_LEN + 100);
    let (s, b) = post(
        &app,
        "/v1/completions",
        json!({"prompt": long, "max_tokens": 4}),
    )
    .await;
    assert_eq!(s, 400);
    let e = error_of(&b);
    assert_eq!(e["code"], "context_length_exceeded");
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains(&MAX_MODEL_LEN.to_string()) && msg.contains("prompt has"),
        "{msg}"
    );
    let (s, b) = post(&app, CHAT, json!({"messages": user(&long)})).await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(error_of(&b)["param"], "messages");
}

#[tokio::test]
async fn malformed_bodies() {
    let app = app();
    for (body, needle) in [
        (&b"{\"messages\": ["[..], "malformed JSON"),
        (b"not json", "malformed JSON"),
        (b"", "empty"),
        (b"{\"messages\": \"\xff\xfe\"}", "UTF-8"),
        (b"[1, 2]", "invalid"),
    ] {
        let (s, _, bytes) = send(&app, Method::POST, CHAT, body.to_vec(), &[]).await;
        assert_eq!(s, 400, "{:?}", String::from_utf8_lossy(body));
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        let msg = error_of(&v)["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    }
}

#[tokio::test]
async fn oversized_bodies_get_413_unknown_routes_404_wrong_methods_405() {
    let app = lathe_server::app(state_with(ServerOptions {
        max_body_bytes: 1024,
        ..Default::default()
    }));
    let big = json!({"messages": user(&"x".repeat(4096))}).to_string();
    let (s, _, bytes) = send(&app, Method::POST, CHAT, big, &[]).await;
    assert_eq!(s, 413);
    assert!(
        error_of(&serde_json::from_slice(&bytes).unwrap())["message"]
            .as_str()
            .unwrap()
            .contains("1024")
    );

    let (s, bytes) = get(&app, "/v1/nope").await;
    assert_eq!(s, 404);
    error_of(&serde_json::from_slice(&bytes).unwrap());

    let (s, bytes) = get(&app, CHAT).await;
    assert_eq!(s, 405);
    error_of(&serde_json::from_slice(&bytes).unwrap());
}

#[tokio::test]
async fn api_key_guards_the_api_but_not_health() {
    let app = lathe_server::app(state_with(ServerOptions {
        api_key: Some("sk-test".into()),
        ..Default::default()
    }));
    let (s, _, bytes) = send(
        &app,
        Method::GET,
        "/v1/models",
        axum::body::Body::empty(),
        &[],
    )
    .await;
    assert_eq!(s, 401);
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(error_of(&v)["code"], "invalid_api_key");
    let (s, _, _) = send(
        &app,
        Method::GET,
        "/v1/models",
        axum::body::Body::empty(),
        &[("authorization", "Bearer sk-nope")],
    )
    .await;
    assert_eq!(s, 401);
    let (s, _, _) = send(
        &app,
        Method::POST,
        CHAT,
        json!({"messages": user("x")}).to_string(),
        &[],
    )
    .await;
    assert_eq!(s, 401);
    let (s, _, _) = send(
        &app,
        Method::GET,
        "/v1/models",
        axum::body::Body::empty(),
        &[("authorization", "Bearer sk-test")],
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = get(&app, "/health").await;
    assert_eq!(s, 200);
}

/// Past the queue bound a request gets 429 with Retry-After at once; capacity comes back when
/// a stream ends.
#[tokio::test]
async fn bounded_queue_answers_429() {
    let state = state_with(ServerOptions {
        engine_slots: 1,
        max_queue: 0,
        ..Default::default()
    });
    let app = lathe_server::app(state.clone());
    let req = json!({"messages": user("Count to one hundred."), "max_tokens": 64, "stream": true, "ignore_eos": true});
    let req_of = |b: &Value| {
        axum::http::Request::builder()
            .method("POST")
            .uri(CHAT)
            .body(axum::body::Body::from(b.to_string()))
            .unwrap()
    };
    use tower::ServiceExt;
    let held = app.clone().oneshot(req_of(&req)).await.unwrap();
    assert_eq!(held.status(), 200);
    assert_eq!(state.in_flight(), 1);
    let (s, headers, bytes) = send(
        &app,
        Method::POST,
        CHAT,
        json!({"messages": user("x"), "max_tokens": 2}).to_string(),
        &[],
    )
    .await;
    assert_eq!(s, 429);
    assert!(headers.contains_key("retry-after"));
    error_of(&serde_json::from_slice(&bytes).unwrap());
    drop(held);
    assert_eq!(state.in_flight(), 0);
    let (s, _) = post(&app, CHAT, json!({"messages": user("x"), "max_tokens": 2})).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn chat_template_kwargs_and_reasoning_effort_are_checked() {
    let app = app();
    let m = user("hi");
    for bad in [json!("enable_thinking"), json!([1]), json!(true), json!(3)] {
        expect(
            &app,
            CHAT,
            json!({"messages": m, "chat_template_kwargs": bad}),
            400,
            Some("chat_template_kwargs"),
            "must be an object",
        )
        .await;
    }
    expect(
        &app,
        CHAT,
        json!({"messages": m, "chat_template_kwargs": {"messages": []}}),
        400,
        Some("chat_template_kwargs.messages"),
        "cannot be overridden",
    )
    .await;
    expect(
        &app,
        CHAT,
        json!({"messages": m, "reasoning_effort": "extreme"}),
        400,
        Some("reasoning_effort"),
        "must be one of",
    )
    .await;
    expect(
        &app,
        "/v1/responses",
        json!({"input": "hi", "reasoning": {"effort": 5}}),
        400,
        Some("reasoning.effort"),
        "must be one of",
    )
    .await;
    // Valid ones are accepted (the default model's template ignores them).
    for body in [
        json!({"messages": m, "max_tokens": 1,
            "chat_template_kwargs": {"enable_thinking": false, "custom": {"a": [1]}},
            "reasoning_effort": "low"}),
        json!({"messages": m, "max_tokens": 1, "chat_template_kwargs": null}),
    ] {
        let (s, b) = post(&app, CHAT, body.clone()).await;
        assert_eq!(s.as_u16(), 200, "{body} -> {b}");
    }
    let (s, b) = post(
        &app,
        "/v1/responses",
        json!({"input": "hi", "max_output_tokens": 1, "reasoning": {"effort": "high", "summary": "auto"}}),
    )
    .await;
    assert_eq!(s.as_u16(), 200, "{b}");
}
