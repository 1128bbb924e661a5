//! The llama family: Llama 2/3, SmolLM, DeepSeek-Coder, Mistral/Codestral (one attention
//! window over every layer).

use candle_core::Device;

use super::decoder::{AttentionBias, Decoder};
use super::{Arch, ConfigSource, DecoderConfig, HfWindow};
use crate::loader::Weights;

pub fn build(src: &ConfigSource, w: &Weights, device: &Device) -> anyhow::Result<Decoder> {
    let cfg = DecoderConfig::read(src, HfWindow::Uniform, false)?;
    let bias = Decoder::attention_bias(
        src,
        w,
        AttentionBias {
            qkv: false,
            o: false,
        },
    );
    let blocks = Decoder::llama_blocks(w, &cfg, |i| Decoder::attention(w, &cfg, i, bias))?;
    let norm = Decoder::final_rms_norm(w, &cfg)?;
    Decoder::new(Arch::Llama, cfg, w, device, blocks, norm)
}
