//! Uniform access to a checkpoint's tensors by their Hugging Face names, whether they live in a
//! GGUF file (quantized, llama.cpp names) or in safetensors (dense). Architectures ask for
//! `model.layers.3.self_attn.q_proj` and never see the file format.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Mutex};

use candle_core::quantized::{gguf_file, QMatMul, QTensor};
use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;

use crate::layers::Linear;

pub enum Weights {
    Gguf(GgufWeights),
    Safetensors {
        vb: VarBuilder<'static>,
        dtype: DType,
    },
}

pub struct GgufWeights {
    pub content: gguf_file::Content,
    file: Mutex<File>,
    device: Device,
    /// Quantized tensors already read (the tied embedding is read twice).
    cache: Mutex<HashMap<String, Arc<QTensor>>>,
}

impl GgufWeights {
    pub fn open(path: &Path, device: &Device) -> anyhow::Result<Self> {
        let mut file =
            File::open(path).map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))?;
        let content = gguf_file::Content::read(&mut file)
            .map_err(|e| anyhow::anyhow!("{} is not a readable GGUF file: {e}", path.display()))?;
        Ok(Self {
            content,
            file: Mutex::new(file),
            device: device.clone(),
            cache: Mutex::default(),
        })
    }

    fn qtensor(&self, gguf_name: &str) -> Result<Arc<QTensor>> {
        if let Some(t) = self.cache.lock().unwrap().get(gguf_name) {
            return Ok(t.clone());
        }
        let mut file = self.file.lock().unwrap();
        let t = Arc::new(self.content.tensor(&mut *file, gguf_name, &self.device)?);
        self.cache
            .lock()
            .unwrap()
            .insert(gguf_name.to_string(), t.clone());
        Ok(t)
    }
}

impl Weights {
    pub fn safetensors(
        files: &[std::path::PathBuf],
        dtype: DType,
        device: &Device,
    ) -> anyhow::Result<Self> {
        // SAFETY: the files are memory-mapped read-only; lathe never writes them while loaded.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(files, dtype, device)? };
        Ok(Weights::Safetensors { vb, dtype })
    }

    /// Activation dtype the model runs in.
    pub fn dtype(&self) -> DType {
        match self {
            Weights::Gguf(_) => DType::F32,
            Weights::Safetensors { dtype, .. } => *dtype,
        }
    }

    pub fn contains(&self, hf_name: &str) -> bool {
        match self {
            Weights::Gguf(g) => g.content.tensor_infos.contains_key(&gguf_name(hf_name)),
            Weights::Safetensors { vb, .. } => vb.contains_tensor(hf_name),
        }
    }

    /// A dense tensor in the activation dtype (norm weights, biases, embeddings).
    pub fn tensor(&self, hf_name: &str) -> Result<Tensor> {
        match self {
            Weights::Gguf(g) => {
                let q = g.qtensor(&gguf_name(hf_name))?;
                q.dequantize(&g.device)
            }
            Weights::Safetensors { vb, .. } => {
                let shape = vb.get_unchecked(hf_name)?.shape().clone();
                vb.get(shape, hf_name)
            }
        }
    }

    /// `prefix.weight` (+ `prefix.bias` when `bias`) as a linear layer.
    pub fn linear(&self, prefix: &str, bias: bool) -> Result<Linear> {
        let bias = if bias {
            Some(self.tensor(&format!("{prefix}.bias"))?)
        } else {
            None
        };
        let weight = format!("{prefix}.weight");
        match self {
            Weights::Gguf(g) => Linear::from_qtensor(g.qtensor(&gguf_name(&weight))?, bias),
            Weights::Safetensors { .. } => {
                Ok(Linear::new(QMatMul::Tensor(self.tensor(&weight)?), bias))
            }
        }
    }

    /// Bytes the weights take in memory (for roofline numbers).
    pub fn total_bytes(&self) -> usize {
        match self {
            Weights::Gguf(g) => g
                .content
                .tensor_infos
                .values()
                .map(|i| {
                    i.shape.elem_count() / i.ggml_dtype.block_size() * i.ggml_dtype.type_size()
                })
                .sum(),
            Weights::Safetensors { .. } => 0,
        }
    }
}

/// llama.cpp's name for a Hugging Face tensor name (llama/qwen2 family).
pub fn gguf_name(hf: &str) -> String {
    let top = [
        ("model.embed_tokens.", "token_embd."),
        ("model.norm.", "output_norm."),
        ("lm_head.", "output."),
    ];
    for (from, to) in top {
        if let Some(rest) = hf.strip_prefix(from) {
            return format!("{to}{rest}");
        }
    }
    if let Some(rest) = hf.strip_prefix("model.layers.") {
        let (idx, rest) = rest.split_once('.').unwrap_or((rest, ""));
        let parts = [
            ("input_layernorm.", "attn_norm."),
            ("post_attention_layernorm.", "ffn_norm."),
            ("self_attn.q_proj.", "attn_q."),
            ("self_attn.k_proj.", "attn_k."),
            ("self_attn.v_proj.", "attn_v."),
            ("self_attn.o_proj.", "attn_output."),
            ("mlp.gate_proj.", "ffn_gate."),
            ("mlp.up_proj.", "ffn_up."),
            ("mlp.down_proj.", "ffn_down."),
        ];
        for (from, to) in parts {
            if let Some(tail) = rest.strip_prefix(from) {
                return format!("blk.{idx}.{to}{tail}");
            }
        }
    }
    hf.to_string()
}

#[cfg(test)]
mod tests {
    use super::gguf_name;

    #[test]
    fn hf_names_map_to_llama_cpp_names() {
        assert_eq!(gguf_name("model.embed_tokens.weight"), "token_embd.weight");
        assert_eq!(
            gguf_name("model.layers.12.self_attn.o_proj.weight"),
            "blk.12.attn_output.weight"
        );
        assert_eq!(
            gguf_name("model.layers.0.self_attn.q_proj.bias"),
            "blk.0.attn_q.bias"
        );
        assert_eq!(
            gguf_name("model.layers.3.mlp.down_proj.weight"),
            "blk.3.ffn_down.weight"
        );
        assert_eq!(gguf_name("lm_head.weight"), "output.weight");
    }
}
