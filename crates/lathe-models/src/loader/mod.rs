//! Loading: resolve `--model` to files, read weights (GGUF or safetensors), build the model.

pub mod gguf;
mod hub;
mod resolve;
mod weights;

pub use resolve::{resolve, ModelFiles, ResolvedModel};
pub use weights::{gguf_name, GgufWeights, Weights};

use anyhow::{Context, Result};
use candle_core::{DType, Device};

use crate::arch::{Arch, Llama, LlamaConfig};
use crate::model::CausalLm;

/// Loads the model in `files` on `device`. `dtype` is the activation dtype for safetensors
/// checkpoints (GGUF models run f32 activations over quantized weights).
pub fn load_model(files: &ModelFiles, device: &Device, dtype: DType) -> Result<Box<dyn CausalLm>> {
    match files {
        ModelFiles::Gguf(path) => {
            let w = GgufWeights::open(path, device)?;
            // Llama 3.1 style rope scaling: per-frequency divisors stored as a tensor.
            let rope_freqs = match w.file.tensors.contains_key("rope_freqs.weight") {
                true => Some(
                    w.dense("rope_freqs.weight")?
                        .flatten_all()?
                        .to_vec1::<f32>()?,
                ),
                false => None,
            };
            let cfg = LlamaConfig::from_gguf(&w.file, rope_freqs)?;
            let arch = if cfg.rope_style == crate::arch::RopeStyle::Neox {
                Arch::Qwen2
            } else {
                Arch::Llama
            };
            let w = Weights::Gguf(w);
            let model = Llama::load(cfg, arch, &w, device)?;
            if let Weights::Gguf(g) = &w {
                g.log_fallbacks();
            }
            Ok(Box::new(model))
        }
        ModelFiles::Safetensors {
            config, weights, ..
        } => {
            let json: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(config)?)
                    .with_context(|| format!("parsing {}", config.display()))?;
            let arch_name = json["architectures"][0]
                .as_str()
                .or(json["model_type"].as_str())
                .unwrap_or("unknown");
            let arch = Arch::from_name(arch_name).with_context(|| {
                format!(
                    "architecture `{arch_name}` is not implemented (implemented: {})",
                    Arch::implemented_names().join(", ")
                )
            })?;
            let cfg = LlamaConfig::from_hf(&json, arch)?;
            let w = Weights::safetensors(weights, dtype, device)?;
            Ok(Box::new(Llama::load(cfg, arch, &w, device)?))
        }
    }
}
