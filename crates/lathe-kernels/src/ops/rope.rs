//! Rotary position embedding, in place on q or k.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, InplaceOp3, Layout, Result, Tensor};

use super::{as_f32_mut, cpu_slice, cpu_slice_mut, dispatch_float};
use crate::reference::{self, RopeStyle};

/// In place on x `[T, heads, head_dim]`, operands positions u32 `[T]` and cos_sin f32
/// `[max_pos, rotary_dim]` (cos half, then sin half).
pub struct Rope {
    pub(crate) style: RopeStyle,
    pub(crate) head_dim: usize,
    pub(crate) rotary_dim: usize,
}

impl InplaceOp3 for Rope {
    fn name(&self) -> &'static str {
        "lathe-rope"
    }

    fn cpu_fwd(
        &self,
        x: &mut CpuStorage,
        x_l: &Layout,
        pos: &CpuStorage,
        pos_l: &Layout,
        cs: &CpuStorage,
        cs_l: &Layout,
    ) -> Result<()> {
        let positions = cpu_slice::<u32>(pos, pos_l)?;
        let cos_sin = cpu_slice::<f32>(cs, cs_l)?;
        dispatch_float!(x.dtype(), T => {
            let xs = cpu_slice_mut::<T>(x, x_l)?;
            match as_f32_mut(xs) {
                Some(xs) => crate::cpu::elementwise::rope(
                    xs, positions, cos_sin, self.head_dim, self.rotary_dim, self.style,
                ),
                None => reference::rope(
                    xs, positions, cos_sin, self.head_dim, self.rotary_dim, self.style,
                ),
            }
            Ok(())
        })
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &mut candle_core::CudaStorage,
        x_l: &Layout,
        pos: &candle_core::CudaStorage,
        pos_l: &Layout,
        cs: &candle_core::CudaStorage,
        cs_l: &Layout,
    ) -> Result<()> {
        crate::cuda::rope(self, x, x_l, pos, pos_l, cs, cs_l)
    }
}

/// Rotates `x` `[T, heads, head_dim]` in place. `x` must own its storage (a fresh projection),
/// since every view of that storage changes too.
pub fn rope(x: &Tensor, positions: &Tensor, cos_sin: &Tensor, style: RopeStyle) -> Result<()> {
    let (t, _, head_dim) = x.dims3()?;
    let (max_pos, rotary_dim) = cos_sin.dims2()?;
    if positions.dims1()? != t || rotary_dim > head_dim || rotary_dim % 2 != 0 {
        candle_core::bail!(
            "rope: x {:?}, positions {:?}, cos_sin {:?}",
            x.dims(),
            positions.dims(),
            cos_sin.dims()
        );
    }
    let _ = max_pos;
    if !x.is_contiguous() {
        candle_core::bail!("rope: x must be contiguous to rotate in place");
    }
    x.inplace_op3(
        positions,
        cos_sin,
        &Rope {
            style,
            head_dim,
            rotary_dim,
        },
    )
}
