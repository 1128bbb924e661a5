//! `/v1/responses` through `app()`: item types in, output items and event sequences out, tool
//! round trips, structured output, and the 400s. Forced calls use constrained decoding, so
//! they are well-formed even from the 135M default model.

use axum::body::Bytes;
use axum::http::Method;
use serde_json::{json, Value};

use crate::common::*;

const RESPONSES: &str = "/v1/responses";

/// `(event name, payload)` of a Responses SSE body; asserts each payload's `type` is its event
/// name, sequence numbers count up from 0, and no `[DONE]` is sent.
fn events(body: &Bytes) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(body).unwrap();
    let mut out = Vec::new();
    let mut name = None;
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("event: ") {
            name = Some(n.to_string());
        } else if let Some(d) = line.strip_prefix("data: ") {
            assert_ne!(d, "[DONE]", "the Responses API sends no [DONE]");
            let v: Value = serde_json::from_str(d).unwrap();
            let n = name.take().expect("every event is named");
            assert_eq!(v["type"], n.as_str(), "{v}");
            assert_eq!(v["sequence_number"], out.len(), "{v}");
            out.push((n, v));
        }
    }
    out
}

async fn stream(body: Value) -> Vec<(String, Value)> {
    let mut body = body;
    body["stream"] = json!(true);
    let (status, headers, bytes) =
        send(&app(), Method::POST, RESPONSES, body.to_string(), &[]).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    events(&bytes)
}

fn output_text(resp: &Value) -> String {
    resp["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "message")
        .flat_map(|i| i["content"].as_array().unwrap().iter())
        .map(|c| c["text"].as_str().unwrap().to_string())
        .collect()
}

fn check_usage(resp: &Value) {
    let u = &resp["usage"];
    let (i, o) = (
        u["input_tokens"].as_u64().unwrap(),
        u["output_tokens"].as_u64().unwrap(),
    );
    assert!(i > 0 && o > 0, "{u}");
    assert_eq!(u["total_tokens"].as_u64().unwrap(), i + o, "{u}");
    assert!(u["input_tokens_details"]["cached_tokens"].is_u64(), "{u}");
    assert!(
        u["output_tokens_details"]["reasoning_tokens"].is_u64(),
        "{u}"
    );
}

fn weather_tool() -> Value {
    json!({"type": "function", "name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}},
            "required": ["city"], "additionalProperties": false}})
}

#[tokio::test]
async fn a_string_input_gets_a_completed_message() {
    let (status, body) = post(
        &app(),
        RESPONSES,
        json!({"input": "Say hello.", "instructions": "Be brief.", "max_output_tokens": 12,
            "temperature": 0, "metadata": {"k": "v"}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "response");
    assert!(body["id"].as_str().unwrap().starts_with("resp_"));
    assert!(["completed", "incomplete"].contains(&body["status"].as_str().unwrap()));
    assert_eq!(body["metadata"], json!({"k": "v"}));
    assert_eq!(body["instructions"], "Be brief.");
    let item = &body["output"][0];
    assert_eq!(item["type"], "message");
    assert_eq!(item["role"], "assistant");
    assert_eq!(item["content"][0]["type"], "output_text");
    assert!(!output_text(&body).is_empty());
    check_usage(&body);
}

#[tokio::test]
async fn streamed_text_events_come_in_order_and_agree_with_the_final_response() {
    let ev = stream(
        json!({"input": [{"role": "user", "content": "Count: one, two,"}],
        "max_output_tokens": 16, "temperature": 0}),
    )
    .await;
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    let deltas = names
        .iter()
        .filter(|n| **n == "response.output_text.delta")
        .count();
    assert!(deltas >= 1, "{names:?}");
    let mut expected = vec![
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ];
    expected.extend(std::iter::repeat_n("response.output_text.delta", deltas));
    expected.extend([
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]);
    let last = *names.last().unwrap();
    assert!(["response.completed", "response.incomplete"].contains(&last));
    expected.push(last);
    assert_eq!(names, expected);

    assert_eq!(ev[0].1["response"]["status"], "in_progress");
    let streamed: String = ev
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, v)| v["delta"].as_str().unwrap())
        .collect();
    let done = &ev
        .iter()
        .find(|(n, _)| n == "response.output_text.done")
        .unwrap()
        .1;
    assert_eq!(done["text"], streamed.as_str());
    let item = &ev
        .iter()
        .find(|(n, _)| n == "response.output_item.done")
        .unwrap()
        .1["item"];
    assert_eq!(item["status"], "completed");
    let fin = &ev.last().unwrap().1["response"];
    assert_eq!(output_text(fin), streamed);
    assert_eq!(fin["output"][0]["id"], item["id"]);
    check_usage(fin);
}

#[tokio::test]
async fn a_forced_function_call_streams_its_arguments_and_completes_the_item() {
    let ev = stream(
        json!({"input": "Weather in Paris?", "tools": [weather_tool()],
        "tool_choice": "required", "parallel_tool_calls": false, "max_output_tokens": 64,
        "temperature": 0}),
    )
    .await;
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[2], "response.output_item.added", "{names:?}");
    assert_eq!(ev[2].1["item"]["type"], "function_call");
    let args: String = ev
        .iter()
        .filter(|(n, _)| n == "response.function_call_arguments.delta")
        .map(|(_, v)| v["delta"].as_str().unwrap())
        .collect();
    let done = &ev
        .iter()
        .find(|(n, _)| n == "response.function_call_arguments.done")
        .unwrap()
        .1;
    assert_eq!(done["arguments"], args.as_str());
    let item = &ev
        .iter()
        .find(|(n, _)| n == "response.output_item.done")
        .unwrap()
        .1["item"];
    assert_eq!(item["type"], "function_call");
    assert_eq!(item["name"], "get_weather");
    assert_eq!(item["status"], "completed");
    assert!(item["call_id"].as_str().unwrap().starts_with("call_"));
    let parsed: Value = serde_json::from_str(item["arguments"].as_str().unwrap()).unwrap();
    assert!(parsed["city"].is_string(), "{parsed}");
    assert_eq!(ev.last().unwrap().0, "response.completed");
}

#[tokio::test]
async fn namespace_and_custom_tools_come_back_as_their_own_item_types() {
    let ns = json!({"type": "namespace", "name": "agents", "description": "Sub-agents",
        "tools": [{"type": "function", "name": "spawn", "parameters": {"type": "object",
            "properties": {"task": {"type": "string", "maxLength": 20}}, "required": ["task"],
            "additionalProperties": false}}]});
    let (status, body) = post(
        &app(),
        RESPONSES,
        json!({"input": "Start a helper.", "tools": [ns, {"type": "web_search"}],
            "tool_choice": {"type": "function", "name": "spawn", "namespace": "agents"},
            "max_output_tokens": 64, "temperature": 0}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let call = &body["output"][0];
    assert_eq!(call["type"], "function_call", "{body}");
    assert_eq!(call["name"], "spawn");
    assert_eq!(call["namespace"], "agents");

    let custom = json!({"type": "custom", "name": "apply_patch", "description": "Edit files",
        "format": {"type": "grammar", "syntax": "lark", "definition": "start: \"*** Begin Patch\" /.+/"}});
    let ev = stream(json!({"input": "Patch the file.", "tools": [custom],
        "tool_choice": {"type": "custom", "name": "apply_patch"}, "max_output_tokens": 48,
        "temperature": 0}))
    .await;
    let item = &ev
        .iter()
        .find(|(n, _)| n == "response.output_item.done")
        .unwrap()
        .1["item"];
    assert_eq!(item["type"], "custom_tool_call", "{item}");
    assert_eq!(item["name"], "apply_patch");
    let input = item["input"].as_str().unwrap();
    let done = &ev
        .iter()
        .find(|(n, _)| n == "response.custom_tool_call_input.done")
        .unwrap()
        .1;
    assert_eq!(done["input"], input);
}

#[tokio::test]
async fn a_tool_round_trip_ends_in_a_text_answer() {
    let app = app();
    let tools = json!([weather_tool()]);
    let mut history = vec![json!({"type": "message", "role": "user",
        "content": [{"type": "input_text", "text": "What is the weather in Paris?"}]})];
    let (status, first) = post(
        &app,
        RESPONSES,
        json!({"input": history, "tools": tools, "tool_choice": "required",
            "parallel_tool_calls": false, "max_output_tokens": 64, "temperature": 0, "store": false}),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let call = first["output"][0].clone();
    assert_eq!(call["type"], "function_call", "{first}");

    history.push(
        json!({"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"}),
    );
    history.push(call.clone());
    history.push(
        json!({"type": "function_call_output", "call_id": call["call_id"],
        "output": "Sunny, 24 degrees."}),
    );
    let (status, second) = post(
        &app,
        RESPONSES,
        json!({"input": history, "tools": tools, "tool_choice": "none",
            "max_output_tokens": 24, "temperature": 0, "store": false}),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["output"][0]["type"], "message", "{second}");
    assert!(!output_text(&second).is_empty());
    // The call and its output reach the prompt: without them it is shorter.
    let (_, without) = post(
        &app,
        RESPONSES,
        json!({"input": history[..1], "tools": tools, "tool_choice": "none",
            "max_output_tokens": 1, "store": false}),
    )
    .await;
    assert!(
        second["usage"]["input_tokens"].as_u64().unwrap()
            > without["usage"]["input_tokens"].as_u64().unwrap() + 10,
        "{second} vs {without}"
    );
}

#[tokio::test]
async fn text_format_json_schema_constrains_the_output() {
    let schema = json!({"type": "object", "properties": {"answer": {"type": "integer"}},
        "required": ["answer"], "additionalProperties": false});
    let (status, body) = post(
        &app(),
        RESPONSES,
        json!({"input": "What is 2+2? Answer in JSON.", "max_output_tokens": 32,
            "text": {"format": {"type": "json_schema", "name": "sum", "schema": schema, "strict": true}}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&output_text(&body)).unwrap();
    assert!(v["answer"].is_i64(), "{v}");
    assert_eq!(v.as_object().unwrap().len(), 1);
    assert_eq!(body["text"]["format"]["type"], "json_schema");
}

#[tokio::test]
async fn codex_fields_are_accepted_and_unknown_fields_ignored() {
    let (status, body) = post(
        &app(),
        RESPONSES,
        json!({"model": "smollm2-135m-instruct", "input": [
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are terse."}]},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
            "tools": [{"type": "web_search", "external_web_access": false}, {"type": "image_generation"}],
            "tool_choice": "auto", "parallel_tool_calls": true, "reasoning": {"summary": "auto"},
            "store": false, "include": ["reasoning.encrypted_content"], "prompt_cache_key": "abc",
            "client_metadata": {"x": "y"}, "some_future_field": {"a": 1}, "max_output_tokens": 8}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["store"], false);
}

#[tokio::test]
async fn max_output_tokens_makes_the_response_incomplete() {
    let ev = stream(
        json!({"input": "Write a long story about a dragon.", "max_output_tokens": 3,
        "temperature": 0, "ignore_eos": true}),
    )
    .await;
    let (name, last) = ev.last().unwrap();
    assert_eq!(name, "response.incomplete");
    assert_eq!(last["response"]["status"], "incomplete");
    assert_eq!(
        last["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );
    assert_eq!(last["response"]["usage"]["output_tokens"], 3);
}

#[tokio::test]
async fn bad_requests_get_400s_that_name_the_field() {
    let app = app();
    let cases = [
        (
            json!({"input": "hi", "previous_response_id": "resp_1"}),
            "previous_response_id",
        ),
        (json!({"instructions": "x"}), "input"),
        (json!({"input": 42}), "input"),
        (
            json!({"input": [{"type": "item_reference", "id": "msg_1"}]}),
            "input[0].type",
        ),
        (json!({"input": [{"type": "frobnicate"}]}), "input[0].type"),
        (
            json!({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "http://x"}]}]}),
            "input[0].content[0].type",
        ),
        (
            json!({"input": [{"type": "function_call_output", "output": "x"}]}),
            "input[0].call_id",
        ),
        (
            json!({"input": "hi", "tools": [{"name": "f"}]}),
            "tools[0].type",
        ),
        (
            json!({"input": "hi", "tool_choice": {"type": "web_search"}, "tools": [weather_tool()]}),
            "tool_choice",
        ),
        (
            json!({"input": "hi", "max_output_tokens": 0}),
            "max_output_tokens",
        ),
        (json!({"input": "hi", "temperature": "hot"}), "temperature"),
        (
            json!({"input": "hi", "text": {"format": {"type": "yaml"}}}),
            "text.format",
        ),
    ];
    for (req, param) in cases {
        let (status, body) = post(&app, RESPONSES, req.clone()).await;
        assert_eq!(status, 400, "{req} → {body}");
        assert_eq!(error_of(&body)["param"], param, "{req} → {body}");
    }
    let long = "word ".repeat(MAX_MODEL_LEN + 10);
    let (status, body) = post(&app, RESPONSES, json!({"input": long, "stream": true})).await;
    assert_eq!(status, 400, "{body}");
    let e = error_of(&body);
    assert_eq!(e["code"], "context_length_exceeded");
    assert_eq!(e["param"], "input");
}

#[tokio::test]
async fn include_output_text_logprobs_returns_them_per_token() {
    let (status, body) = post(
        &app(),
        RESPONSES,
        json!({"input": "Say hi.", "max_output_tokens": 6, "temperature": 0, "ignore_eos": true,
            "include": ["message.output_text.logprobs"], "top_logprobs": 2}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let part = &body["output"][0]["content"][0];
    let lps = part["logprobs"].as_array().unwrap();
    assert_eq!(lps.len(), 6, "{part}");
    let text: String = lps.iter().map(|l| l["token"].as_str().unwrap()).collect();
    assert_eq!(text, part["text"].as_str().unwrap());
    for l in lps {
        let lp = l["logprob"].as_f64().unwrap();
        assert!(lp <= 0.0 && lp.is_finite(), "{l}");
        assert_eq!(l["top_logprobs"].as_array().unwrap().len(), 2, "{l}");
        // Greedy: the sampled token is the most likely one.
        assert!(
            (l["top_logprobs"][0]["logprob"].as_f64().unwrap() - lp).abs() < 1e-5,
            "{l}"
        );
    }
}

/// Every input item type Codex sends, in one history, through the whole pipeline.
#[tokio::test]
async fn a_history_with_every_item_type_is_accepted() {
    let custom = json!({"type": "custom", "name": "apply_patch", "description": "Edit files"});
    let ns = json!({"type": "namespace", "name": "agents", "tools": [{"type": "function", "name": "spawn",
        "parameters": {"type": "object", "properties": {}}}]});
    let input = json!([
        {"type": "message", "role": "system", "content": "You are a coding agent."},
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Be careful."}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Fix the bug."}]},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "plan"}], "encrypted_content": "gAAA"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Looking."}]},
        {"type": "function_call", "call_id": "c1", "name": "spawn", "namespace": "agents", "arguments": "{}"},
        {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "*** Begin Patch\n*** End Patch"},
        {"type": "function_call_output", "call_id": "c1", "output": "agent started"},
        {"type": "custom_tool_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "Done!"}]},
        {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "x"}},
        {"type": "message", "role": "user", "content": "Thanks. Summarise."}
    ]);
    let (status, body) = post(
        &app(),
        RESPONSES,
        json!({"input": input, "tools": [custom, ns, {"type": "web_search"}], "max_output_tokens": 8,
            "temperature": 0, "store": false}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        ["completed", "incomplete"].contains(&body["status"].as_str().unwrap()),
        "{body}"
    );
    assert!(
        body["usage"]["input_tokens"].as_u64().unwrap() > 60,
        "{body}"
    );
}

/// Constrained JSON follows the schema's property order, as the client wrote it (not sorted).
#[tokio::test]
async fn json_output_keeps_the_schemas_property_order() {
    let schema = json!({"type": "object", "properties": {
        "zeta": {"type": "integer"}, "alpha": {"type": "integer"}},
        "required": ["zeta", "alpha"], "additionalProperties": false});
    let (status, body) = post(
        &app(),
        RESPONSES,
        json!({"input": "Two numbers as JSON.", "max_output_tokens": 32, "temperature": 0,
            "text": {"format": {"type": "json_schema", "name": "two", "schema": schema}}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let text = output_text(&body);
    let (z, a) = (text.find("\"zeta\""), text.find("\"alpha\""));
    assert!(z.is_some() && a.is_some() && z < a, "{text}");
}
