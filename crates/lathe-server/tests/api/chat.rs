//! `/v1/chat/completions`: the JSON shape, sampling fields, logprobs, and the streaming shape.

use serde_json::{json, Value};

use crate::common::*;

const PATH: &str = "/v1/chat/completions";

#[tokio::test]
async fn chat_completion_shape_and_usage() {
    let app = app();
    let (status, body) = post(&app, PATH, json!({"model": "smollm2-135m-instruct", "messages": user("Say hello."), "max_tokens": 12, "temperature": 0})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "chat.completion");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert!(!choice["message"]["content"].as_str().unwrap().is_empty());
    assert!(["stop", "length"].contains(&choice["finish_reason"].as_str().unwrap()));
    let u = &body["usage"];
    assert!(u["prompt_tokens"].as_u64().unwrap() > 5);
    assert!((1..=12).contains(&u["completion_tokens"].as_u64().unwrap()));
    assert_eq!(
        u["total_tokens"],
        u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap()
    );
}

#[tokio::test]
async fn greedy_is_deterministic_and_model_is_optional() {
    let app = app();
    let req =
        json!({"messages": user("Name a color."), "max_completion_tokens": 8, "temperature": 0});
    let (_, a) = post(&app, PATH, req.clone()).await;
    let (_, b) = post(&app, PATH, req).await;
    assert_eq!(
        a["choices"][0]["message"]["content"],
        b["choices"][0]["message"]["content"]
    );
    assert_eq!(a["model"], "smollm2-135m-instruct");
}

#[tokio::test]
async fn content_parts_developer_role_and_all_sampling_fields() {
    let app = app();
    let req = json!({
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Count:"}, {"type": "text", "text": "one, two"}]}
        ],
        "max_tokens": 6, "temperature": 0.7, "top_p": 0.9, "top_k": 40, "min_p": 0.05,
        "presence_penalty": 0.5, "frequency_penalty": 0.5, "repetition_penalty": 1.1,
        "seed": 7, "stop": ["\n\n"], "user": "tester", "n": 2
    });
    let (status, body) = post(&app, PATH, req).await;
    assert_eq!(status, 200, "{body}");
    let choices = body["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 2);
    assert_eq!(
        (choices[0]["index"].as_u64(), choices[1]["index"].as_u64()),
        (Some(0), Some(1))
    );
}

#[tokio::test]
async fn stop_strings_end_the_text_before_them() {
    let app = app();
    let base = json!({"messages": user("Write the numbers 1 to 10 separated by spaces."), "max_tokens": 24, "temperature": 0});
    let (_, full) = post(&app, PATH, base.clone()).await;
    let text = full["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    let words: Vec<&str> = text.split_whitespace().collect();
    assert!(words.len() >= 3, "need some words to stop on: {text:?}");
    let stop = words[2];
    let mut req = base;
    req["stop"] = json!(stop);
    let (_, cut) = post(&app, PATH, req).await;
    let content = cut["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        !content.contains(stop),
        "{content:?} still contains {stop:?}"
    );
    assert!(
        text.starts_with(content),
        "{content:?} is not a prefix of {text:?}"
    );
    assert_eq!(cut["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn logprobs_per_token_with_top_alternatives() {
    let app = app();
    let req = json!({"messages": user("Hi"), "max_tokens": 5, "temperature": 0, "logprobs": true, "top_logprobs": 3});
    let (status, body) = post(&app, PATH, req).await;
    assert_eq!(status, 200, "{body}");
    let entries = body["choices"][0]["logprobs"]["content"]
        .as_array()
        .unwrap();
    assert_eq!(
        entries.len() as u64,
        body["usage"]["completion_tokens"].as_u64().unwrap()
    );
    for e in entries {
        assert!(e["logprob"].as_f64().unwrap() <= 0.0);
        assert!(e["token"].is_string() && e["bytes"].is_array());
        let top = e["top_logprobs"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        // Greedy: the sampled token is the most likely one.
        assert!(
            (top[0]["logprob"].as_f64().unwrap() - e["logprob"].as_f64().unwrap()).abs() < 1e-4
        );
    }
}

/// Streaming: role first, content deltas that add up to the non-streamed text, exactly one
/// finish_reason, the usage chunk with empty choices, `[DONE]`.
#[tokio::test]
async fn streaming_shape_matches_non_streaming() {
    let app = app();
    let base =
        json!({"messages": user("Tell me a fact about cats."), "max_tokens": 16, "temperature": 0});
    let (_, whole) = post(&app, PATH, base.clone()).await;
    let mut req = base;
    req["stream"] = json!(true);
    req["stream_options"] = json!({"include_usage": true});
    let (status, headers, bytes) =
        send(&app, axum::http::Method::POST, PATH, req.to_string(), &[]).await;
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let chunks = sse_payloads(&bytes);
    let id = chunks[0]["id"].as_str().unwrap();
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk" && c["id"] == id));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let (usage_chunk, rest) = chunks.split_last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    for k in ["prompt_tokens", "completion_tokens", "total_tokens"] {
        assert_eq!(usage_chunk["usage"][k], whole["usage"][k], "{k}");
    }
    let finishes: Vec<&Value> = rest
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, vec![&whole["choices"][0]["finish_reason"]]);
    assert!(
        rest.last().unwrap()["choices"][0]["finish_reason"].is_string(),
        "finish_reason comes last"
    );
    let text: String = rest
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(
        text,
        whole["choices"][0]["message"]["content"].as_str().unwrap()
    );
    assert!(rest.len() > 3, "content must arrive in several chunks");
}

#[tokio::test]
async fn streaming_without_usage_and_with_n() {
    let app = app();
    let req =
        json!({"messages": user("Hi"), "max_tokens": 4, "stream": true, "n": 2, "temperature": 0});
    let (status, _, bytes) = send(&app, axum::http::Method::POST, PATH, req.to_string(), &[]).await;
    assert_eq!(status, 200);
    let chunks = sse_payloads(&bytes);
    assert!(chunks
        .iter()
        .all(|c| c.get("usage").is_none_or(Value::is_null)));
    for i in 0..2 {
        let mine: Vec<&Value> = chunks
            .iter()
            .flat_map(|c| c["choices"].as_array().unwrap())
            .filter(|c| c["index"] == i)
            .collect();
        assert_eq!(mine[0]["delta"]["role"], "assistant");
        assert_eq!(
            mine.iter()
                .filter(|c| !c["finish_reason"].is_null())
                .count(),
            1,
            "choice {i}"
        );
    }
}
