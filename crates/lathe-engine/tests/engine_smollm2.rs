//! The engine on the real default model: batch invariance, preemption, cancellation, stop
//! strings. Greedy tokens must match a request run alone, except at a near tie (the reference's
//! two best logprobs within 1e-2 at the first divergence).

mod common;

use common::*;
use lathe_engine::{EngineConfig, FinishReason, GenerateRequest, StreamEvent};

const PROMPTS: [&str; 8] = [
    "Write a Python function that reverses a string.",
    "What is a linked list?",
    "Explain recursion to a child in two sentences, using an example about Russian dolls and stairs.",
    "hi",
    "List three sorting algorithms and their complexity.",
    "Translate 'good morning' to French.",
    "Write a SQL query that counts users per country, ordered by count, and explain each clause briefly.",
    "What does `git rebase` do?",
];

#[test]
fn concurrent_requests_match_their_solo_runs() {
    let engine = default_engine();
    let lens = [40, 24, 33, 17, 48, 20, 36, 28];
    let prompts: Vec<Vec<u32>> = PROMPTS.iter().map(|p| chat_prompt(&engine, p)).collect();
    let solo: Vec<_> = prompts
        .iter()
        .zip(lens)
        .map(|(p, n)| greedy_trace(&engine, p.clone(), n))
        .collect();
    let streams: Vec<_> = prompts
        .iter()
        .zip(lens)
        .map(|(p, n)| {
            engine
                .submit(GenerateRequest::new(p.clone(), greedy(n)))
                .unwrap()
        })
        .collect();
    let rt = runtime();
    let together: Vec<_> = rt.block_on(futures::future::join_all(
        streams.into_iter().map(|s| s.collect_all()),
    ));
    for (i, (alone, batched)) in solo.iter().zip(&together).enumerate() {
        assert_eq!(batched.finished.reason, FinishReason::Length);
        assert_same_or_near_tie(alone, &batched.token_ids, 1e-2, &format!("request {i}"));
    }
    wait_all_blocks_free(&engine);
}

#[test]
fn preemption_when_the_pool_is_too_small_still_completes_every_request() {
    // 20 blocks × 16 tokens = 320 slots; six requests that each need ~5 blocks at the end.
    let engine = engine(EngineConfig {
        num_blocks: Some(20),
        enable_prefix_caching: false,
        ..common::smollm2()
    });
    let prompts: Vec<Vec<u32>> = PROMPTS[..6]
        .iter()
        .map(|p| chat_prompt(&engine, p))
        .collect();
    let n = 48;
    let solo: Vec<_> = prompts
        .iter()
        .map(|p| greedy_trace(&engine, p.clone(), n))
        .collect();
    let streams: Vec<_> = prompts
        .iter()
        .map(|p| {
            engine
                .submit(GenerateRequest::new(p.clone(), greedy(n)))
                .unwrap()
        })
        .collect();
    let together: Vec<_> = runtime().block_on(futures::future::join_all(
        streams.into_iter().map(|s| s.collect_all()),
    ));
    assert!(
        engine
            .stats()
            .preemptions_total
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0,
        "the pool was meant to be too small: no preemption happened"
    );
    for (i, (alone, batched)) in solo.iter().zip(&together).enumerate() {
        assert_eq!(batched.finished.reason, FinishReason::Length, "request {i}");
        assert_same_or_near_tie(alone, &batched.token_ids, 1e-2, &format!("request {i}"));
    }
    wait_all_blocks_free(&engine);
}

#[test]
fn dropping_a_stream_frees_its_blocks() {
    let engine = default_engine();
    let total = engine
        .stats()
        .total_blocks
        .load(std::sync::atomic::Ordering::Relaxed);
    let prompt = chat_prompt(
        &engine,
        &"Tell me a very long story about a lighthouse. ".repeat(8),
    );
    let mut stream = engine
        .submit(GenerateRequest::new(prompt, greedy(500)))
        .unwrap();
    let rt = runtime();
    rt.block_on(async {
        for _ in 0..5 {
            assert!(matches!(stream.next().await, Some(StreamEvent::Token(_))));
        }
    });
    let used = total
        - engine
            .stats()
            .free_blocks
            .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        used >= 4,
        "a running request with a long prompt holds blocks (used {used})"
    );
    drop(stream);
    wait_all_blocks_free(&engine);
}

#[test]
fn a_stopper_ends_the_request_as_a_stop_with_usage_and_frees_its_blocks() {
    let engine = default_engine();
    let prompt = chat_prompt(&engine, "Tell me a very long story about a lighthouse.");
    let prompt_len = prompt.len();
    let mut stream = engine
        .submit(GenerateRequest::new(prompt, greedy(400)))
        .unwrap();
    let stopper = stream.stopper();
    let rt = runtime();
    let (seen, finished) = rt.block_on(async {
        let mut seen = 0;
        loop {
            match stream.next().await {
                Some(StreamEvent::Token(_)) => {
                    seen += 1;
                    if seen == 6 {
                        stopper.stop();
                    }
                }
                Some(StreamEvent::Finished(f)) => return (seen, f),
                None => panic!("the stream ended without a Finished event"),
            }
        }
    });
    assert_eq!(finished.reason, FinishReason::Stop);
    assert_eq!(finished.prompt_tokens, prompt_len);
    // Tokens already in flight may still arrive, but nowhere near the 400 asked for.
    assert!((6..40).contains(&seen), "{seen} tokens after the stop");
    assert_eq!(finished.completion_tokens, seen);
    // Stopping a finished request does nothing.
    stopper.stop();
    wait_all_blocks_free(&engine);
}

#[test]
fn stop_strings_split_across_tokens_never_appear() {
    let engine = default_engine();
    let prompt = chat_prompt(&engine, "Write a Python function that adds two numbers.");
    let full = generate(&engine, prompt.clone(), greedy(48));
    // A stop string spanning a token boundary: the last 2 chars of token 6's text and the first
    // 3 chars of what follows.
    let tok = engine.info().tokenizer.clone();
    let head = tok.decode(&full.token_ids[..7], true).unwrap();
    let cut = head.char_indices().rev().nth(1).map(|(i, _)| i).unwrap();
    let stop: String = full.text[cut..].chars().take(5).collect();
    assert!(
        stop.chars().count() == 5,
        "reference output too short: {:?}",
        full.text
    );
    let first = full.text.find(&stop).unwrap();
    let mut params = greedy(48);
    params.stop = vec![stop.clone()];
    let stopped = generate(&engine, prompt, params);
    assert_eq!(stopped.finished.reason, FinishReason::Stop);
    assert_eq!(
        stopped.finished.matched_stop.as_deref(),
        Some(stop.as_str())
    );
    assert!(
        !stopped.text.contains(&stop),
        "stop string leaked: {:?}",
        stopped.text
    );
    assert_eq!(stopped.text, full.text[..first]);
}

/// Allows everything for `ok` tokens, then breaks down as a grammar engine can (a mask that
/// cannot be computed): the request must end with an error, not a stop that looks complete.
struct BreaksAfter {
    ok: usize,
    seen: usize,
}

impl lathe_engine::constraint::TokenConstraint for BreaksAfter {
    fn mask(&mut self, _vocab: usize) -> Option<Vec<bool>> {
        None
    }
    fn accept(&mut self, _token: u32) -> bool {
        self.seen += 1;
        self.seen <= self.ok
    }
    fn is_finished(&self) -> bool {
        false
    }
    fn failure(&self) -> Option<String> {
        (self.seen > self.ok).then(|| "mask failed: test".to_string())
    }
}

#[test]
fn a_constraint_that_breaks_down_mid_generation_ends_the_request_with_its_error() {
    let engine = default_engine();
    let mut req = GenerateRequest::new(chat_prompt(&engine, "Count to twenty."), greedy(64));
    req.constraint = Some(Box::new(BreaksAfter { ok: 5, seen: 0 }));
    let mut stream = engine.submit(req).unwrap();
    let (tokens, finished) = runtime().block_on(async {
        let mut tokens = 0;
        loop {
            match stream.next().await {
                Some(StreamEvent::Token(_)) => tokens += 1,
                Some(StreamEvent::Finished(f)) => return (tokens, f),
                None => panic!("no Finished event"),
            }
        }
    });
    assert_eq!(tokens, 5);
    assert_eq!(
        finished.reason,
        FinishReason::Error("mask failed: test".into())
    );
    wait_all_blocks_free(&engine);
}
