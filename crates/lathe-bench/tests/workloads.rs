//! The workloads produce what they claim.

use std::sync::Arc;

use lathe_bench::serve::{BenchClient, ClientOptions};
use lathe_bench::tokens::{ChunkCounter, TokenCounter};
use lathe_bench::workload::{
    build, parse_sharegpt, CodeMix, Endpoint, Lengths, Message, Payload, RequestSpec,
    WorkloadConfig, WorkloadKind,
};

fn counter() -> Arc<dyn TokenCounter> {
    Arc::new(ChunkCounter)
}

fn cfg(kind: WorkloadKind, endpoint: Endpoint) -> WorkloadConfig {
    WorkloadConfig {
        kind,
        endpoint,
        seed: 1,
        lengths: Lengths {
            input_len: 256,
            output_len: 32,
            range_ratio: 0.0,
            max_tokens: None,
        },
        code_mix: CodeMix::default(),
        dataset: None,
        turns: 4,
    }
}

fn specs(c: &WorkloadConfig, n: usize) -> Vec<RequestSpec> {
    let mut w = build(c, counter()).unwrap();
    (0..n)
        .map(|_| w.next_conversation().next_request(None).unwrap())
        .collect()
}

fn messages(spec: &RequestSpec) -> &[Message] {
    match &spec.payload {
        Payload::Chat { messages } => messages,
        other => panic!("not chat: {other:?}"),
    }
}

#[test]
fn random_prompts_have_the_asked_lengths_and_follow_the_seed() {
    let c = cfg(WorkloadKind::Random, Endpoint::Chat);
    let a = specs(&c, 20);
    for s in &a {
        assert_eq!(s.prompt_tokens, 256);
        assert_eq!(messages(s)[0].content.split(' ').count(), 256);
        assert_eq!((s.max_tokens, s.kind), (32, "random"));
    }
    assert_eq!(a, specs(&c, 20), "same seed, same prompts");
    assert_ne!(
        a,
        specs(
            &WorkloadConfig {
                seed: 2,
                ..c.clone()
            },
            20
        )
    );
    let first: std::collections::HashSet<&str> = a
        .iter()
        .map(|s| messages(s)[0].content.split(' ').next().unwrap())
        .collect();
    assert!(first.len() > 5, "prompts do not share a prefix");

    let ranged = WorkloadConfig {
        lengths: Lengths {
            range_ratio: 0.5,
            ..c.lengths
        },
        ..c.clone()
    };
    let r = specs(&ranged, 200);
    assert!(r
        .iter()
        .all(|s| (128..=384).contains(&s.prompt_tokens) && (16..=48).contains(&s.max_tokens)));
    let spread = r.iter().map(|s| s.prompt_tokens).max().unwrap()
        - r.iter().map(|s| s.prompt_tokens).min().unwrap();
    assert!(spread > 150, "lengths actually vary: {spread}");

    let capped = WorkloadConfig {
        lengths: Lengths {
            max_tokens: Some(7),
            ..c.lengths
        },
        ..c
    };
    assert!(specs(&capped, 5).iter().all(|s| s.max_tokens == 7));
}

#[test]
fn fim_requests_carry_prefix_and_suffix() {
    let c = WorkloadConfig {
        code_mix: "fim=1".parse().unwrap(),
        ..cfg(WorkloadKind::Code, Endpoint::Chat)
    };
    let client = BenchClient::new(ClientOptions::default(), counter()).unwrap();
    for s in specs(&c, 10) {
        assert_eq!((s.kind, s.endpoint()), ("fim", Endpoint::Completions));
        let Payload::Completion {
            prompt,
            suffix: Some(suffix),
        } = &s.payload
        else {
            panic!("no suffix")
        };
        assert!(!prompt.is_empty() && !suffix.is_empty());
        assert!(prompt.ends_with('\n'), "the hole starts at a line");
        let body = client.body("m", &s);
        assert_eq!(body["suffix"], suffix.as_str());
        assert_eq!(body["prompt"], prompt.as_str());
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"]["include_usage"], true);
    }
}

#[test]
fn code_completions_and_edits_look_like_code() {
    let c = cfg(WorkloadKind::Code, Endpoint::Chat);
    let all = specs(&c, 60);
    let kinds: std::collections::HashSet<&str> = all.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds.len(),
        3,
        "default mix sends all three kinds: {kinds:?}"
    );
    for s in &all {
        match s.kind {
            "complete" => {
                let Payload::Completion {
                    prompt,
                    suffix: None,
                } = &s.payload
                else {
                    panic!()
                };
                assert!(["def ", "fn ", "function ", "class "]
                    .iter()
                    .any(|k| prompt.contains(k)));
            }
            "edit" => {
                let m = messages(s);
                assert_eq!((m[0].role.as_str(), m[1].role.as_str()), ("system", "user"));
                assert!(m[1].content.contains("```"));
                assert!(
                    (1000..=2600).contains(&s.prompt_tokens),
                    "1-2k token file: {}",
                    s.prompt_tokens
                );
                assert!(
                    s.max_tokens as usize >= s.prompt_tokens - 100,
                    "asks for the whole file back"
                );
            }
            "fim" => assert!(matches!(
                s.payload,
                Payload::Completion {
                    suffix: Some(_),
                    ..
                }
            )),
            k => panic!("unexpected kind {k}"),
        }
        let text = s.payload.text();
        for p in ["{Type}", "{fn}", "{field}", "{field2}", "{num}"] {
            assert!(!text.contains(p), "unreplaced {p}");
        }
    }
    let edits = WorkloadConfig {
        code_mix: "edit=1".parse().unwrap(),
        ..cfg(WorkloadKind::Code, Endpoint::Completions)
    };
    for s in specs(&edits, 3) {
        let Payload::Completion {
            prompt,
            suffix: None,
        } = &s.payload
        else {
            panic!()
        };
        assert!(
            prompt.ends_with("```python\n")
                || prompt.ends_with("```rust\n")
                || prompt.ends_with("```typescript\n")
        );
    }
}

#[test]
fn agent_turns_share_growing_prefixes() {
    let c = cfg(WorkloadKind::Agent, Endpoint::Chat);
    let mut w = build(&c, counter()).unwrap();
    let (mut s1, mut s2) = (w.next_conversation(), w.next_conversation());
    let mut prev: Option<RequestSpec> = None;
    for turn in 0..4 {
        let reply = prev.as_ref().map(|_| format!("reply {turn}"));
        let spec = s1.next_request(reply.as_deref()).expect("4 turns");
        assert_eq!(spec.kind, "agent");
        let m = messages(&spec);
        assert_eq!(m.len(), 2 + 2 * turn);
        if let Some(p) = &prev {
            let pm = messages(p);
            assert_eq!(
                &m[..pm.len()],
                pm,
                "turn {turn} starts with turn {}'s prompt",
                turn - 1
            );
            assert_eq!(
                m[pm.len()],
                Message::new("assistant", format!("reply {turn}"))
            );
            assert_eq!(m[pm.len() + 1].role, "user");
            assert!(
                spec.prompt_tokens > p.prompt_tokens + 200,
                "grows by a tool result"
            );
        }
        prev = Some(spec);
    }
    assert!(s1.next_request(Some("done")).is_none(), "--turns 4");
    let other = s2.next_request(None).unwrap();
    let first = messages(prev.as_ref().unwrap());
    assert_eq!(
        messages(&other)[0],
        first[0],
        "sessions share the system prompt"
    );
    assert!(first[0].content.contains("apply_patch") && first[0].content.len() > 4000);
    assert_ne!(messages(&other)[1], first[1], "but not the task");

    let c = cfg(WorkloadKind::Agent, Endpoint::Completions);
    let mut conv = build(&c, counter()).unwrap().next_conversation();
    let p1 = conv.next_request(None).unwrap().payload.text();
    let p2 = conv
        .next_request(Some("I will read the file."))
        .unwrap()
        .payload
        .text();
    assert!(p2.starts_with(&p1) && p2.len() > p1.len());
}

#[test]
fn sharegpt_pairs_follow_vllm_filters() {
    let long = "word ".repeat(1200);
    let json = format!(
        r#"[
        {{"id": "a", "conversations": [{{"from": "human", "value": "Explain Rust lifetimes briefly please"}}, {{"from": "gpt", "value": "Lifetimes name the scopes that references are valid for."}}]}},
        {{"id": "b", "conversations": [{{"from": "human", "value": "hi"}}, {{"from": "gpt", "value": "Hello! How can I help you today?"}}]}},
        {{"id": "c", "conversations": [{{"from": "gpt", "value": "I start the conversation, which is not valid"}}, {{"from": "human", "value": "Then I answer and that is no use"}}]}},
        {{"id": "d", "conversations": [{{"from": "human", "value": "{long}"}}, {{"from": "gpt", "value": "That prompt was far too long"}}]}},
        {{"id": "e", "conversations": [{{"from": "human", "value": "A question without any answer"}}]}}
    ]"#
    );
    let pairs = parse_sharegpt(&json, &ChunkCounter).unwrap();
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0].prompt, "Explain Rust lifetimes briefly please");
    assert_eq!((pairs[0].prompt_tokens, pairs[0].reply_tokens), (10, 14));

    let mut c = cfg(WorkloadKind::Sharegpt, Endpoint::Completions);
    c.dataset = Some(Arc::new(pairs));
    for s in specs(&c, 3) {
        assert_eq!(s.max_tokens, 14);
        assert_eq!(
            s.payload,
            Payload::Completion {
                prompt: "Explain Rust lifetimes briefly please".into(),
                suffix: None
            }
        );
    }
    assert!(
        build(&cfg(WorkloadKind::Sharegpt, Endpoint::Chat), counter()).is_err(),
        "needs a dataset"
    );
}
