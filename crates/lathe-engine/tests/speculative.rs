//! Speculative decoding on real models: greedy output is the same with and without it (near-tie
//! rule), proposals are accepted on code edits, and every KV block (the target's and the
//! draft's) comes back after rejections, cancellations and preemption.

mod common;

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use common::*;
use lathe_engine::{
    EngineConfig, EngineHandle, FinishReason, GenerateRequest, SpecMode, SpeculativeConfig,
};

/// A small edit: the answer re-emits most of the code, which prompt lookup can propose.
const EDIT: &str = "Rename the function `area` to `rectangle_area` everywhere in this file and \
return the whole file, nothing else.\n\n```python\nimport math\n\n\ndef area(width, height):\n    \
\"\"\"Area of a rectangle.\"\"\"\n    if width < 0 or height < 0:\n        raise ValueError(\"negative side\")\n    \
return width * height\n\n\ndef total_area(shapes):\n    total = 0\n    for w, h in shapes:\n        \
total += area(w, h)\n    return total\n\n\ndef circle_area(radius):\n    return math.pi * radius ** 2\n```";

fn spec_params(n: usize, mode: SpecMode) -> lathe_engine::SamplingParams {
    lathe_engine::SamplingParams {
        speculative: Some(mode),
        ..greedy(n)
    }
}

fn wait_idle(engine: &EngineHandle) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = engine.stats();
        let (free, total) = (s.free_blocks.load(Relaxed), s.total_blocks.load(Relaxed));
        let draft = s.draft_used_blocks.load(Relaxed);
        if free == total && draft == 0 && s.running.load(Relaxed) == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "blocks leaked: {free} of {total} free, draft holds {draft}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ngram_speculation_keeps_greedy_output_on_a_code_edit_with_the_default_model() {
    let engine = engine(EngineConfig {
        cpu_kv_cache_bytes: 256 << 20,
        ..EngineConfig::default()
    });
    let prompt = chat_prompt(&engine, EDIT);
    let plain = greedy_trace(&engine, prompt.clone(), 96);
    let steps_before = engine.stats().steps_total.load(Relaxed);
    let spec = generate(&engine, prompt, spec_params(96, SpecMode::Ngram));
    let steps = engine.stats().steps_total.load(Relaxed) - steps_before;
    assert_eq!(spec.finished.reason, FinishReason::Length);
    assert_same_or_near_tie(&plain, &spec.token_ids, 1e-2, "ngram vs plain");
    let s = engine.stats();
    let (proposed, accepted) = (
        s.spec_draft_tokens_total.load(Relaxed),
        s.spec_accepted_tokens_total.load(Relaxed),
    );
    assert!(
        accepted * 2 > proposed,
        "a rename re-emits the file: {accepted} of {proposed} accepted"
    );
    assert!(steps < 70, "96 tokens took {steps} engine steps");
    wait_idle(&engine);
}

#[test]
fn a_draft_model_keeps_greedy_output_and_the_server_default_applies() {
    let engine = engine(EngineConfig {
        cpu_kv_cache_bytes: 256 << 20,
        speculative: SpeculativeConfig {
            method: SpecMode::Draft,
            num_speculative_tokens: 4,
            draft_model: Some("smollm2-135m-instruct".into()),
            // Always k proposals (the draft is sure of most tokens anyway).
            draft_p_min: 0.0,
            ..SpeculativeConfig::default()
        },
        ..smollm2()
    });
    let prompts: Vec<_> = [
        "Write a Python function that reverses a string.",
        "What is a linked list?",
    ]
    .iter()
    .map(|p| chat_prompt(&engine, p))
    .collect();
    for (i, p) in prompts.iter().enumerate() {
        let plain = greedy_trace_with(&engine, p.clone(), spec_params(48, SpecMode::Off));
        let spec = generate(&engine, p.clone(), greedy(48));
        assert_same_or_near_tie(&plain, &spec.token_ids, 1e-2, &format!("draft, prompt {i}"));
    }
    let s = engine.stats();
    let (proposed, accepted) = (
        s.spec_draft_tokens_total.load(Relaxed),
        s.spec_accepted_tokens_total.load(Relaxed),
    );
    // The draft is the target itself: nearly every proposal must be accepted.
    assert!(
        proposed > 40 && accepted * 10 >= proposed * 9,
        "{accepted} of {proposed}"
    );
    wait_idle(&engine);
}

#[test]
fn speculation_under_preemption_and_cancellation_completes_and_frees_every_block() {
    // 24 blocks x 16 tokens; six requests that each need ~5 blocks at the end.
    let engine = engine(EngineConfig {
        num_blocks: Some(24),
        enable_prefix_caching: true,
        speculative: SpeculativeConfig {
            method: SpecMode::Ngram,
            num_speculative_tokens: 6,
            ngram_min: 1,
            draft_model: Some("smollm2-135m-instruct".into()),
            // Always k proposals (the draft is sure of most tokens anyway).
            draft_p_min: 0.0,
            ..SpeculativeConfig::default()
        },
        ..smollm2()
    });
    let prompts: Vec<_> = (0..6)
        .map(|i| {
            chat_prompt(
                &engine,
                &format!("Count from {i} to {} in words, one per line.", i + 9),
            )
        })
        .collect();
    let modes = [SpecMode::Ngram, SpecMode::Draft, SpecMode::Off];
    let solo: Vec<_> = prompts
        .iter()
        .map(|p| greedy_trace_with(&engine, p.clone(), spec_params(56, SpecMode::Off)))
        .collect();
    let preempted_before = engine.stats().preemptions_total.load(Relaxed);
    let streams: Vec<_> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let params = spec_params(56, modes[i % 3]);
            engine
                .submit(GenerateRequest::new(p.clone(), params))
                .unwrap()
        })
        .collect();
    // One more, dropped after a few tokens while its proposals are in flight.
    let mut doomed = engine
        .submit(GenerateRequest::new(
            prompts[0].clone(),
            spec_params(200, SpecMode::Draft),
        ))
        .unwrap();
    let rt = runtime();
    rt.block_on(async {
        for _ in 0..5 {
            doomed.next().await;
        }
    });
    drop(doomed);
    let together: Vec<_> = rt.block_on(futures::future::join_all(
        streams.into_iter().map(|s| s.collect_all()),
    ));
    for (i, (alone, got)) in solo.iter().zip(&together).enumerate() {
        assert_eq!(got.finished.reason, FinishReason::Length, "request {i}");
        assert_same_or_near_tie(alone, &got.token_ids, 1e-2, &format!("request {i}"));
    }
    assert!(
        engine.stats().preemptions_total.load(Relaxed) > preempted_before,
        "the pool was meant to be too small"
    );
    assert!(engine.stats().spec_accepted_tokens_total.load(Relaxed) > 0);
    wait_idle(&engine);
}
