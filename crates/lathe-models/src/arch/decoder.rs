//! The decoder-only transformer every architecture is: token embedding, a stack of blocks
//! (norm → self-attention → residual, norm → feed-forward → residual), a final norm and the LM
//! head. Architectures differ only in the parts they put into the blocks, built here from
//! their Hugging Face tensor names (`Weights` maps them to GGUF's).

use candle_core::quantized::QMatMul;
use candle_core::{DType, Device, Result, Tensor};

use super::config::HfConfig;
use super::{Arch, ConfigSource, DecoderConfig};
use crate::batch::BatchMetadata;
use crate::kv_cache::{KvCache, KvCacheSpec};
use crate::layers::{
    Embedding, FeedForward, GatedMlp, LayerNorm, Linear, Norm, PagedAttentionLayer, RmsNorm,
    RotaryEmbedding, SelfAttention,
};
use crate::loader::Weights;
use crate::model::{CausalLm, ModelSpec};

pub struct DecoderBlock {
    pub input_norm: Norm,
    pub attn: SelfAttention,
    pub post_norm: Norm,
    pub ffn: FeedForward,
}

pub struct Decoder {
    embed: Embedding,
    blocks: Vec<DecoderBlock>,
    norm: Norm,
    lm_head: Linear,
    rotary: RotaryEmbedding,
    cfg: DecoderConfig,
    spec: ModelSpec,
}

/// Which projections of the attention carry a bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionBias {
    pub qkv: bool,
    pub o: bool,
}

impl Decoder {
    /// Around `blocks`: the embedding, the LM head (tied to the embedding when the config says
    /// so or the checkpoint has none), the rotary table and the model's spec.
    pub fn new(
        arch: Arch,
        cfg: DecoderConfig,
        w: &Weights,
        device: &Device,
        blocks: Vec<DecoderBlock>,
        norm: Norm,
    ) -> anyhow::Result<Self> {
        let embed = w.embedding("model.embed_tokens.weight")?;
        let lm_head = if cfg.tie_word_embeddings || !w.contains("lm_head.weight") {
            // Tied: the LM head shares the embedding's weights (one packed copy on the CPU).
            match &embed {
                Embedding::Quantized(m) => Linear::from_shared(m.clone(), None),
                Embedding::Table(t) => match w {
                    Weights::Gguf(_) => w.linear("model.embed_tokens", false)?,
                    Weights::Safetensors { .. } => Linear::new(QMatMul::Tensor(t.clone()), None),
                },
            }
        } else {
            w.linear("lm_head", false)?
        };
        let rotary = RotaryEmbedding::new(
            cfg.head_dim,
            cfg.rope_theta,
            cfg.rope_scaling,
            cfg.rope_freq_factors.as_deref(),
            cfg.max_position_embeddings,
            cfg.rope_style,
            device,
        )?;
        let dtype = w.dtype();
        let spec = ModelSpec {
            arch,
            vocab_size: cfg.vocab_size,
            max_position_embeddings: cfg.max_position_embeddings,
            kv: KvCacheSpec {
                num_layers: cfg.num_hidden_layers,
                num_kv_heads: cfg.num_key_value_heads,
                head_dim: cfg.head_dim,
                dtype,
            },
            dtype,
            device: device.clone(),
            weight_bytes: w.total_bytes(),
        };
        Ok(Self {
            embed,
            blocks,
            norm,
            lm_head,
            rotary,
            cfg,
            spec,
        })
    }

    /// Bytes of weights one token reads, where that is less than all of them (a MoE model
    /// reads only its routed experts).
    pub fn with_bytes_read_per_token(mut self, bytes: usize) -> Self {
        self.spec.weight_bytes = bytes;
        self
    }

    pub fn config(&self) -> &DecoderConfig {
        &self.cfg
    }

    /// `model.layers.{i}.self_attn`: q/k/v/o projections and paged attention with the
    /// config's window.
    pub fn attention(
        w: &Weights,
        cfg: &DecoderConfig,
        i: usize,
        bias: AttentionBias,
    ) -> anyhow::Result<SelfAttention> {
        let p = format!("model.layers.{i}.self_attn");
        let mut attn = PagedAttentionLayer::new(
            cfg.num_attention_heads,
            cfg.num_key_value_heads,
            cfg.head_dim,
        );
        attn.options.sliding_window = cfg.sliding_window;
        Ok(SelfAttention::new(
            w.linear(&format!("{p}.q_proj"), bias.qkv)?,
            w.linear(&format!("{p}.k_proj"), bias.qkv)?,
            w.linear(&format!("{p}.v_proj"), bias.qkv)?,
            w.linear(&format!("{p}.o_proj"), bias.o)?,
            attn,
        )?)
    }

    /// A llama-style block: RMSNorm before the attention and before the feed-forward
    /// (`input_layernorm`, `post_attention_layernorm`).
    pub fn rms_block(
        w: &Weights,
        cfg: &DecoderConfig,
        i: usize,
        attn: SelfAttention,
        ffn: FeedForward,
    ) -> anyhow::Result<DecoderBlock> {
        let p = format!("model.layers.{i}");
        Ok(DecoderBlock {
            input_norm: Norm::Rms(Self::rms_norm(
                w,
                &format!("{p}.input_layernorm"),
                cfg.norm_eps,
            )?),
            attn,
            post_norm: Norm::Rms(Self::rms_norm(
                w,
                &format!("{p}.post_attention_layernorm"),
                cfg.norm_eps,
            )?),
            ffn,
        })
    }

    /// The blocks of the llama shape (llama, qwen2, qwen3): RMSNorms, `attention(i)`, the
    /// gated MLP `model.layers.{i}.mlp`.
    pub fn llama_blocks(
        w: &Weights,
        cfg: &DecoderConfig,
        attention: impl Fn(usize) -> anyhow::Result<SelfAttention>,
    ) -> anyhow::Result<Vec<DecoderBlock>> {
        (0..cfg.num_hidden_layers)
            .map(|i| {
                let mlp = Self::gated_mlp(w, &format!("model.layers.{i}.mlp"))?;
                Self::rms_block(w, cfg, i, attention(i)?, FeedForward::Gated(mlp))
            })
            .collect()
    }

    /// The final RMSNorm (`model.norm`).
    pub fn final_rms_norm(w: &Weights, cfg: &DecoderConfig) -> anyhow::Result<Norm> {
        Ok(Norm::Rms(Self::rms_norm(w, "model.norm", cfg.norm_eps)?))
    }

    /// Which attention projections carry a bias: from the checkpoint's tensors in a GGUF file,
    /// from config.json's `attention_bias` (q, k, v and o alike, as HF reads it) or `default`.
    pub fn attention_bias(
        src: &ConfigSource,
        w: &Weights,
        default: AttentionBias,
    ) -> AttentionBias {
        match src {
            ConfigSource::Gguf { .. } => AttentionBias {
                qkv: w.contains("model.layers.0.self_attn.q_proj.bias"),
                o: w.contains("model.layers.0.self_attn.o_proj.bias"),
            },
            ConfigSource::Hf(j) => match HfConfig(j).bool("attention_bias") {
                Some(b) => AttentionBias { qkv: b, o: b },
                None => default,
            },
        }
    }

    /// The gated SiLU MLP under `prefix` (`gate_proj`, `up_proj`, `down_proj`, no biases).
    pub fn gated_mlp(w: &Weights, prefix: &str) -> anyhow::Result<GatedMlp> {
        Ok(GatedMlp::new(
            w.linear(&format!("{prefix}.gate_proj"), false)?,
            w.linear(&format!("{prefix}.up_proj"), false)?,
            w.linear(&format!("{prefix}.down_proj"), false)?,
        )?)
    }

    /// RMSNorm `{name}.weight`.
    pub fn rms_norm(w: &Weights, name: &str, eps: f32) -> anyhow::Result<RmsNorm> {
        Ok(RmsNorm::new(w.tensor(&format!("{name}.weight"))?, eps))
    }

    /// LayerNorm `{name}.weight` and `{name}.bias`.
    pub fn layer_norm(w: &Weights, name: &str, eps: f32) -> anyhow::Result<LayerNorm> {
        Ok(LayerNorm::new(
            w.tensor(&format!("{name}.weight"))?,
            w.tensor(&format!("{name}.bias"))?,
            eps,
        ))
    }
}

impl CausalLm for Decoder {
    fn forward(&self, input_ids: &Tensor, batch: &BatchMetadata, kv: &KvCache) -> Result<Tensor> {
        let mut residual = self.embed.forward(input_ids)?;
        let mut hidden = self.blocks[0].input_norm.forward(&residual)?;
        for (i, block) in self.blocks.iter().enumerate() {
            let attn = block
                .attn
                .forward(&hidden, &self.rotary, batch, &kv.layers[i])?;
            let (normed, res) = block.post_norm.forward_residual(&attn, &residual)?;
            let ffn = block.ffn.forward(&normed)?;
            // The next block's input norm (or the final one) fused with this residual add.
            let next_norm = self.blocks.get(i + 1).map_or(&self.norm, |b| &b.input_norm);
            (hidden, residual) = next_norm.forward_residual(&ffn, &res)?;
        }
        if batch.logits_indices.dim(0)? == 0 {
            return Tensor::zeros((0, self.cfg.vocab_size), DType::F32, input_ids.device());
        }
        let last = hidden.index_select(&batch.logits_indices, 0)?;
        self.lm_head.forward(&last)?.to_dtype(DType::F32)
    }

    fn spec(&self) -> &ModelSpec {
        &self.spec
    }
}
