//! Qwen2 / Qwen2.5 / Qwen2.5-Coder: llama blocks with bias on q, k and v (never on o).

use candle_core::Device;

use super::decoder::{AttentionBias, Decoder};
use super::{Arch, ConfigSource, DecoderConfig, HfWindow};
use crate::layers::{FeedForward, Norm};
use crate::loader::Weights;

pub fn build(src: &ConfigSource, w: &Weights, device: &Device) -> anyhow::Result<Decoder> {
    let cfg = DecoderConfig::read(src, HfWindow::QwenPerLayer, false)?;
    let bias = AttentionBias {
        qkv: true,
        o: false,
    };
    let blocks = (0..cfg.num_hidden_layers)
        .map(|i| {
            let attn = Decoder::attention(w, &cfg, i, bias)?;
            let mlp = Decoder::gated_mlp(w, &format!("model.layers.{i}.mlp"))?;
            Decoder::rms_block(w, &cfg, i, attn, FeedForward::Gated(mlp))
        })
        .collect::<anyhow::Result<_>>()?;
    let norm = Norm::Rms(Decoder::rms_norm(w, "model.norm", cfg.norm_eps)?);
    Decoder::new(Arch::Qwen2, cfg, w, device, blocks, norm)
}
