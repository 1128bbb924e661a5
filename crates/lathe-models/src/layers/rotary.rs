//! Rotary position embedding: the cos/sin table (with Llama-3 style frequency scaling) and its
//! in-place application to q and k at arbitrary per-token positions.

use candle_core::{Device, Result, Tensor};
use lathe_kernels::reference::rope_cos_sin_table;
use lathe_kernels::RopeStyle;

/// `rope_scaling` of HF configs that change the frequencies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RopeScaling {
    None,
    /// Llama 3.1: low frequencies divided by `factor`, a smooth ramp between.
    Llama3 {
        factor: f32,
        low_freq_factor: f32,
        high_freq_factor: f32,
        original_max_position_embeddings: usize,
    },
    /// Positions divided by `factor`.
    Linear {
        factor: f32,
    },
}

#[derive(Debug, Clone)]
pub struct RotaryEmbedding {
    cos_sin: Tensor,
    style: RopeStyle,
}

impl RotaryEmbedding {
    pub fn new(
        rotary_dim: usize,
        theta: f32,
        scaling: RopeScaling,
        max_positions: usize,
        style: RopeStyle,
        device: &Device,
    ) -> Result<Self> {
        let inv_freq = inverse_frequencies(rotary_dim, theta, scaling);
        let table = rope_cos_sin_table(&inv_freq, max_positions);
        let cos_sin = Tensor::from_vec(table, (max_positions, rotary_dim), device)?;
        Ok(Self { cos_sin, style })
    }

    /// Rotates q `[T, heads, d]` and k `[T, kv_heads, d]` in place at `positions` (u32 `[T]`).
    pub fn apply(&self, q: &Tensor, k: &Tensor, positions: &Tensor) -> Result<()> {
        lathe_kernels::ops::rope(q, positions, &self.cos_sin, self.style)?;
        lathe_kernels::ops::rope(k, positions, &self.cos_sin, self.style)
    }
}

fn inverse_frequencies(rotary_dim: usize, theta: f32, scaling: RopeScaling) -> Vec<f32> {
    let base: Vec<f32> = (0..rotary_dim)
        .step_by(2)
        .map(|i| 1f32 / theta.powf(i as f32 / rotary_dim as f32))
        .collect();
    match scaling {
        RopeScaling::None => base,
        RopeScaling::Linear { factor } => base.into_iter().map(|f| f / factor).collect(),
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        } => {
            let old = original_max_position_embeddings as f32;
            let low_wavelen = old / low_freq_factor;
            let high_wavelen = old / high_freq_factor;
            base.into_iter()
                .map(|f| {
                    let wavelen = 2.0 * std::f32::consts::PI / f;
                    if wavelen < high_wavelen {
                        f
                    } else if wavelen > low_wavelen {
                        f / factor
                    } else {
                        let smooth = (old / wavelen - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        (1.0 - smooth) * f / factor + smooth * f
                    }
                })
                .collect()
        }
    }
}
