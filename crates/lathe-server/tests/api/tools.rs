//! Tool calls and structured output on the default (135M) model: constrained decoding makes
//! forced calls and JSON answers valid however small the model.

use serde_json::{json, Value};

use crate::common::*;

const CHAT: &str = "/v1/chat/completions";

fn weather_tools() -> Value {
    json!([
        {"type": "function", "function": {
            "name": "get_weather",
            "description": "Current weather in a city",
            "parameters": {"type": "object", "properties": {
                "city": {"type": "string", "maxLength": 24},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
            }, "required": ["city", "unit"], "additionalProperties": false}
        }},
        {"type": "function", "function": {
            "name": "get_time",
            "parameters": {"type": "object", "properties": {"tz": {"type": "string", "maxLength": 16}}, "required": ["tz"], "additionalProperties": false}
        }}
    ])
}

/// The arguments match the get_weather / get_time schemas above.
fn check_args(name: &str, args: &str) {
    let v: Value = serde_json::from_str(args)
        .unwrap_or_else(|e| panic!("arguments {args:?} do not parse: {e}"));
    let obj = v.as_object().unwrap();
    match name {
        "get_weather" => {
            assert!(obj["city"].as_str().unwrap().chars().count() <= 24);
            assert!(["celsius", "fahrenheit"].contains(&obj["unit"].as_str().unwrap()));
            assert_eq!(obj.len(), 2);
        }
        "get_time" => {
            assert!(obj["tz"].is_string());
            assert_eq!(obj.len(), 1);
        }
        other => panic!("unknown function {other}"),
    }
}

#[tokio::test]
async fn required_tool_call_is_structured_and_valid() {
    let app = app();
    let req = json!({"messages": user("What's the weather in Paris?"), "tools": weather_tools(), "tool_choice": "required", "parallel_tool_calls": false, "max_tokens": 96, "temperature": 0});
    let (status, body) = post(&app, CHAT, req).await;
    assert_eq!(status, 200, "{body}");
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{body}");
    assert!(
        choice["message"]["content"].is_null(),
        "no raw text: {body}"
    );
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["type"], "function");
    assert!(calls[0]["id"].as_str().unwrap().starts_with("call_"));
    check_args(
        calls[0]["function"]["name"].as_str().unwrap(),
        calls[0]["function"]["arguments"].as_str().unwrap(),
    );
}

#[tokio::test]
async fn named_tool_choice_calls_that_function() {
    let app = app();
    let req = json!({"messages": user("What's the weather in Paris?"), "tools": weather_tools(), "tool_choice": {"type": "function", "function": {"name": "get_time"}}, "max_tokens": 64, "temperature": 0});
    let (status, body) = post(&app, CHAT, req).await;
    assert_eq!(status, 200, "{body}");
    let call = &body["choices"][0]["message"]["tool_calls"][0]["function"];
    assert_eq!(call["name"], "get_time");
    check_args("get_time", call["arguments"].as_str().unwrap());
}

/// Streaming sends the call's id and name first, then argument fragments as they are
/// generated; assembled they parse and match the schema.
#[tokio::test]
async fn streamed_tool_call_deltas_assemble() {
    let app = app();
    let req = json!({"messages": user("Weather in Oslo?"), "tools": weather_tools(), "tool_choice": {"type": "function", "function": {"name": "get_weather"}}, "max_tokens": 96, "temperature": 0, "stream": true});
    let (status, _, bytes) = send(&app, axum::http::Method::POST, CHAT, req.to_string(), &[]).await;
    assert_eq!(status, 200);
    let chunks = sse_payloads(&bytes);
    let deltas: Vec<&Value> = chunks
        .iter()
        .flat_map(|c| {
            c["choices"][0]["delta"]["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
        })
        .collect();
    assert!(
        deltas.len() >= 3,
        "arguments must stream in fragments: {deltas:?}"
    );
    assert_eq!(deltas[0]["index"], 0);
    assert!(deltas[0]["id"].is_string());
    assert_eq!(deltas[0]["function"]["name"], "get_weather");
    assert!(deltas[1..]
        .iter()
        .all(|d| d["id"].is_null() && d["function"]["name"].is_null()));
    let args: String = deltas
        .iter()
        .filter_map(|d| d["function"]["arguments"].as_str())
        .collect();
    check_args("get_weather", &args);
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(
        content.is_empty(),
        "no raw tool-call text in content: {content:?}"
    );
    let finishes: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, vec![&json!("tool_calls")]);
}

#[tokio::test]
async fn json_schema_response_validates() {
    let app = app();
    let schema = json!({"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 20},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "pets": {"type": "array", "items": {"type": "string", "enum": ["cat", "dog"]}, "maxItems": 3}
    }, "required": ["name", "age", "pets"], "additionalProperties": false});
    let req = json!({"messages": user("Invent a person."), "max_tokens": 96, "temperature": 0,
        "response_format": {"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": true}}});
    let (status, body) = post(&app, CHAT, req).await;
    assert_eq!(status, 200, "{body}");
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    let v: Value = serde_json::from_str(content).unwrap_or_else(|e| panic!("{content:?}: {e}"));
    assert!(v["name"].as_str().unwrap().chars().count() <= 20);
    assert!((0..=150).contains(&v["age"].as_i64().unwrap()));
    assert!(v["pets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p == "cat" || p == "dog"));
    assert_eq!(v.as_object().unwrap().len(), 3);
}

#[tokio::test]
async fn json_object_response_and_invalid_schemas() {
    let app = app();
    let req = json!({"messages": user("Give me a JSON object describing a book."), "max_tokens": 64, "temperature": 0, "response_format": {"type": "json_object"}});
    let (status, body) = post(&app, CHAT, req).await;
    assert_eq!(status, 200, "{body}");
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    if body["choices"][0]["finish_reason"] == "stop" {
        assert!(
            serde_json::from_str::<Value>(content).unwrap().is_object(),
            "{content:?}"
        );
    } else {
        assert!(content.starts_with('{'), "{content:?}");
    }
    for bad in [
        json!({"type": "object", "properties": {"a": {"type": "wat"}}}),
        json!({"type": "string", "minLength": 5, "maxLength": 2}),
    ] {
        let req = json!({"messages": user("x"), "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": bad}}});
        let (status, body) = post(&app, CHAT, req).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(error_of(&body)["param"], "response_format");
    }
    let req = json!({"messages": user("x"), "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": [1]}}});
    assert_eq!(post(&app, CHAT, req).await.0, 400);
}

#[tokio::test]
async fn tool_history_goes_back_through_the_template() {
    let app = app();
    let messages = json!([
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"unit\": \"celsius\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21}"}
    ]);
    let req =
        json!({"messages": messages, "tools": weather_tools(), "max_tokens": 8, "temperature": 0});
    let (status, body) = post(&app, CHAT, req).await;
    assert_eq!(status, 200, "{body}");
    // The prompt carries the declarations, the call and the result.
    let (status, tok) = post(&app, "/tokenize", json!({"messages": messages})).await;
    assert_eq!(status, 200, "{tok}");
    let (_, text) = post(&app, "/detokenize", json!({"tokens": tok["tokens"]})).await;
    let text = text["prompt"].as_str().unwrap();
    assert!(
        text.contains("get_weather") && text.contains("\"temp\": 21"),
        "{text}"
    );
    // Tool-call ids must be unique per call; bad tool declarations are refused.
    let bad = json!([{"type": "function", "function": {"name": "has space"}}]);
    let (status, body) = post(&app, CHAT, json!({"messages": user("x"), "tools": bad})).await;
    assert_eq!(status, 400);
    assert_eq!(error_of(&body)["param"], "tools[0].function.name");
    let (status, _) = post(&app, CHAT, json!({"messages": user("x"), "tools": weather_tools(), "tool_choice": {"type": "function", "function": {"name": "nope"}}})).await;
    assert_eq!(status, 400);
}

/// The forcing grammar of every implemented format accepts two well-formed calls (the mask
/// allows each token, the constraint accepts it), then allows the end of the turn.
#[tokio::test]
async fn every_format_grammar_accepts_its_calls() {
    use lathe_engine::constraint::TokenConstraint;
    use lathe_server::constrained::GrammarCompiler;
    use lathe_server::protocol::Tool;
    use lathe_server::tool_parsers;

    let state = state_with(Default::default());
    let compiler = tokio::task::spawn_blocking({
        let state = state.clone();
        move || state.grammar_compiler().unwrap()
    })
    .await
    .unwrap();
    let info = engine().info().clone();
    let tools: Vec<Tool> = serde_json::from_value(weather_tools()).unwrap();
    let functions: Vec<_> = tools.into_iter().map(|t| t.function).collect();
    let args = r#"{"city": "Paris", "unit": "celsius"}"#;
    let call = format!(r#"{{"name": "get_weather", "arguments": {args}}}"#);
    let cases = [
        (
            "hermes",
            format!("<tool_call>\n{call}\n</tool_call>\n<tool_call>\n{call}\n</tool_call>"),
        ),
        (
            "llama3_json",
            format!(
                r#"{{"name": "get_weather", "parameters": {args}}}; {{"name": "get_time", "parameters": {{"tz": "UTC"}}}}"#
            ),
        ),
        ("mistral", format!("[TOOL_CALLS][{call}, {call}]")),
        (
            "qwen3_coder",
            "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n\
             <parameter=unit>\ncelsius\n</parameter>\n</function>\n</tool_call>\n\
             <tool_call>\n<function=get_time>\n<parameter=tz>\nUTC\n</parameter>\n</function>\n</tool_call>"
                .to_string(),
        ),
    ];
    for (name, text) in cases {
        let format = tool_parsers::format(name).unwrap();
        let lark = format.required_grammar(&functions, true, &|s| compiler.literal(s));
        let grammar = GrammarCompiler::compile(&compiler, &lark)
            .unwrap_or_else(|e| panic!("{name}: {e}\n{lark}"));
        let mut c = grammar.constraint().unwrap();
        let vocab = info.tokenizer.vocab_size();
        // Walk the text: the canonical next token where the mask allows it, else one character
        // (llguidance forces the canonical tokenization of forced text, and may refuse a token
        // that closes a lexeme and the next one at a grammar boundary).
        let tk = &info.tokenizer;
        let mut rest = text.as_str();
        while !rest.is_empty() {
            let mask = c.mask(vocab).unwrap();
            let canon = tk.encode(rest, false).unwrap()[0];
            let first = rest.chars().next().unwrap().to_string();
            let (tok, len) = if mask[canon as usize] {
                (canon, tk.decode(&[canon], false).unwrap().len())
            } else {
                (tk.encode(&first, false).unwrap()[0], first.len())
            };
            assert!(
                mask[tok as usize],
                "{name}: {:?} masked at {rest:?}",
                tk.id_to_token(tok)
            );
            assert!(c.accept(tok), "{name}: token {tok} rejected");
            rest = &rest[len..];
        }
        let eos = info.tokenizer.eos_token_ids()[0] as usize;
        assert!(
            c.mask(vocab).unwrap()[eos],
            "{name}: the turn may end after the calls"
        );
        // And the parser reads back what the grammar produced.
        let (_, calls) = tool_parsers::assemble(tool_parsers::parse_all(
            format.parser(&functions).as_mut(),
            &text,
        ));
        assert_eq!(calls.len(), 2, "{name}");
        assert!(calls
            .iter()
            .all(|c| serde_json::from_str::<Value>(&c.function.arguments).is_ok()));
    }
}

/// `--tool-call-parser qwen3_coder` on the default model: the forcing grammar makes it write
/// Qwen3-Coder's XML call, which comes back as an OpenAI tool call (arguments a JSON object of
/// the declared parameters), streamed and not streamed alike.
#[tokio::test]
async fn qwen3_coder_xml_calls_come_back_as_openai_tool_calls() {
    let engine = tokio::task::spawn_blocking(|| {
        lathe_engine::start(lathe_engine::EngineConfig {
            model: "smollm2-135m-instruct".into(),
            tool_call_parser: Some(lathe_models::registry::ToolCallFormat::Qwen3Coder),
            ..lathe_engine::EngineConfig::default()
        })
        .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(engine.info().tool_format.as_str(), "qwen3_coder");
    let app = lathe_server::app(lathe_server::AppState::new(engine, Default::default()));
    let req = json!({"messages": user("What's the weather in Paris?"), "tools": weather_tools(),
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "max_tokens": 48, "temperature": 0});
    let (status, body) = post(&app, CHAT, req.clone()).await;
    assert_eq!(status, 200, "{body}");
    let calls = body["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap();
    assert_eq!(calls.len(), 1, "{body}");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    let args = calls[0]["function"]["arguments"].as_str().unwrap();
    let parsed: Value = serde_json::from_str(args).unwrap_or_else(|e| panic!("{args}: {e}"));
    assert!(
        parsed
            .as_object()
            .unwrap()
            .keys()
            .all(|k| k == "city" || k == "unit"),
        "only declared parameters: {args}"
    );
    // Greedy, the 135M model names the city (a string parameter stays a string).
    assert_eq!(parsed["city"], "Paris", "{args}");
    assert!(body["choices"][0]["message"]["content"].is_null(), "{body}");

    let mut stream_req = req;
    stream_req["stream"] = true.into();
    let (status, _, bytes) = send(
        &app,
        axum::http::Method::POST,
        CHAT,
        stream_req.to_string(),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let chunks = sse_payloads(&bytes);
    let streamed: String = chunks
        .iter()
        .flat_map(|c| {
            c["choices"][0]["delta"]["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
        })
        .filter_map(|d| d["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        streamed, args,
        "streamed arguments equal the non-streamed ones"
    );
}
