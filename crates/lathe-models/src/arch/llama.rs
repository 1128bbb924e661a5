//! The llama family: Llama 2/3, SmolLM, DeepSeek-Coder, Mistral/Codestral (one attention
//! window over every layer).

use candle_core::Device;

use super::decoder::{AttentionBias, Decoder};
use super::{Arch, ConfigSource, DecoderConfig, HfWindow};
use crate::layers::{FeedForward, Norm};
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
    let blocks = (0..cfg.num_hidden_layers)
        .map(|i| {
            let attn = Decoder::attention(w, &cfg, i, bias)?;
            let mlp = Decoder::gated_mlp(w, &format!("model.layers.{i}.mlp"))?;
            Decoder::rms_block(w, &cfg, i, attn, FeedForward::Gated(mlp))
        })
        .collect::<anyhow::Result<_>>()?;
    let norm = Norm::Rms(Decoder::rms_norm(w, "model.norm", cfg.norm_eps)?);
    Decoder::new(Arch::Llama, cfg, w, device, blocks, norm)
}
