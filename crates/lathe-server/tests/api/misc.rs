//! `/v1/models`, `/health`, `/metrics`, `/openapi.json`, `/tokenize`, `/detokenize`.

use axum::http::Method;
use lathe_server::{AppState, ServerOptions};
use serde_json::{json, Value};

use crate::common::*;

#[tokio::test]
async fn models_list_and_get() {
    let app = lathe_server::app(state_with(ServerOptions {
        served_model_names: vec!["smol".into()],
        ..Default::default()
    }));
    let (s, bytes) = get(&app, "/v1/models").await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], "smol");
    assert_eq!(v["data"][0]["object"], "model");
    for id in ["smol", "smollm2-135m-instruct"] {
        let (s, bytes) = get(&app, &format!("/v1/models/{id}")).await;
        assert_eq!(s, 200, "{id}");
        assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap()["id"], id);
    }
    let (s, bytes) = get(&app, "/v1/models/nope").await;
    assert_eq!(s, 404);
    assert_eq!(
        error_of(&serde_json::from_slice(&bytes).unwrap())["code"],
        "model_not_found"
    );
    // The served name works in requests.
    let (s, _) = post(
        &app,
        "/v1/completions",
        json!({"model": "smol", "prompt": "a", "max_tokens": 1}),
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn health_is_503_while_loading_then_200() {
    let state = AppState::loading(ServerOptions::default());
    let app = lathe_server::app(state.clone());
    let (s, _, _) = send(&app, Method::GET, "/health", axum::body::Body::empty(), &[]).await;
    assert_eq!(s, 503);
    let (s, b) = post(&app, "/v1/chat/completions", json!({"messages": user("x")})).await;
    assert_eq!(s, 503);
    error_of(&b);
    state.set_engine(engine());
    let (s, _) = get(&app, "/health").await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn metrics_count_requests_and_show_engine_gauges() {
    let app = app();
    let _ = post(
        &app,
        "/v1/completions",
        json!({"prompt": "Hello", "max_tokens": 2, "ignore_eos": true}),
    )
    .await;
    let _ = post(
        &app,
        "/v1/completions",
        json!({"prompt": "Hello", "temperature": 9}),
    )
    .await;
    let (s, bytes) = get(&app, "/metrics").await;
    assert_eq!(s, 200);
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    for needle in [
        "lathe_requests_total{route=\"/v1/completions\",status=\"200\"} 1",
        "lathe_requests_total{route=\"/v1/completions\",status=\"400\"} 1",
        "lathe_num_requests_waiting",
        "lathe_num_requests_running",
        "lathe_kv_blocks_used",
        "lathe_kv_blocks_free",
        "lathe_prompt_tokens_total",
        "lathe_generation_tokens_total 2",
        "lathe_time_to_first_token_seconds_count 1",
        "lathe_inter_token_latency_seconds_count 1",
        "lathe_e2e_request_latency_seconds_count 1",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
}

/// The value of the sample `name{labels}` in a text exposition.
fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn metrics_under_vllm_names_with_their_types_for_the_routers() {
    let app = lathe_server::app(state_with(lathe_server::ServerOptions {
        served_model_names: vec!["coder".into()],
        ..Default::default()
    }));
    // Long enough to fill blocks: the second request finds them in the prefix cache.
    let prompt = "fn main() { println!(\"hello\"); } ".repeat(20);
    for _ in 0..2 {
        let (s, _) = post(
            &app,
            "/v1/completions",
            json!({"prompt": prompt, "max_tokens": 3, "ignore_eos": true}),
        )
        .await;
        assert_eq!(s, 200);
    }
    let (_, bytes) = get(&app, "/metrics").await;
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let m = "{model_name=\"coder\"}";
    for (name, kind) in [
        ("vllm:num_requests_waiting", "gauge"),
        ("vllm:num_requests_running", "gauge"),
        ("vllm:kv_cache_usage_perc", "gauge"),
        ("vllm:cache_config_info", "gauge"),
        ("vllm:prefix_cache_queries_total", "counter"),
        ("vllm:prefix_cache_hits_total", "counter"),
        ("vllm:num_preemptions_total", "counter"),
        ("vllm:prompt_tokens_total", "counter"),
        ("vllm:generation_tokens_total", "counter"),
        ("vllm:time_to_first_token_seconds", "histogram"),
        ("vllm:inter_token_latency_seconds", "histogram"),
        ("vllm:e2e_request_latency_seconds", "histogram"),
        ("lathe_preemptions_total", "counter"),
        ("lathe_prefix_cache_hits_tokens_total", "counter"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} {kind}\n")),
            "{name} as a {kind} missing from\n{text}"
        );
    }
    let usage = sample(&text, &format!("vllm:kv_cache_usage_perc{m}")).unwrap();
    assert!((0.0..=1.0).contains(&usage), "{usage}");
    assert_eq!(
        sample(&text, &format!("vllm:generation_tokens_total{m}")),
        Some(6.0)
    );
    assert_eq!(
        sample(&text, &format!("vllm:e2e_request_latency_seconds_count{m}")),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, &format!("vllm:time_to_first_token_seconds_count{m}")),
        Some(2.0)
    );
    let queried = sample(&text, &format!("vllm:prefix_cache_queries_total{m}")).unwrap();
    let hits = sample(&text, &format!("vllm:prefix_cache_hits_total{m}")).unwrap();
    assert!(
        hits >= 16.0 && queried >= 2.0 * 200.0 && hits <= queried,
        "{hits} of {queried}"
    );
    let info = engine().info().clone();
    let config = format!(
        "vllm:cache_config_info{{block_size=\"{}\",model_name=\"coder\",num_gpu_blocks=\"{}\"}} 1",
        info.block_size, info.num_blocks
    );
    assert!(text.contains(&config), "{config} missing from\n{text}");
}

#[tokio::test]
async fn openapi_documents_exactly_the_routes() {
    let app = app();
    let (s, bytes) = get(&app, "/openapi.json").await;
    assert_eq!(s, 200);
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for &(method, path, _, _, _) in lathe_server::openapi::ROUTES {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} undocumented"
        );
        // Each documented route is routed (an empty body is a 400, not a 404/405).
        let concrete = path.replace("{id}", "smollm2-135m-instruct");
        let m = if method == "get" {
            Method::GET
        } else {
            Method::POST
        };
        let (s, _, _) = send(&app, m, &concrete, "{}", &[]).await;
        assert!(s != 404 && s != 405, "{method} {path} -> {s}");
    }
}

#[tokio::test]
async fn tokenize_and_detokenize_round_trip() {
    let app = app();
    let (s, v) = post(
        &app,
        "/tokenize",
        json!({"prompt": "Hello, world!", "return_token_strs": true}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["count"].as_u64().unwrap() as usize,
        v["tokens"].as_array().unwrap().len()
    );
    assert_eq!(v["max_model_len"], MAX_MODEL_LEN);
    assert_eq!(
        v["token_strs"].as_array().unwrap().len(),
        v["tokens"].as_array().unwrap().len()
    );
    let (s, d) = post(&app, "/detokenize", json!({"tokens": v["tokens"]})).await;
    assert_eq!(s, 200);
    assert!(d["prompt"].as_str().unwrap().ends_with("Hello, world!"));

    let (s, chat) = post(&app, "/tokenize", json!({"messages": user("Hi")})).await;
    assert_eq!(s, 200);
    assert!(chat["count"].as_u64().unwrap() > v["count"].as_u64().unwrap());

    let (s, b) = post(&app, "/detokenize", json!({"tokens": [-1]})).await;
    assert_eq!(s, 400);
    assert_eq!(error_of(&b)["param"], "tokens[0]");
    let (s, _) = post(&app, "/tokenize", json!({})).await;
    assert_eq!(s, 400);
}

/// `--default-temperature` / `--default-max-tokens` apply to requests that set neither (agent
/// frontends send no sampling fields), and never override what a request says.
#[tokio::test]
async fn server_defaults_fill_in_unset_sampling_fields() {
    let app = lathe_server::app(state_with(lathe_server::ServerOptions {
        default_temperature: Some(0.0),
        default_max_tokens: Some(5),
        ..Default::default()
    }));
    let req = serde_json::json!({"input": "Tell me a story.", "ignore_eos": true});
    let (s1, a) = post(&app, "/v1/responses", req.clone()).await;
    let (s2, b) = post(&app, "/v1/responses", req).await;
    assert_eq!((s1.as_u16(), s2.as_u16()), (200, 200), "{a} {b}");
    assert_eq!(a["usage"]["output_tokens"], 5, "{a}");
    assert_eq!(a["temperature"], 0.0);
    let text = |r: &serde_json::Value| r["output"][0]["content"][0]["text"].clone();
    assert!(text(&a).is_string(), "{a}");
    assert_eq!(text(&a), text(&b), "greedy by default: the same text twice");
    let (_, c) = post(
        &app,
        "/v1/chat/completions",
        serde_json::json!({"messages": user("Tell me a story."), "max_tokens": 7, "ignore_eos": true}),
    )
    .await;
    assert_eq!(c["usage"]["completion_tokens"], 7, "{c}");
}

#[tokio::test]
async fn per_request_speculation_is_counted_in_both_metric_families() {
    let app = lathe_server::app(state_with(ServerOptions {
        served_model_names: vec!["coder".into()],
        ..Default::default()
    }));
    // A greedy continuation of a repeated line: prompt lookup proposes, the model accepts.
    let prompt = "let x = compute(a, b);\n".repeat(12);
    let (s, v) = post(
        &app,
        "/v1/completions",
        json!({"prompt": prompt, "max_tokens": 40, "temperature": 0, "ignore_eos": true,
               "speculative": "ngram"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["usage"]["completion_tokens"], 40);
    let (_, bytes) = get(&app, "/metrics").await;
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let m = "{model_name=\"coder\"}";
    let drafts = sample(&text, &format!("vllm:spec_decode_num_drafts_total{m}")).unwrap();
    let proposed = sample(
        &text,
        &format!("vllm:spec_decode_num_draft_tokens_total{m}"),
    )
    .unwrap();
    let accepted = sample(
        &text,
        &format!("vllm:spec_decode_num_accepted_tokens_total{m}"),
    )
    .unwrap();
    assert!(
        drafts > 0.0 && accepted > 0.0 && accepted <= proposed,
        "{accepted}/{proposed}"
    );
    assert_eq!(
        sample(&text, "lathe_spec_decode_num_accepted_tokens_total"),
        Some(accepted)
    );
    let rate = sample(&text, "lathe_spec_decode_acceptance_rate").unwrap();
    assert!((rate - accepted / proposed).abs() < 1e-9, "{rate}");
    let mean = sample(&text, "lathe_spec_decode_mean_accepted_length").unwrap();
    assert!((mean - (1.0 + accepted / drafts)).abs() < 1e-9, "{mean}");
    // No draft model on this server, and no such method: 400s naming the field.
    for bad in [json!("draft"), json!("banana"), json!(3)] {
        let (s, v) = post(
            &app,
            "/v1/completions",
            json!({"prompt": "a", "max_tokens": 2, "speculative": bad}),
        )
        .await;
        assert_eq!(s, 400, "{bad}: {v}");
        assert!(v.to_string().contains("speculative"), "{bad}: {v}");
    }
}
