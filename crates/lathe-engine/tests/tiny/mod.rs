//! Tiny random-weight checkpoints of every architecture, and a run of lathe's paged model on
//! them (a prefill, then one token per step over a scattered block table).
#![allow(dead_code)]

pub mod gguf;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use lathe_core::{ScheduledSeq, SchedulerOutput};
use lathe_engine::runner::{execute, HostBatch};
use lathe_models::loader::{load_model, ModelFiles};
use lathe_models::KvCache;

pub const BLOCK: usize = 4;

/// The shapes every tiny checkpoint shares.
pub const VOCAB: usize = 97;
pub const HIDDEN: usize = 64;
pub const INTERMEDIATE: usize = 96;
pub const LAYERS: usize = 2;
pub const HEADS: usize = 4;
pub const KV_HEADS: usize = 2;
pub const HEAD_DIM: usize = HIDDEN / HEADS;

pub fn config(arch: &str, tied: bool) -> serde_json::Value {
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
pub fn moe_config(tied: bool) -> serde_json::Value {
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
pub fn starcoder2_config() -> serde_json::Value {
    let mut c = config("Starcoder2ForCausalLM", true);
    c["hidden_act"] = "gelu_pytorch_tanh".into();
    c["norm_epsilon"] = 1e-5.into();
    c["use_bias"] = true.into();
    c["sliding_window"] = 4096.into();
    c
}

/// Random tensors under Hugging Face names.
pub struct Tensors(pub HashMap<String, Tensor>);

impl Tensors {
    pub fn rnd(&mut self, name: String, shape: &[usize], scale: f64) {
        let x = (Tensor::randn(0f32, 1f32, shape, &Device::Cpu).unwrap() * scale).unwrap();
        // Norm weights near 1 like trained models, so activations stay in a sane range.
        let x = if name.contains("norm.weight") {
            (x + 1.0).unwrap()
        } else {
            x
        };
        self.0.insert(name, x);
    }

    pub fn linear(&mut self, name: &str, out: usize, inp: usize, bias: bool) {
        self.rnd(format!("{name}.weight"), &[out, inp], 0.2);
        if bias {
            self.rnd(format!("{name}.bias"), &[out], 0.2);
        }
    }

    pub fn layer_norm(&mut self, name: &str) {
        self.rnd(format!("{name}.weight"), &[HIDDEN], 0.2);
        self.rnd(format!("{name}.bias"), &[HIDDEN], 0.2);
    }

    pub fn gated_mlp(&mut self, p: &str, width: usize) {
        self.linear(&format!("{p}.gate_proj"), width, HIDDEN, false);
        self.linear(&format!("{p}.up_proj"), width, HIDDEN, false);
        self.linear(&format!("{p}.down_proj"), HIDDEN, width, false);
    }
}

/// What a tiny checkpoint's blocks hold besides q/k/v/o.
#[derive(Clone, Copy, PartialEq)]
pub enum Family {
    Llama,
    Qwen2,
    Qwen3,
    Qwen3Moe,
    Starcoder2,
}

/// A reference implementation: last-position logits for `(tokens, offset)`, keeping its own
/// cache between calls.
pub type Reference = Box<dyn FnMut(&[u32], usize) -> Vec<f32>>;

/// Whether layer `l` of a MoE config is sparse (every `decoder_sparse_step`-th).
pub fn moe_sparse(cfg: &serde_json::Value, l: usize) -> bool {
    (l + 1).is_multiple_of(cfg["decoder_sparse_step"].as_u64().unwrap() as usize)
}

/// Writes `model.safetensors` and `config.json` into `dir`; returns the tensors.
pub fn write_checkpoint(
    dir: &Path,
    cfg: &serde_json::Value,
    family: Family,
) -> HashMap<String, Tensor> {
    let mut t = Tensors(HashMap::new());
    let (h, d) = (HIDDEN, HEAD_DIM);
    let vocab = cfg["vocab_size"].as_u64().unwrap() as usize;
    t.rnd("model.embed_tokens.weight".into(), &[vocab, h], 1.0);
    if !cfg["tie_word_embeddings"].as_bool().unwrap() {
        t.rnd("lm_head.weight".into(), &[vocab, h], 0.2);
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
            Family::Qwen3Moe if moe_sparse(cfg, l) => {
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
    t.0
}

/// The safetensors checkpoint in `dir`.
pub fn safetensors(dir: &Path) -> ModelFiles {
    ModelFiles::Safetensors {
        config: dir.join("config.json"),
        tokenizer: dir.join("tokenizer.json"),
        tokenizer_config: None,
        weights: vec![dir.join("model.safetensors")],
    }
}

/// Runs our model over `tokens` as one prefill then one token per step; returns the logits
/// after the prefill and after each decode step.
pub fn ours(files: &ModelFiles, prompt: &[u32], decode: &[u32]) -> Vec<Vec<f32>> {
    let model = load_model(files, &Device::Cpu, DType::F32).unwrap();
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

/// Relative L2 error of `ours` against `theirs` below `tol`; non-finite values fail.
pub fn assert_close(ours: &[f32], theirs: &[f32], tol: f32, what: &str) {
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
        diff / norm < tol,
        "{what}: relative error {} ≥ {tol}",
        diff / norm
    );
}

pub const PROMPT: [u32; 11] = [1, 5, 9, 33, 2, 77, 41, 8, 8, 60, 13];

pub fn decode_tokens() -> Vec<u32> {
    (0..20).map(|i| (i * 13 + 7) % 97).collect()
}

pub fn var_builder(dir: &Path) -> VarBuilder<'static> {
    unsafe {
        VarBuilder::from_mmaped_safetensors(
            &[dir.join("model.safetensors")],
            DType::F32,
            &Device::Cpu,
        )
        .unwrap()
    }
}

/// `[1, T]` input ids.
pub fn ids(tokens: &[u32]) -> Tensor {
    Tensor::new(tokens, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap()
}

pub fn flat(t: candle_core::Result<Tensor>) -> Vec<f32> {
    t.unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

pub struct TempDir(std::path::PathBuf);
impl TempDir {
    pub fn path(&self) -> &Path {
        &self.0
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
pub fn tempdir() -> TempDir {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let p = std::env::temp_dir().join(format!(
        "lathe-tiny-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&p).unwrap();
    TempDir(p)
}
