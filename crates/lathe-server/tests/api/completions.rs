//! `/v1/completions`: prompt forms, n, echo, logprobs, streaming, and `suffix` (FIM) refusal on
//! the default model.

use serde_json::json;

use crate::common::*;

const PATH: &str = "/v1/completions";

#[tokio::test]
async fn text_prompt_completion() {
    let app = app();
    let (status, body) = post(&app, PATH, json!({"model": "smollm2-135m-instruct", "prompt": "def fib(n):", "max_tokens": 8, "temperature": 0})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "text_completion");
    assert!(body["id"].as_str().unwrap().starts_with("cmpl-"));
    assert!(!body["choices"][0]["text"].as_str().unwrap().is_empty());
    assert!(body["usage"]["completion_tokens"].as_u64().unwrap() <= 8);
}

#[tokio::test]
async fn prompt_batches_token_ids_and_n() {
    let app = app();
    let (status, body) = post(
        &app,
        PATH,
        json!({"prompt": ["One,", "Two,"], "n": 2, "max_tokens": 3}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let idx: Vec<u64> = body["choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["index"].as_u64().unwrap())
        .collect();
    assert_eq!(idx, vec![0, 1, 2, 3]);

    let (_, tok) = post(&app, "/tokenize", json!({"prompt": "Hello world"})).await;
    let ids = tok["tokens"].clone();
    let (s1, by_ids) = post(
        &app,
        PATH,
        json!({"prompt": ids, "max_tokens": 4, "temperature": 0}),
    )
    .await;
    let (_, by_text) = post(
        &app,
        PATH,
        json!({"prompt": "Hello world", "max_tokens": 4, "temperature": 0}),
    )
    .await;
    assert_eq!(s1, 200, "{by_ids}");
    assert_eq!(by_ids["choices"][0]["text"], by_text["choices"][0]["text"]);
    let (s2, _) = post(
        &app,
        PATH,
        json!({"prompt": [ids.clone(), ids], "max_tokens": 2}),
    )
    .await;
    assert_eq!(s2, 200);
}

#[tokio::test]
async fn echo_and_logprobs() {
    let app = app();
    let (status, body) = post(&app, PATH, json!({"prompt": "The sky is", "max_tokens": 4, "temperature": 0, "echo": true, "logprobs": 2})).await;
    assert_eq!(status, 200, "{body}");
    let c = &body["choices"][0];
    let text = c["text"].as_str().unwrap();
    assert!(text.starts_with("The sky is"), "{text:?}");
    let lp = &c["logprobs"];
    let n = lp["tokens"].as_array().unwrap().len();
    assert_eq!(lp["token_logprobs"].as_array().unwrap().len(), n);
    assert_eq!(lp["top_logprobs"].as_array().unwrap().len(), n);
    assert_eq!(lp["text_offset"].as_array().unwrap().len(), n);
    assert!(
        lp["token_logprobs"][0].is_null(),
        "echoed prompt tokens have no logprob"
    );
    let last = &lp["top_logprobs"][n - 1];
    assert_eq!(last.as_object().unwrap().len(), 2);
    // Offsets point at each token inside the text.
    let offsets: Vec<usize> = lp["text_offset"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    assert!(offsets.windows(2).all(|w| w[0] <= w[1]));
}

#[tokio::test]
async fn streaming_completion_with_usage() {
    let app = app();
    let req = json!({"prompt": "Once upon a time", "max_tokens": 6, "temperature": 0, "stream": true, "stream_options": {"include_usage": true}});
    let (status, _, bytes) = send(&app, axum::http::Method::POST, PATH, req.to_string(), &[]).await;
    assert_eq!(status, 200);
    let chunks = sse_payloads(&bytes);
    let (usage, rest) = chunks.split_last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() >= 1);
    assert!(rest.iter().all(|c| c["object"] == "text_completion"));
    assert_eq!(
        rest.iter()
            .filter(|c| !c["choices"][0]["finish_reason"].is_null())
            .count(),
        1
    );
    let (_, whole) = post(
        &app,
        PATH,
        json!({"prompt": "Once upon a time", "max_tokens": 6, "temperature": 0}),
    )
    .await;
    let text: String = rest
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(text, whole["choices"][0]["text"].as_str().unwrap());
}

#[tokio::test]
async fn suffix_is_refused_on_a_model_without_fim_tokens() {
    let app = app();
    let (status, body) = post(
        &app,
        PATH,
        json!({"prompt": "def add(a, b):\n", "suffix": "\n    return c", "max_tokens": 8}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let e = error_of(&body);
    assert_eq!(e["param"], "suffix");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("fill-in-the-middle"),
        "{e}"
    );
}
