//! A linear layer over quantized (GGUF) or dense (safetensors) weights, with optional bias.
//!
//! On the CPU, quantized weights in a format lathe's own SIMD kernels cover (every common GGUF
//! type: Q4_0…Q8_0, Q2_K…Q6_K, IQ4_NL, IQ4_XS; see `lathe_kernels::cpu::QuantFormat`) run
//! through `lathe_kernels::cpu`; everything else (CUDA, dense weights) through candle's
//! `QMatMul`. `LATHE_CPU_MATMUL=candle` forces candle's path (for side-by-side measurements).

use std::sync::Arc;

use candle_core::quantized::QMatMul;
use candle_core::{Module, Result, Tensor};
use lathe_kernels::cpu::{QuantMatMul, QuantMatrix};

#[derive(Debug, Clone)]
enum Weight {
    Candle(QMatMul),
    Lathe(Arc<QuantMatrix>),
}

#[derive(Debug, Clone)]
pub struct Linear {
    weight: Weight,
    bias: Option<Tensor>,
}

impl Linear {
    pub fn new(weight: QMatMul, bias: Option<Tensor>) -> Self {
        Self {
            weight: Weight::Candle(weight),
            bias,
        }
    }

    /// Over a matrix packed for lathe's CPU kernels.
    pub fn from_quant_matrix(m: QuantMatrix, bias: Option<Tensor>) -> Self {
        Self::from_shared(Arc::new(m), bias)
    }

    /// On a matrix shared with another layer (a tied LM head and its embedding).
    pub fn from_shared(m: Arc<QuantMatrix>, bias: Option<Tensor>) -> Self {
        Self {
            weight: Weight::Lathe(m),
            bias,
        }
    }

    /// One linear computing all of `parts` (outputs side by side, in order), when all run on
    /// lathe's kernels in one format and width; `None` otherwise (the caller keeps them apart).
    pub fn fuse(parts: &[&Linear]) -> Result<Option<Linear>> {
        let mut mats = Vec::with_capacity(parts.len());
        for p in parts {
            match &p.weight {
                Weight::Lathe(m) => mats.push(m.as_ref()),
                Weight::Candle(_) => return Ok(None),
            }
        }
        let Some(m) = QuantMatrix::concat_rows(&mats) else {
            return Ok(None);
        };
        let bias = if parts.iter().all(|p| p.bias.is_none()) {
            None
        } else if parts.iter().all(|p| p.bias.is_some()) {
            let b: Vec<&Tensor> = parts.iter().filter_map(|p| p.bias.as_ref()).collect();
            Some(Tensor::cat(&b, 0)?)
        } else {
            return Ok(None);
        };
        Ok(Some(Self {
            weight: Weight::Lathe(Arc::new(m)),
            bias,
        }))
    }

    /// The weight on lathe's CPU kernels, if it runs there.
    pub fn lathe_matrix(&self) -> Option<&Arc<QuantMatrix>> {
        match &self.weight {
            Weight::Lathe(m) => Some(m),
            Weight::Candle(_) => None,
        }
    }

    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// Output features, where known without running (lathe's kernels).
    pub fn out_features(&self) -> Option<usize> {
        match &self.weight {
            Weight::Lathe(m) => Some(m.rows()),
            Weight::Candle(_) => None,
        }
    }

    /// `x [T, in] -> [T, out]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = match &self.weight {
            Weight::Candle(w) => w.forward(x)?,
            Weight::Lathe(w) => x.apply_op1_no_bwd(&QuantMatMul(w.clone()))?,
        };
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

/// `LATHE_CPU_MATMUL=candle`: quantized weights stay on candle's kernels.
pub(crate) fn candle_forced() -> bool {
    std::env::var("LATHE_CPU_MATMUL").is_ok_and(|v| v.eq_ignore_ascii_case("candle"))
}
