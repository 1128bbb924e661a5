//! The tiny checkpoints of `tiny/` written as GGUF files the way llama.cpp lays them out
//! (llama.cpp tensor names, experts stacked per projection, `{arch}.*` metadata):
//! - Q8_0 qwen3 and qwen3_moe files must give the logits of candle-transformers (its
//!   `quantized_qwen3` on the same file, and its f32 `qwen3` / `qwen3_moe` on the file's weight
//!   values; `quantized_qwen3_moe` runs only on CUDA) within 5% relative L2 error at prefill and
//!   over 20 decode steps, with the same greedy token wherever the reference has no near tie;
//! - F32 files of every new architecture must give the logits of the same weights loaded from
//!   safetensors (< 1e-5): the GGUF names and metadata map to the same model.

mod tiny;

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use lathe_models::loader::ModelFiles;
use tiny::gguf::{gguf_arch, matrices_in, write_gguf, TypeOf};
use tiny::*;

/// The tensors as the GGUF file holds them (rounded through their type and back), so that an
/// f32 reference runs on exactly the file's weight values.
fn round_trip(tensors: &HashMap<String, Tensor>, type_of: &TypeOf) -> HashMap<String, Tensor> {
    tensors
        .iter()
        .map(|(name, t)| {
            let q = QTensor::quantize(t, type_of(name, t)).unwrap();
            (name.clone(), q.dequantize(&Device::Cpu).unwrap())
        })
        .collect()
}

/// candle-transformers' f32 model of `family` over the safetensors in `dir`.
fn candle_f32(dir: &Path, cfg: &serde_json::Value, family: Family) -> Reference {
    use candle_transformers::models::{qwen3, qwen3_moe};
    match family {
        Family::Qwen3 => {
            let c: qwen3::Config = serde_json::from_value(cfg.clone()).unwrap();
            let mut m = qwen3::ModelForCausalLM::new(&c, var_builder(dir)).unwrap();
            Box::new(move |t, pos| flat(m.forward(&ids(t), pos)))
        }
        Family::Qwen3Moe => {
            let c: qwen3_moe::Config = serde_json::from_value(cfg.clone()).unwrap();
            let mut m = qwen3_moe::ModelForCausalLM::new(&c, var_builder(dir)).unwrap();
            Box::new(move |t, pos| flat(m.forward(&ids(t), pos)))
        }
        _ => unreachable!(),
    }
}

/// candle-transformers' quantized model of `path`: last-position logits per call.
fn candle_quantized(path: &Path, family: Family) -> Reference {
    use candle_transformers::models::{quantized_qwen3, quantized_qwen3_moe};
    let mut f = std::fs::File::open(path).unwrap();
    let ct = gguf_file::Content::read(&mut f).unwrap();
    let dev = Device::Cpu;
    match family {
        Family::Qwen3 => {
            let mut m = quantized_qwen3::ModelWeights::from_gguf(ct, &mut f, &dev).unwrap();
            Box::new(move |t, pos| flat(m.forward(&ids(t), pos)))
        }
        Family::Qwen3Moe => {
            let mut m = quantized_qwen3_moe::GGUFQWenMoE::from_gguf(
                ct,
                &mut f,
                &dev,
                candle_core::DType::F32,
            )
            .unwrap();
            Box::new(move |t, pos| flat(m.forward(&ids(t), pos)))
        }
        _ => unreachable!(),
    }
}

fn argmax(l: &[f32]) -> usize {
    (0..l.len()).max_by(|&a, &b| l[a].total_cmp(&l[b])).unwrap()
}

/// Greedy choices agree unless the reference's top two logits are closer than 4× the RMS
/// difference between the two logit rows (8-bit activations move every logit a little).
fn assert_same_choice(ours: &[f32], theirs: &[f32], what: &str) {
    let (a, b) = (argmax(ours), argmax(theirs));
    if a != b {
        let rms = (ours
            .iter()
            .zip(theirs)
            .map(|(x, y)| (x - y).powi(2))
            .sum::<f32>()
            / ours.len() as f32)
            .sqrt();
        let mut sorted = theirs.to_vec();
        sorted.sort_by(|x, y| y.total_cmp(x));
        assert!(
            sorted[0] - sorted[1] <= 4.0 * rms,
            "{what}: greedy token {a} vs reference {b}, top-2 gap {} > 4 × rms {rms}",
            sorted[0] - sorted[1]
        );
    }
}

/// A Q8_0 GGUF of `family` against candle-transformers: its quantized model of the same file
/// where candle has one on the CPU (qwen3), and always its f32 model on the file's weight
/// values (`round_trip`). Observed on these checkpoints: ~2% relative error for both lathe and
/// candle's quantized model against the f32 one, so the bound is 5%.
fn check_against_candle(what: &str, cfg: &serde_json::Value, family: Family, type_of: &TypeOf) {
    let dir = tempdir();
    let tensors = write_checkpoint(dir.path(), cfg, family);
    let path = write_gguf(dir.path(), cfg, family, &tensors, type_of, &[]);
    let ours = ours(&ModelFiles::Gguf(path.clone()), &PROMPT, &decode_tokens());
    let rounded = round_trip(&tensors, type_of);
    candle_core::safetensors::save(&rounded, dir.path().join("model.safetensors")).unwrap();
    let mut references = vec![("f32", candle_f32(dir.path(), cfg, family))];
    if family == Family::Qwen3 {
        // candle's quantized_qwen3_moe runs its experts only on CUDA.
        references.push(("quantized", candle_quantized(&path, family)));
    }
    let steps =
        std::iter::once(PROMPT.to_vec()).chain(decode_tokens().into_iter().map(|t| vec![t]));
    let mut pos = 0;
    for (step, input) in steps.enumerate() {
        for (name, reference) in references.iter_mut() {
            let l = reference(&input, pos);
            let what = format!("{what} Q8_0 vs candle {name}, step {step}");
            assert_close(&ours[step], &l, 5e-2, &what);
            assert_same_choice(&ours[step], &l, &what);
        }
        pos += input.len();
    }
}

#[test]
fn qwen3_q8_0_matches_candle_quantized_qwen3() {
    for tied in [true, false] {
        check_against_candle(
            &format!("qwen3 tied={tied}"),
            &config("Qwen3ForCausalLM", tied),
            Family::Qwen3,
            &matrices_in(GgmlDType::Q8_0),
        );
    }
}

/// Q8_0 experts (sliced out of the stacked `ffn_*_exps` blocks), everything else F32, and only
/// the last layer sparse: its router sees unquantized activations, so 8-bit noise cannot flip
/// an expert choice (a discontinuity no tolerance covers) and the comparison stays tight.
#[test]
fn qwen3_moe_q8_0_experts_match_candle_qwen3_moe() {
    let cfg = moe_config(false);
    assert!(!moe_sparse(&cfg, 0) && moe_sparse(&cfg, 1));
    let experts_q8 = |name: &str, _: &Tensor| match name.contains(".experts.") {
        true => GgmlDType::Q8_0,
        false => GgmlDType::F32,
    };
    check_against_candle("qwen3_moe", &cfg, Family::Qwen3Moe, &experts_q8);
}

#[test]
fn f32_gguf_and_safetensors_give_the_same_model() {
    let mut moe = moe_config(true);
    moe["decoder_sparse_step"] = 1.into();
    for (cfg, family) in [
        (config("Qwen3ForCausalLM", false), Family::Qwen3),
        (moe, Family::Qwen3Moe),
        (starcoder2_config(), Family::Starcoder2),
    ] {
        let dir = tempdir();
        let tensors = write_checkpoint(dir.path(), &cfg, family);
        let path = write_gguf(
            dir.path(),
            &cfg,
            family,
            &tensors,
            &|_, _| GgmlDType::F32,
            &[],
        );
        let from_gguf = ours(&ModelFiles::Gguf(path), &PROMPT, &decode_tokens());
        let from_st = ours(&safetensors(dir.path()), &PROMPT, &decode_tokens());
        for (step, (a, b)) in from_gguf.iter().zip(&from_st).enumerate() {
            assert_close(
                a,
                b,
                1e-5,
                &format!("{} f32 GGUF step {step}", gguf_arch(family)),
            );
        }
    }
}
