//! Qwen3-Coder parser tests: typed values, every chunking agrees with the whole text, and
//! malformed calls come back as content.

use serde_json::{json, Value};

use super::*;
use crate::tool_parsers::{assemble, format, GrammarVocab, ParseEvent, ToolFormat};

fn tools() -> Vec<FunctionDef> {
    serde_json::from_value(json!([
        {"name": "get_weather", "parameters": {"type": "object", "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer"},
            "scale": {"type": "number"},
            "metric": {"type": "boolean"},
            "hours": {"type": "array", "items": {"type": "integer"}},
            "opts": {"type": "object"},
            "note": {"type": ["string", "null"]},
            "zip": {"anyOf": [{"type": "null"}, {"type": "integer"}]}
        }, "required": ["city"]}},
        {"name": "now", "parameters": {"type": "object", "properties": {}}},
        {"name": "free"}
    ]))
    .unwrap()
}

fn fmt() -> &'static dyn ToolFormat {
    format("qwen3_coder").unwrap()
}

/// Content and (name, arguments text) of the assembled events.
type Outcome = (Option<String>, Vec<(String, String)>);

fn outcome(events: Vec<ParseEvent>) -> Outcome {
    let (content, calls) = assemble(events);
    let calls = calls
        .into_iter()
        .map(|c| (c.function.name, c.function.arguments))
        .collect();
    (content, calls)
}

fn run_pieces(pieces: &[&str]) -> Vec<ParseEvent> {
    let mut p = fmt().parser(&tools());
    let mut ev = Vec::new();
    for piece in pieces {
        ev.extend(p.push(piece));
    }
    ev.extend(p.finish());
    ev
}

/// Char-boundary offsets of `text`, 0 and len included.
fn boundaries(text: &str) -> Vec<usize> {
    (0..=text.len())
        .filter(|&i| text.is_char_boundary(i))
        .collect()
}

/// Parses `text` whole, split in two at every char boundary, char by char and in random
/// chunks; asserts all agree and every call's arguments are a JSON object. Returns the result
/// with arguments parsed.
fn check(text: &str) -> (Option<String>, Vec<(String, Value)>) {
    let whole = outcome(run_pieces(&[text]));
    for &i in &boundaries(text) {
        let split = outcome(run_pieces(&[&text[..i], &text[i..]]));
        assert_eq!(whole, split, "split at {i} of {text:?}");
    }
    let chars: Vec<String> = text.chars().map(String::from).collect();
    let chars: Vec<&str> = chars.iter().map(String::as_str).collect();
    assert_eq!(whole, outcome(run_pieces(&chars)), "char by char: {text:?}");
    let cuts = boundaries(text);
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15 ^ text.len() as u64;
    for round in 0..20 {
        let mut pieces = Vec::new();
        let mut at = 0;
        while at < text.len() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let step = (seed % 9) as usize;
            let next = cuts
                .iter()
                .copied()
                .find(|&c| c >= at + step && c > at)
                .unwrap_or(text.len());
            pieces.push(&text[at..next]);
            at = next;
        }
        assert_eq!(
            whole,
            outcome(run_pieces(&pieces)),
            "random chunking {round} {pieces:?}"
        );
    }
    let calls = whole
        .1
        .into_iter()
        .map(|(name, args)| {
            let v: Value = serde_json::from_str(&args)
                .unwrap_or_else(|e| panic!("arguments {args:?} of {text:?} do not parse: {e}"));
            assert!(v.is_object(), "{args}");
            (name, v)
        })
        .collect();
    (whole.0, calls)
}

const WEATHER: &str = "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=days>\n3\n</parameter>\n</function>\n</tool_call>";

#[test]
fn one_call_streams_a_fragment_per_parameter() {
    let (content, calls) = check(WEATHER);
    assert_eq!(content, None);
    assert_eq!(
        calls,
        vec![("get_weather".into(), json!({"city": "Paris", "days": 3}))]
    );
    let ev = run_pieces(&[WEATHER]);
    let frags: Vec<&str> = ev
        .iter()
        .filter_map(|e| match e {
            ParseEvent::CallArgs { fragment, .. } => Some(fragment.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(frags, vec!["{\"city\": \"Paris\"", ", \"days\": 3", "}"]);
    assert!(
        matches!(&ev[0], ParseEvent::CallStart { index: 0, name, .. } if name == "get_weather")
    );
}

#[test]
fn values_are_typed_by_the_schema() {
    let text = "<tool_call>\n<function=get_weather>\n\
        <parameter=city>\n  New York \n</parameter>\n\
        <parameter=days>\n007\n</parameter>\n\
        <parameter=scale>\n2.5\n</parameter>\n\
        <parameter=metric>\nTrue\n</parameter>\n\
        <parameter=hours>\n[1, 2]\n</parameter>\n\
        <parameter=opts>\n{'deep': True, 'x': None, 'say': \"it's\"}\n</parameter>\n\
        <parameter=note>\nnull\n</parameter>\n\
        <parameter=zip>\n75001\n</parameter>\n\
        <parameter=extra>\n{\"a\": 1}\n</parameter>\n\
        <parameter=extra2>\nplain words\n</parameter>\n\
        </function>\n</tool_call>";
    let (_, calls) = check(text);
    assert_eq!(
        calls[0].1,
        json!({
            "city": "  New York ", "days": 7, "scale": 2.5, "metric": true, "hours": [1, 2],
            "opts": {"deep": true, "x": null, "say": "it's"}, "note": "null", "zip": 75001,
            "extra": {"a": 1}, "extra2": "plain words"
        })
    );
    // Values that do not parse as their type stay text.
    let text = "<tool_call>\n<function=get_weather>\n<parameter=days>\nthree\n</parameter>\n\
        <parameter=metric>\nyes\n</parameter>\n<parameter=hours>\n[1, 2\n</parameter>\n\
        <parameter=scale>\nnull\n</parameter>\n</function>\n</tool_call>";
    let (_, calls) = check(text);
    assert_eq!(
        calls[0].1,
        json!({"days": "three", "metric": "yes", "hours": "[1, 2", "scale": null})
    );
}

#[test]
fn convert_by_type() {
    assert_eq!(convert("42", Some("integer")), json!(42));
    assert_eq!(convert("-4.0", Some("integer")), json!("-4.0"));
    assert_eq!(convert("4.0", Some("number")), json!(4.0));
    assert_eq!(convert("4", Some("number")), json!(4));
    assert_eq!(convert("1e3", Some("number")), json!(1000.0));
    assert_eq!(convert("FALSE", Some("boolean")), json!(false));
    assert_eq!(convert("42", Some("string")), json!("42"));
    assert_eq!(convert("42", None), json!(42));
    assert_eq!(convert("\"q\"", None), json!("q"));
    assert_eq!(convert("hi there", None), json!("hi there"));
    assert_eq!(convert("(1, 2)", Some("array")), json!([1, 2]));
    assert_eq!(convert("[1, x]", Some("array")), json!("[1, x]"));
    // Multi-line text keeps its inner newlines; only one leading/trailing one is stripped.
    assert_eq!(strip_newlines("\n\nline\n\n"), "\nline\n");
}

#[test]
fn text_before_and_two_calls_in_a_row() {
    let now = "<tool_call>\n<function=now>\n</function>\n</tool_call>";
    let text = format!("Let me check.\n\n{WEATHER}\n{now}\n");
    let (content, calls) = check(&text);
    assert_eq!(content.as_deref(), Some("Let me check."));
    assert_eq!(
        calls,
        vec![
            ("get_weather".into(), json!({"city": "Paris", "days": 3})),
            ("now".into(), json!({}))
        ]
    );
    // Two functions inside one <tool_call>, and indices stay sequential.
    let text = "<tool_call>\n<function=now>\n</function>\n<function=free>\n<parameter=q>\nx\n</parameter>\n</function>\n</tool_call>";
    let (_, calls) = check(text);
    assert_eq!(
        calls,
        vec![
            ("now".into(), json!({})),
            ("free".into(), json!({"q": "x"}))
        ]
    );
    let starts: Vec<usize> = run_pieces(&[text])
        .iter()
        .filter_map(|e| match e {
            ParseEvent::CallStart { index, .. } => Some(*index),
            _ => None,
        })
        .collect();
    assert_eq!(starts, vec![0, 1]);
}

#[test]
fn multi_line_values_and_markup_inside_values() {
    let text = "<tool_call>\n<function=free>\n<parameter=code>\nfn main() {\n    if a < b && c > d { println!(\"<tool_call>\"); }\n}\n\n</parameter>\n</function>\n</tool_call>";
    let (_, calls) = check(text);
    assert_eq!(
        calls[0].1,
        json!({"code": "fn main() {\n    if a < b && c > d { println!(\"<tool_call>\"); }\n}\n"})
    );
}

#[test]
fn plain_text_and_malformed_calls_are_content() {
    for text in [
        "Hello <b>world</b> a < b, x<tool y",
        "<tool_call>oops</tool_call>",
        "<tool_call>\n<function=get_weather",
        "<tool_call>\n<function=bad\nname>\n</function>\n</tool_call>",
        "<tool_call>\n<function=>\n</function>\n</tool_call>",
        "<tool_call>\n{\"name\": \"f\"}\n</tool_call>",
        "text <tool_call>",
        "<tool_call>\n<func",
        "<tool_call></tool_call>",
    ] {
        let (content, calls) = check(text);
        assert!(calls.is_empty(), "{text:?}: {calls:?}");
        assert_eq!(content.as_deref(), Some(text), "{text:?}");
    }
}

#[test]
fn calls_cut_off_are_closed_with_what_they_have() {
    // `<parameter=` never closed: the value runs to `</function>`.
    let (_, calls) = check(
        "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</function>\n</tool_call>",
    );
    assert_eq!(
        calls,
        vec![("get_weather".into(), json!({"city": "Paris"}))]
    );
    // The text ends inside a value, inside a tag, or after the function name.
    for (text, args) in [
        (
            "<tool_call>\n<function=get_weather>\n<parameter=city>\nPar",
            json!({"city": "Par"}),
        ),
        (
            "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</param",
            json!({"city": "Paris"}),
        ),
        (
            "<tool_call>\n<function=get_weather>\n<parameter=ci",
            json!({}),
        ),
        ("<tool_call>\n<function=get_weather>", json!({})),
        (
            "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</func",
            json!({"city": "Paris"}),
        ),
        (
            "<tool_call>\n<function=get_weather>\ngarbage\n<parameter=bad\nname>\n</function>",
            json!({}),
        ),
    ] {
        let (content, calls) = check(text);
        assert_eq!(content, None, "{text:?}");
        assert_eq!(calls, vec![("get_weather".into(), args)], "{text:?}");
    }
    // Text after a complete call that is not a tag stays content.
    let (content, calls) = check(&WEATHER.replace("\n</tool_call>", "\nDone."));
    assert_eq!(content.as_deref(), Some("Done."));
    assert_eq!(calls.len(), 1);
}

#[test]
fn every_prefix_of_a_call_is_safe() {
    // Whatever the model stops at, the parser never panics and arguments stay JSON.
    let text = format!("Sure: {WEATHER}\n{WEATHER}");
    for &i in &boundaries(&text) {
        let (_, calls) = outcome(run_pieces(&[&text[..i]]));
        for (_, args) in calls {
            let v: Value =
                serde_json::from_str(&args).unwrap_or_else(|e| panic!("{args:?} at {i}: {e}"));
            assert!(v.is_object());
        }
    }
}

#[test]
fn rendered_calls_parse_back_with_types() {
    let calls = vec![
        (
            "get_weather".to_string(),
            json!({"city": "Paris", "days": 3, "metric": false, "hours": [1, 2]}),
        ),
        ("now".to_string(), json!({})),
    ];
    let text = fmt().render_calls(&calls);
    assert!(
        text.starts_with(
            "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n"
        ),
        "{text}"
    );
    let (_, parsed) = check(&text);
    assert_eq!(parsed, calls);
}

#[test]
fn system_prompt_lists_the_tools_and_the_format() {
    let decls = vec![
        json!({"type": "function", "function": {"name": "get_weather",
        "description": "Weather.", "parameters": {"type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}}, "required": ["city"]}}}),
    ];
    let p = fmt().system_prompt(&decls);
    assert!(p.starts_with("# Tools\n"), "{p}");
    assert!(p.contains("<tools>\n<function>\n<name>get_weather</name>\n<description>Weather.</description>\n<parameters>\n<parameter>\n<name>city</name>\n<type>string</type>\n<description>City name</description>\n</parameter>\n<required>[\"city\"]</required>\n</parameters>\n</function>\n</tools>"), "{p}");
    assert!(p.contains("If you choose to call a function ONLY reply in the following format"));
}

/// Feeds `text` as bytes to the compiled grammar; whether all were accepted and the grammar
/// may end there.
fn grammar_accepts(lark: &str, text: &str) -> bool {
    use llguidance::api::TopLevelGrammar;
    use llguidance::{Matcher, ParserFactory};
    let env = toktrie::ApproximateTokEnv::single_byte_env();
    let mut factory = ParserFactory::new_simple(&env).unwrap();
    factory.quiet();
    let parser = factory
        .create_parser(TopLevelGrammar::from_lark(lark.to_string()))
        .unwrap_or_else(|e| panic!("the grammar does not compile: {e}\n{lark}"));
    let mut m = Matcher::new(Ok(parser));
    assert!(m.get_error().is_none(), "{:?}\n{lark}", m.get_error());
    let bytes: Vec<u32> = text.bytes().map(u32::from).collect();
    let n = m.try_consume_tokens(&bytes).unwrap();
    n == bytes.len() && m.is_accepting().unwrap()
}

#[test]
fn required_grammar_allows_only_calls_to_the_tools() {
    let tools = tools();
    let lit = |s: &str| crate::constrained::lark_string(s);
    let lark = fmt().required_grammar(&tools, true, &lit);
    let now = "<tool_call>\n<function=now>\n</function>\n</tool_call>";
    let free = "<tool_call>\n<function=free>\n<parameter=anything>\nx < y\n</parameter>\n</function>\n</tool_call>";
    assert!(grammar_accepts(&lark, WEATHER), "{lark}");
    assert!(grammar_accepts(&lark, &format!("{WEATHER}\n{now}\n{free}")));
    for bad in [
        "<tool_call>\n<function=unknown>\n</function>\n</tool_call>",
        "<tool_call>\n<function=get_weather>\n<parameter=town>\nParis\n</parameter>\n</function>\n</tool_call>",
        "<tool_call>\n<function=now>\n<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>",
        "Sure. <tool_call>\n<function=now>\n</function>\n</tool_call>",
        "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>",
    ] {
        assert!(!grammar_accepts(&lark, bad), "accepted {bad:?}");
    }
    // One call only without parallel calls.
    let one = fmt().required_grammar(&tools, false, &lit);
    assert!(grammar_accepts(&one, now));
    assert!(!grammar_accepts(&one, &format!("{now}\n{now}")));
    // What the grammar produces parses back.
    let (_, calls) = check(&format!("{WEATHER}\n{now}\n{free}"));
    assert_eq!(calls.len(), 3);
}

/// The single-byte test vocabulary of toktrie, with `<tool_call>` as its special token 256
/// and 261 as the end of the turn.
struct ByteVocab;

impl GrammarVocab for ByteVocab {
    fn literal(&self, text: &str) -> String {
        lark_string(text)
    }

    fn single_token(&self, text: &str) -> Option<u32> {
        (text == OPEN).then_some(256)
    }

    fn end_tokens(&self) -> &[u32] {
        &[261]
    }
}

#[test]
fn auto_grammar_is_free_text_then_only_valid_calls() {
    use llguidance::api::TopLevelGrammar;
    use llguidance::{Matcher, ParserFactory};
    let lark = fmt().auto_grammar(&tools(), true, &ByteVocab).unwrap();
    assert!(lark.starts_with("start: free tail?\nfree: <[^256,261]>*\ntail: call (\"\\n\" call)*\ncall: <[256]> \"\\n\" function"), "{lark}");
    let env = toktrie::ApproximateTokEnv::single_byte_env();
    let factory = ParserFactory::new_simple(&env).unwrap();
    let run = |free: &str, call: &str| -> bool {
        let parser = factory
            .create_parser(TopLevelGrammar::from_lark(lark.clone()))
            .unwrap_or_else(|e| panic!("{e}\n{lark}"));
        let mut m = Matcher::new(Ok(parser));
        let mut toks: Vec<u32> = free.bytes().map(u32::from).collect();
        toks.push(256);
        toks.extend(call.bytes().map(u32::from));
        m.try_consume_tokens(&toks).unwrap() == toks.len()
    };
    let call = "\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>";
    assert!(run("Let me look.\n", call));
    assert!(!run(
        "Let me look.\n",
        "\n<function=unknown>\n</function>\n</tool_call>"
    ));
    // A vocabulary without a `<tool_call>` token gets no lazy grammar.
    struct NoTag;
    impl GrammarVocab for NoTag {
        fn literal(&self, text: &str) -> String {
            lark_string(text)
        }
        fn single_token(&self, _: &str) -> Option<u32> {
            None
        }
        fn end_tokens(&self) -> &[u32] {
            &[0]
        }
    }
    assert_eq!(fmt().auto_grammar(&tools(), true, &NoTag), None);
}

#[test]
fn a_long_value_pushed_a_char_at_a_time() {
    // Each push searches only the new text for `</parameter>` (this would be quadratic).
    let body = "line <with> </param tags\n".repeat(8000);
    let text = format!("<tool_call>\n<function=free>\n<parameter=content>\n{body}\n</parameter>\n</function>\n</tool_call>");
    let mut p = fmt().parser(&tools());
    let mut ev = Vec::new();
    let mut buf = [0u8; 4];
    for c in text.chars() {
        ev.extend(p.push(c.encode_utf8(&mut buf)));
    }
    ev.extend(p.finish());
    let (_, calls) = outcome(ev);
    let args: Value = serde_json::from_str(&calls[0].1).unwrap();
    assert_eq!(args, json!({"content": body}));
}
