//! SSE decoding, chunk reading, URLs and target labels.

use lathe_bench::serve::sse::{parse_chunk, Chunk, Event, SseDecoder, Usage};
use lathe_bench::serve::{targets, Target};
use lathe_bench::workload::Endpoint;

#[test]
fn decoder_survives_any_split_and_crlf() {
    let stream = b": keep-alive\r\n\r\ndata: {\"a\":1}\r\n\r\nevent: x\ndata: line1\ndata: line2\n\ndata:[DONE]\n\n";
    let want = vec![
        "{\"a\":1}".to_string(),
        "line1\nline2".into(),
        "[DONE]".into(),
    ];
    for split in 0..stream.len() {
        let mut d = SseDecoder::default();
        let mut got = d.push(&stream[..split]);
        got.extend(d.push(&stream[split..]));
        assert_eq!(got, want, "split at {split}");
        assert_eq!(d.finish(), None);
    }
    let mut d = SseDecoder::default();
    let got: Vec<String> = stream.iter().flat_map(|b| d.push(&[*b])).collect();
    assert_eq!(got, want, "byte by byte");
    let mut d = SseDecoder::default();
    assert!(d.push(b"data: {\"tail\":true}").is_empty());
    assert_eq!(
        d.finish().as_deref(),
        Some("{\"tail\":true}"),
        "unterminated last event"
    );
}

fn chunk(data: &str) -> Chunk {
    match parse_chunk(data).unwrap() {
        Event::Chunk(c) => c,
        Event::Done => panic!("done"),
    }
}

#[test]
fn chunks_are_read_like_openai_clients_do() {
    assert_eq!(parse_chunk(" [DONE] ").unwrap(), Event::Done);
    let role = chunk(r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#);
    assert_eq!(role.text, "", "role-only chunks carry no content");
    assert_eq!(
        chunk(r#"{"choices":[{"delta":{"content":"fn "}}]}"#).text,
        "fn "
    );
    assert_eq!(
        chunk(r#"{"choices":[{"delta":{"reasoning_content":"hmm"}}]}"#).text,
        "hmm"
    );
    assert_eq!(
        chunk(r#"{"choices":[{"delta":{"reasoning":"so"}}]}"#).text,
        "so"
    );
    let call =
        r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"pa"}}]}}]}"#;
    assert_eq!(chunk(call).text, "{\"pa");
    assert_eq!(
        chunk(r#"{"choices":[{"text":"x = 1","finish_reason":null}]}"#).text,
        "x = 1"
    );
    let usage = chunk(
        r#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}"#,
    );
    assert_eq!(
        (usage.text.as_str(), usage.usage),
        (
            "",
            Some(Usage {
                prompt_tokens: Some(7),
                completion_tokens: Some(3)
            })
        )
    );
    assert_eq!(
        chunk(r#"{"choices":[{"delta":{}}],"usage":null}"#).usage,
        None
    );
    let err = chunk(r#"{"error":{"message":"out of memory","code":500}}"#);
    assert_eq!(err.error.as_deref(), Some("out of memory"));
    assert!(parse_chunk("{not json").is_err());
}

#[test]
fn urls_and_labels() {
    let t = |base: &str| Target {
        label: "x".into(),
        base_url: base.into(),
        model: "m".into(),
    };
    assert_eq!(
        t("http://h:8000").url(Endpoint::Chat),
        "http://h:8000/v1/chat/completions"
    );
    assert_eq!(
        t("http://h:8000/v1/").url(Endpoint::Completions),
        "http://h:8000/v1/completions"
    );
    assert_eq!(
        t("https://h/api/v1").url(Endpoint::Chat),
        "https://h/api/v1/chat/completions"
    );

    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: lathe_bench::serve::ServeArgs,
    }
    let parse = |w: &[&str]| Cli::try_parse_from([&["b"], w].concat()).map(|c| c.args);
    let a = parse(&[
        "--base-url",
        "lathe=http://127.0.0.1:8000",
        "--base-url",
        "http://127.0.0.1:8001/v1",
        "--base-url",
        "http://127.0.0.1:8001",
        "--model",
        "q",
    ])
    .unwrap();
    let ts = targets(&a).unwrap();
    let labels: Vec<&str> = ts.iter().map(|t| t.label.as_str()).collect();
    assert_eq!(labels, ["lathe", "127.0.0.1:8001", "127.0.0.1:8001#3"]);
    assert_eq!(ts[0].base_url, "http://127.0.0.1:8000");
    assert!(ts.iter().all(|t| t.model == "q"));
    let two_models = parse(&[
        "--base-url",
        "a=http://x",
        "--base-url",
        "b=http://y",
        "--model",
        "m1",
        "--model",
        "m2",
    ])
    .unwrap();
    assert_eq!(targets(&two_models).unwrap()[1].model, "m2");
    let bad = parse(&[
        "--base-url",
        "a=http://x",
        "--base-url",
        "b=http://y",
        "--model",
        "1",
        "--model",
        "2",
        "--model",
        "3",
    ])
    .unwrap();
    assert!(targets(&bad).is_err());
    assert!(
        targets(&parse(&["--base-url", "localhost:8000", "--model", "m"]).unwrap()).is_err(),
        "needs a scheme"
    );
    assert!(parse(&[
        "--base-url",
        "http://x",
        "--model",
        "m",
        "--extra-body",
        "[1]"
    ])
    .is_err());
    assert!(parse(&[
        "--base-url",
        "http://x",
        "--model",
        "m",
        "--code-mix",
        "fim=0"
    ])
    .is_err());
}
