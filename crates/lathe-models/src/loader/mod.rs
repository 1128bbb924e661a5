//! Loading: resolve `--model` to files, read weights (GGUF or safetensors), build the model.

pub mod gguf;
mod hub;
mod resolve;
mod weights;

pub use resolve::{resolve, ModelFiles, ResolvedModel};
pub use weights::{gguf_expert_name, gguf_name, GgufWeights, Weights};

use anyhow::{Context, Result};
use candle_core::{DType, Device};

use crate::arch::{Arch, ConfigSource, GgufMeta};
use crate::model::CausalLm;

/// Loads the model in `files` on `device`. `dtype` is the activation dtype for safetensors
/// checkpoints (GGUF models run f32 activations over quantized weights).
pub fn load_model(files: &ModelFiles, device: &Device, dtype: DType) -> Result<Box<dyn CausalLm>> {
    match files {
        ModelFiles::Gguf(path) => {
            let g = GgufWeights::open(path, device)?;
            // Llama 3.1 style rope scaling: per-frequency divisors stored as a tensor.
            let rope_freqs = match g.file.tensors.contains_key("rope_freqs.weight") {
                true => Some(
                    g.dense("rope_freqs.weight")?
                        .flatten_all()?
                        .to_vec1::<f32>()?,
                ),
                false => None,
            };
            let w = Weights::Gguf(g);
            let Weights::Gguf(g) = &w else { unreachable!() };
            let meta = GgufMeta::new(&g.file)?;
            let arch = Arch::from_name(&meta.arch).with_context(|| {
                format!(
                    "GGUF architecture `{}` is not implemented (implemented: {})",
                    meta.arch,
                    Arch::implemented_names().join(", ")
                )
            })?;
            let model = arch.build(&ConfigSource::Gguf { meta, rope_freqs }, &w, device)?;
            g.log_fallbacks();
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
            let w = Weights::safetensors(weights, dtype, device)?;
            Ok(Box::new(arch.build(
                &ConfigSource::Hf(&json),
                &w,
                device,
            )?))
        }
    }
}
