//! The tiny checkpoints as GGUF files laid out the way llama.cpp writes them: llama.cpp tensor
//! names, experts stacked per projection, `{arch}.*` metadata.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Tensor;
use lathe_models::loader::{gguf_expert_name, gguf_name};

use super::Family;

/// GGUF `general.architecture` of a family.
pub fn gguf_arch(family: Family) -> &'static str {
    match family {
        Family::Qwen3 => "qwen3",
        Family::Qwen3Moe => "qwen3moe",
        Family::Starcoder2 => "starcoder2",
        Family::Llama | Family::Qwen2 => unreachable!("covered by the real-model oracles"),
    }
}

/// The type of each HF-named tensor in a file.
pub type TypeOf = dyn Fn(&str, &Tensor) -> GgmlDType;

/// Matrices in `dtype`; norms, biases and the router in F32 (as llama.cpp keeps them).
pub fn matrices_in(dtype: GgmlDType) -> impl Fn(&str, &Tensor) -> GgmlDType {
    move |name, t| match t.rank() == 1 || name.ends_with("mlp.gate.weight") {
        true => GgmlDType::F32,
        false => dtype,
    }
}

/// Writes the HF-named `tensors` of `cfg` as `model.gguf` in `dir`, each in `type_of` it, plus
/// `extra` metadata (a real model's `tokenizer.*` keys, say).
pub fn write_gguf(
    dir: &Path,
    cfg: &serde_json::Value,
    family: Family,
    tensors: &HashMap<String, Tensor>,
    type_of: &TypeOf,
    extra: &[(String, Value)],
) -> PathBuf {
    let arch = gguf_arch(family);
    let u = |k: &str| Value::U32(cfg[k].as_u64().unwrap() as u32);
    let mut meta: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String(arch.into())),
        // candle's quantized_qwen3 runs f16 activations unless told f32.
        ("general.dtype".into(), Value::U32(0)),
    ];
    let mut arch_meta = vec![
        ("block_count", u("num_hidden_layers")),
        ("context_length", u("max_position_embeddings")),
        ("embedding_length", u("hidden_size")),
        ("feed_forward_length", u("intermediate_size")),
        ("attention.head_count", u("num_attention_heads")),
        ("attention.head_count_kv", u("num_key_value_heads")),
        ("attention.key_length", u("head_dim")),
        ("attention.value_length", u("head_dim")),
        ("rope.freq_base", Value::F32(10_000.0)),
    ];
    if family == Family::Starcoder2 {
        arch_meta.push(("attention.layer_norm_epsilon", Value::F32(1e-5)));
    } else {
        arch_meta.push(("attention.layer_norm_rms_epsilon", Value::F32(1e-5)));
    }
    if family == Family::Qwen3Moe {
        arch_meta.push(("expert_count", u("num_experts")));
        arch_meta.push(("expert_used_count", u("num_experts_per_tok")));
        arch_meta.push(("expert_feed_forward_length", u("moe_intermediate_size")));
    }
    meta.extend(
        arch_meta
            .into_iter()
            .map(|(k, v)| (format!("{arch}.{k}"), v)),
    );
    meta.extend(extra.iter().cloned());

    // Experts stacked per projection, in expert order.
    let mut stacks: BTreeMap<String, BTreeMap<usize, (GgmlDType, Tensor)>> = BTreeMap::new();
    let mut out: Vec<(String, QTensor)> = Vec::new();
    for (hf, t) in tensors {
        if let Some((name, e)) = gguf_expert_name(hf) {
            stacks
                .entry(name)
                .or_default()
                .insert(e, (type_of(hf, t), t.clone()));
            continue;
        }
        out.push((gguf_name(hf), QTensor::quantize(t, type_of(hf, t)).unwrap()));
    }
    for (name, experts) in stacks {
        let ty = experts[&0].0;
        let parts: Vec<Tensor> = experts.into_values().map(|(_, t)| t).collect();
        let stacked = Tensor::stack(&parts, 0).unwrap();
        out.push((name, QTensor::quantize(&stacked, ty).unwrap()));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    let path = dir.join("model.gguf");
    let mut f = std::fs::File::create(&path).unwrap();
    let meta_refs: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = out.iter().map(|(k, t)| (k.as_str(), t)).collect();
    gguf_file::write(&mut f, &meta_refs, &tensor_refs).unwrap();
    path
}
