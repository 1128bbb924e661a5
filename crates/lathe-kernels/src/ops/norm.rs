//! Fused residual add + RMSNorm.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};

use super::{as_f32_mut, cpu_slice, dispatch_float};
use crate::reference::{self, Element};

/// Output `[2, T, H]`: `[0]` the normed rows, `[1]` the new residual (`x + residual`). One
/// output tensor keeps it a single candle op; the caller narrows it without copying.
pub struct AddRmsNorm {
    pub(crate) eps: f32,
}

impl CustomOp3 for AddRmsNorm {
    fn name(&self) -> &'static str {
        "lathe-add-rms-norm"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_l: &Layout,
        r: &CpuStorage,
        r_l: &Layout,
        w: &CpuStorage,
        w_l: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (t, h) = x_l.shape().dims2()?;
        dispatch_float!(x.dtype(), T => {
            let mut out = vec![T::from_f32(0.0); 2 * t * h];
            let (normed, residual) = out.split_at_mut(t * h);
            if let Some(normed) = as_f32_mut(normed) {
                crate::cpu::elementwise::add_rms_norm(
                    cpu_slice::<f32>(x, x_l)?,
                    cpu_slice::<f32>(r, r_l)?,
                    cpu_slice::<f32>(w, w_l)?,
                    self.eps,
                    normed,
                    as_f32_mut(residual).unwrap(),
                );
            } else {
                reference::add_rms_norm(
                cpu_slice::<T>(x, x_l)?,
                cpu_slice::<T>(r, r_l)?,
                cpu_slice::<T>(w, w_l)?,
                self.eps,
                    normed,
                    residual,
                );
            }
            Ok((candle_core::WithDType::to_cpu_storage_owned(out), Shape::from((2, t, h))))
        })
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        x_l: &Layout,
        r: &candle_core::CudaStorage,
        r_l: &Layout,
        w: &candle_core::CudaStorage,
        w_l: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        crate::cuda::add_rms_norm(self, x, x_l, r, r_l, w, w_l)
    }
}

/// Returns `(rms_norm(x + residual) · weight, x + residual)` for `x`, `residual` `[T, H]`.
pub fn add_rms_norm(
    x: &Tensor,
    residual: &Tensor,
    weight: &Tensor,
    eps: f32,
) -> Result<(Tensor, Tensor)> {
    let out = x.contiguous()?.apply_op3_no_bwd(
        &residual.contiguous()?,
        &weight.contiguous()?,
        &AddRmsNorm { eps },
    )?;
    Ok((out.get(0)?, out.get(1)?))
}
