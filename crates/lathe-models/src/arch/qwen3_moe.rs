//! Qwen3-MoE (Qwen3-30B-A3B, Qwen3-Coder-30B-A3B/480B-A35B): Qwen3's attention, and in the
//! sparse layers a mixture of experts — softmax routing over `num_experts`, the top
//! `num_experts_per_tok` gated SiLU experts, weights renormalised when `norm_topk_prob`.

use anyhow::{bail, Context};
use candle_core::Device;
use serde_json::Value;

use super::config::HfConfig;
use super::decoder::Decoder;
use super::{qwen3, Arch, ConfigSource, DecoderConfig, HfWindow};
use crate::layers::{FeedForward, SparseMoe};
use crate::loader::Weights;

/// The experts of the sparse layers.
#[derive(Debug, Clone, PartialEq)]
pub struct MoeConfig {
    pub num_experts: usize,
    pub top_k: usize,
    pub norm_topk_prob: bool,
    /// Every `decoder_sparse_step`-th layer is sparse (1: all)…
    pub decoder_sparse_step: usize,
    /// …except these, which keep a dense MLP.
    pub mlp_only_layers: Vec<usize>,
}

impl MoeConfig {
    pub fn read(src: &ConfigSource) -> anyhow::Result<Self> {
        let cfg = match src {
            ConfigSource::Hf(j) => {
                let hf = HfConfig(j);
                Self {
                    num_experts: hf.need("num_experts")?,
                    top_k: hf.need("num_experts_per_tok")?,
                    norm_topk_prob: hf.bool("norm_topk_prob").unwrap_or(false),
                    decoder_sparse_step: hf.uint("decoder_sparse_step").unwrap_or(1),
                    mlp_only_layers: match j.get("mlp_only_layers") {
                        None | Some(Value::Null) => Vec::new(),
                        Some(v) => serde_json::from_value(v.clone())
                            .context("config.json: mlp_only_layers is not a list of layers")?,
                    },
                }
            }
            ConfigSource::Gguf { meta, .. } => Self {
                num_experts: meta.need("expert_count")?,
                top_k: meta.need("expert_used_count")?,
                // llama.cpp always renormalises qwen3moe's top-k weights.
                norm_topk_prob: true,
                decoder_sparse_step: 1,
                // A layer without a router keeps its dense MLP.
                mlp_only_layers: (0..meta.need("block_count")?)
                    .filter(|i| {
                        !meta
                            .g
                            .tensors
                            .contains_key(&format!("blk.{i}.ffn_gate_inp.weight"))
                    })
                    .collect(),
            },
        };
        if cfg.top_k == 0 || cfg.top_k > cfg.num_experts || cfg.decoder_sparse_step == 0 {
            bail!(
                "MoE config: {} of {} experts per token, sparse step {}",
                cfg.top_k,
                cfg.num_experts,
                cfg.decoder_sparse_step
            );
        }
        Ok(cfg)
    }

    pub fn is_sparse(&self, layer: usize) -> bool {
        !self.mlp_only_layers.contains(&layer)
            && (layer + 1).is_multiple_of(self.decoder_sparse_step)
    }
}

pub fn build(src: &ConfigSource, w: &Weights, device: &Device) -> anyhow::Result<Decoder> {
    let cfg = DecoderConfig::read(src, HfWindow::QwenPerLayer, true)?;
    let moe = MoeConfig::read(src)?;
    let blocks = (0..cfg.num_hidden_layers)
        .map(|i| {
            let attn = qwen3::attention(src, w, &cfg, i)?;
            let p = format!("model.layers.{i}.mlp");
            let ffn = if moe.is_sparse(i) {
                FeedForward::Moe(SparseMoe {
                    router: w.linear(&format!("{p}.gate"), false)?,
                    experts: (0..moe.num_experts)
                        .map(|e| Decoder::gated_mlp(w, &format!("{p}.experts.{e}")))
                        .collect::<anyhow::Result<_>>()?,
                    top_k: moe.top_k,
                    norm_topk_prob: moe.norm_topk_prob,
                })
            } else {
                FeedForward::Gated(Decoder::gated_mlp(w, &p)?)
            };
            Decoder::rms_block(w, &cfg, i, attn, ffn)
        })
        .collect::<anyhow::Result<_>>()?;
    let norm = Decoder::final_rms_norm(w, &cfg)?;
    // A token reads top_k of num_experts experts: the roofline counts only those.
    let unread: usize = (0..cfg.num_hidden_layers)
        .filter(|&i| moe.is_sparse(i))
        .flat_map(|i| ["gate", "up", "down"].map(|p| format!("blk.{i}.ffn_{p}_exps.weight")))
        .filter_map(|name| w.gguf_tensor_bytes(&name))
        .map(|b| b / moe.num_experts * (moe.num_experts - moe.top_k))
        .sum();
    let read = w.total_bytes().saturating_sub(unread);
    Ok(Decoder::new(Arch::Qwen3Moe, cfg, w, device, blocks, norm)?.with_bytes_read_per_token(read))
}
