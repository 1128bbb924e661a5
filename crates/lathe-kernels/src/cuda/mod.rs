//! The CUDA side of the ops: PTX of kernels/*.cu (compiled by build.rs, embedded here) loaded
//! at run time through candle's `CudaDevice::get_or_load_custom_func`, and launched on the
//! device's stream.
//!
//! Conventions shared by every launcher:
//! - inputs are contiguous (the ops in `crate::ops` make them so) and may start at an offset
//!   into their storage; [`Arg`] turns (storage, layout) into a device address and keeps the
//!   stream synchronisation guard alive until the launch is queued;
//! - kernels take raw device addresses and plain integers, never strides;
//! - one PTX module per .cu file, one `extern "C"` entry per dtype (and head size where it
//!   matters), named `<kernel>_<dtype>[_hd<D>...]`.

mod attention;
mod elementwise;
mod moe;

pub(crate) use attention::paged_attention;
pub(crate) use elementwise::{add_rms_norm, rope, silu_and_mul, write_kv};
pub(crate) use moe::{moe_combine, moe_topk_softmax};

use candle_core::cuda_backend::cudarc::driver::{
    CudaFunction, CudaStream, DevicePtr, DevicePtrMut, LaunchConfig, SyncOnDrop,
};
use candle_core::cuda_backend::{CudaStorageSlice, WrapErr};
use candle_core::{CudaDevice, CudaStorage, DType, Layout, Result, Storage, Tensor};

#[allow(dead_code)]
mod ptx {
    include!(concat!(env!("OUT_DIR"), "/kernels_ptx.rs"));
}

/// One PTX module: the name candle caches it under and its text.
#[derive(Clone, Copy)]
pub(crate) struct Module {
    name: &'static str,
    ptx: &'static str,
}

/// kernels/paged_attention.cu is compiled once per dtype (`lathe-variants` in its header).
pub(crate) fn paged_attention_module(dtype: DType) -> Result<Module> {
    Ok(match dtype {
        DType::F32 => Module {
            name: "lathe_paged_attention_f32",
            ptx: ptx::PAGED_ATTENTION_F32_PTX,
        },
        DType::F16 => Module {
            name: "lathe_paged_attention_f16",
            ptx: ptx::PAGED_ATTENTION_F16_PTX,
        },
        DType::BF16 => Module {
            name: "lathe_paged_attention_bf16",
            ptx: ptx::PAGED_ATTENTION_BF16_PTX,
        },
        other => candle_core::bail!("paged_attention: unsupported dtype {other:?}"),
    })
}
pub(crate) const WRITE_KV: Module = Module {
    name: "lathe_write_kv",
    ptx: ptx::WRITE_KV_PTX,
};
pub(crate) const ADD_RMS_NORM: Module = Module {
    name: "lathe_add_rms_norm",
    ptx: ptx::ADD_RMS_NORM_PTX,
};
pub(crate) const ROPE: Module = Module {
    name: "lathe_rope",
    ptx: ptx::ROPE_PTX,
};
pub(crate) const MOE: Module = Module {
    name: "lathe_moe",
    ptx: ptx::MOE_PTX,
};
pub(crate) const SILU_AND_MUL: Module = Module {
    name: "lathe_silu_and_mul",
    ptx: ptx::SILU_AND_MUL_PTX,
};

/// A 1-D launch of `grid` blocks (at least one) of `threads` threads, no dynamic shared memory.
pub(crate) fn launch_cfg(grid: usize, threads: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (grid.max(1) as u32, 1, 1),
        block_dim: (threads as u32, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// A kernel's `int` argument; sizes beyond i32 are an error naming `what`.
pub(crate) fn to_i32(v: usize, what: &str) -> Result<i32> {
    i32::try_from(v)
        .map_err(|_| candle_core::Error::Msg(format!("lathe cuda kernels: {what} = {v} too large")))
}

/// Loads (once per device and module) and returns a kernel.
pub(crate) fn function(dev: &CudaDevice, module: Module, name: &str) -> Result<CudaFunction> {
    Ok(dev
        .get_or_load_custom_func(name, module.name, module.ptx)?
        .into_cuda_function())
}

/// The kernel-name suffix of a float dtype.
pub(crate) fn dtype_suffix(dtype: DType) -> Result<&'static str> {
    Ok(match dtype {
        DType::F32 => "f32",
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        other => candle_core::bail!("lathe cuda kernels: unsupported dtype {other:?}"),
    })
}

/// A device address for a kernel argument, with the guard that records the use on the stream
/// when dropped (after the launch).
pub(crate) struct Arg<'a> {
    pub addr: u64,
    _sync: Option<SyncOnDrop<'a>>,
}

impl Arg<'_> {
    /// A null pointer (optional inputs).
    pub(crate) fn null() -> Self {
        Arg {
            addr: 0,
            _sync: None,
        }
    }
}

macro_rules! per_slice {
    ($slice:expr, $s:ident, $elem:ident => $body:expr) => {
        match $slice {
            CudaStorageSlice::F32($s) => {
                type $elem = f32;
                $body
            }
            CudaStorageSlice::F16($s) => {
                type $elem = half::f16;
                $body
            }
            CudaStorageSlice::BF16($s) => {
                type $elem = half::bf16;
                $body
            }
            CudaStorageSlice::U32($s) => {
                type $elem = u32;
                $body
            }
            CudaStorageSlice::I64($s) => {
                type $elem = i64;
                $body
            }
            _ => candle_core::bail!("lathe cuda kernels: unsupported storage dtype"),
        }
    };
}

/// Read-only argument: the first element `layout` addresses in `storage`.
pub(crate) fn arg<'a>(
    storage: &'a CudaStorage,
    layout: &Layout,
    stream: &'a CudaStream,
) -> Result<Arg<'a>> {
    contiguous(layout)?;
    let off = layout.start_offset();
    per_slice!(&storage.slice, s, E => {
        let (addr, sync) = s.device_ptr(stream);
        Ok(Arg { addr: addr + (off * std::mem::size_of::<E>()) as u64, _sync: Some(sync) })
    })
}

/// Written argument (in-place ops).
pub(crate) fn arg_mut<'a>(
    storage: &'a mut CudaStorage,
    layout: &Layout,
    stream: &'a CudaStream,
) -> Result<Arg<'a>> {
    contiguous(layout)?;
    let off = layout.start_offset();
    per_slice!(&mut storage.slice, s, E => {
        let (addr, sync) = s.device_ptr_mut(stream);
        Ok(Arg { addr: addr + (off * std::mem::size_of::<E>()) as u64, _sync: Some(sync) })
    })
}

fn contiguous(layout: &Layout) -> Result<()> {
    if !layout.is_contiguous() {
        candle_core::bail!("lathe cuda kernels: operand must be contiguous, got {layout:?}");
    }
    Ok(())
}

/// Uninitialised device storage of `len` elements.
pub(crate) fn alloc(dev: &CudaDevice, dtype: DType, len: usize) -> Result<CudaStorage> {
    use candle_core::backend::BackendDevice;
    unsafe { dev.alloc_uninit(&candle_core::Shape::from(len), dtype) }
}

/// The CUDA storage behind a tensor an op holds (caches, block tables, slots), after checking
/// it lives on `dev`, has `dtype` and is contiguous. `storage` and `layout` come from
/// `t.storage_and_layout()`, whose guard the caller keeps alive until the launch.
pub(crate) fn cuda_storage<'a>(
    storage: &'a Storage,
    layout: &Layout,
    t: &Tensor,
    dev: &CudaDevice,
    dtype: DType,
    what: &str,
) -> Result<&'a CudaStorage> {
    let Storage::Cuda(s) = storage else {
        candle_core::bail!(
            "lathe cuda kernels: {what} is on {:?}, expected the CUDA device",
            t.device()
        )
    };
    if s.device.id() != dev.id() {
        candle_core::bail!("lathe cuda kernels: {what} is on another CUDA device");
    }
    if t.dtype() != dtype {
        candle_core::bail!(
            "lathe cuda kernels: {what} has dtype {:?}, expected {dtype:?}",
            t.dtype()
        );
    }
    contiguous(layout)?;
    Ok(s)
}

/// `n` rounded up to a multiple of `m`.
pub(crate) fn round_up(n: usize, m: usize) -> usize {
    n.div_ceil(m) * m
}

/// Number of streaming multiprocessors of the device (for grid sizing heuristics).
pub(crate) fn num_sms(dev: &CudaDevice) -> Result<usize> {
    use candle_core::cuda_backend::cudarc::driver::sys::CUdevice_attribute;
    let stream = dev.cuda_stream();
    let n = stream
        .context()
        .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
        .w()?;
    Ok(n.max(1) as usize)
}
