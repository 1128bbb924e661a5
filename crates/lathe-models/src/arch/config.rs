//! The hyperparameters every decoder-only transformer has, read from a Hugging Face
//! config.json or from GGUF metadata. Architecture files read what only they have (biases,
//! experts, norms) beside this. Settings that would change the math and that lathe does not
//! implement are refused by name, never ignored.

use anyhow::{bail, Context};
use serde_json::Value;

pub use lathe_kernels::RopeStyle;

use super::gguf_meta::GgufMeta;
use super::rope_config::{gguf_rope_scaling, hf_rope_scaling};
use crate::layers::RopeScaling;

#[derive(Debug, Clone, PartialEq)]
pub struct DecoderConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    /// Width of the dense MLP (of every layer, or of the dense layers of a MoE model).
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    /// Epsilon of every norm (RMS or Layer).
    pub norm_eps: f32,
    pub rope_theta: f32,
    pub rope_scaling: RopeScaling,
    /// Per-frequency divisors of the inverse frequencies (GGUF `rope_freqs.weight`).
    pub rope_freq_factors: Option<Vec<f32>>,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    pub rope_style: RopeStyle,
    /// One attention window over every layer (the last `w` positions, the query's own
    /// included).
    pub sliding_window: Option<usize>,
}

/// Where an architecture's configuration comes from.
pub enum ConfigSource<'a> {
    Hf(&'a Value),
    Gguf {
        meta: GgufMeta<'a>,
        /// The file's `rope_freqs.weight` values, if it has that tensor (per-frequency
        /// divisors: how llama.cpp stores Llama 3.1's rope scaling).
        rope_freqs: Option<Vec<f32>>,
    },
}

/// How a config.json states sliding-window attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HfWindow {
    /// `sliding_window` over every layer unless `use_sliding_window` is false (Mistral).
    Uniform,
    /// `sliding_window` over every layer, always (StarCoder2).
    Always,
    /// Qwen: only layers from `max_window_layers` on, and only with `use_sliding_window`:
    /// not implemented, so refused when switched on.
    QwenPerLayer,
}

impl DecoderConfig {
    /// From either source. `moe`: the architecture has experts (else expert counts > 0 are
    /// refused).
    pub fn read(src: &ConfigSource, window: HfWindow, moe: bool) -> anyhow::Result<Self> {
        match src {
            ConfigSource::Hf(cfg) => Self::from_hf(cfg, window, moe),
            ConfigSource::Gguf { meta, rope_freqs } => {
                Self::from_gguf(meta, rope_freqs.clone(), moe)
            }
        }
    }

    pub fn from_hf(cfg: &Value, window: HfWindow, moe: bool) -> anyhow::Result<Self> {
        let hf = HfConfig(cfg);
        let hidden = hf.need("hidden_size")?;
        let heads = hf.need("num_attention_heads")?;
        let head_dim = match hf.uint("head_dim") {
            Some(d) => d,
            None if hidden.is_multiple_of(heads) => hidden / heads,
            None => bail!("config.json: hidden_size {hidden} is not a multiple of num_attention_heads {heads} and head_dim is not given"),
        };
        let max_positions = hf.uint("max_position_embeddings").unwrap_or(4096);
        let rope_scaling = hf_rope_scaling(cfg.get("rope_scaling"), max_positions)?;
        if let Some(p) = cfg.get("partial_rotary_factor").and_then(Value::as_f64) {
            if p != 1.0 {
                bail!("config.json: partial_rotary_factor {p} (partial rotary embedding) is not supported");
            }
        }
        if !moe {
            for k in ["num_local_experts", "num_experts", "n_routed_experts"] {
                if hf.uint(k).is_some_and(|n| n > 0) {
                    bail!("config.json: `{k}` > 0 (mixture of experts) is not supported for this architecture");
                }
            }
        }
        for k in ["attn_logit_softcapping", "final_logit_softcapping"] {
            if cfg.get(k).is_some_and(|v| !v.is_null()) {
                bail!("config.json: `{k}` (logit soft-capping) is not supported");
            }
        }
        let use_sliding = cfg.get("use_sliding_window").and_then(Value::as_bool);
        let sliding_window = match window {
            HfWindow::Uniform if use_sliding != Some(false) => hf.uint("sliding_window"),
            HfWindow::Uniform => None,
            HfWindow::Always => hf.uint("sliding_window"),
            HfWindow::QwenPerLayer => {
                if use_sliding == Some(true) {
                    bail!("config.json: use_sliding_window (Qwen's per-layer sliding window) is not supported");
                }
                None
            }
        };
        let norm_eps = ["rms_norm_eps", "norm_epsilon", "layer_norm_eps"]
            .iter()
            .find_map(|k| hf.float(k))
            .unwrap_or(1e-6);
        Ok(Self {
            vocab_size: hf.need("vocab_size")?,
            hidden_size: hidden,
            intermediate_size: hf.need("intermediate_size")?,
            num_hidden_layers: hf.need("num_hidden_layers")?,
            num_attention_heads: heads,
            num_key_value_heads: hf.uint("num_key_value_heads").unwrap_or(heads),
            head_dim,
            norm_eps,
            rope_theta: hf.float("rope_theta").unwrap_or(10_000.0),
            rope_scaling,
            rope_freq_factors: None,
            max_position_embeddings: max_positions,
            tie_word_embeddings: hf.bool("tie_word_embeddings").unwrap_or(false),
            rope_style: RopeStyle::Neox,
            sliding_window,
        })
    }

    pub fn from_gguf(
        m: &GgufMeta,
        rope_freqs: Option<Vec<f32>>,
        moe: bool,
    ) -> anyhow::Result<Self> {
        let g = m.g;
        // llama.cpp's converter permutes llama q/k rows for interleaved (GPT-J) rotation; the
        // other families keep HF's halves (NeoX).
        let rope_style = match m.arch.as_str() {
            "llama" => RopeStyle::Gptj,
            _ => RopeStyle::Neox,
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
            "attn_logit_softcapping",
            "final_logit_softcapping",
            "attention.scale",
            "embedding_scale",
            "residual_scale",
            "logit_scale",
            "attention.q_lora_rank",
            "attention.kv_lora_rank",
            "attention.sliding_window_pattern",
        ] {
            if m.raw(k).is_some() {
                bail!(
                    "GGUF: {} is set; lathe does not implement it for {}",
                    m.key(k),
                    m.arch
                );
            }
        }
        if !moe {
            for k in ["expert_count", "expert_used_count"] {
                if m.uint(k)?.is_some_and(|n| n > 0) {
                    bail!(
                        "GGUF: {} > 0 (mixture of experts) is not supported for {}",
                        m.key(k),
                        m.arch
                    );
                }
            }
        }
        let max_positions = m.uint("context_length")?.unwrap_or(4096);
        let rope_scaling = gguf_rope_scaling(m, max_positions)?;
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
        let norm_eps = match m.float("attention.layer_norm_rms_epsilon")? {
            Some(e) => e,
            None => m.float("attention.layer_norm_epsilon")?.unwrap_or(1e-5),
        };
        Ok(Self {
            vocab_size: vocab,
            hidden_size: hidden,
            // MoE files may give only the experts' width (`expert_feed_forward_length`).
            intermediate_size: match moe {
                false => m.need("feed_forward_length")?,
                true => m.uint("feed_forward_length")?.unwrap_or(0),
            },
            num_hidden_layers: m.need("block_count")?,
            num_attention_heads: heads,
            num_key_value_heads: m.uint("attention.head_count_kv")?.unwrap_or(heads),
            head_dim,
            norm_eps,
            rope_theta: m.float("rope.freq_base")?.unwrap_or(10_000.0),
            rope_scaling,
            rope_freq_factors: rope_freqs,
            max_position_embeddings: max_positions,
            tie_word_embeddings: !g.tensors.contains_key("output.weight"),
            rope_style,
            sliding_window: m.uint("attention.sliding_window")?,
        })
    }
}

/// Typed reads of config.json keys (absent or of another type: `None`).
pub struct HfConfig<'a>(pub &'a Value);

impl HfConfig<'_> {
    pub fn uint(&self, k: &str) -> Option<usize> {
        self.0.get(k).and_then(Value::as_u64).map(|v| v as usize)
    }

    pub fn need(&self, k: &str) -> anyhow::Result<usize> {
        self.uint(k)
            .ok_or_else(|| anyhow::anyhow!("config.json lacks `{k}`"))
    }

    pub fn float(&self, k: &str) -> Option<f32> {
        self.0.get(k).and_then(Value::as_f64).map(|v| v as f32)
    }

    pub fn bool(&self, k: &str) -> Option<bool> {
        self.0.get(k).and_then(Value::as_bool)
    }

    pub fn str(&self, k: &str) -> Option<&str> {
        self.0.get(k).and_then(Value::as_str)
    }
}
