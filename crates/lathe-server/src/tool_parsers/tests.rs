//! Parser tests: every format, fed whole and fed one character at a time (the streaming case),
//! must give the same content and calls; arguments must arrive in several fragments.

use super::*;

fn run_chunked(format: &dyn ToolFormat, text: &str, chunk: usize) -> Vec<ParseEvent> {
    let mut p = format.parser(&[]);
    let chars: Vec<char> = text.chars().collect();
    let mut ev = Vec::new();
    for piece in chars.chunks(chunk.max(1)) {
        ev.extend(p.push(&piece.iter().collect::<String>()));
    }
    ev.extend(p.finish());
    ev
}

/// Parses `text` whole and char by char; asserts both agree; returns the assembled result.
fn check(format: &dyn ToolFormat, text: &str) -> (Option<String>, Vec<(String, Value)>) {
    let whole = assemble(run_chunked(format, text, usize::MAX));
    for chunk in [1, 2, 3, 7] {
        let streamed = assemble(run_chunked(format, text, chunk));
        assert_eq!(
            whole.0, streamed.0,
            "content differs at chunk {chunk} for {text:?}"
        );
        let names = |c: &[ResponseToolCall]| {
            c.iter()
                .map(|c| (c.function.name.clone(), c.function.arguments.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(&whole.1),
            names(&streamed.1),
            "calls differ at chunk {chunk} for {text:?}"
        );
    }
    let calls = whole
        .1
        .iter()
        .map(|c| {
            let args: Value = serde_json::from_str(&c.function.arguments).unwrap_or_else(|e| {
                panic!("arguments {:?} do not parse: {e}", c.function.arguments)
            });
            (c.function.name.clone(), args)
        })
        .collect();
    (whole.0, calls)
}

fn arg_fragments(format: &dyn ToolFormat, text: &str) -> usize {
    run_chunked(format, text, 1)
        .iter()
        .filter(|e| matches!(e, ParseEvent::CallArgs { .. }))
        .count()
}

#[test]
fn hermes_single_and_parallel_calls() {
    let f = format("hermes").unwrap();
    let text = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 3}}\n</tool_call>";
    let (content, calls) = check(f, text);
    assert_eq!(content, None);
    assert_eq!(
        calls,
        vec![(
            "get_weather".into(),
            serde_json::json!({"city": "Paris", "days": 3})
        )]
    );
    assert!(
        arg_fragments(f, text) > 3,
        "arguments must stream in fragments"
    );

    let two = format!("Let me check.\n{text}\n{text}");
    let (content, calls) = check(f, &two);
    assert_eq!(content.as_deref(), Some("Let me check."));
    assert_eq!(calls.len(), 2);
}

#[test]
fn hermes_plain_text_and_broken_calls() {
    let f = format("hermes").unwrap();
    let (content, calls) = check(f, "Hello <b>world</b> a < b");
    assert_eq!(content.as_deref(), Some("Hello <b>world</b> a < b"));
    assert!(calls.is_empty());
    // Not JSON after the tag: shown as text, never lost.
    let (content, calls) = check(f, "<tool_call>oops</tool_call>");
    assert!(calls.is_empty());
    assert_eq!(content.as_deref(), Some("<tool_call>oops</tool_call>"));
    // Name after arguments, arguments as a JSON string, missing closing tag.
    let (_, calls) = check(
        f,
        "<tool_call>{\"arguments\": \"{\\\"x\\\": 1}\", \"name\": \"f\"}",
    );
    assert_eq!(calls, vec![("f".into(), serde_json::json!({"x": 1}))]);
    // No arguments at all.
    let (_, calls) = check(f, "<tool_call>{\"name\": \"now\"}</tool_call>");
    assert_eq!(calls, vec![("now".into(), serde_json::json!({}))]);
}

#[test]
fn hermes_takes_a_fenced_json_call_as_a_call() {
    // What Qwen2.5-Coder-0.5B-Instruct writes when offered tools by its template.
    let f = format("hermes").unwrap();
    let text = "```json\n{\n  \"name\": \"get_weather\",\n  \"arguments\": {\n    \"city\": \"Paris\",\n    \"unit\": \"celsius\"\n  }\n}\n```";
    let (content, calls) = check(f, text);
    assert_eq!(content, None);
    assert_eq!(
        calls,
        vec![(
            "get_weather".into(),
            serde_json::json!({"city": "Paris", "unit": "celsius"})
        )]
    );
    // A fenced block that is not a call, and other fences, stay text.
    for text in [
        "```json\n[1, 2, 3]\n```",
        "```json\n{\"a\": 1}\n```",
        "```python\nprint(1)\n```",
    ] {
        let (content, calls) = check(f, text);
        assert!(calls.is_empty(), "{text:?}: {calls:?}");
        assert_eq!(content.as_deref(), Some(text));
    }
}

#[test]
fn hermes_takes_a_bare_json_call_as_a_call() {
    // What Qwen2.5-Coder-0.5B-Instruct writes after a tool result (Codex's second turn).
    let f = format("hermes").unwrap();
    let text = "{\"name\": \"exec_command\", \"arguments\": {\"cmd\": \"ls -la\"}}\n{ \"name\": \"exec_command\", \"arguments\": {\"cmd\": \"cat a.py\"}}";
    let (content, calls) = check(f, text);
    assert_eq!(content, None);
    assert_eq!(
        calls,
        vec![
            ("exec_command".into(), serde_json::json!({"cmd": "ls -la"})),
            (
                "exec_command".into(),
                serde_json::json!({"cmd": "cat a.py"})
            ),
        ]
    );
    // Text before a bare call stays content.
    let (content, calls) = check(f, "Let me look.\n{\"name\": \"ls\", \"arguments\": {}}");
    assert_eq!(content.as_deref(), Some("Let me look."));
    assert_eq!(calls, vec![("ls".into(), serde_json::json!({}))]);
    // Objects that are not calls, and braces in prose or code, stay text.
    for text in [
        "{\"a\": 1, \"name\": \"x\"}",
        "use {a, b};",
        "fn main() { println!(\"{}\", 1) }",
        "a dict: {\"nam\": 2}",
    ] {
        let (content, calls) = check(f, text);
        assert!(calls.is_empty(), "{text:?}: {calls:?}");
        assert_eq!(content.as_deref(), Some(text));
    }
}

#[test]
fn one_call_limit_keeps_the_first_call_and_cuts_at_the_second() {
    let f = format("hermes").unwrap();
    let text = "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": 1}}\n</tool_call>\n<tool_call>\n{\"name\": \"b\", \"arguments\": {}}\n</tool_call>";
    for chunk in [1, 3, usize::MAX] {
        let mut p = f.parser(&[]);
        let mut limit = OneCallLimit::default();
        let mut kept = Vec::new();
        let mut cuts = 0;
        let chars: Vec<char> = text.chars().collect();
        for piece in chars.chunks(chunk.min(chars.len())) {
            let mut ev = p.push(&piece.iter().collect::<String>());
            cuts += usize::from(limit.apply(&mut ev));
            kept.extend(ev);
        }
        assert!(limit.is_cut(), "chunk {chunk}");
        assert_eq!(cuts, 1);
        let (_, calls) = assemble(kept);
        assert_eq!(calls.len(), 1, "chunk {chunk}: {calls:?}");
        assert_eq!(calls[0].function.name, "a");
        assert_eq!(calls[0].function.arguments.replace(' ', ""), "{\"x\":1}");
    }
    // One call only: nothing is cut.
    let mut limit = OneCallLimit::default();
    let mut ev = parse_all(
        f.parser(&[]).as_mut(),
        "<tool_call>{\"name\": \"a\"}</tool_call>",
    );
    assert!(!limit.apply(&mut ev));
    assert_eq!(assemble(ev).1.len(), 1);
}

#[test]
fn llama3_json_calls() {
    let f = format("llama3_json").unwrap();
    let text = "<|python_tag|>{\"name\": \"search\", \"parameters\": {\"q\": \"rust {braces} \\\"quoted\\\"\"}}; {\"name\": \"now\", \"parameters\": {}}";
    let (content, calls) = check(f, text);
    assert_eq!(content, None);
    assert_eq!(
        calls[0],
        (
            "search".into(),
            serde_json::json!({"q": "rust {braces} \"quoted\""})
        )
    );
    assert_eq!(calls[1], ("now".into(), serde_json::json!({})));
    let (content, calls) = check(f, "The answer is {not a call}");
    assert!(calls.is_empty());
    assert_eq!(content.as_deref(), Some("The answer is {not a call}"));
}

#[test]
fn mistral_array_and_named_calls() {
    let f = format("mistral").unwrap();
    let text = "[TOOL_CALLS] [{\"name\": \"a\", \"arguments\": {\"n\": [1, 2]}}, {\"name\": \"b\", \"arguments\": {}}]";
    let (content, calls) = check(f, text);
    assert_eq!(content, None);
    assert_eq!(
        calls,
        vec![
            ("a".into(), serde_json::json!({"n": [1, 2]})),
            ("b".into(), serde_json::json!({}))
        ]
    );
    let (_, calls) = check(
        f,
        "Sure.[TOOL_CALLS]get_time[ARGS]{\"tz\": \"UTC\"}[TOOL_CALLS]b{\"x\": true}",
    );
    assert_eq!(
        calls,
        vec![
            ("get_time".into(), serde_json::json!({"tz": "UTC"})),
            ("b".into(), serde_json::json!({"x": true}))
        ]
    );
}

#[test]
fn call_ids_are_unique_and_indices_sequential() {
    let f = format("hermes").unwrap();
    let one = "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>";
    let ev = run_chunked(f, &format!("{one}{one}{one}"), 4);
    let starts: Vec<(usize, String)> = ev
        .iter()
        .filter_map(|e| match e {
            ParseEvent::CallStart { index, id, .. } => Some((*index, id.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        starts.iter().map(|s| s.0).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    let ids: std::collections::HashSet<_> = starts.iter().map(|s| &s.1).collect();
    assert_eq!(ids.len(), 3);
}

#[test]
fn rendered_calls_parse_back() {
    for name in IMPLEMENTED {
        let f = format(name).unwrap();
        let calls = vec![
            ("f".to_string(), serde_json::json!({"a": 1})),
            ("g".to_string(), serde_json::json!({})),
        ];
        let text = f.render_calls(&calls);
        let (_, parsed) = check(f, &text);
        assert_eq!(parsed, calls, "{name}: {text}");
    }
}

/// A vocabulary for grammar text: Qwen2.5's ids for the hermes tags (not special, so quoted
/// as literals), `[TOOL_CALLS]` as a special token, `[ARGS]` only when `v11`.
struct FakeVocab {
    hermes_tags: bool,
    v11: bool,
}

impl super::GrammarVocab for FakeVocab {
    fn literal(&self, text: &str) -> String {
        match text {
            "[TOOL_CALLS]" => "<[5]>".into(),
            _ => crate::constrained::lark_string(text),
        }
    }

    fn single_token(&self, text: &str) -> Option<u32> {
        match text {
            "<tool_call>" if self.hermes_tags => Some(151657),
            "</tool_call>" if self.hermes_tags => Some(151658),
            "[TOOL_CALLS]" => Some(5),
            "[ARGS]" if self.v11 => Some(32),
            _ => None,
        }
    }

    fn end_tokens(&self) -> &[u32] {
        &[151645, 151643]
    }
}

fn one_tool() -> Vec<crate::protocol::FunctionDef> {
    serde_json::from_value(serde_json::json!([{"name": "f", "parameters": {"type": "object"}}]))
        .unwrap()
}

const QWEN: FakeVocab = FakeVocab {
    hermes_tags: true,
    v11: false,
};

#[test]
fn hermes_auto_grammar_is_free_text_then_calls_then_the_end() {
    let f = format("hermes").unwrap();
    let g = f.auto_grammar(&one_tool(), true, &QWEN).unwrap();
    let args = crate::constrained::json_rule(&serde_json::json!({"type": "object"})).unwrap();
    let want = format!(
        "start: free tail?\n\
         free: <[^151657,151645,151643]>*\n\
         tail: call (\"\\n\" call)*\n\
         call: call_0\n\
         call_0: <[151657]> \"\\n\" \"{{\\\"name\\\": \\\"f\\\", \\\"arguments\\\": \" args_0 \"}}\" \"\\n\" \"</tool_call>\"\n\
         args_0: {args}\n"
    );
    assert_eq!(g, want);
    let one = f.auto_grammar(&one_tool(), false, &QWEN).unwrap();
    assert!(one.contains("\ntail: call\n"), "{one}");
}

#[test]
fn auto_grammar_needs_a_single_token_marker() {
    let no_tags = FakeVocab {
        hermes_tags: false,
        v11: false,
    };
    let tools = one_tool();
    assert_eq!(
        format("hermes")
            .unwrap()
            .auto_grammar(&tools, true, &no_tags),
        None
    );
    // llama3_json calls start with plain `{`: never lazily constrained.
    assert_eq!(
        format("llama3_json")
            .unwrap()
            .auto_grammar(&tools, true, &QWEN),
        None
    );
    let mistral = format("mistral").unwrap();
    let g = mistral.auto_grammar(&tools, true, &QWEN).unwrap();
    assert!(
        g.starts_with("start: free tail?\nfree: <[^5,151645,151643]>*\n"),
        "{g}"
    );
    assert!(
        g.contains("\ntail: <[5]> \"[\" call (\", \" call)* \"]\"\n"),
        "{g}"
    );
    // Tokenizer v11+ (`[ARGS]` is a token) writes `name[ARGS]{…}`, not the array.
    let v11 = FakeVocab {
        hermes_tags: true,
        v11: true,
    };
    assert_eq!(mistral.auto_grammar(&tools, true, &v11), None);
}
