//! Rotary position embedding: the cos/sin table (with the frequency scalings checkpoints ask
//! for) and its in-place application to q and k at arbitrary per-token positions.

use candle_core::{Device, Result, Tensor};
use lathe_kernels::reference::rope_cos_sin_table;
use lathe_kernels::RopeStyle;

/// How a checkpoint rescales the rotary frequencies (HF `rope_scaling`, GGUF
/// `rope.scaling.*`). Types lathe does not implement are refused when the config is read.
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
    /// Positions divided by `factor` (all frequencies divided by it).
    Linear {
        factor: f32,
    },
    /// Static YaRN (HF `_compute_yarn_parameters`, llama.cpp `rope_yarn`): frequencies that
    /// turn fewer than `beta_slow` times over the original context are divided by `factor`,
    /// those turning more than `beta_fast` times are kept, a linear ramp over the dimensions
    /// between; cos and sin are multiplied by `attention_factor`.
    Yarn {
        factor: f32,
        original_max_position_embeddings: usize,
        beta_fast: f32,
        beta_slow: f32,
        attention_factor: f32,
    },
}

impl RopeScaling {
    /// YaRN's default `attention_factor` for `factor`: `0.1 ln(factor) + 1` (1 for factor ≤ 1).
    pub fn yarn_mscale(factor: f32) -> f32 {
        if factor <= 1.0 {
            1.0
        } else {
            0.1 * factor.ln() + 1.0
        }
    }
}

#[derive(Debug, Clone)]
pub struct RotaryEmbedding {
    cos_sin: Tensor,
    style: RopeStyle,
}

impl RotaryEmbedding {
    /// `freq_factors` (GGUF `rope_freqs.weight`, one per frequency): each inverse frequency
    /// is divided by its factor before `scaling` applies, as llama.cpp does.
    pub fn new(
        rotary_dim: usize,
        theta: f32,
        scaling: RopeScaling,
        freq_factors: Option<&[f32]>,
        max_positions: usize,
        style: RopeStyle,
        device: &Device,
    ) -> Result<Self> {
        let inv_freq = inverse_frequencies(rotary_dim, theta, scaling, freq_factors)?;
        let mut table = rope_cos_sin_table(&inv_freq, max_positions);
        if let RopeScaling::Yarn {
            attention_factor, ..
        } = scaling
        {
            if attention_factor != 1.0 {
                table.iter_mut().for_each(|v| *v *= attention_factor);
            }
        }
        let cos_sin = Tensor::from_vec(table, (max_positions, rotary_dim), device)?;
        Ok(Self { cos_sin, style })
    }

    /// Rotates q `[T, heads, d]` and k `[T, kv_heads, d]` in place at `positions` (u32 `[T]`).
    pub fn apply(&self, q: &Tensor, k: &Tensor, positions: &Tensor) -> Result<()> {
        lathe_kernels::ops::rope(q, positions, &self.cos_sin, self.style)?;
        lathe_kernels::ops::rope(k, positions, &self.cos_sin, self.style)
    }
}

/// The `rotary_dim / 2` inverse frequencies after `freq_factors` and `scaling`.
pub fn inverse_frequencies(
    rotary_dim: usize,
    theta: f32,
    scaling: RopeScaling,
    freq_factors: Option<&[f32]>,
) -> Result<Vec<f32>> {
    let mut base: Vec<f32> = (0..rotary_dim)
        .step_by(2)
        .map(|i| 1f32 / theta.powf(i as f32 / rotary_dim as f32))
        .collect();
    if let Some(ff) = freq_factors {
        if ff.len() != base.len() {
            candle_core::bail!(
                "rope_freqs has {} factors, the rotary dimension {rotary_dim} needs {}",
                ff.len(),
                base.len()
            );
        }
        base.iter_mut().zip(ff).for_each(|(f, d)| *f /= d);
    }
    Ok(match scaling {
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
        RopeScaling::Yarn {
            factor,
            original_max_position_embeddings,
            beta_fast,
            beta_slow,
            ..
        } => {
            let (low, high) = yarn_correction_range(
                beta_fast,
                beta_slow,
                rotary_dim,
                theta,
                original_max_position_embeddings,
            );
            let span = if high == low { 0.001 } else { high - low };
            base.into_iter()
                .enumerate()
                .map(|(i, f)| {
                    // 1 keeps the original (extrapolated) frequency, 0 interpolates it.
                    let extrapolate = 1.0 - ((i as f32 - low) / span).clamp(0.0, 1.0);
                    f / factor * (1.0 - extrapolate) + f * extrapolate
                })
                .collect()
        }
    })
}

/// The frequency indices (floored, ceiled, clamped to `[0, dim - 1]`) between which YaRN ramps:
/// where a frequency turns `beta_fast` resp. `beta_slow` times over the original context.
fn yarn_correction_range(
    beta_fast: f32,
    beta_slow: f32,
    dim: usize,
    theta: f32,
    original_ctx: usize,
) -> (f32, f32) {
    let corr_dim = |rotations: f32| {
        dim as f32 * (original_ctx as f32 / (rotations * 2.0 * std::f32::consts::PI)).ln()
            / (2.0 * theta.ln())
    };
    let low = corr_dim(beta_fast).floor().max(0.0);
    let high = corr_dim(beta_slow).ceil().min(dim as f32 - 1.0);
    (low, high)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-6 * y.abs().max(1e-3), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn plain_frequencies_are_theta_powers() {
        let f = inverse_frequencies(4, 10_000.0, RopeScaling::None, None).unwrap();
        close(&f, &[1.0, 0.01]);
    }

    #[test]
    fn linear_factor_divides_every_frequency() {
        let f =
            inverse_frequencies(4, 10_000.0, RopeScaling::Linear { factor: 4.0 }, None).unwrap();
        close(&f, &[0.25, 0.0025]);
    }

    #[test]
    fn rope_freqs_divide_each_frequency_before_scaling() {
        let ff = [1.0, 8.0];
        let f = inverse_frequencies(4, 10_000.0, RopeScaling::None, Some(&ff)).unwrap();
        close(&f, &[1.0, 0.01 / 8.0]);
        let f = inverse_frequencies(4, 10_000.0, RopeScaling::Linear { factor: 2.0 }, Some(&ff))
            .unwrap();
        close(&f, &[0.5, 0.01 / 16.0]);
        assert!(inverse_frequencies(4, 10_000.0, RopeScaling::None, Some(&[1.0])).is_err());
    }

    /// Hand-computed reference: dim 8, theta 10000, original context 64, factor 4, betas 32/1.
    /// Base frequencies 1, 0.1, 0.01, 0.001. corr_dim(r) = 8 ln(64 / (2π r)) / (2 ln 10000):
    /// r = 32: ln(0.3183) = -1.1447 → -0.497 → floor -1 → low 0; r = 1: ln(10.186) = 2.3210 →
    /// 1.008 → ceil 2 → high 2. Ramp (i - 0) / 2 clamped: 0, 0.5, 1, 1; extrapolation 1 - ramp:
    /// 1, 0.5, 0, 0. So f0 = 1, f1 = 0.1 (0.5 / 4 + 0.5) = 0.0625, f2 = 0.0025, f3 = 0.00025.
    #[test]
    fn yarn_ramps_between_kept_and_interpolated_frequencies() {
        let s = RopeScaling::Yarn {
            factor: 4.0,
            original_max_position_embeddings: 64,
            beta_fast: 32.0,
            beta_slow: 1.0,
            attention_factor: RopeScaling::yarn_mscale(4.0),
        };
        let f = inverse_frequencies(8, 10_000.0, s, None).unwrap();
        close(&f, &[1.0, 0.0625, 0.0025, 0.00025]);
        assert!((RopeScaling::yarn_mscale(4.0) - 1.138_629).abs() < 1e-5);
    }

    #[test]
    fn yarn_scales_cos_and_sin_by_the_attention_factor() {
        let s = RopeScaling::Yarn {
            factor: 4.0,
            original_max_position_embeddings: 64,
            beta_fast: 32.0,
            beta_slow: 1.0,
            attention_factor: 1.5,
        };
        let r =
            RotaryEmbedding::new(8, 10_000.0, s, None, 2, RopeStyle::Neox, &Device::Cpu).unwrap();
        let t: Vec<Vec<f32>> = r.cos_sin.to_vec2().unwrap();
        // position 0: cos = 1 · 1.5, sin = 0.
        assert_eq!(&t[0][..4], &[1.5; 4]);
        assert_eq!(&t[0][4..], &[0.0; 4]);
        // position 1, frequency 0 (kept): 1.5 cos(1).
        assert!((t[1][0] - 1.5 * 1f32.cos()).abs() < 1e-6);
    }
}
