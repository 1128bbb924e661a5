//! Tiny random-weight llama and qwen2 checkpoints, written by the test as safetensors +
//! config.json: our paged implementation must give the logits of candle-transformers' own
//! implementations within 1e-4 relative error (f32), at prefill and over 20 decode steps.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use lathe_core::{ScheduledSeq, SchedulerOutput};
use lathe_engine::runner::{execute, HostBatch};
use lathe_models::loader::{load_model, ModelFiles};
use lathe_models::KvCache;

const BLOCK: usize = 4;

fn config(arch: &str, tied: bool) -> serde_json::Value {
    serde_json::json!({
        "architectures": [arch],
        "vocab_size": 97, "hidden_size": 64, "intermediate_size": 96,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "tie_word_embeddings": tied, "hidden_act": "silu",
        "sliding_window": 128, "max_window_layers": 2, "use_sliding_window": false,
        "bos_token_id": 1, "eos_token_id": 2
    })
}

fn write_checkpoint(dir: &Path, cfg: &serde_json::Value, qkv_bias: bool) {
    let dev = Device::Cpu;
    let (v, h, i) = (97, 64, 96);
    let (heads, kvh) = (4, 2);
    let d = h / heads;
    let mut t: HashMap<String, Tensor> = HashMap::new();
    let mut rnd = |name: String, shape: &[usize], scale: f64| {
        let x = (Tensor::randn(0f32, 1f32, shape, &dev).unwrap() * scale).unwrap();
        t.insert(name, x);
    };
    rnd("model.embed_tokens.weight".into(), &[v, h], 1.0);
    rnd("model.norm.weight".into(), &[h], 0.2);
    if !cfg["tie_word_embeddings"].as_bool().unwrap() {
        rnd("lm_head.weight".into(), &[v, h], 0.2);
    }
    for l in 0..2 {
        let p = format!("model.layers.{l}");
        rnd(format!("{p}.input_layernorm.weight"), &[h], 0.2);
        rnd(format!("{p}.post_attention_layernorm.weight"), &[h], 0.2);
        rnd(format!("{p}.self_attn.q_proj.weight"), &[heads * d, h], 0.2);
        rnd(format!("{p}.self_attn.k_proj.weight"), &[kvh * d, h], 0.2);
        rnd(format!("{p}.self_attn.v_proj.weight"), &[kvh * d, h], 0.2);
        rnd(format!("{p}.self_attn.o_proj.weight"), &[h, heads * d], 0.2);
        if qkv_bias {
            rnd(format!("{p}.self_attn.q_proj.bias"), &[heads * d], 0.2);
            rnd(format!("{p}.self_attn.k_proj.bias"), &[kvh * d], 0.2);
            rnd(format!("{p}.self_attn.v_proj.bias"), &[kvh * d], 0.2);
        }
        rnd(format!("{p}.mlp.gate_proj.weight"), &[i, h], 0.2);
        rnd(format!("{p}.mlp.up_proj.weight"), &[i, h], 0.2);
        rnd(format!("{p}.mlp.down_proj.weight"), &[h, i], 0.2);
    }
    // Norm weights near 1 like trained models, so activations stay in a sane range.
    for (name, x) in t.iter_mut() {
        if name.ends_with("norm.weight") {
            *x = (x.clone() + 1.0).unwrap();
        }
    }
    candle_core::safetensors::save(&t, dir.join("model.safetensors")).unwrap();
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

#[test]
fn llama_matches_candle_transformers() {
    for tied in [false, true] {
        let dir = tempdir();
        let cfg = config("LlamaForCausalLM", tied);
        write_checkpoint(dir.path(), &cfg, false);
        let ours = ours(dir.path(), &PROMPT, &decode_tokens());

        use candle_transformers::models::llama as cl;
        let lc: cl::LlamaConfig = serde_json::from_value(cfg.clone()).unwrap();
        let c = lc.into_config(false);
        let vb = unsafe {
            VarBuilder::from_mmaped_safetensors(
                &[dir.path().join("model.safetensors")],
                DType::F32,
                &Device::Cpu,
            )
            .unwrap()
        };
        let model = cl::Llama::load(vb, &c).unwrap();
        let mut cache = cl::Cache::new(true, DType::F32, &c, &Device::Cpu).unwrap();
        let dev = Device::Cpu;
        let mut pos = 0;
        let x = Tensor::new(&PROMPT[..], &dev)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let l = model
            .forward(&x, pos, &mut cache)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_close(&ours[0], &l, &format!("llama tied={tied} prefill"));
        pos += PROMPT.len();
        for (step, &t) in decode_tokens().iter().enumerate() {
            let x = Tensor::new(&[t], &dev).unwrap().unsqueeze(0).unwrap();
            let l = model
                .forward(&x, pos, &mut cache)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            assert_close(
                &ours[step + 1],
                &l,
                &format!("llama tied={tied} decode step {step}"),
            );
            pos += 1;
        }
    }
}

#[test]
fn qwen2_matches_candle_transformers() {
    for tied in [true, false] {
        let dir = tempdir();
        let cfg = config("Qwen2ForCausalLM", tied);
        write_checkpoint(dir.path(), &cfg, true);
        let ours = ours(dir.path(), &PROMPT, &decode_tokens());

        use candle_transformers::models::qwen2 as cq;
        let c: cq::Config = serde_json::from_value(cfg.clone()).unwrap();
        let vb = unsafe {
            VarBuilder::from_mmaped_safetensors(
                &[dir.path().join("model.safetensors")],
                DType::F32,
                &Device::Cpu,
            )
            .unwrap()
        };
        let mut model = cq::ModelForCausalLM::new(&c, vb).unwrap();
        let dev = Device::Cpu;
        let x = Tensor::new(&PROMPT[..], &dev)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let l = model
            .forward(&x, 0)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_close(&ours[0], &l, &format!("qwen2 tied={tied} prefill"));
        for (step, &t) in decode_tokens().iter().enumerate() {
            let x = Tensor::new(&[t], &dev).unwrap().unsqueeze(0).unwrap();
            let l = model
                .forward(&x, PROMPT.len() + step)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            assert_close(
                &ours[step + 1],
                &l,
                &format!("qwen2 tied={tied} decode step {step}"),
            );
        }
    }
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
