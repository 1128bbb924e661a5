//! candle ops over the kernels: one public function per kernel, the same signature on every
//! device. On the CPU they run lathe's vectorized kernels (`crate::cpu`) for f32 and the twins
//! in `reference` for f16/bf16; under feature `cuda` on a CUDA device they launch the kernels
//! of kernels/ (see `crate::cuda`). Model code calls only these.

mod activation;
mod moe;
mod norm;
mod paged_attention;
mod rope;
mod write_kv;

pub use activation::{silu_and_mul, SiluAndMul};
pub use moe::{moe_combine, moe_topk_softmax, MoeCombine, MoeTopK, MOE_MAX_EXPERTS};
pub use norm::{add_rms_norm, AddRmsNorm};
pub use paged_attention::{paged_attention, PagedAttention, PagedBatchTensors};
pub use rope::{rope, Rope};
pub use write_kv::{write_kv, WriteKv};

use candle_core::{CpuStorage, Layout, Result, Storage, Tensor, WithDType};

/// The contiguous elements a layout addresses in a CPU storage.
pub(crate) fn cpu_slice<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("lathe kernel: input must be contiguous".into()))?;
    Ok(&s.as_slice::<T>()?[start..end])
}

/// Runs `f` on the CPU elements of a tensor held by an op (metadata, caches).
pub(crate) fn with_cpu_slice<T: WithDType, R>(
    t: &Tensor,
    f: impl FnOnce(&[T]) -> Result<R>,
) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(s) => f(cpu_slice::<T>(s, layout)?),
        _ => candle_core::bail!("lathe kernel: expected a CPU tensor, got {:?}", t.device()),
    }
}

/// Mutable contiguous elements of a CPU storage addressed by a layout.
pub(crate) fn cpu_slice_mut<'a, T: MutSlice>(
    s: &'a mut CpuStorage,
    l: &Layout,
) -> Result<&'a mut [T]> {
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("lathe kernel: output must be contiguous".into()))?;
    Ok(&mut T::slice_mut(s)?[start..end])
}

/// Typed mutable access to a `CpuStorage` (candle exposes only the shared one).
pub(crate) trait MutSlice: Sized {
    fn slice_mut(s: &mut CpuStorage) -> Result<&mut [Self]>;
}

macro_rules! mut_slice {
    ($t:ty, $variant:ident) => {
        impl MutSlice for $t {
            fn slice_mut(s: &mut CpuStorage) -> Result<&mut [Self]> {
                match s {
                    CpuStorage::$variant(v) => Ok(v.as_mut_slice()),
                    _ => candle_core::bail!(
                        "lathe kernel: dtype mismatch, expected {}",
                        stringify!($t)
                    ),
                }
            }
        }
    };
}
mut_slice!(f32, F32);
mut_slice!(half::f16, F16);
mut_slice!(half::bf16, BF16);

/// The same slice as `&mut [f32]` when `T` is f32: the dtype-generic ops take lathe's
/// vectorized CPU kernels (`crate::cpu`) for f32 and the reference twins otherwise.
pub(crate) fn as_f32_mut<T: 'static>(s: &mut [T]) -> Option<&mut [f32]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()).then(|| {
        // SAFETY: T is f32 (checked just above).
        unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr() as *mut f32, s.len()) }
    })
}

/// `&[f32]` when `T` is f32 (see [`as_f32_mut`]).
pub(crate) fn as_f32<T: 'static>(s: &[T]) -> Option<&[f32]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()).then(|| {
        // SAFETY: T is f32 (checked just above).
        unsafe { std::slice::from_raw_parts(s.as_ptr() as *const f32, s.len()) }
    })
}

/// Expands `$body` once per float dtype with `$T` bound to the element type.
macro_rules! dispatch_float {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            candle_core::DType::F32 => {
                type $T = f32;
                $body
            }
            candle_core::DType::F16 => {
                type $T = half::f16;
                $body
            }
            candle_core::DType::BF16 => {
                type $T = half::bf16;
                $body
            }
            other => candle_core::bail!("lathe kernel: unsupported dtype {other:?}"),
        }
    };
}
pub(crate) use dispatch_float;
