//! Linears over the same input (q/k/v, gate/up) run as one matmul where lathe's kernels
//! allow: one activation quantization and one thread hand-off instead of two or three. Parts in
//! one format are stacked into one matrix; parts in different formats (Qwen2.5-Coder-0.5B's
//! Q5_0 q/k with a Q8_0 v) run as one job list over all their tiles (`QuantGroupMatMul`).

use candle_core::{Result, Tensor};
use lathe_kernels::cpu::QuantGroupMatMul;

use super::Linear;

#[derive(Debug, Clone)]
pub enum LinearGroup {
    /// One matmul; outputs side by side, of these widths.
    Fused(Linear, Vec<usize>),
    /// One call over matrices of different formats; outputs side by side, of these widths,
    /// plus the parts' biases side by side.
    Grouped(QuantGroupMatMul, Option<Tensor>, Vec<usize>),
    Separate(Vec<Linear>),
}

impl LinearGroup {
    pub fn new(parts: Vec<Linear>) -> Result<Self> {
        let refs: Vec<&Linear> = parts.iter().collect();
        let sizes: Option<Vec<usize>> = parts.iter().map(Linear::out_features).collect();
        let Some(sizes) = sizes else {
            return Ok(Self::Separate(parts));
        };
        if let Some(fused) = Linear::fuse(&refs)? {
            return Ok(Self::Fused(fused, sizes));
        }
        let mats = parts
            .iter()
            .filter_map(|p| p.lathe_matrix().cloned())
            .collect();
        let Some(group) = QuantGroupMatMul::new(mats) else {
            return Ok(Self::Separate(parts));
        };
        let bias = if parts.iter().all(|p| p.bias().is_none()) {
            None
        } else if parts.iter().all(|p| p.bias().is_some()) {
            let b: Vec<&Tensor> = parts.iter().filter_map(Linear::bias).collect();
            Some(Tensor::cat(&b, 0)?)
        } else {
            return Ok(Self::Separate(parts));
        };
        Ok(Self::Grouped(group, bias, sizes))
    }

    /// `x [T, in]` -> one `[T, out_i]` per part (views of one buffer unless separate).
    pub fn forward(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let sizes = match self {
            Self::Fused(_, sizes) | Self::Grouped(_, _, sizes) => sizes,
            Self::Separate(parts) => return parts.iter().map(|l| l.forward(x)).collect(),
        };
        let y = self.forward_cat(x)?;
        let mut at = 0;
        sizes
            .iter()
            .map(|&n| {
                at += n;
                y.narrow(1, at - n, n)
            })
            .collect()
    }

    /// `x [T, in]` -> `[T, Σ out_i]`, the outputs side by side.
    pub fn forward_cat(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Fused(l, _) => l.forward(x),
            Self::Grouped(group, bias, _) => {
                let y = x.apply_op1_no_bwd(group)?;
                match bias {
                    Some(b) => y.broadcast_add(b),
                    None => Ok(y),
                }
            }
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
