//! The normalisations decoder blocks use: RMSNorm (llama, qwen) and LayerNorm with bias
//! (starcoder2), plain and fused with the residual add that precedes them.

use candle_core::{DType, Result, Tensor, D};

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

    /// Normalises each head of `x [T, heads, d]` on its own (Qwen3's q/k norms).
    pub fn forward_heads(&self, x: &Tensor) -> Result<Tensor> {
        let (t, h, d) = x.dims3()?;
        self.forward(&x.reshape((t * h, d))?)?.reshape((t, h, d))
    }
}

/// `(x − mean) / sqrt(var + eps) · weight + bias` over the last dimension, in f32.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl LayerNorm {
    pub fn new(weight: Tensor, bias: Tensor, eps: f32) -> Self {
        Self { weight, bias, eps }
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dtype = x.dtype();
        let x = x.to_dtype(DType::F32)?;
        let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(var + self.eps as f64)?.sqrt()?)?;
        normed
            .to_dtype(dtype)?
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)
    }
}

/// The norm of a decoder block.
#[derive(Debug, Clone)]
pub enum Norm {
    Rms(RmsNorm),
    Layer(LayerNorm),
}

impl Norm {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Rms(n) => n.forward(x),
            Self::Layer(n) => n.forward(x),
        }
    }

    /// `(norm(x + residual), x + residual)`; one fused pass for RMSNorm.
    pub fn forward_residual(&self, x: &Tensor, residual: &Tensor) -> Result<(Tensor, Tensor)> {
        match self {
            Self::Rms(n) => n.forward_residual(x, residual),
            Self::Layer(n) => {
                let sum = (x + residual)?;
                Ok((n.forward(&sum)?, sum))
            }
        }
    }
}
