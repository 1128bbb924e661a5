//! The gated (SwiGLU) MLP of llama-family models.

use candle_core::{Result, Tensor};

use super::{Linear, LinearGroup};

#[derive(Debug, Clone)]
pub struct GatedMlp {
    /// Gate and up projections (gate first), fused into one matmul where possible.
    pub gate_up: LinearGroup,
    pub down: Linear,
}

impl GatedMlp {
    pub fn new(gate: Linear, up: Linear, down: Linear) -> Result<Self> {
        Ok(Self {
            gate_up: LinearGroup::new(vec![gate, up])?,
            down,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let act = lathe_kernels::ops::silu_and_mul(&self.gate_up.forward_cat(x)?)?;
        self.down.forward(&act)
    }
}
