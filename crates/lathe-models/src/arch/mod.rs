//! Architectures: the one table from architecture name to implementation. Each architecture is
//! a file of a few lines composing the shared layers into `decoder::Decoder`'s blocks.
//!
//! Adding one: a variant of `Arch`, its names in `from_name` (HF class, HF `model_type`, GGUF
//! `general.architecture`), a file beside this one with a `build`, and its arm in
//! `Arch::build`. Tensor names are Hugging Face's; a GGUF name they do not map to yet goes into
//! `loader::gguf_name`.

mod config;
mod decoder;
mod gguf_meta;
mod llama;
mod qwen2;
mod qwen3;
mod qwen3_moe;
mod rope_config;
mod starcoder2;

pub use config::{ConfigSource, DecoderConfig, HfConfig, HfWindow, RopeStyle};
pub use decoder::{AttentionBias, Decoder, DecoderBlock};
pub use gguf_meta::GgufMeta;
pub use qwen3_moe::MoeConfig;

use candle_core::Device;

use crate::loader::Weights;

/// Architectures lathe implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// Llama 2/3, SmolLM, DeepSeek-Coder, Mistral/Codestral.
    Llama,
    Qwen2,
    Qwen3,
    /// Qwen3-MoE / Qwen3-Coder-30B-A3B.
    Qwen3Moe,
    Starcoder2,
}

impl Arch {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "llama" | "LlamaForCausalLM" | "mistral" | "MistralForCausalLM" => Some(Arch::Llama),
            "qwen2" | "Qwen2ForCausalLM" => Some(Arch::Qwen2),
            "qwen3" | "Qwen3ForCausalLM" => Some(Arch::Qwen3),
            "qwen3_moe" | "qwen3moe" | "Qwen3MoeForCausalLM" => Some(Arch::Qwen3Moe),
            "starcoder2" | "Starcoder2ForCausalLM" => Some(Arch::Starcoder2),
            _ => None,
        }
    }

    pub fn implemented_names() -> &'static [&'static str] {
        &[
            "llama",
            "mistral",
            "qwen2",
            "qwen3",
            "qwen3_moe",
            "starcoder2",
        ]
    }

    /// The model from its configuration and weights.
    pub fn build(
        self,
        src: &ConfigSource,
        w: &Weights,
        device: &Device,
    ) -> anyhow::Result<Decoder> {
        match self {
            Arch::Llama => llama::build(src, w, device),
            Arch::Qwen2 => qwen2::build(src, w, device),
            Arch::Qwen3 => qwen3::build(src, w, device),
            Arch::Qwen3Moe => qwen3_moe::build(src, w, device),
            Arch::Starcoder2 => starcoder2::build(src, w, device),
        }
    }
}

#[cfg(test)]
mod config_tests;
