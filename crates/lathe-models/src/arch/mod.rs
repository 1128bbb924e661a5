//! Architectures: the one table from architecture name to implementation.

mod llama;

pub use llama::{Llama, LlamaConfig, RopeStyle};

/// Architectures lathe implements. Adding one means a variant here, its names in `from_name`,
/// and a file beside this one; nothing else in lathe names architectures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// llama family: Llama 2/3, SmolLM, DeepSeek-Coder, Mistral/Codestral (no sliding window),
    /// and Qwen2 (qkv bias, tied embeddings) through LlamaConfig switches.
    Llama,
    Qwen2,
}

impl Arch {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "llama" | "LlamaForCausalLM" | "mistral" | "MistralForCausalLM" => Some(Arch::Llama),
            "qwen2" | "Qwen2ForCausalLM" => Some(Arch::Qwen2),
            _ => None,
        }
    }

    pub fn implemented_names() -> &'static [&'static str] {
        &["llama", "mistral", "qwen2"]
    }
}
