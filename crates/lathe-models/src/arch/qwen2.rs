//! Qwen2 / Qwen2.5 / Qwen2.5-Coder: llama blocks with bias on q, k and v (never on o).

use candle_core::Device;

use super::decoder::{AttentionBias, Decoder};
use super::{Arch, ConfigSource, DecoderConfig, HfWindow};
use crate::loader::Weights;

pub fn build(src: &ConfigSource, w: &Weights, device: &Device) -> anyhow::Result<Decoder> {
    let cfg = DecoderConfig::read(src, HfWindow::QwenPerLayer, false)?;
    let bias = AttentionBias {
        qkv: true,
        o: false,
    };
    let blocks = Decoder::llama_blocks(w, &cfg, |i| Decoder::attention(w, &cfg, i, bias))?;
    let norm = Decoder::final_rms_norm(w, &cfg)?;
    Decoder::new(Arch::Qwen2, cfg, w, device, blocks, norm)
}
