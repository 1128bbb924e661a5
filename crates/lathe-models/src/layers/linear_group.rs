//! Linears over the same input (q/k/v, gate/up) run as one matmul where lathe's kernels
//! allow: one activation quantization and one thread hand-off instead of two or three.

use candle_core::{Result, Tensor};

use super::Linear;

#[derive(Debug, Clone)]
pub enum LinearGroup {
    /// One matmul; outputs side by side, of these widths.
    Fused(Linear, Vec<usize>),
    Separate(Vec<Linear>),
}

impl LinearGroup {
    pub fn new(parts: Vec<Linear>) -> Result<Self> {
        let refs: Vec<&Linear> = parts.iter().collect();
        let sizes: Option<Vec<usize>> = parts.iter().map(Linear::out_features).collect();
        Ok(match (Linear::fuse(&refs)?, sizes) {
            (Some(fused), Some(sizes)) => Self::Fused(fused, sizes),
            _ => Self::Separate(parts),
        })
    }

    /// `x [T, in]` -> one `[T, out_i]` per part (views of one buffer when fused).
    pub fn forward(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        match self {
            Self::Fused(l, sizes) => {
                let y = l.forward(x)?;
                let mut at = 0;
                sizes
                    .iter()
                    .map(|&n| {
                        at += n;
                        y.narrow(1, at - n, n)
                    })
                    .collect()
            }
            Self::Separate(parts) => parts.iter().map(|l| l.forward(x)).collect(),
        }
    }

    /// `x [T, in]` -> `[T, Σ out_i]`, the outputs side by side.
    pub fn forward_cat(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Fused(l, _) => l.forward(x),
            Self::Separate(parts) => {
                let ys = parts
                    .iter()
                    .map(|l| l.forward(x))
                    .collect::<Result<Vec<_>>>()?;
                Tensor::cat(&ys, 1)
            }
        }
    }
}
