//! Correctness oracle: on the default model, greedy generation of 64 tokens for three prompts is
//! token-identical to candle-transformers' own quantized llama (`quantized_llama::ModelWeights`)
//! on the same GGUF file, and every top-2 logprob on the way agrees within 1e-3. A divergence is
//! accepted only at a near tie: where the reference's two best logits are within 1e-2.
//!
//! Both sides run the file's weights with exact f32 arithmetic (`CANDLE_DEQUANTIZE_ALL=1`:
//! candle dequantizes each Q4_1/Q8_0 tensor once at load). With 8-bit activation rounding in
//! every matmul, a last-bit difference upstream (attention summed in another order) moves an
//! activation across a rounding boundary and the two runs part at gaps of 0.2 after a dozen
//! tokens; with exact arithmetic they agree to ~2e-5, which is what proves the engine (paged
//! cache, flattened batch, attention, rope, norms, sampling) right. lathe's quantized kernels
//! are checked on the same prompts by `oracle_smollm2_quant.rs`.

mod common;

use common::default_engine;
use common::oracle::{check_prompts, Tolerance};

#[test]
fn greedy_matches_candle_quantized_llama() {
    // Exact f32 matmuls on both sides (see the module docs). This binary holds one test, so
    // setting the variables here affects nothing else.
    std::env::set_var("LATHE_CPU_MATMUL", "candle");
    std::env::set_var("CANDLE_DEQUANTIZE_ALL", "1");
    let tol = Tolerance {
        chosen: 1e-3,
        chosen_mean: 1e-3,
        others: 1e-3,
        tie: 1e-2,
    };
    check_prompts(&default_engine(), 64, &tol);
}
