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

/// `x.apply_op1_no_bwd(&QuantGroupMatMul(parts))` computes `x · Wᵀ` for every part in one
/// call ([`QuantMatrix::matmul_group`]): `[..., cols]` -> `[..., Σ rows]`, the parts' outputs
/// side by side. The parts may differ in format but must share `cols` (checked when built
/// with [`QuantGroupMatMul::new`]).
#[derive(Clone, Debug)]
pub struct QuantGroupMatMul(pub Vec<Arc<QuantMatrix>>);

impl QuantGroupMatMul {
    /// `None` if `parts` is empty or the widths differ.
    pub fn new(parts: Vec<Arc<QuantMatrix>>) -> Option<Self> {
        let cols = parts.first()?.cols();
        parts
            .iter()
            .all(|p| p.cols() == cols)
            .then_some(QuantGroupMatMul(parts))
    }

    /// Output features of all parts together.
    pub fn rows(&self) -> usize {
        self.0.iter().map(|p| p.rows()).sum()
    }
}

/// A matmul over `m` rows of f32 input: `mm(x, m, out)`.
type MatMulFn<'a> = &'a dyn Fn(&[f32], usize, &mut [f32]);

/// The shared forward: `mm(x, m, out)` over the input's rows, in f32.
fn forward(
    name: &str,
    what: &dyn std::fmt::Debug,
    cols: usize,
    rows: usize,
    storage: &CpuStorage,
    layout: &Layout,
    mm: MatMulFn,
) -> Result<(CpuStorage, Shape)> {
    let dims = layout.shape().dims();
    let Some((&k, lead)) = dims.split_last() else {
        candle_core::bail!("{name}: input must have at least one dimension")
    };
    if k != cols {
        candle_core::bail!("{name}: input {dims:?} does not end in {cols} (weight {what:?})")
    }
    let m: usize = lead.iter().product();
    let mut out_dims = lead.to_vec();
    out_dims.push(rows);
    let mut y = vec![0f32; m * rows];
    let storage = match storage {
        CpuStorage::F32(s) => {
            match layout.contiguous_offsets() {
                Some((a, b)) => mm(&s[a..b], m, &mut y),
                None => mm(&gather(s, layout), m, &mut y),
            }
            CpuStorage::F32(y)
        }
        CpuStorage::F16(s) => {
            let x: Vec<f32> = gather(s, layout).iter().map(|v| v.to_f32()).collect();
            mm(&x, m, &mut y);
            CpuStorage::F16(y.iter().map(|&v| half::f16::from_f32(v)).collect())
        }
        CpuStorage::BF16(s) => {
            let x: Vec<f32> = gather(s, layout).iter().map(|v| v.to_f32()).collect();
            mm(&x, m, &mut y);
            CpuStorage::BF16(y.iter().map(|&v| half::bf16::from_f32(v)).collect())
        }
        other => candle_core::bail!("{name}: unsupported dtype {:?}", other.dtype()),
    };
    Ok((storage, Shape::from(out_dims)))
}

impl candle_core::CustomOp1 for QuantMatMul {
    fn name(&self) -> &'static str {
        "lathe-quant-matmul"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let w = &self.0;
        let mm = |x: &[f32], m: usize, y: &mut [f32]| w.matmul(x, m, y);
        forward(self.name(), w, w.cols(), w.rows(), storage, layout, &mm)
    }
}

impl candle_core::CustomOp1 for QuantGroupMatMul {
    fn name(&self) -> &'static str {
        "lathe-quant-group-matmul"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let Some(first) = self.0.first() else {
            candle_core::bail!("{}: no parts", self.name())
        };
        let cols = first.cols();
        if self.0.iter().any(|p| p.cols() != cols) {
            candle_core::bail!("{}: parts of different widths {:?}", self.name(), self.0)
        }
        let parts: Vec<&QuantMatrix> = self.0.iter().map(|p| p.as_ref()).collect();
        let mm = |x: &[f32], m: usize, y: &mut [f32]| QuantMatrix::matmul_group(&parts, x, m, y);
        forward(
            self.name(),
            &self.0,
            cols,
            self.rows(),
            storage,
            layout,
            &mm,
        )
    }
}
