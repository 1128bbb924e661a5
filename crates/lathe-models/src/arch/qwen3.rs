//! Qwen3 dense: llama blocks with a per-head RMSNorm of q and of k before the rotation, and no
//! attention bias (unless `attention_bias`).

use candle_core::Device;

use super::decoder::{AttentionBias, Decoder};
use super::{Arch, ConfigSource, DecoderConfig, HfWindow};
use crate::layers::SelfAttention;
use crate::loader::Weights;

pub fn build(src: &ConfigSource, w: &Weights, device: &Device) -> anyhow::Result<Decoder> {
    let cfg = DecoderConfig::read(src, HfWindow::QwenPerLayer, false)?;
    let blocks = Decoder::llama_blocks(w, &cfg, |i| attention(src, w, &cfg, i))?;
    let norm = Decoder::final_rms_norm(w, &cfg)?;
    Decoder::new(Arch::Qwen3, cfg, w, device, blocks, norm)
}

/// Qwen3's attention (shared with Qwen3-MoE): q/k norms, bias only if the checkpoint asks.
pub(super) fn attention(
    src: &ConfigSource,
    w: &Weights,
    cfg: &DecoderConfig,
    i: usize,
) -> anyhow::Result<SelfAttention> {
    let bias = Decoder::attention_bias(
        src,
        w,
        AttentionBias {
            qkv: false,
            o: false,
        },
    );
    let p = format!("model.layers.{i}.self_attn");
    Ok(Decoder::attention(w, cfg, i, bias)?.with_qk_norm(
        Decoder::rms_norm(w, &format!("{p}.q_norm"), cfg.norm_eps)?,
        Decoder::rms_norm(w, &format!("{p}.k_norm"), cfg.norm_eps)?,
    ))
}
