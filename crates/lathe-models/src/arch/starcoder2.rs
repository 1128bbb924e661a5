//! StarCoder2: LayerNorm with bias, a plain GELU MLP (`c_fc`, `c_proj`), bias on every
//! projection when `use_bias`, one attention window over every layer, tied embeddings.

use anyhow::bail;
use candle_core::Device;

use super::config::HfConfig;
use super::decoder::{AttentionBias, Decoder, DecoderBlock};
use super::{Arch, ConfigSource, DecoderConfig, HfWindow};
use crate::layers::{Activation, FeedForward, Norm, PlainMlp};
use crate::loader::Weights;

pub fn build(src: &ConfigSource, w: &Weights, device: &Device) -> anyhow::Result<Decoder> {
    let mut cfg = DecoderConfig::read(src, HfWindow::Always, false)?;
    let (bias, act) = match src {
        ConfigSource::Hf(j) => {
            let hf = HfConfig(j);
            let name = hf.str("hidden_act").unwrap_or("gelu_pytorch_tanh");
            let Some(act) = Activation::from_hf(name) else {
                bail!("config.json: hidden_act `{name}` is not supported for starcoder2 (gelu_pytorch_tanh, gelu are)");
            };
            // HF's Starcoder2 ties the LM head unless told otherwise.
            cfg.tie_word_embeddings = hf.bool("tie_word_embeddings").unwrap_or(true);
            (hf.bool("use_bias").unwrap_or(true), act)
        }
        // llama.cpp runs starcoder2's MLP with the tanh GELU.
        ConfigSource::Gguf { .. } => (
            w.contains("model.layers.0.self_attn.q_proj.bias"),
            Activation::GeluTanh,
        ),
    };
    let eps = cfg.norm_eps;
    let blocks = (0..cfg.num_hidden_layers)
        .map(|i| {
            let p = format!("model.layers.{i}");
            Ok(DecoderBlock {
                input_norm: Norm::Layer(Decoder::layer_norm(
                    w,
                    &format!("{p}.input_layernorm"),
                    eps,
                )?),
                attn: Decoder::attention(w, &cfg, i, AttentionBias { qkv: bias, o: bias })?,
                post_norm: Norm::Layer(Decoder::layer_norm(
                    w,
                    &format!("{p}.post_attention_layernorm"),
                    eps,
                )?),
                ffn: FeedForward::Plain(PlainMlp {
                    up: w.linear(&format!("{p}.mlp.c_fc"), bias)?,
                    down: w.linear(&format!("{p}.mlp.c_proj"), bias)?,
                    act,
                }),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let norm = Norm::Layer(Decoder::layer_norm(w, "model.norm", eps)?);
    Decoder::new(Arch::Starcoder2, cfg, w, device, blocks, norm)
}
