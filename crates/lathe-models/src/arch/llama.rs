//! The llama family (Llama 2/3, SmolLM, DeepSeek-Coder, Mistral without sliding window) and, by
//! the switches in `LlamaConfig`, Qwen2 (qkv bias, tied embeddings, its rope theta).

use candle_core::quantized::QMatMul;
use candle_core::{DType, Device, Result, Tensor};
use serde_json::Value;

pub use lathe_kernels::RopeStyle;

use super::Arch;
use crate::batch::BatchMetadata;
use crate::kv_cache::{KvCache, KvCacheSpec};
use crate::layers::{
    Embedding, GatedMlp, Linear, LinearGroup, PagedAttentionLayer, RmsNorm, RopeScaling,
    RotaryEmbedding,
};
use crate::loader::Weights;
use crate::model::{CausalLm, ModelSpec};

#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f32,
    pub rope_theta: f32,
    pub rope_scaling: RopeScaling,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    /// Bias on q/k/v projections (Qwen2).
    pub attention_bias: bool,
    pub rope_style: RopeStyle,
    pub sliding_window: Option<usize>,
}

impl LlamaConfig {
    /// From a Hugging Face config.json (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM).
    pub fn from_hf(cfg: &Value, arch: Arch) -> anyhow::Result<Self> {
        let get = |k: &str| cfg.get(k).and_then(Value::as_u64).map(|v| v as usize);
        let need = |k: &str| get(k).ok_or_else(|| anyhow::anyhow!("config.json lacks `{k}`"));
        let hidden = need("hidden_size")?;
        let heads = need("num_attention_heads")?;
        let rope_scaling = match cfg.get("rope_scaling") {
            Some(s)
                if s.get("rope_type").or(s.get("type")).and_then(Value::as_str)
                    == Some("llama3") =>
            {
                let f = |k: &str, d: f64| s.get(k).and_then(Value::as_f64).unwrap_or(d) as f32;
                RopeScaling::Llama3 {
                    factor: f("factor", 8.0),
                    low_freq_factor: f("low_freq_factor", 1.0),
                    high_freq_factor: f("high_freq_factor", 4.0),
                    original_max_position_embeddings: s
                        .get("original_max_position_embeddings")
                        .and_then(Value::as_u64)
                        .unwrap_or(8192)
                        as usize,
                }
            }
            Some(s)
                if s.get("rope_type").or(s.get("type")).and_then(Value::as_str)
                    == Some("linear") =>
            {
                RopeScaling::Linear {
                    factor: s.get("factor").and_then(Value::as_f64).unwrap_or(1.0) as f32,
                }
            }
            _ => RopeScaling::None,
        };
        let use_sliding = cfg
            .get("use_sliding_window")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        Ok(Self {
            vocab_size: need("vocab_size")?,
            hidden_size: hidden,
            intermediate_size: need("intermediate_size")?,
            num_hidden_layers: need("num_hidden_layers")?,
            num_attention_heads: heads,
            num_key_value_heads: get("num_key_value_heads").unwrap_or(heads),
            head_dim: get("head_dim").unwrap_or(hidden / heads),
            rms_norm_eps: cfg
                .get("rms_norm_eps")
                .and_then(Value::as_f64)
                .unwrap_or(1e-6) as f32,
            rope_theta: cfg
                .get("rope_theta")
                .and_then(Value::as_f64)
                .unwrap_or(10_000.0) as f32,
            rope_scaling,
            max_position_embeddings: get("max_position_embeddings").unwrap_or(4096),
            tie_word_embeddings: cfg
                .get("tie_word_embeddings")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            attention_bias: cfg
                .get("attention_bias")
                .and_then(Value::as_bool)
                .unwrap_or(arch == Arch::Qwen2),
            rope_style: RopeStyle::Neox,
            sliding_window: if use_sliding && arch == Arch::Llama {
                get("sliding_window")
            } else {
                None
            },
        })
    }

    /// From GGUF metadata (`general.architecture` = llama or qwen2).
    pub fn from_gguf(ct: &crate::loader::gguf::GgufFile) -> anyhow::Result<Self> {
        let arch_name = ct
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_else(|| "llama".into());
        let key = |k: &str| format!("{arch_name}.{k}");
        let u = |k: &str| -> anyhow::Result<usize> {
            Ok(ct
                .metadata
                .get(&key(k))
                .ok_or_else(|| anyhow::anyhow!("GGUF lacks {}", key(k)))?
                .to_u32()? as usize)
        };
        let f = |k: &str| ct.metadata.get(&key(k)).and_then(|v| v.to_f32().ok());
        let hidden = u("embedding_length")?;
        let heads = u("attention.head_count")?;
        let vocab = match ct.metadata.get("tokenizer.ggml.tokens") {
            Some(v) => v.to_vec()?.len(),
            None => ct.tensors["token_embd.weight"].dims[0],
        };
        let (rope_style, attention_bias) = match arch_name.as_str() {
            // llama.cpp's converter permutes llama q/k rows for interleaved (GPT-J) rotation.
            "llama" => (
                RopeStyle::Gptj,
                ct.tensors.contains_key("blk.0.attn_q.bias"),
            ),
            "qwen2" => (RopeStyle::Neox, true),
            other => {
                anyhow::bail!("GGUF architecture `{other}` is not implemented (llama, qwen2 are)")
            }
        };
        Ok(Self {
            vocab_size: vocab,
            hidden_size: hidden,
            intermediate_size: u("feed_forward_length")?,
            num_hidden_layers: u("block_count")?,
            num_attention_heads: heads,
            num_key_value_heads: u("attention.head_count_kv").unwrap_or(heads),
            head_dim: u("rope.dimension_count").unwrap_or(hidden / heads),
            rms_norm_eps: f("attention.layer_norm_rms_epsilon").unwrap_or(1e-5),
            rope_theta: f("rope.freq_base").unwrap_or(10_000.0),
            rope_scaling: RopeScaling::None,
            max_position_embeddings: u("context_length").unwrap_or(4096),
            tie_word_embeddings: !ct.tensors.contains_key("output.weight"),
            attention_bias,
            rope_style,
            sliding_window: None,
        })
    }
}

struct DecoderLayer {
    input_norm: RmsNorm,
    /// q, k and v projections, fused into one matmul where possible.
    qkv: LinearGroup,
    o: Linear,
    attn: PagedAttentionLayer,
    post_norm: RmsNorm,
    mlp: GatedMlp,
}

pub struct Llama {
    embed: Embedding,
    layers: Vec<DecoderLayer>,
    norm: RmsNorm,
    lm_head: Linear,
    rotary: RotaryEmbedding,
    cfg: LlamaConfig,
    spec: ModelSpec,
}

impl Llama {
    pub fn load(
        cfg: LlamaConfig,
        arch: Arch,
        w: &Weights,
        device: &Device,
    ) -> anyhow::Result<Self> {
        let eps = cfg.rms_norm_eps;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("model.layers.{i}");
            let mut attn = PagedAttentionLayer::new(
                cfg.num_attention_heads,
                cfg.num_key_value_heads,
                cfg.head_dim,
            );
            attn.options.sliding_window = cfg.sliding_window;
            layers.push(DecoderLayer {
                input_norm: RmsNorm::new(w.tensor(&format!("{p}.input_layernorm.weight"))?, eps),
                qkv: LinearGroup::new(vec![
                    w.linear(&format!("{p}.self_attn.q_proj"), cfg.attention_bias)?,
                    w.linear(&format!("{p}.self_attn.k_proj"), cfg.attention_bias)?,
                    w.linear(&format!("{p}.self_attn.v_proj"), cfg.attention_bias)?,
                ])?,
                o: w.linear(&format!("{p}.self_attn.o_proj"), false)?,
                attn,
                post_norm: RmsNorm::new(
                    w.tensor(&format!("{p}.post_attention_layernorm.weight"))?,
                    eps,
                ),
                mlp: GatedMlp::new(
                    w.linear(&format!("{p}.mlp.gate_proj"), false)?,
                    w.linear(&format!("{p}.mlp.up_proj"), false)?,
                    w.linear(&format!("{p}.mlp.down_proj"), false)?,
                )?,
            });
        }
        let embed = Embedding::new(w.tensor("model.embed_tokens.weight")?);
        let lm_head = if cfg.tie_word_embeddings || !w.contains("lm_head.weight") {
            match w {
                Weights::Gguf(_) => w.linear("model.embed_tokens", false)?,
                Weights::Safetensors { .. } => {
                    Linear::new(QMatMul::Tensor(embed.table().clone()), None)
                }
            }
        } else {
            w.linear("lm_head", false)?
        };
        let rotary = RotaryEmbedding::new(
            cfg.head_dim,
            cfg.rope_theta,
            cfg.rope_scaling,
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
            layers,
            norm: RmsNorm::new(w.tensor("model.norm.weight")?, eps),
            lm_head,
            rotary,
            cfg,
            spec,
        })
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.cfg
    }

    fn attention(
        &self,
        layer: &DecoderLayer,
        x: &Tensor,
        batch: &BatchMetadata,
        kv: &crate::kv_cache::LayerKvCache,
    ) -> Result<Tensor> {
        let t = x.dim(0)?;
        let (h, kvh, d) = (
            self.cfg.num_attention_heads,
            self.cfg.num_key_value_heads,
            self.cfg.head_dim,
        );
        let qkv = layer.qkv.forward(x)?;
        // rope rotates in place: q and k need storage of their own (copied out of a fused qkv).
        let q = qkv[0].contiguous()?.reshape((t, h, d))?;
        let k = qkv[1].contiguous()?.reshape((t, kvh, d))?;
        let v = qkv[2].reshape((t, kvh, d))?;
        self.rotary.apply(&q, &k, &batch.positions)?;
        let y = layer.attn.forward(&q, &k, &v, kv, batch)?;
        layer.o.forward(&y)
    }
}

impl CausalLm for Llama {
    fn forward(&self, input_ids: &Tensor, batch: &BatchMetadata, kv: &KvCache) -> Result<Tensor> {
        let mut residual = self.embed.forward(input_ids)?;
        let mut hidden = self.layers[0].input_norm.forward(&residual)?;
        for (i, layer) in self.layers.iter().enumerate() {
            let attn = self.attention(layer, &hidden, batch, &kv.layers[i])?;
            let (normed, res) = layer.post_norm.forward_residual(&attn, &residual)?;
            let mlp = layer.mlp.forward(&normed)?;
            let next_norm = self.layers.get(i + 1).map_or(&self.norm, |l| &l.input_norm);
            (hidden, residual) = next_norm.forward_residual(&mlp, &res)?;
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
