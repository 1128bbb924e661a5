//! `/v1/messages` (Anthropic Messages API) through `app()`: each content block type in, the
//! message object and the stream's event order out, a tool round trip, count_tokens, the
//! prefix cache past Claude Code's billing block, and Anthropic error bodies. Forced calls use
//! constrained decoding, so they are well-formed even from the 135M test model.

use axum::body::Bytes;
use axum::http::Method;
use serde_json::{json, Value};

use crate::common::*;

const MESSAGES: &str = "/v1/messages";

fn bash_tool() -> Value {
    json!({"name": "Bash", "description": "Run a shell command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string", "maxLength": 20}},
            "required": ["command"], "additionalProperties": false},
        "cache_control": {"type": "ephemeral"}})
}

/// `(event name, payload)` of an Anthropic SSE body; asserts each payload's `type` is its
/// event name and no `[DONE]` is sent.
fn events(body: &Bytes) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(body).unwrap();
    let mut out = Vec::new();
    let mut name = None;
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("event: ") {
            name = Some(n.to_string());
        } else if let Some(d) = line.strip_prefix("data: ") {
            assert_ne!(d, "[DONE]", "the Messages API sends no [DONE]");
            let v: Value = serde_json::from_str(d).unwrap();
            let n = name.take().expect("every event is named");
            assert_eq!(v["type"], n.as_str(), "{v}");
            out.push((n, v));
        }
    }
    out
}

async fn stream(mut body: Value) -> Vec<(String, Value)> {
    body["stream"] = json!(true);
    let (status, headers, bytes) =
        send(&app(), Method::POST, MESSAGES, body.to_string(), &[]).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    events(&bytes)
}

/// Asserts the Anthropic error body; returns its error type.
fn anthropic_error(body: &Value) -> String {
    assert_eq!(body["type"], "error", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body["error"]["type"].as_str().unwrap().to_string()
}

fn text_of(msg: &Value) -> String {
    msg["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "text")
        .map(|b| b["text"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_claude_code_shaped_request_gets_a_text_message() {
    // System blocks with the billing block and cache_control, a mid-conversation system turn,
    // and the fields Claude Code adds that lathe ignores.
    let (status, body) = post(
        &app(),
        "/v1/messages?beta=true",
        json!({"max_tokens": 12, "temperature": 0,
            "system": [{"type": "text", "text": "x-anthropic-billing-header: cc_version=1; cch=abc;"},
                {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Say hello."}]},
                {"role": "system", "content": [{"type": "text", "text": "# Environment"}]}],
            "thinking": {"type": "adaptive", "display": "omitted"},
            "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
            "output_config": {"effort": "high"}, "metadata": {"user_id": "u"}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert!(body["id"].as_str().unwrap().starts_with("msg_"));
    assert!(body["model"].is_string());
    assert_eq!(body["content"][0]["type"], "text");
    assert!(!text_of(&body).is_empty());
    assert!(["end_turn", "max_tokens"].contains(&body["stop_reason"].as_str().unwrap()));
    assert!(body["stop_sequence"].is_null());
    let u = &body["usage"];
    assert!(u["input_tokens"].as_u64().unwrap() > 0, "{u}");
    assert!(u["output_tokens"].as_u64().unwrap() > 0, "{u}");
    assert!(u["cache_read_input_tokens"].is_u64(), "{u}");
}

#[tokio::test]
async fn max_tokens_is_a_ceiling_and_stops_with_max_tokens() {
    let (status, body) = post(
        &app(),
        MESSAGES,
        json!({"max_tokens": 2, "messages": [{"role": "user", "content": "Count from one to twenty."}],
            "temperature": 0}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stop_reason"], "max_tokens", "{body}");
    assert_eq!(body["usage"]["output_tokens"], 2);
    // Claude Code asks for 32000 whatever the window: the answer gets what is left, no 400.
    let (status, body) = post(
        &app(),
        MESSAGES,
        json!({"max_tokens": 32000, "messages": [{"role": "user", "content": "Hi"}],
            "temperature": 0, "stop_sequences": ["\n"]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_stop_sequence_is_reported() {
    let req = |stop: Option<&str>| {
        let mut r = json!({"max_tokens": 24, "temperature": 0,
            "messages": [{"role": "user", "content": "Write a sentence about the sea."}]});
        if let Some(s) = stop {
            r["stop_sequences"] = json!([s]);
        }
        r
    };
    let (_, free) = post(&app(), MESSAGES, req(None)).await;
    let text = text_of(&free);
    // A word from the middle of the answer (greedy decoding writes the same answer again).
    let word = text
        .split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("a longer answer: {text:?}"))
        .to_string();
    let (status, body) = post(&app(), MESSAGES, req(Some(&word))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["stop_reason"], "stop_sequence",
        "{body} (free: {text:?})"
    );
    assert_eq!(body["stop_sequence"], word.as_str());
    assert!(!text_of(&body).contains(&word), "{body}");
}

#[tokio::test]
async fn streamed_events_come_in_anthropic_order_and_agree_with_the_usage() {
    let ev = stream(json!({"max_tokens": 16, "temperature": 0,
        "messages": [{"role": "user", "content": "Count: one, two,"}]}))
    .await;
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    let deltas = names
        .iter()
        .filter(|n| **n == "content_block_delta")
        .count();
    assert!(deltas >= 1, "{names:?}");
    let mut expected = vec!["message_start", "ping", "content_block_start"];
    expected.extend(std::iter::repeat_n("content_block_delta", deltas));
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, expected);

    let start = &ev[0].1["message"];
    assert_eq!(start["type"], "message");
    assert_eq!(start["content"], json!([]));
    assert!(start["stop_reason"].is_null());
    assert!(start["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        ev[2].1["content_block"],
        json!({"type": "text", "text": ""})
    );
    let text: String = ev
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, v)| {
            assert_eq!(v["index"], 0);
            assert_eq!(v["delta"]["type"], "text_delta");
            v["delta"]["text"].as_str().unwrap()
        })
        .collect();
    assert!(!text.is_empty());
    let delta = &ev[ev.len() - 2].1;
    assert!(["end_turn", "max_tokens"].contains(&delta["delta"]["stop_reason"].as_str().unwrap()));
    let u = &delta["usage"];
    assert!(u["output_tokens"].as_u64().unwrap() >= 1, "{u}");
    assert_eq!(
        u["input_tokens"].as_u64().unwrap() + u["cache_read_input_tokens"].as_u64().unwrap(),
        start["usage"]["input_tokens"].as_u64().unwrap()
            + start["usage"]["cache_read_input_tokens"].as_u64().unwrap(),
        "the prompt is the same size at the start and the end"
    );
}

#[tokio::test]
async fn a_forced_tool_call_is_a_tool_use_block_with_an_object_input() {
    let (status, body) = post(
        &app(),
        MESSAGES,
        json!({"max_tokens": 64, "temperature": 0, "tools": [bash_tool()],
            "tool_choice": {"type": "tool", "name": "Bash"},
            "messages": [{"role": "user", "content": "List the files."}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stop_reason"], "tool_use", "{body}");
    let call = body["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .unwrap_or_else(|| panic!("no tool_use block: {body}"));
    assert!(call["id"].as_str().unwrap().starts_with("toolu_"), "{call}");
    assert_eq!(call["name"], "Bash");
    assert!(call["input"]["command"].is_string(), "{call}");
}

#[tokio::test]
async fn a_streamed_call_sends_input_json_deltas_that_make_its_input() {
    let ev = stream(
        json!({"max_tokens": 64, "temperature": 0, "tools": [bash_tool()],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "messages": [{"role": "user", "content": "List the files."}]}),
    )
    .await;
    let start = ev
        .iter()
        .find(|(n, v)| n == "content_block_start" && v["content_block"]["type"] == "tool_use")
        .unwrap_or_else(|| panic!("no tool_use block: {ev:?}"));
    let index = &start.1["index"];
    assert_eq!(start.1["content_block"]["input"], json!({}));
    assert_eq!(start.1["content_block"]["name"], "Bash");
    let json_text: String = ev
        .iter()
        .filter(|(n, v)| n == "content_block_delta" && &v["index"] == index)
        .map(|(_, v)| {
            assert_eq!(v["delta"]["type"], "input_json_delta", "{v}");
            v["delta"]["partial_json"].as_str().unwrap()
        })
        .collect();
    let input: Value = serde_json::from_str(&json_text).unwrap();
    assert!(input["command"].is_string(), "{input}");
    assert!(ev
        .iter()
        .any(|(n, v)| n == "content_block_stop" && &v["index"] == index));
    let delta = &ev[ev.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(ev.last().unwrap().0, "message_stop");
}

#[tokio::test]
async fn a_tool_round_trip_with_thinking_and_error_results_continues_in_text() {
    let (status, body) = post(
        &app(),
        MESSAGES,
        json!({"max_tokens": 16, "temperature": 0, "tools": [bash_tool()],
            "tool_choice": {"type": "none"},
            "messages": [
                {"role": "user", "content": "List the files."},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "I should run ls.", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "xyz"},
                    {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {"command": "ls"}},
                    {"type": "tool_use", "id": "toolu_02", "name": "Bash", "input": {"command": "pwd"}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01",
                        "content": [{"type": "text", "text": "a.txt\nb.txt"}]},
                    {"type": "tool_result", "tool_use_id": "toolu_02", "content": "no such dir", "is_error": true},
                    {"type": "text", "text": "Which files are there?"}]}
            ]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["content"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["type"] == "text"),
        "tool_choice none: text only: {body}"
    );
    assert!(!text_of(&body).is_empty());
    assert_ne!(body["stop_reason"], "tool_use");
}

#[tokio::test]
async fn count_tokens_counts_the_prompt_the_message_gets() {
    let req = json!({"max_tokens": 1, "temperature": 0, "tools": [bash_tool()],
        "system": "You are terse.",
        "messages": [{"role": "user", "content": "How many tokens is this?"}]});
    let (status, count) = post(&app(), "/v1/messages/count_tokens?beta=true", req.clone()).await;
    assert_eq!(status, 200, "{count}");
    let n = count["input_tokens"].as_u64().unwrap();
    let (status, body) = post(&app(), MESSAGES, req).await;
    assert_eq!(status, 200, "{body}");
    let u = &body["usage"];
    assert_eq!(
        u["input_tokens"].as_u64().unwrap() + u["cache_read_input_tokens"].as_u64().unwrap(),
        n,
        "{u}"
    );
}

#[tokio::test]
async fn the_billing_block_does_not_defeat_the_prefix_cache() {
    let long_system = "You are a careful assistant for a software project. ".repeat(12);
    let req = |billing: &str| {
        json!({"max_tokens": 1, "temperature": 0,
            "system": [{"type": "text", "text": format!("x-anthropic-billing-header: cc_version=2.1; cch={billing};")},
                {"type": "text", "text": long_system}],
            "messages": [{"role": "user", "content": "Hello there."}]})
    };
    let (status, first) = post(&app(), MESSAGES, req("first-8f3a")).await;
    assert_eq!(status, 200, "{first}");
    let (status, second) = post(&app(), MESSAGES, req("second-77c1")).await;
    assert_eq!(status, 200, "{second}");
    let prompt = second["usage"]["input_tokens"].as_u64().unwrap()
        + second["usage"]["cache_read_input_tokens"].as_u64().unwrap();
    let cached = second["usage"]["cache_read_input_tokens"].as_u64().unwrap();
    assert!(
        prompt > 100 && cached * 2 > prompt,
        "most of the second prompt comes from the cache: {second}"
    );
}

#[tokio::test]
async fn errors_have_the_anthropic_shape_and_status() {
    let app = app();
    let image = json!({"max_tokens": 4, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}}]}]});
    let (status, body) = post(&app, MESSAGES, image).await;
    assert_eq!(status, 400);
    assert_eq!(anthropic_error(&body), "invalid_request_error");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("image"),
        "{body}"
    );

    let (status, body) = post(
        &app,
        MESSAGES,
        json!({"model": "claude-opus-9", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(anthropic_error(&body), "not_found_error");

    let (status, _, bytes) = send(&app, Method::POST, MESSAGES, "{not json", &[]).await;
    assert_eq!(status, 400);
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(anthropic_error(&body), "invalid_request_error");

    let (status, body) = post(&app, MESSAGES, json!({"max_tokens": 4})).await;
    assert_eq!(status, 400);
    assert_eq!(anthropic_error(&body), "invalid_request_error");

    let (status, body) = post(
        &app,
        MESSAGES,
        json!({"max_tokens": 4, "messages": [{"role": "user", "content": "hi"}],
            "tool_choice": {"type": "sometimes"}, "tools": [bash_tool()]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(anthropic_error(&body), "invalid_request_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("sometimes"));
}

#[tokio::test]
async fn the_api_key_is_read_from_x_api_key_or_bearer() {
    let app = lathe_server::app(state_with(lathe_server::ServerOptions {
        api_key: Some("sk-ant-test".into()),
        ..Default::default()
    }));
    let body =
        json!({"max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}).to_string();
    let (status, _, bytes) = send(&app, Method::POST, MESSAGES, body.clone(), &[]).await;
    assert_eq!(status, 401);
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(anthropic_error(&v), "authentication_error");
    let (status, _, _) = send(
        &app,
        Method::POST,
        MESSAGES,
        body.clone(),
        &[("x-api-key", "sk-wrong")],
    )
    .await;
    assert_eq!(status, 401);
    let (status, _, bytes) = send(
        &app,
        Method::POST,
        MESSAGES,
        body.clone(),
        &[("x-api-key", "sk-ant-test")],
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    let (status, _, _) = send(
        &app,
        Method::POST,
        MESSAGES,
        body,
        &[("authorization", "Bearer sk-ant-test")],
    )
    .await;
    assert_eq!(status, 200);
    // The OpenAI routes take the same header.
    let (status, _, _) = send(
        &app,
        Method::GET,
        "/v1/models",
        axum::body::Body::empty(),
        &[("x-api-key", "sk-ant-test")],
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_oversized_body_is_request_too_large() {
    let app = lathe_server::app(state_with(lathe_server::ServerOptions {
        max_body_bytes: 256,
        ..Default::default()
    }));
    let big = json!({"max_tokens": 1, "messages": [{"role": "user", "content": "x".repeat(1024)}]});
    let (status, body) = post(&app, MESSAGES, big).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(anthropic_error(&body), "request_too_large");
}
