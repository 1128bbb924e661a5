//! Tiny random-weight checkpoints of every architecture (llama, qwen2, qwen3, qwen3_moe,
//! starcoder2), written by the test as safetensors + config.json: our paged implementation must
//! give the logits of candle-transformers' own implementations within 1e-4 relative error
//! (f32), at prefill and over 20 decode steps.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use lathe_core::{ScheduledSeq, SchedulerOutput};
use lathe_engine::runner::{execute, HostBatch};
use lathe_models::loader::{load_model, ModelFiles};
use lathe_models::KvCache;

const BLOCK: usize = 4;

/// The shapes every tiny checkpoint shares.
const VOCAB: usize = 97;
const HIDDEN: usize = 64;
const INTERMEDIATE: usize = 96;
const LAYERS: usize = 2;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const HEAD_DIM: usize = HIDDEN / HEADS;

fn config(arch: &str, tied: bool) -> serde_json::Value {
    serde_json::json!({
        "architectures": [arch],
        "vocab_size": VOCAB, "hidden_size": HIDDEN, "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS,
        "head_dim": HEAD_DIM,
        "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "tie_word_embeddings": tied, "hidden_act": "silu",
        "sliding_window": 128, "max_window_layers": 2, "use_sliding_window": false,
        "attention_bias": false,
        "bos_token_id": 1, "eos_token_id": 2
    })
}

/// Qwen3-MoE: 4 experts of width 32, 2 per token; layer 0 dense, layer 1 sparse
/// (`decoder_sparse_step` 2), so both feed-forward kinds run.
fn moe_config(tied: bool) -> serde_json::Value {
    let mut c = config("Qwen3MoeForCausalLM", tied);
    for (k, v) in [
        ("num_experts", serde_json::json!(4)),
        ("num_experts_per_tok", serde_json::json!(2)),
        ("moe_intermediate_size", serde_json::json!(32)),
        ("norm_topk_prob", serde_json::json!(true)),
        ("decoder_sparse_step", serde_json::json!(2)),
        ("mlp_only_layers", serde_json::json!([])),
    ] {
        c[k] = v;
    }
    c
}

/// StarCoder2: LayerNorm, GELU MLP, biases everywhere, tied embeddings.
fn starcoder2_config() -> serde_json::Value {
    let mut c = config("Starcoder2ForCausalLM", true);
    c["hidden_act"] = "gelu_pytorch_tanh".into();
    c["norm_epsilon"] = 1e-5.into();
    c["use_bias"] = true.into();
    c["sliding_window"] = 4096.into();
    c
}

/// Random tensors under Hugging Face names.
struct Tensors(HashMap<String, Tensor>);

impl Tensors {
    fn rnd(&mut self, name: String, shape: &[usize], scale: f64) {
        let x = (Tensor::randn(0f32, 1f32, shape, &Device::Cpu).unwrap() * scale).unwrap();
        // Norm weights near 1 like trained models, so activations stay in a sane range.
        let x = if name.contains("norm.weight") {
            (x + 1.0).unwrap()
        } else {
            x
        };
        self.0.insert(name, x);
    }

    fn linear(&mut self, name: &str, out: usize, inp: usize, bias: bool) {
        self.rnd(format!("{name}.weight"), &[out, inp], 0.2);
        if bias {
            self.rnd(format!("{name}.bias"), &[out], 0.2);
        }
    }

    fn layer_norm(&mut self, name: &str) {
        self.rnd(format!("{name}.weight"), &[HIDDEN], 0.2);
        self.rnd(format!("{name}.bias"), &[HIDDEN], 0.2);
    }

    fn gated_mlp(&mut self, p: &str, width: usize) {
        self.linear(&format!("{p}.gate_proj"), width, HIDDEN, false);
        self.linear(&format!("{p}.up_proj"), width, HIDDEN, false);
        self.linear(&format!("{p}.down_proj"), HIDDEN, width, false);
    }
}

/// What a tiny checkpoint's blocks hold besides q/k/v/o.
#[derive(Clone, Copy, PartialEq)]
enum Family {
    Llama,
    Qwen2,
    Qwen3,
    Qwen3Moe,
    Starcoder2,
}

fn write_checkpoint(dir: &Path, cfg: &serde_json::Value, family: Family) {
    let mut t = Tensors(HashMap::new());
    let (h, d) = (HIDDEN, HEAD_DIM);
    t.rnd("model.embed_tokens.weight".into(), &[VOCAB, h], 1.0);
    if !cfg["tie_word_embeddings"].as_bool().unwrap() {
        t.rnd("lm_head.weight".into(), &[VOCAB, h], 0.2);
    }
    let layer_norm = family == Family::Starcoder2;
    if layer_norm {
        t.layer_norm("model.norm");
    } else {
        t.rnd("model.norm.weight".into(), &[h], 0.2);
    }
    for l in 0..LAYERS {
        let p = format!("model.layers.{l}");
        let (qkv_bias, o_bias) = match family {
            Family::Qwen2 => (true, false),
            Family::Starcoder2 => (true, true),
            _ => (false, false),
        };
        t.linear(&format!("{p}.self_attn.q_proj"), HEADS * d, h, qkv_bias);
        t.linear(&format!("{p}.self_attn.k_proj"), KV_HEADS * d, h, qkv_bias);
        t.linear(&format!("{p}.self_attn.v_proj"), KV_HEADS * d, h, qkv_bias);
        t.linear(&format!("{p}.self_attn.o_proj"), h, HEADS * d, o_bias);
        if matches!(family, Family::Qwen3 | Family::Qwen3Moe) {
            t.rnd(format!("{p}.self_attn.q_norm.weight"), &[d], 0.2);
            t.rnd(format!("{p}.self_attn.k_norm.weight"), &[d], 0.2);
        }
        if layer_norm {
            t.layer_norm(&format!("{p}.input_layernorm"));
            t.layer_norm(&format!("{p}.post_attention_layernorm"));
        } else {
            t.rnd(format!("{p}.input_layernorm.weight"), &[h], 0.2);
            t.rnd(format!("{p}.post_attention_layernorm.weight"), &[h], 0.2);
        }
        match family {
            Family::Starcoder2 => {
                t.linear(&format!("{p}.mlp.c_fc"), INTERMEDIATE, h, true);
                t.linear(&format!("{p}.mlp.c_proj"), h, INTERMEDIATE, true);
            }
            Family::Qwen3Moe if l == 1 => {
                let experts = cfg["num_experts"].as_u64().unwrap() as usize;
                let width = cfg["moe_intermediate_size"].as_u64().unwrap() as usize;
                t.rnd(format!("{p}.mlp.gate.weight"), &[experts, h], 1.0);
                for e in 0..experts {
                    t.gated_mlp(&format!("{p}.mlp.experts.{e}"), width);
                }
            }
            _ => t.gated_mlp(&format!("{p}.mlp"), INTERMEDIATE),
        }
    }
    candle_core::safetensors::save(&t.0, dir.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
}

/// Runs our model over `tokens` as one prefill then one token per step; returns the logits
/// after the prefill and after each decode step.
fn ours(dir: &Path, prompt: &[u32], decode: &[u32]) -> Vec<Vec<f32>> {
    let files = ModelFiles::Safetensors {
        config: dir.join("config.json"),
        tokenizer: dir.join("tokenizer.json"),
        tokenizer_config: None,
        weights: vec![dir.join("model.safetensors")],
    };
    let model = load_model(&files, &Device::Cpu, DType::F32).unwrap();
    let kv = KvCache::new(&model.spec().kv, 16, BLOCK, &Device::Cpu).unwrap();
    // A deliberately scattered block table, so paging is exercised.
    let table: Vec<u32> = vec![7, 3, 12, 0, 9, 5, 1, 14];
    let mut out = Vec::new();
    let mut pos = 0;
    let run = |tokens: Vec<u32>, pos: usize| {
        let sched = SchedulerOutput {
            seqs: vec![ScheduledSeq {
                id: 1,
                token_ids: tokens.clone(),
                start_pos: pos,
                block_table: table.clone(),
                sample: true,
                num_spec_tokens: 0,
            }],
            preempted: vec![],
            num_batched_tokens: tokens.len(),
        };
        execute(model.as_ref(), &kv, &HostBatch::build(&sched, BLOCK))
            .unwrap()
            .remove(0)
    };
    out.push(run(prompt.to_vec(), pos));
    pos += prompt.len();
    for &t in decode {
        out.push(run(vec![t], pos));
        pos += 1;
    }
    out
}

fn assert_close(ours: &[f32], theirs: &[f32], what: &str) {
    assert!(
        ours.iter().all(|x| x.is_finite()),
        "{what}: non-finite logits"
    );
    let diff: f32 = ours
        .iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f32>()
        .sqrt();
    let norm: f32 = theirs.iter().map(|b| b * b).sum::<f32>().sqrt();
    assert!(
        diff / norm < 1e-4,
        "{what}: relative error {} ≥ 1e-4",
        diff / norm
    );
}

const PROMPT: [u32; 11] = [1, 5, 9, 33, 2, 77, 41, 8, 8, 60, 13];

fn decode_tokens() -> Vec<u32> {
    (0..20).map(|i| (i * 13 + 7) % 97).collect()
}

fn var_builder(dir: &Path) -> VarBuilder<'static> {
    unsafe {
        VarBuilder::from_mmaped_safetensors(
            &[dir.join("model.safetensors")],
            DType::F32,
            &Device::Cpu,
        )
        .unwrap()
    }
}

/// Writes a checkpoint of `family` for `cfg`, runs ours, and checks the prefill's and every
/// decode step's logits against `reference(tokens, offset)` (last-position logits of the
/// reference implementation, which keeps its own cache).
fn check(
    what: &str,
    cfg: &serde_json::Value,
    family: Family,
    reference: impl FnOnce(&Path) -> Box<dyn FnMut(&[u32], usize) -> Vec<f32>>,
) {
    let dir = tempdir();
    write_checkpoint(dir.path(), cfg, family);
    let ours = ours(dir.path(), &PROMPT, &decode_tokens());
    let mut theirs = reference(dir.path());
    assert_close(&ours[0], &theirs(&PROMPT, 0), &format!("{what} prefill"));
    for (step, &t) in decode_tokens().iter().enumerate() {
        let l = theirs(&[t], PROMPT.len() + step);
        assert_close(&ours[step + 1], &l, &format!("{what} decode step {step}"));
    }
}

/// `[1, T]` input ids.
fn ids(tokens: &[u32]) -> Tensor {
    Tensor::new(tokens, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap()
}

fn flat(t: candle_core::Result<Tensor>) -> Vec<f32> {
    t.unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
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

struct TempDir(std::path::PathBuf);
impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
fn tempdir() -> TempDir {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let p = std::env::temp_dir().join(format!(
        "lathe-tiny-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&p).unwrap();
    TempDir(p)
}
