//! The llama family (Llama 2/3, SmolLM, DeepSeek-Coder, Mistral without sliding window) and, by
//! the switches in `LlamaConfig`, Qwen2 (qkv bias, tied embeddings, its rope theta).

use anyhow::{bail, Context};
use candle_core::quantized::gguf_file::Value as GgufValue;
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
use crate::loader::gguf::GgufFile;
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
    /// Per-frequency divisors of the inverse frequencies (GGUF `rope_freqs.weight`).
    pub rope_freq_factors: Option<Vec<f32>>,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    /// Bias on q/k/v projections (Qwen2).
    pub attention_bias: bool,
    pub rope_style: RopeStyle,
    pub sliding_window: Option<usize>,
}

impl LlamaConfig {
    /// From a Hugging Face config.json (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM).
    /// Settings that would change the math and that lathe does not implement are refused,
    /// never ignored.
    pub fn from_hf(cfg: &Value, arch: Arch) -> anyhow::Result<Self> {
        let get = |k: &str| cfg.get(k).and_then(Value::as_u64).map(|v| v as usize);
        let need = |k: &str| get(k).ok_or_else(|| anyhow::anyhow!("config.json lacks `{k}`"));
        let hidden = need("hidden_size")?;
        let heads = need("num_attention_heads")?;
        let head_dim = match get("head_dim") {
            Some(d) => d,
            None if hidden.is_multiple_of(heads) => hidden / heads,
            None => bail!("config.json: hidden_size {hidden} is not a multiple of num_attention_heads {heads} and head_dim is not given"),
        };
        let max_positions = get("max_position_embeddings").unwrap_or(4096);
        let rope_scaling = hf_rope_scaling(cfg.get("rope_scaling"), max_positions)?;
        if let Some(p) = cfg.get("partial_rotary_factor").and_then(Value::as_f64) {
            if p != 1.0 {
                bail!("config.json: partial_rotary_factor {p} (partial rotary embedding) is not supported");
            }
        }
        for k in ["num_local_experts", "num_experts", "n_routed_experts"] {
            if get(k).is_some_and(|n| n > 0) {
                bail!("config.json: `{k}` > 0 (mixture of experts) is not supported");
            }
        }
        for k in ["attn_logit_softcapping", "final_logit_softcapping"] {
            if cfg.get(k).is_some_and(|v| !v.is_null()) {
                bail!("config.json: `{k}` (logit soft-capping) is not supported");
            }
        }
        let sliding_window = match arch {
            // Mistral: one window over every layer, which lathe's attention implements.
            Arch::Llama => {
                let use_sliding = cfg
                    .get("use_sliding_window")
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                if use_sliding {
                    get("sliding_window")
                } else {
                    None
                }
            }
            // Qwen2 windows only the layers from `max_window_layers` on: not implemented.
            Arch::Qwen2 => {
                if cfg.get("use_sliding_window").and_then(Value::as_bool) == Some(true) {
                    bail!("config.json: use_sliding_window (Qwen2's per-layer sliding window) is not supported");
                }
                None
            }
        };
        Ok(Self {
            vocab_size: need("vocab_size")?,
            hidden_size: hidden,
            intermediate_size: need("intermediate_size")?,
            num_hidden_layers: need("num_hidden_layers")?,
            num_attention_heads: heads,
            num_key_value_heads: get("num_key_value_heads").unwrap_or(heads),
            head_dim,
            rms_norm_eps: cfg
                .get("rms_norm_eps")
                .and_then(Value::as_f64)
                .unwrap_or(1e-6) as f32,
            rope_theta: cfg
                .get("rope_theta")
                .and_then(Value::as_f64)
                .unwrap_or(10_000.0) as f32,
            rope_scaling,
            rope_freq_factors: None,
            max_position_embeddings: max_positions,
            tie_word_embeddings: cfg
                .get("tie_word_embeddings")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            attention_bias: cfg
                .get("attention_bias")
                .and_then(Value::as_bool)
                .unwrap_or(arch == Arch::Qwen2),
            rope_style: RopeStyle::Neox,
            sliding_window,
        })
    }

    /// From GGUF metadata (`general.architecture` = llama or qwen2). `rope_freqs`: the values
    /// of the file's `rope_freqs.weight` tensor, if it has one (per-frequency divisors, how
    /// llama.cpp stores Llama 3.1's rope scaling). Metadata that would change the math and that
    /// lathe does not implement is refused, naming the key.
    pub fn from_gguf(g: &GgufFile, rope_freqs: Option<Vec<f32>>) -> anyhow::Result<Self> {
        let m = GgufMeta::new(g)?;
        let (rope_style, attention_bias) = match m.arch.as_str() {
            // llama.cpp's converter permutes llama q/k rows for interleaved (GPT-J) rotation.
            "llama" => (RopeStyle::Gptj, g.tensors.contains_key("blk.0.attn_q.bias")),
            "qwen2" => (RopeStyle::Neox, true),
            other => bail!("GGUF architecture `{other}` is not implemented (llama, qwen2 are)"),
        };
        let hidden = m.need("embedding_length")?;
        let heads = m.need("attention.head_count")?;
        let head_dim = match m.uint("attention.key_length")? {
            Some(d) => d,
            None if hidden.is_multiple_of(heads) => hidden / heads,
            None => bail!(
                "GGUF: {} {hidden} is not a multiple of {} {heads} and {} is not given",
                m.key("embedding_length"),
                m.key("attention.head_count"),
                m.key("attention.key_length")
            ),
        };
        if let Some(v) = m.uint("attention.value_length")? {
            if v != head_dim {
                bail!(
                    "GGUF: {} = {v} differs from the key length {head_dim}: not supported",
                    m.key("attention.value_length")
                );
            }
        }
        if let Some(r) = m.uint("rope.dimension_count")? {
            if r != head_dim {
                bail!(
                    "GGUF: {} = {r} but heads are {head_dim} wide: partial rotary embedding is not supported",
                    m.key("rope.dimension_count")
                );
            }
        }
        for k in [
            "attention.sliding_window",
            "attn_logit_softcapping",
            "final_logit_softcapping",
            "attention.scale",
            "embedding_scale",
            "residual_scale",
            "logit_scale",
            "attention.q_lora_rank",
            "attention.kv_lora_rank",
        ] {
            if m.raw(k).is_some() {
                bail!(
                    "GGUF: {} is set; lathe does not implement it for {}",
                    m.key(k),
                    m.arch
                );
            }
        }
        for k in ["expert_count", "expert_used_count"] {
            if m.uint(k)?.is_some_and(|n| n > 0) {
                bail!(
                    "GGUF: {} > 0 (mixture of experts) is not supported",
                    m.key(k)
                );
            }
        }
        let max_positions = m.uint("context_length")?.unwrap_or(4096);
        let rope_scaling = gguf_rope_scaling(&m, max_positions)?;
        if let Some(ff) = &rope_freqs {
            if ff.len() != head_dim / 2 {
                bail!(
                    "GGUF: rope_freqs.weight has {} values, heads of {head_dim} need {}",
                    ff.len(),
                    head_dim / 2
                );
            }
        }
        let vocab = match g.metadata.get("tokenizer.ggml.tokens") {
            Some(v) => v.to_vec()?.len(),
            None => g
                .tensors
                .get("token_embd.weight")
                .map(|t| t.dims[0])
                .context("GGUF has neither tokenizer.ggml.tokens nor token_embd.weight")?,
        };
        Ok(Self {
            vocab_size: vocab,
            hidden_size: hidden,
            intermediate_size: m.need("feed_forward_length")?,
            num_hidden_layers: m.need("block_count")?,
            num_attention_heads: heads,
            num_key_value_heads: m.uint("attention.head_count_kv")?.unwrap_or(heads),
            head_dim,
            rms_norm_eps: m.float("attention.layer_norm_rms_epsilon")?.unwrap_or(1e-5),
            rope_theta: m.float("rope.freq_base")?.unwrap_or(10_000.0),
            rope_scaling,
            rope_freq_factors: rope_freqs,
            max_position_embeddings: max_positions,
            tie_word_embeddings: !g.tensors.contains_key("output.weight"),
            attention_bias,
            rope_style,
            sliding_window: None,
        })
    }
}

/// HF `rope_scaling` → lathe's; types lathe lacks (dynamic NTK, LongRoPE, …) are refused.
fn hf_rope_scaling(s: Option<&Value>, max_positions: usize) -> anyhow::Result<RopeScaling> {
    let Some(s) = s.filter(|s| !s.is_null()) else {
        return Ok(RopeScaling::None);
    };
    let ty = s
        .get("rope_type")
        .or(s.get("type"))
        .and_then(Value::as_str)
        .context("config.json: rope_scaling has no rope_type")?;
    let num = |k: &str| s.get(k).and_then(Value::as_f64).map(|v| v as f32);
    let factor =
        || num("factor").with_context(|| format!("config.json: {ty} rope_scaling lacks `factor`"));
    let orig = |d: usize| {
        s.get("original_max_position_embeddings")
            .and_then(Value::as_u64)
            .map_or(d, |v| v as usize)
    };
    Ok(match ty {
        "default" => RopeScaling::None,
        "linear" => RopeScaling::Linear { factor: factor()? },
        "llama3" => RopeScaling::Llama3 {
            factor: factor()?,
            low_freq_factor: num("low_freq_factor").unwrap_or(1.0),
            high_freq_factor: num("high_freq_factor").unwrap_or(4.0),
            original_max_position_embeddings: orig(8192),
        },
        "yarn" => {
            for k in ["mscale", "mscale_all_dim"] {
                if s.get(k).is_some_and(|v| !v.is_null()) {
                    bail!("config.json: yarn rope_scaling with `{k}` (DeepSeek's variant) is not supported");
                }
            }
            if s.get("truncate").and_then(Value::as_bool) == Some(false) {
                bail!("config.json: yarn rope_scaling with truncate = false is not supported");
            }
            let factor = factor()?;
            RopeScaling::Yarn {
                factor,
                original_max_position_embeddings: orig(max_positions),
                beta_fast: num("beta_fast").unwrap_or(32.0),
                beta_slow: num("beta_slow").unwrap_or(1.0),
                attention_factor: num("attention_factor")
                    .unwrap_or_else(|| RopeScaling::yarn_mscale(factor)),
            }
        }
        other => bail!(
            "config.json: rope_scaling type `{other}` is not supported (default, linear, llama3, yarn are)"
        ),
    })
}

/// GGUF `{arch}.rope.scaling.*` → lathe's; types or YaRN variants lathe lacks are refused.
fn gguf_rope_scaling(m: &GgufMeta, max_positions: usize) -> anyhow::Result<RopeScaling> {
    let ty = m.string("rope.scaling.type")?;
    let factor = m
        .float("rope.scaling.factor")?
        .filter(|&f| f != 0.0)
        .or(m.float("rope.scale_linear")?);
    Ok(match ty.unwrap_or("none") {
        "none" => match (ty, factor) {
            // Older files: `rope.scale_linear` alone means linear scaling.
            (None, Some(f)) if f != 1.0 => RopeScaling::Linear { factor: f },
            _ => RopeScaling::None,
        },
        "linear" => match factor {
            Some(f) if f != 1.0 => RopeScaling::Linear { factor: f },
            _ => RopeScaling::None,
        },
        "yarn" => {
            let factor = factor.with_context(|| {
                format!(
                    "GGUF: yarn rope scaling without {}",
                    m.key("rope.scaling.factor")
                )
            })?;
            for k in [
                "rope.scaling.attn_factor",
                "rope.scaling.yarn_attn_factor",
                "rope.scaling.yarn_ext_factor",
            ] {
                if let Some(v) = m.float(k)? {
                    if v != 1.0 {
                        bail!("GGUF: {} = {v} is not supported (only 1)", m.key(k));
                    }
                }
            }
            if m.float("rope.scaling.yarn_log_multiplier")?
                .is_some_and(|v| v != 0.0)
            {
                bail!(
                    "GGUF: {} (DeepSeek's YaRN variant) is not supported",
                    m.key("rope.scaling.yarn_log_multiplier")
                );
            }
            RopeScaling::Yarn {
                factor,
                original_max_position_embeddings: m
                    .uint("rope.scaling.original_context_length")?
                    .unwrap_or(max_positions),
                beta_fast: m.float("rope.scaling.yarn_beta_fast")?.unwrap_or(32.0),
                beta_slow: m.float("rope.scaling.yarn_beta_slow")?.unwrap_or(1.0),
                attention_factor: RopeScaling::yarn_mscale(factor),
            }
        }
        other => bail!(
            "GGUF: {} = `{other}` is not supported (none, linear, yarn are)",
            m.key("rope.scaling.type")
        ),
    })
}

/// Typed access to `{arch}.*` GGUF metadata: absent keys are `None`, keys of the wrong type
/// are errors (never silently a default).
struct GgufMeta<'a> {
    g: &'a GgufFile,
    arch: String,
}

impl<'a> GgufMeta<'a> {
    fn new(g: &'a GgufFile) -> anyhow::Result<Self> {
        let arch = match g.metadata.get("general.architecture") {
            Some(v) => v
                .to_string()
                .context("GGUF general.architecture is not a string")?
                .clone(),
            None => "llama".into(),
        };
        Ok(Self { g, arch })
    }

    fn key(&self, k: &str) -> String {
        format!("{}.{k}", self.arch)
    }

    fn raw(&self, k: &str) -> Option<&'a GgufValue> {
        self.g.metadata.get(&self.key(k))
    }

    fn uint(&self, k: &str) -> anyhow::Result<Option<usize>> {
        self.raw(k)
            .map(|v| {
                let n = match *v {
                    GgufValue::U8(x) => Some(x as u64),
                    GgufValue::U16(x) => Some(x as u64),
                    GgufValue::U32(x) => Some(x as u64),
                    GgufValue::U64(x) => Some(x),
                    GgufValue::I8(x) => u64::try_from(x).ok(),
                    GgufValue::I16(x) => u64::try_from(x).ok(),
                    GgufValue::I32(x) => u64::try_from(x).ok(),
                    GgufValue::I64(x) => u64::try_from(x).ok(),
                    _ => None,
                };
                n.map(|n| n as usize).with_context(|| {
                    format!("GGUF: {} is {v:?}, not a non-negative integer", self.key(k))
                })
            })
            .transpose()
    }

    fn float(&self, k: &str) -> anyhow::Result<Option<f32>> {
        self.raw(k)
            .map(|v| match *v {
                GgufValue::F32(x) => Ok(x),
                GgufValue::F64(x) => Ok(x as f32),
                _ => self
                    .uint(k)?
                    .map(|n| n as f32)
                    .with_context(|| format!("GGUF: {} is {v:?}, not a number", self.key(k))),
            })
            .transpose()
    }

    fn string(&self, k: &str) -> anyhow::Result<Option<&'a str>> {
        self.raw(k)
            .map(|v| match v {
                GgufValue::String(s) => Ok(s.as_str()),
                _ => bail!("GGUF: {} is {v:?}, not a string", self.key(k)),
            })
            .transpose()
    }

    fn need(&self, k: &str) -> anyhow::Result<usize> {
        self.uint(k)?
            .with_context(|| format!("GGUF lacks {}", self.key(k)))
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use candle_core::quantized::gguf_file::VersionedMagic;

    use super::*;
    use crate::loader::gguf::{GgmlType, TensorInfo};

    /// A qwen2-like header: 896 wide, 14 heads of 64, plus `extra` `qwen2.*` keys.
    fn gguf(extra: &[(&str, GgufValue)]) -> GgufFile {
        let mut metadata: HashMap<String, GgufValue> = [
            ("general.architecture", GgufValue::String("qwen2".into())),
            ("qwen2.embedding_length", GgufValue::U32(896)),
            ("qwen2.attention.head_count", GgufValue::U32(14)),
            ("qwen2.attention.head_count_kv", GgufValue::U32(2)),
            ("qwen2.feed_forward_length", GgufValue::U32(4864)),
            ("qwen2.block_count", GgufValue::U32(24)),
            ("qwen2.context_length", GgufValue::U32(32768)),
            ("qwen2.rope.freq_base", GgufValue::F32(1_000_000.0)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in extra {
            metadata.insert(format!("qwen2.{k}"), v.clone());
        }
        let tensors = HashMap::from([(
            "token_embd.weight".to_string(),
            TensorInfo {
                ggml_type: GgmlType(8),
                dims: vec![151936, 896],
                offset: 0,
            },
        )]);
        GgufFile {
            magic: VersionedMagic::GgufV3,
            metadata,
            tensors,
            data_offset: 0,
        }
    }

    fn refusal(extra: &[(&str, GgufValue)]) -> String {
        format!(
            "{:#}",
            LlamaConfig::from_gguf(&gguf(extra), None).unwrap_err()
        )
    }

    #[test]
    fn gguf_defaults() {
        let c = LlamaConfig::from_gguf(&gguf(&[]), None).unwrap();
        assert_eq!(
            (c.head_dim, c.vocab_size, c.num_key_value_heads),
            (64, 151936, 2)
        );
        assert_eq!(c.rope_scaling, RopeScaling::None);
        assert_eq!(c.rope_style, RopeStyle::Neox);
        assert!(c.tie_word_embeddings && c.attention_bias);
    }

    #[test]
    fn gguf_head_dim_comes_from_key_length() {
        let c = LlamaConfig::from_gguf(
            &gguf(&[
                ("attention.key_length", GgufValue::U32(128)),
                ("attention.value_length", GgufValue::U32(128)),
                ("rope.dimension_count", GgufValue::U32(128)),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(c.head_dim, 128);
        let e = refusal(&[
            ("attention.key_length", GgufValue::U32(128)),
            ("attention.value_length", GgufValue::U32(64)),
        ]);
        assert!(e.contains("qwen2.attention.value_length"), "{e}");
    }

    #[test]
    fn gguf_partial_rotary_is_refused() {
        let e = refusal(&[("rope.dimension_count", GgufValue::U32(32))]);
        assert!(
            e.contains("qwen2.rope.dimension_count") && e.contains("partial"),
            "{e}"
        );
    }

    #[test]
    fn gguf_rope_scaling_types() {
        let s = |extra: &[(&str, GgufValue)]| {
            LlamaConfig::from_gguf(&gguf(extra), None)
                .unwrap()
                .rope_scaling
        };
        let ty = |t: &str| ("rope.scaling.type", GgufValue::String(t.into()));
        let factor = |f: f32| ("rope.scaling.factor", GgufValue::F32(f));
        assert_eq!(s(&[ty("none")]), RopeScaling::None);
        assert_eq!(
            s(&[ty("linear"), factor(4.0)]),
            RopeScaling::Linear { factor: 4.0 }
        );
        assert_eq!(
            s(&[("rope.scale_linear", GgufValue::F32(2.0))]),
            RopeScaling::Linear { factor: 2.0 }
        );
        assert_eq!(
            s(&[
                ty("yarn"),
                factor(4.0),
                (
                    "rope.scaling.original_context_length",
                    GgufValue::U32(32768)
                ),
            ]),
            RopeScaling::Yarn {
                factor: 4.0,
                original_max_position_embeddings: 32768,
                beta_fast: 32.0,
                beta_slow: 1.0,
                attention_factor: RopeScaling::yarn_mscale(4.0),
            }
        );
        assert_eq!(
            s(&[
                ty("yarn"),
                factor(2.0),
                ("rope.scaling.yarn_beta_fast", GgufValue::F32(16.0)),
                ("rope.scaling.yarn_beta_slow", GgufValue::F32(2.0)),
            ]),
            RopeScaling::Yarn {
                factor: 2.0,
                original_max_position_embeddings: 32768,
                beta_fast: 16.0,
                beta_slow: 2.0,
                attention_factor: RopeScaling::yarn_mscale(2.0),
            }
        );
        let e = refusal(&[ty("longrope")]);
        assert!(
            e.contains("qwen2.rope.scaling.type") && e.contains("longrope"),
            "{e}"
        );
        let e = refusal(&[ty("yarn")]);
        assert!(e.contains("qwen2.rope.scaling.factor"), "{e}");
        let e = refusal(&[
            ty("yarn"),
            factor(4.0),
            ("rope.scaling.yarn_log_multiplier", GgufValue::F32(0.1)),
        ]);
        assert!(e.contains("yarn_log_multiplier"), "{e}");
        // A key of the wrong type is an error, not a default.
        let e = refusal(&[("rope.scaling.factor", GgufValue::String("4".into()))]);
        assert!(e.contains("qwen2.rope.scaling.factor"), "{e}");
    }

    #[test]
    fn gguf_unsupported_math_is_refused_by_key() {
        for (k, v) in [
            ("attention.sliding_window", GgufValue::U32(4096)),
            ("attn_logit_softcapping", GgufValue::F32(50.0)),
            ("final_logit_softcapping", GgufValue::F32(30.0)),
            ("expert_count", GgufValue::U32(8)),
        ] {
            let e = refusal(&[(k, v)]);
            assert!(e.contains(&format!("qwen2.{k}")), "{e}");
        }
        // expert_count 0 is a dense model.
        assert!(
            LlamaConfig::from_gguf(&gguf(&[("expert_count", GgufValue::U32(0))]), None).is_ok()
        );
    }

    #[test]
    fn gguf_rope_freqs_must_match_the_head() {
        let c = LlamaConfig::from_gguf(&gguf(&[]), Some(vec![1.0; 32])).unwrap();
        assert_eq!(c.rope_freq_factors.as_deref(), Some(&[1.0; 32][..]));
        assert!(LlamaConfig::from_gguf(&gguf(&[]), Some(vec![1.0; 16])).is_err());
    }

    fn hf(extra: serde_json::Value) -> anyhow::Result<LlamaConfig> {
        let mut cfg = serde_json::json!({
            "hidden_size": 896, "num_attention_heads": 14, "num_key_value_heads": 2,
            "intermediate_size": 4864, "num_hidden_layers": 24, "vocab_size": 151936,
            "max_position_embeddings": 32768, "rope_theta": 1000000.0,
        });
        for (k, v) in extra.as_object().unwrap() {
            cfg[k] = v.clone();
        }
        LlamaConfig::from_hf(&cfg, Arch::Qwen2)
    }

    #[test]
    fn hf_rope_scaling_types() {
        use serde_json::json;
        let s = |r: serde_json::Value| hf(json!({ "rope_scaling": r })).unwrap().rope_scaling;
        assert_eq!(s(json!(null)), RopeScaling::None);
        assert_eq!(s(json!({"rope_type": "default"})), RopeScaling::None);
        assert_eq!(
            s(json!({"type": "linear", "factor": 4.0})),
            RopeScaling::Linear { factor: 4.0 }
        );
        assert_eq!(
            s(json!({"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768})),
            RopeScaling::Yarn {
                factor: 4.0,
                original_max_position_embeddings: 32768,
                beta_fast: 32.0,
                beta_slow: 1.0,
                attention_factor: RopeScaling::yarn_mscale(4.0),
            }
        );
        assert!(matches!(
            s(json!({"rope_type": "yarn", "factor": 4.0, "attention_factor": 1.0})),
            RopeScaling::Yarn {
                attention_factor: 1.0,
                ..
            }
        ));
        assert!(matches!(
            s(json!({"rope_type": "llama3", "factor": 8.0})),
            RopeScaling::Llama3 { factor: 8.0, .. }
        ));
        for ty in ["dynamic", "longrope", "su", "something-new"] {
            let e = format!(
                "{:#}",
                hf(json!({"rope_scaling": {"type": ty, "factor": 2.0}})).unwrap_err()
            );
            assert!(e.contains(ty), "{e}");
        }
        assert!(hf(json!({"rope_scaling": {"type": "linear"}})).is_err());
        assert!(
            hf(json!({"rope_scaling": {"type": "yarn", "factor": 40.0, "mscale": 1.0}})).is_err()
        );
    }

    #[test]
    fn hf_unsupported_math_is_refused() {
        use serde_json::json;
        for extra in [
            json!({"use_sliding_window": true, "sliding_window": 4096}),
            json!({"partial_rotary_factor": 0.5}),
            json!({"num_local_experts": 8}),
            json!({"final_logit_softcapping": 30.0}),
        ] {
            assert!(hf(extra.clone()).is_err(), "{extra}");
        }
        assert!(hf(json!({"use_sliding_window": false, "sliding_window": 4096})).is_ok());
        assert_eq!(hf(json!({"head_dim": 128})).unwrap().head_dim, 128);
    }
}
