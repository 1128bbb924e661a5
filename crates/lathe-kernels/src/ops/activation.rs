//! Gated activation of the MLP: silu(gate) · up.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

use super::{as_f32, as_f32_mut, cpu_slice, dispatch_float};
use crate::reference::{self, Element};

/// `[T, 2I] -> [T, I]` with the gate in the first half of each row.
pub struct SiluAndMul;

impl CustomOp1 for SiluAndMul {
    fn name(&self) -> &'static str {
        "lathe-silu-and-mul"
    }

    fn cpu_fwd(&self, x: &CpuStorage, x_l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (t, two_i) = x_l.shape().dims2()?;
        let inter = two_i / 2;
        dispatch_float!(x.dtype(), T => {
            let mut out = vec![T::from_f32(0.0); t * inter];
            let xs = cpu_slice::<T>(x, x_l)?;
            match (as_f32(xs), as_f32_mut(&mut out)) {
                (Some(xs), Some(o)) => crate::cpu::elementwise::silu_and_mul(xs, inter, o),
                _ => reference::silu_and_mul(xs, inter, &mut out),
            }
            Ok((candle_core::WithDType::to_cpu_storage_owned(out), Shape::from((t, inter))))
        })
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        x_l: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        crate::cuda::silu_and_mul(self, x, x_l)
    }
}

/// silu(x[:, :I]) · x[:, I:] for x `[T, 2I]`.
pub fn silu_and_mul(x: &Tensor) -> Result<Tensor> {
    let (_, two_i) = x.dims2()?;
    if two_i % 2 != 0 {
        candle_core::bail!("silu_and_mul: odd last dimension {two_i}");
    }
    x.contiguous()?.apply_op1_no_bwd(&SiluAndMul)
}
