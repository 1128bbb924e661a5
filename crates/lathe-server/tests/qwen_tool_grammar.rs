//! The lazy tool-call grammar of `tool_choice: auto` on the real Qwen2.5-Coder-0.5B-Instruct
//! vocabulary (where `<tool_call>` is one token): requests are validated and prepared as the
//! server does, then the constraint is fed token sequences. Free text and valid calls pass; an
//! unknown tool, arguments against the schema and text after the calls cannot be produced.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use lathe_engine::constraint::TokenConstraint;
use lathe_engine::tokenizer::TextTokenizer;
use lathe_engine::{EngineConfig, EngineHandle};
use lathe_server::constrained::{CompiledGrammar, LlgConstraint};
use lathe_server::validation::{chat, responses};
use lathe_server::{AppState, ServerOptions};
use serde_json::{json, Value};
use tower::ServiceExt;

const TOOL_CALL: u32 = 151657;

fn engine() -> EngineHandle {
    static ENGINE: OnceLock<EngineHandle> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            lathe_engine::start(EngineConfig {
                model: "qwen2.5-coder-0.5b-instruct".into(),
                max_model_len: Some(8192),
                cpu_kv_cache_bytes: 256 << 20,
                ..EngineConfig::default()
            })
            .expect("the default model loads")
        })
        .clone()
}

fn state(opts: ServerOptions) -> AppState {
    AppState::new(engine(), opts)
}

fn tokenizer() -> std::sync::Arc<TextTokenizer> {
    engine().info().tokenizer.clone()
}

fn weather_tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"], "additionalProperties": false}}},
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object",
            "properties": {"tz": {"type": "string"}}, "required": ["tz"], "additionalProperties": false}}}
    ])
}

/// The grammar the server prepares for a chat body (None: unconstrained).
fn chat_grammar(state: &AppState, body: Value) -> Option<CompiledGrammar> {
    let req = serde_json::from_value(body.clone()).unwrap();
    let fields = serde_json::from_value(body).unwrap();
    let valid = chat::validate(state, req, fields).unwrap();
    chat::prepare(state, &valid).unwrap().grammar
}

fn auto_constraint(parallel: bool) -> LlgConstraint {
    let body = json!({"messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": weather_tools(), "tool_choice": "auto", "parallel_tool_calls": parallel});
    let grammar = chat_grammar(&state(ServerOptions::default()), body).expect("a lazy grammar");
    grammar.constraint().unwrap()
}

/// Feeds `text`: at each step the canonical next token where the mask allows it, else the
/// token of one character. `Err(rest)` where no allowed token continues the text (checked
/// over every allowed token, so no other tokenization could go on either). `Ok`: the time
/// spent in `mask` and the steps.
fn walk(
    c: &mut LlgConstraint,
    tk: &TextTokenizer,
    text: &str,
) -> Result<(Duration, usize), String> {
    let vocab = tk.vocab_size();
    let mut rest = text;
    let (mut spent, mut steps) = (Duration::ZERO, 0);
    while !rest.is_empty() {
        let t0 = Instant::now();
        let mask = c.mask(vocab);
        spent += t0.elapsed();
        steps += 1;
        let allowed = |t: u32| mask.as_ref().is_none_or(|m| m[t as usize]);
        let canon = tk.encode(rest, false).unwrap()[0];
        let first = rest.chars().next().unwrap().to_string();
        let step = if allowed(canon) {
            Some((canon, tk.decode(&[canon], false).unwrap().len()))
        } else {
            let t = tk.encode(&first, false).unwrap()[0];
            allowed(t).then_some((t, first.len()))
        };
        let Some((tok, len)) = step else {
            let m = mask.expect("everything allowed, yet stuck");
            let fits = (0..vocab as u32).filter(|&t| m[t as usize]).find(|&t| {
                let s = tk.decode(&[t], false).unwrap_or_default();
                !s.is_empty() && (rest.starts_with(&s) || s.starts_with(rest))
            });
            assert_eq!(fits, None, "the walk missed a path at {rest:?}");
            return Err(rest.to_string());
        };
        assert!(
            c.accept(tok),
            "token {tok} allowed by the mask but rejected"
        );
        rest = &rest[len..];
    }
    Ok((spent, steps))
}

fn eos_allowed(c: &mut LlgConstraint, tk: &TextTokenizer) -> bool {
    let eos = tk.eos_token_ids()[0];
    c.mask(tk.vocab_size()).is_none_or(|m| m[eos as usize])
}

fn call(name: &str, args: &str) -> String {
    format!("<tool_call>\n{{\"name\": \"{name}\", \"arguments\": {args}}}\n</tool_call>")
}

const PARIS: &str = r#"{"city": "Paris", "unit": "celsius"}"#;

#[test]
fn text_then_valid_calls_then_the_end() {
    let tk = tokenizer();
    assert_eq!(tk.token_to_id("<tool_call>"), Some(TOOL_CALL));
    let mut c = auto_constraint(true);
    // Free text: no mask at all (the cheap path), the end of the turn allowed.
    assert!(c.mask(tk.vocab_size()).is_none());
    walk(&mut c, &tk, "Let me check <b>both</b>.\n").unwrap();
    assert!(eos_allowed(&mut c, &tk));
    let two = format!(
        "{}\n{}",
        call("get_weather", PARIS),
        call("get_time", r#"{"tz": "CET"}"#)
    );
    walk(&mut c, &tk, &two).unwrap();
    assert!(eos_allowed(&mut c, &tk), "the turn may end after the calls");
    assert!(c.accept(tk.eos_token_ids()[0]));
    assert!(c.is_finished());

    // A plain answer ends normally too.
    let mut c = auto_constraint(false);
    walk(&mut c, &tk, "Paris is sunny today.").unwrap();
    assert!(c.accept(tk.eos_token_ids()[0]) && c.is_finished());
}

#[test]
fn unknown_tools_bad_arguments_and_trailing_text_are_rejected() {
    let tk = tokenizer();
    let stuck = |parallel: bool, text: &str| {
        let mut c = auto_constraint(parallel);
        walk(&mut c, &tk, text).expect_err(text)
    };
    let open = "Sure.\n<tool_call>\n{\"name\": \"";
    assert!(stuck(true, &format!("{open}ls\", \"arguments\": {{}}}}")).starts_with("ls\""));
    let args = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"";
    let r = stuck(true, &format!("{args}required\": [\"city\"]}}}}"));
    assert!(r.starts_with("required"), "{r}");
    let r = stuck(true, &format!("{args}city\": 3, \"unit\": \"celsius\"}}}}"));
    assert!(r.starts_with('3'), "{r}");
    let r = stuck(
        true,
        &format!("{args}city\": \"Paris\", \"unit\": \"kelvin\"}}}}"),
    );
    assert!(r.starts_with("kelvin"), "{r}");
    // After a call: only another call (parallel) or the end; no junk, no text.
    let done = call("get_weather", PARIS);
    assert_eq!(stuck(true, &format!("{done}}}\n")), "}\n");
    assert_eq!(stuck(true, &format!("{done}\n<tools>")), "<tools>");
    assert_eq!(
        stuck(false, &format!("{done}\n{done}")),
        format!("\n{done}")
    );
    let mut c = auto_constraint(false);
    walk(&mut c, &tk, &done).unwrap();
    let mask = c.mask(tk.vocab_size()).unwrap();
    let allowed: Vec<u32> = (0..mask.len() as u32)
        .filter(|&t| mask[t as usize])
        .collect();
    assert!(
        allowed.iter().all(|t| tk.eos_token_ids().contains(t)),
        "only the end: {allowed:?}"
    );
}

#[test]
fn off_switch_and_response_format_leave_no_lazy_grammar() {
    let tk = tokenizer();
    let body = json!({"messages": [{"role": "user", "content": "hi"}], "tools": weather_tools()});
    let off = ServerOptions {
        tool_call_grammar: false,
        ..ServerOptions::default()
    };
    assert!(chat_grammar(&state(off), body.clone()).is_none());
    let mut with_json = body.clone();
    with_json["response_format"] = json!({"type": "json_object"});
    let mut c = chat_grammar(&state(ServerOptions::default()), with_json)
        .unwrap()
        .constraint()
        .unwrap();
    let mask = c.mask(tk.vocab_size()).unwrap();
    assert!(
        !mask[TOOL_CALL as usize],
        "response_format: the JSON answer only"
    );
    // Forced calls keep their grammar: no free text.
    let mut forced = body;
    forced["tool_choice"] = json!("required");
    let mut c = chat_grammar(&state(ServerOptions::default()), forced)
        .unwrap()
        .constraint()
        .unwrap();
    assert!(walk(&mut c, &tk, "Sure.").is_err());
}

/// Codex CLI's real tool set (9 tools, a namespace) plus a custom tool, through /v1/responses
/// validation: compile time and per-token mask cost are printed (`--nocapture`).
#[test]
fn codex_tool_set_compiles_and_masks_cheaply() {
    let tk = tokenizer();
    let mut tools: Vec<Value> =
        serde_json::from_str(include_str!("fixtures/codex_tools.json")).unwrap();
    tools.push(json!({"type": "custom", "name": "apply_patch", "description": "Patch files."}));
    let body = json!({"model": "qwen2.5-coder-0.5b-instruct", "input": "List the files.",
        "tools": tools, "tool_choice": "auto", "parallel_tool_calls": true});
    let st = state(ServerOptions::default());
    let _ = st.grammar_compiler().unwrap(); // the token trie, built once per server
    let valid = responses::validate(&st, &body).unwrap();
    let t0 = Instant::now();
    let grammar = chat::prepare(&st, &valid.chat).unwrap().grammar.unwrap();
    let prepare_ms = t0.elapsed().as_secs_f64() * 1e3;
    let t0 = Instant::now();
    let mut c = grammar.constraint().unwrap();
    let constraint_ms = t0.elapsed().as_secs_f64() * 1e3;

    let vocab = engine().info().spec.vocab_size; // the logits row (padded past the tokenizer)
    let free = "I will look at the files in the current directory first, then answer. ";
    let ids = tk.encode(free, false).unwrap();
    let t0 = Instant::now();
    for &t in &ids {
        assert!(c.mask(vocab).is_none_or(|m| m[t as usize]));
        assert!(c.accept(t));
    }
    let free_us = t0.elapsed().as_secs_f64() * 1e6 / ids.len() as f64;
    let calls = [
        call("exec_command", r#"{"cmd": "ls -la", "workdir": "."}"#),
        call("multi_agent_v1__close_agent", r#"{"target": "a1"}"#),
        call(
            "apply_patch",
            r#"{"input": "*** Begin Patch\n*** End Patch"}"#,
        ),
    ];
    let (spent, steps) = walk(&mut c, &tk, &calls.join("\n")).unwrap();
    let call_us = spent.as_secs_f64() * 1e6 / steps as f64;
    eprintln!(
        "codex tools: prepare (template, tokenize, compile) {prepare_ms:.1} ms, constraint {constraint_ms:.1} ms, \
         mask+accept per token: free text {free_us:.0} us, mask in calls {call_us:.0} us ({steps} steps)"
    );
    let mut c = grammar.constraint().unwrap();
    let r = walk(&mut c, &tk, &call("ls", "{}")).expect_err("an unknown tool");
    assert!(r.starts_with("ls"), "{r}");
    assert!(prepare_ms < 10_000.0 && free_us < Duration::from_millis(5).as_micros() as f64);
}

/// Through the app: with tools offered and `auto`, a plain question gets a plain answer that
/// ends with the stop token, and a weather question yields either text or a valid call.
#[tokio::test]
async fn answers_through_the_app_with_tools_offered() {
    let app = lathe_server::app(state(ServerOptions::default()));
    let ask = |q: &str| {
        json!({"messages": [{"role": "user", "content": q}], "tools": weather_tools(),
            "tool_choice": "auto", "max_tokens": 96, "temperature": 0})
    };
    for q in [
        "Write a haiku about the sea.",
        "What's the weather in Paris?",
    ] {
        let req = axum::http::Request::post("/v1/chat/completions")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(ask(q).to_string()))
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        let choice = &body["choices"][0];
        eprintln!("{q} -> {}", choice["message"]);
        match choice["finish_reason"].as_str().unwrap() {
            "stop" => assert!(choice["message"]["content"]
                .as_str()
                .is_some_and(|s| !s.is_empty())),
            "tool_calls" => {
                for c in choice["message"]["tool_calls"].as_array().unwrap() {
                    let f = &c["function"];
                    let args: Value =
                        serde_json::from_str(f["arguments"].as_str().unwrap()).unwrap();
                    match f["name"].as_str().unwrap() {
                        "get_weather" => {
                            assert!(args["city"].is_string() && args["unit"].is_string())
                        }
                        "get_time" => assert!(args["tz"].is_string()),
                        other => panic!("unknown tool {other}"),
                    }
                }
            }
            other => panic!("finish_reason {other}: {body}"),
        }
    }
}
