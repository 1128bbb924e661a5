//! Launches of the small kernels: KV-cache write, fused residual add + RMSNorm, rotary
//! embedding, SiLU-and-mul. Each is a single memory-bound pass; see the .cu files for the
//! thread layouts.

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
use candle_core::cuda_backend::WrapErr;
use candle_core::{CudaStorage, DType, Layout, Result, Shape};

use super::{
    alloc, arg, arg_mut, cuda_storage, dtype_suffix, function, launch_cfg as cfg, round_up, to_i32,
    ADD_RMS_NORM, ROPE, SILU_AND_MUL, WRITE_KV,
};
use crate::ops::{AddRmsNorm, Rope, SiluAndMul, WriteKv};
use crate::reference::RopeStyle;

/// Elements in one 16-byte access of `dtype`.
fn vec_width(dtype: DType) -> usize {
    16 / dtype.size_in_bytes()
}

pub(crate) fn write_kv(
    op: &WriteKv,
    cache: &mut CudaStorage,
    cache_l: &Layout,
    new: &CudaStorage,
    new_l: &Layout,
) -> Result<()> {
    let dev = cache.device.clone();
    let dtype = cache.dtype();
    if new.dtype() != dtype {
        candle_core::bail!("write_kv: cache is {dtype:?}, rows are {:?}", new.dtype());
    }
    let (nb, bs, kvh, d) = cache_l.shape().dims4()?;
    let (t, nkvh, nd) = new_l.shape().dims3()?;
    if (nkvh, nd) != (kvh, d) {
        candle_core::bail!(
            "write_kv: rows {:?} do not fit cache {:?}",
            new_l.dims(),
            cache_l.dims()
        );
    }
    if t == 0 {
        return Ok(());
    }
    let (sst, sl) = op.slot_mapping.storage_and_layout();
    let slots = cuda_storage(&sst, sl, &op.slot_mapping, &dev, DType::I64, "slot_mapping")?;
    if sl.shape().elem_count() != t {
        candle_core::bail!("write_kv: {} slots for {t} rows", sl.shape().elem_count());
    }
    let stream = dev.cuda_stream();
    let func = function(
        &dev,
        WRITE_KV,
        &format!("write_kv_{}", dtype_suffix(dtype)?),
    )?;
    let (ca, na, sa) = (
        arg_mut(cache, cache_l, &stream)?,
        arg(new, new_l, &stream)?,
        arg(slots, sl, &stream)?,
    );
    let (num_slots, n, row) = (
        (nb * bs) as i64,
        to_i32(t, "tokens")?,
        to_i32(kvh * d, "row width")?,
    );
    let mut b = stream.launch_builder(&func);
    b.arg(&ca.addr)
        .arg(&na.addr)
        .arg(&sa.addr)
        .arg(&num_slots)
        .arg(&n)
        .arg(&row);
    // One warp per row, 4 rows per block.
    unsafe { b.launch(cfg(t.div_ceil(4).min(65535), 128)) }.w()?;
    Ok(())
}

pub(crate) fn add_rms_norm(
    op: &AddRmsNorm,
    x: &CudaStorage,
    x_l: &Layout,
    residual: &CudaStorage,
    r_l: &Layout,
    weight: &CudaStorage,
    w_l: &Layout,
) -> Result<(CudaStorage, Shape)> {
    let dev = x.device.clone();
    let dtype = x.dtype();
    let (t, hidden) = x_l.shape().dims2()?;
    if r_l.dims() != x_l.dims()
        || w_l.shape().elem_count() != hidden
        || residual.dtype() != dtype
        || weight.dtype() != dtype
    {
        candle_core::bail!(
            "add_rms_norm: x {:?}, residual {:?}, weight {:?}",
            x_l.dims(),
            r_l.dims(),
            w_l.dims()
        );
    }
    let shape = Shape::from((2, t, hidden));
    let mut out = alloc(&dev, dtype, 2 * t * hidden)?;
    if t == 0 || hidden == 0 {
        return Ok((out, shape));
    }
    let stream = dev.cuda_stream();
    let func = function(
        &dev,
        ADD_RMS_NORM,
        &format!("add_rms_norm_{}", dtype_suffix(dtype)?),
    )?;
    let out_l = Layout::contiguous(shape.clone());
    let oa = arg_mut(&mut out, &out_l, &stream)?;
    let (xa, ra, wa) = (
        arg(x, x_l, &stream)?,
        arg(residual, r_l, &stream)?,
        arg(weight, w_l, &stream)?,
    );
    let (n, hdim) = (to_i32(t, "tokens")?, to_i32(hidden, "hidden")?);
    // One thread per 16-byte vector of the row, within 32..=1024.
    let threads = round_up(hidden.div_ceil(vec_width(dtype)), 32).clamp(32, 1024);
    let mut b = stream.launch_builder(&func);
    b.arg(&oa.addr)
        .arg(&xa.addr)
        .arg(&ra.addr)
        .arg(&wa.addr)
        .arg(&n)
        .arg(&hdim)
        .arg(&op.eps);
    unsafe { b.launch(cfg(t, threads)) }.w()?;
    drop(oa);
    Ok((out, shape))
}

pub(crate) fn rope(
    op: &Rope,
    x: &mut CudaStorage,
    x_l: &Layout,
    positions: &CudaStorage,
    p_l: &Layout,
    cos_sin: &CudaStorage,
    cs_l: &Layout,
) -> Result<()> {
    let dev = x.device.clone();
    let dtype = x.dtype();
    let (t, heads, head_dim) = x_l.shape().dims3()?;
    let (max_pos, rotary_dim) = cs_l.shape().dims2()?;
    if head_dim != op.head_dim
        || rotary_dim != op.rotary_dim
        || rotary_dim > head_dim
        || rotary_dim % 2 != 0
    {
        candle_core::bail!(
            "rope: x {:?}, cos_sin {:?}, head_dim {}, rotary_dim {}",
            x_l.dims(),
            cs_l.dims(),
            op.head_dim,
            op.rotary_dim
        );
    }
    if positions.dtype() != DType::U32
        || cos_sin.dtype() != DType::F32
        || p_l.shape().elem_count() != t
    {
        candle_core::bail!(
            "rope: positions {:?} {:?}, cos_sin {:?}",
            positions.dtype(),
            p_l.dims(),
            cos_sin.dtype()
        );
    }
    if t == 0 || heads == 0 || rotary_dim == 0 {
        return Ok(());
    }
    let style = match op.style {
        RopeStyle::Neox => "neox",
        RopeStyle::Gptj => "gptj",
    };
    let stream = dev.cuda_stream();
    let func = function(
        &dev,
        ROPE,
        &format!("rope_{style}_{}", dtype_suffix(dtype)?),
    )?;
    let (xa, pa, ca) = (
        arg_mut(x, x_l, &stream)?,
        arg(positions, p_l, &stream)?,
        arg(cos_sin, cs_l, &stream)?,
    );
    let (n, nh, hd) = (
        to_i32(t, "tokens")?,
        to_i32(heads, "heads")?,
        to_i32(head_dim, "head_dim")?,
    );
    let (rd, mp) = (
        to_i32(rotary_dim, "rotary_dim")?,
        to_i32(max_pos, "max_pos")?,
    );
    let threads = round_up(heads * rotary_dim / 2, 32).min(256);
    let mut b = stream.launch_builder(&func);
    b.arg(&xa.addr)
        .arg(&pa.addr)
        .arg(&ca.addr)
        .arg(&n)
        .arg(&nh)
        .arg(&hd)
        .arg(&rd)
        .arg(&mp);
    unsafe { b.launch(cfg(t, threads)) }.w()?;
    Ok(())
}

pub(crate) fn silu_and_mul(
    _op: &SiluAndMul,
    x: &CudaStorage,
    x_l: &Layout,
) -> Result<(CudaStorage, Shape)> {
    let dev = x.device.clone();
    let dtype = x.dtype();
    let (t, two_i) = x_l.shape().dims2()?;
    if two_i % 2 != 0 {
        candle_core::bail!("silu_and_mul: odd last dimension {two_i}");
    }
    let inter = two_i / 2;
    let shape = Shape::from((t, inter));
    let mut out = alloc(&dev, dtype, t * inter)?;
    if t * inter == 0 {
        return Ok((out, shape));
    }
    let stream = dev.cuda_stream();
    let func = function(
        &dev,
        SILU_AND_MUL,
        &format!("silu_and_mul_{}", dtype_suffix(dtype)?),
    )?;
    let out_l = Layout::contiguous(shape.clone());
    let oa = arg_mut(&mut out, &out_l, &stream)?;
    let xa = arg(x, x_l, &stream)?;
    let (n, i) = (to_i32(t, "tokens")?, to_i32(inter, "intermediate size")?);
    // Grid-stride over 16-byte vectors; a few waves of 256-thread blocks is plenty.
    let blocks = (t * inter).div_ceil(vec_width(dtype) * 256).min(65535);
    let mut b = stream.launch_builder(&func);
    b.arg(&oa.addr).arg(&xa.addr).arg(&n).arg(&i);
    unsafe { b.launch(cfg(blocks, 256)) }.w()?;
    drop(oa);
    Ok((out, shape))
}
