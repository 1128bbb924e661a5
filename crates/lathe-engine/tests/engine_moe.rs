//! The engine on a mixture-of-experts model: a tiny random-weight qwen3moe GGUF (Q8_0 experts
//! on lathe's kernels, 8 experts, 2 per token, every layer sparse) carrying SmolLM2's real
//! tokenizer and chat template. Batched and preempted requests must give the greedy tokens of
//! the same request run alone (a near tie aside: the two best logprobs within 1e-2), and every
//! KV block comes back.

mod common;
mod tiny;

use std::collections::HashMap;

use candle_core::quantized::gguf_file;
use candle_core::quantized::GgmlDType;
use common::*;
use lathe_engine::{EngineConfig, EngineHandle, FinishReason, GenerateRequest};
use tiny::gguf::{matrices_in, write_gguf};
use tiny::{moe_config, tempdir, write_checkpoint, Family, TempDir};

const PROMPTS: [&str; 6] = [
    "Write a Python function that reverses a string.",
    "What is a linked list?",
    "hi",
    "List three sorting algorithms and their complexity.",
    "Translate 'good morning' to French.",
    "What does `git rebase` do?",
];

/// Writes the model; the directory lives as long as the returned guard.
fn tiny_moe_gguf() -> (TempDir, String) {
    let mut f = std::fs::File::open(registry_gguf("smollm2-135m-instruct")).unwrap();
    let smol = gguf_file::Content::read(&mut f).unwrap();
    let tokenizer: Vec<(String, gguf_file::Value)> = smol
        .metadata
        .into_iter()
        .filter(|(k, _)| k.starts_with("tokenizer."))
        .collect();
    let vocab = match tokenizer.iter().find(|(k, _)| k == "tokenizer.ggml.tokens") {
        Some((_, v)) => v.to_vec().unwrap().len(),
        None => panic!("SmolLM2's GGUF has no token list"),
    };
    let mut cfg = moe_config(false);
    cfg["vocab_size"] = vocab.into();
    cfg["num_experts"] = 8.into();
    cfg["decoder_sparse_step"] = 1.into();
    cfg["max_position_embeddings"] = 512.into();
    let dir = tempdir();
    let tensors: HashMap<_, _> = write_checkpoint(dir.path(), &cfg, Family::Qwen3Moe);
    let path = write_gguf(
        dir.path(),
        &cfg,
        Family::Qwen3Moe,
        &tensors,
        &matrices_in(GgmlDType::Q8_0),
        &tokenizer,
    );
    (dir, path.to_string_lossy().into_owned())
}

fn moe_engine(model: &str, num_blocks: Option<usize>) -> EngineHandle {
    engine(EngineConfig {
        model: model.into(),
        num_blocks,
        enable_prefix_caching: num_blocks.is_none(),
        cpu_kv_cache_bytes: 64 << 20,
        ..EngineConfig::default()
    })
}

/// Runs every prompt alone, then all together; both must agree token for token.
fn solo_then_together(engine: &EngineHandle, prompts: &[Vec<u32>], n: usize) {
    let solo: Vec<_> = prompts
        .iter()
        .map(|p| greedy_trace(engine, p.clone(), n))
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
    for (i, (alone, batched)) in solo.iter().zip(&together).enumerate() {
        assert_eq!(batched.finished.reason, FinishReason::Length, "request {i}");
        assert_same_or_near_tie(alone, &batched.token_ids, 1e-2, &format!("request {i}"));
    }
}

#[test]
fn moe_concurrent_requests_match_their_solo_runs() {
    let (_dir, model) = tiny_moe_gguf();
    let engine = moe_engine(&model, None);
    let prompts: Vec<Vec<u32>> = PROMPTS.iter().map(|p| chat_prompt(&engine, p)).collect();
    solo_then_together(&engine, &prompts, 32);
    wait_all_blocks_free(&engine);
}

#[test]
fn moe_preemption_when_the_pool_is_too_small_still_completes_every_request() {
    let (_dir, model) = tiny_moe_gguf();
    // 16 blocks × 16 tokens; six requests that each need ~4 blocks at the end.
    let engine = moe_engine(&model, Some(16));
    let prompts: Vec<Vec<u32>> = PROMPTS.iter().map(|p| chat_prompt(&engine, p)).collect();
    solo_then_together(&engine, &prompts, 40);
    assert!(
        engine
            .stats()
            .preemptions_total
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0,
        "the pool was meant to be too small: no preemption happened"
    );
    wait_all_blocks_free(&engine);
}
