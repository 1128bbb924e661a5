//! Rope scaling as checkpoints state it (HF `rope_scaling`, GGUF `{arch}.rope.scaling.*`) →
//! lathe's `RopeScaling`. Types and variants lathe does not implement are refused by name.

use anyhow::{bail, Context};
use serde_json::Value;

use super::gguf_meta::GgufMeta;
use crate::layers::RopeScaling;

/// HF `rope_scaling` → lathe's; types lathe lacks (dynamic NTK, LongRoPE, …) are refused.
pub fn hf_rope_scaling(s: Option<&Value>, max_positions: usize) -> anyhow::Result<RopeScaling> {
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
pub fn gguf_rope_scaling(m: &GgufMeta, max_positions: usize) -> anyhow::Result<RopeScaling> {
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
