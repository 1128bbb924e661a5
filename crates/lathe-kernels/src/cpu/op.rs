//! The candle op: `y = x · Wᵀ` for a CPU tensor `x [..., cols]` -> `[..., rows]`.
//!
//! f32 input runs as is; f16/bf16 input is widened to f32 and the output narrowed back to
//! the input dtype. Any layout is accepted (non-contiguous input is copied first).

use super::QuantMatrix;
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Layout, Result, Shape};
use std::sync::Arc;

/// `x.apply_op1_no_bwd(&QuantMatMul(w))` computes `x · Wᵀ` with lathe's CPU kernels.
#[derive(Clone, Debug)]
pub struct QuantMatMul(pub Arc<QuantMatrix>);

/// Copies the elements of `layout` out of `src` in logical (row-major) order.
fn gather<T: Copy>(src: &[T], layout: &Layout) -> Vec<T> {
    if let Some((a, b)) = layout.contiguous_offsets() {
        return src[a..b].to_vec();
    }
    let (dims, strides) = (layout.dims(), layout.stride());
    let n: usize = dims.iter().product();
    let mut idx = vec![0usize; dims.len()];
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let off: usize = idx.iter().zip(strides).map(|(i, s)| i * s).sum();
        out.push(src[layout.start_offset() + off]);
        for d in (0..dims.len()).rev() {
            idx[d] += 1;
            if idx[d] < dims[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

impl candle_core::CustomOp1 for QuantMatMul {
    fn name(&self) -> &'static str {
        "lathe-quant-matmul"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let w = &self.0;
        let dims = layout.shape().dims();
        let Some((&k, lead)) = dims.split_last() else {
            candle_core::bail!("{}: input must have at least one dimension", self.name())
        };
        if k != w.cols() {
            candle_core::bail!(
                "{}: input {:?} does not end in {} (weight {w:?})",
                self.name(),
                dims,
                w.cols()
            )
        }
        let m: usize = lead.iter().product();
        let mut out_dims = lead.to_vec();
        out_dims.push(w.rows());
        let mut y = vec![0f32; m * w.rows()];
        let storage = match storage {
            CpuStorage::F32(s) => {
                match layout.contiguous_offsets() {
                    Some((a, b)) => w.matmul(&s[a..b], m, &mut y),
                    None => w.matmul(&gather(s, layout), m, &mut y),
                }
                CpuStorage::F32(y)
            }
            CpuStorage::F16(s) => {
                let x: Vec<f32> = gather(s, layout).iter().map(|v| v.to_f32()).collect();
                w.matmul(&x, m, &mut y);
                CpuStorage::F16(y.iter().map(|&v| half::f16::from_f32(v)).collect())
            }
            CpuStorage::BF16(s) => {
                let x: Vec<f32> = gather(s, layout).iter().map(|v| v.to_f32()).collect();
                w.matmul(&x, m, &mut y);
                CpuStorage::BF16(y.iter().map(|&v| half::bf16::from_f32(v)).collect())
            }
            other => candle_core::bail!("{}: unsupported dtype {:?}", self.name(), other.dtype()),
        };
        Ok((storage, Shape::from(out_dims)))
    }
}
