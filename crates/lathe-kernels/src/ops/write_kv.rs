//! KV-cache write: scatter this step's K or V rows into the paged cache by slot.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, InplaceOp2, Layout, Result, Tensor};

use super::{cpu_slice, cpu_slice_mut, dispatch_float, with_cpu_slice};
use crate::reference;

/// In-place op on the cache `[num_blocks, block_size, kv_heads, head_dim]`, second operand the
/// new rows `[T, kv_heads, head_dim]`.
pub struct WriteKv {
    /// i64 `[T]`: flat slot of each row, −1 for a padding row.
    pub(crate) slot_mapping: Tensor,
}

impl InplaceOp2 for WriteKv {
    fn name(&self) -> &'static str {
        "lathe-write-kv"
    }

    fn cpu_fwd(
        &self,
        cache: &mut CpuStorage,
        cache_l: &Layout,
        new: &CpuStorage,
        new_l: &Layout,
    ) -> Result<()> {
        let dims = cache_l.dims();
        let row_width = dims[2] * dims[3];
        with_cpu_slice::<i64, _>(&self.slot_mapping, |slots| {
            dispatch_float!(new.dtype(), T => {
                let src = cpu_slice::<T>(new, new_l)?;
                let dst = cpu_slice_mut::<T>(cache, cache_l)?;
                reference::write_kv(src, dst, slots, row_width);
                Ok(())
            })
        })
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        cache: &mut candle_core::CudaStorage,
        cache_l: &Layout,
        new: &candle_core::CudaStorage,
        new_l: &Layout,
    ) -> Result<()> {
        crate::cuda::write_kv(self, cache, cache_l, new, new_l)
    }
}

/// Writes `new` (`[T, kv_heads, head_dim]`) into `cache` at `slot_mapping` (i64 `[T]`).
pub fn write_kv(cache: &Tensor, new: &Tensor, slot_mapping: &Tensor) -> Result<()> {
    let (_, _, kvh, d) = cache.dims4()?;
    let (t, nkvh, nd) = new.dims3()?;
    if (nkvh, nd) != (kvh, d) || slot_mapping.dims1()? != t {
        candle_core::bail!(
            "write_kv: rows {:?} / slots {:?} do not fit cache {:?}",
            new.dims(),
            slot_mapping.dims(),
            cache.dims()
        );
    }
    if cache.dtype() != new.dtype() {
        candle_core::bail!(
            "write_kv: cache is {:?}, rows are {:?}",
            cache.dtype(),
            new.dtype()
        );
    }
    let op = WriteKv {
        slot_mapping: slot_mapping.contiguous()?,
    };
    cache.inplace_op2(&new.contiguous()?, &op)
}
