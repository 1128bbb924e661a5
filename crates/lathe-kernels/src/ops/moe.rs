//! Mixture-of-experts routing (softmax + top-k per token) and the weighted combine of the
//! experts' outputs back into token order.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp3, DType, Layout, Result, Shape, Tensor};

use super::{cpu_slice, dispatch_float};
use crate::reference::{self, Element};

/// `logits [T, E] f32 -> [T, 2k] f32`: the k chosen expert ids (as f32) then their weights.
pub struct MoeTopK {
    pub(crate) k: usize,
    pub(crate) normalize: bool,
}

impl CustomOp1 for MoeTopK {
    fn name(&self) -> &'static str {
        "lathe-moe-topk-softmax"
    }

    fn cpu_fwd(&self, l: &CpuStorage, l_l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (t, e) = l_l.shape().dims2()?;
        let mut out = vec![0f32; t * 2 * self.k];
        reference::moe_topk_softmax(
            cpu_slice::<f32>(l, l_l)?,
            e,
            self.k,
            self.normalize,
            &mut out,
        );
        Ok((CpuStorage::F32(out), Shape::from((t, 2 * self.k))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        l: &candle_core::CudaStorage,
        l_l: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        crate::cuda::moe_topk_softmax(self, l, l_l)
    }
}

/// The largest expert count the CUDA kernel takes (32 lanes × 8 experts).
pub const MOE_MAX_EXPERTS: usize = 256;

/// Routing of every token of `logits` `[T, E]`: `(ids [T, k] u32, weights [T, k] f32)`, the
/// experts in the order chosen (most probable first, ties to the lower id), weights
/// renormalised over the k when `normalize`.
pub fn moe_topk_softmax(logits: &Tensor, k: usize, normalize: bool) -> Result<(Tensor, Tensor)> {
    let (_, e) = logits.dims2()?;
    if k == 0 || k > e || e > MOE_MAX_EXPERTS {
        candle_core::bail!("moe_topk_softmax: top {k} of {e} experts (at most {MOE_MAX_EXPERTS})");
    }
    let packed = logits
        .to_dtype(DType::F32)?
        .contiguous()?
        .apply_op1_no_bwd(&MoeTopK { k, normalize })?;
    Ok((
        packed.narrow(1, 0, k)?.to_dtype(DType::U32)?,
        packed.narrow(1, k, k)?.contiguous()?,
    ))
}

/// `(y [M, H], rows [T·k] u32, weights [T, k] f32) -> [T, H]`.
pub struct MoeCombine {
    pub(crate) k: usize,
}

impl CustomOp3 for MoeCombine {
    fn name(&self) -> &'static str {
        "lathe-moe-combine"
    }

    fn cpu_fwd(
        &self,
        y: &CpuStorage,
        y_l: &Layout,
        rows: &CpuStorage,
        rows_l: &Layout,
        w: &CpuStorage,
        w_l: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (_, h) = y_l.shape().dims2()?;
        let (t, _) = w_l.shape().dims2()?;
        let rows = cpu_slice::<u32>(rows, rows_l)?;
        let w = cpu_slice::<f32>(w, w_l)?;
        dispatch_float!(y.dtype(), T => {
            let mut out = vec![T::from_f32(0.0); t * h];
            reference::moe_combine(cpu_slice::<T>(y, y_l)?, rows, w, self.k, &mut out);
            Ok((candle_core::WithDType::to_cpu_storage_owned(out), Shape::from((t, h))))
        })
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        y: &candle_core::CudaStorage,
        y_l: &Layout,
        rows: &candle_core::CudaStorage,
        rows_l: &Layout,
        w: &candle_core::CudaStorage,
        w_l: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        crate::cuda::moe_combine(self, y, y_l, rows, rows_l, w, w_l)
    }
}

/// Token `t`'s output: `Σ_j weights[t, j] · y[rows[t·k + j]]` for the experts' outputs `y`
/// `[M, H]` grouped by expert, `rows` u32 `[T·k]` and `weights` f32 `[T, k]`.
pub fn moe_combine(y: &Tensor, rows: &Tensor, weights: &Tensor) -> Result<Tensor> {
    let (m, _) = y.dims2()?;
    let (t, k) = weights.dims2()?;
    if rows.dims1()? != t * k {
        candle_core::bail!(
            "moe_combine: {} rows for {t} tokens × {k} experts",
            rows.dims1()?
        );
    }
    if t * k > 0 {
        // A kernel must never read outside y.
        let top = rows.max(0)?.to_scalar::<u32>()?;
        if top as usize >= m {
            candle_core::bail!("moe_combine: row {top} of {m} expert outputs");
        }
    }
    y.contiguous()?.apply_op3_no_bwd(
        &rows.to_dtype(DType::U32)?.contiguous()?,
        &weights.to_dtype(DType::F32)?.contiguous()?,
        &MoeCombine { k },
    )
}
