//! The gated (SwiGLU) MLP of llama-family models.

use candle_core::{Result, Tensor};

use super::Linear;

#[derive(Debug, Clone)]
pub struct GatedMlp {
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
}

impl GatedMlp {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let gate = self.gate.forward(x)?;
        let up = self.up.forward(x)?;
        let act = lathe_kernels::ops::silu_and_mul(&Tensor::cat(&[&gate, &up], 1)?)?;
        self.down.forward(&act)
    }
}
