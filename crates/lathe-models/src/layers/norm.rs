//! RMSNorm, plain and fused with the residual add that precedes it.

use candle_core::{Result, Tensor};

#[derive(Debug, Clone)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    pub fn new(weight: Tensor, eps: f32) -> Self {
        Self { weight, eps }
    }

    /// `x [T, H]`. The fused op with a zero residual (`x + 0` is exact): on the CPU it stays
    /// on lathe's kernels instead of waking rayon's pool once per step.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.forward_residual(x, &x.zeros_like()?)?.0)
    }

    /// `(norm(x + residual), x + residual)` in one pass.
    pub fn forward_residual(&self, x: &Tensor, residual: &Tensor) -> Result<(Tensor, Tensor)> {
        lathe_kernels::ops::add_rms_norm(x, residual, &self.weight, self.eps)
    }
}
