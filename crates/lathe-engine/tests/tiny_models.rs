//! Tiny random-weight checkpoints of every architecture (llama, qwen2, qwen3, qwen3_moe,
//! starcoder2), written by the test as safetensors + config.json: our paged implementation must
//! give the logits of candle-transformers' own implementations within 1e-4 relative error
//! (f32), at prefill and over 20 decode steps.

mod tiny;

use std::path::Path;

use candle_core::{DType, Device};
use tiny::*;

/// Writes a checkpoint of `family` for `cfg`, runs ours, and checks the prefill's and every
/// decode step's logits against `reference(tokens, offset)` (last-position logits of the
/// reference implementation, which keeps its own cache).
fn check(
    what: &str,
    cfg: &serde_json::Value,
    family: Family,
    reference: impl FnOnce(&Path) -> Reference,
) {
    let dir = tempdir();
    write_checkpoint(dir.path(), cfg, family);
    let ours = ours(&safetensors(dir.path()), &PROMPT, &decode_tokens());
    let mut theirs = reference(dir.path());
    assert_close(
        &ours[0],
        &theirs(&PROMPT, 0),
        1e-4,
        &format!("{what} prefill"),
    );
    for (step, &t) in decode_tokens().iter().enumerate() {
        let l = theirs(&[t], PROMPT.len() + step);
        assert_close(
            &ours[step + 1],
            &l,
            1e-4,
            &format!("{what} decode step {step}"),
        );
    }
}

#[test]
fn llama_matches_candle_transformers() {
    use candle_transformers::models::llama as cl;
    for tied in [false, true] {
        let cfg = config("LlamaForCausalLM", tied);
        let c = serde_json::from_value::<cl::LlamaConfig>(cfg.clone())
            .unwrap()
            .into_config(false);
        check(&format!("llama tied={tied}"), &cfg, Family::Llama, |dir| {
            let model = cl::Llama::load(var_builder(dir), &c).unwrap();
            let mut cache = cl::Cache::new(true, DType::F32, &c, &Device::Cpu).unwrap();
            Box::new(move |t, pos| flat(model.forward(&ids(t), pos, &mut cache)))
        });
    }
}

#[test]
fn qwen2_matches_candle_transformers() {
    use candle_transformers::models::qwen2 as cq;
    for tied in [true, false] {
        let cfg = config("Qwen2ForCausalLM", tied);
        let c: cq::Config = serde_json::from_value(cfg.clone()).unwrap();
        check(&format!("qwen2 tied={tied}"), &cfg, Family::Qwen2, |dir| {
            let mut model = cq::ModelForCausalLM::new(&c, var_builder(dir)).unwrap();
            Box::new(move |t, pos| flat(model.forward(&ids(t), pos)))
        });
    }
}

#[test]
fn qwen3_matches_candle_transformers() {
    use candle_transformers::models::qwen3 as cq;
    for tied in [true, false] {
        let cfg = config("Qwen3ForCausalLM", tied);
        let c: cq::Config = serde_json::from_value(cfg.clone()).unwrap();
        check(&format!("qwen3 tied={tied}"), &cfg, Family::Qwen3, |dir| {
            let mut model = cq::ModelForCausalLM::new(&c, var_builder(dir)).unwrap();
            Box::new(move |t, pos| flat(model.forward(&ids(t), pos)))
        });
    }
}

#[test]
fn qwen3_moe_matches_candle_transformers() {
    use candle_transformers::models::qwen3_moe as cq;
    for tied in [false, true] {
        let cfg = moe_config(tied);
        let c: cq::Config = serde_json::from_value(cfg.clone()).unwrap();
        check(
            &format!("qwen3_moe tied={tied}"),
            &cfg,
            Family::Qwen3Moe,
            |dir| {
                let mut model = cq::ModelForCausalLM::new(&c, var_builder(dir)).unwrap();
                Box::new(move |t, pos| flat(model.forward(&ids(t), pos)))
            },
        );
    }
}

#[test]
fn starcoder2_matches_candle_transformers() {
    use candle_transformers::models::starcoder2 as cs;
    let cfg = starcoder2_config();
    let c: cs::Config = serde_json::from_value(cfg.clone()).unwrap();
    check("starcoder2", &cfg, Family::Starcoder2, |dir| {
        let mut model = cs::Model::new(&c, var_builder(dir)).unwrap();
        Box::new(move |t, pos| flat(model.forward(&ids(t), pos)))
    });
}
