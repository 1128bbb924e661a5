//! Launches of kernels/moe.cu: the routing softmax + top-k (one warp per token) and the
//! weighted combine of the experts' outputs (grid-stride over T · H).

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
use candle_core::cuda_backend::WrapErr;
use candle_core::{CudaStorage, DType, Layout, Result, Shape};

use super::{alloc, arg, arg_mut, dtype_suffix, function, launch_cfg as cfg, to_i32, MOE};
use crate::ops::{MoeCombine, MoeTopK};

pub(crate) fn moe_topk_softmax(
    op: &MoeTopK,
    l: &CudaStorage,
    l_l: &Layout,
) -> Result<(CudaStorage, Shape)> {
    let dev = l.device.clone();
    if l.dtype() != DType::F32 {
        candle_core::bail!("moe_topk_softmax: logits must be f32, got {:?}", l.dtype());
    }
    let (t, e) = l_l.shape().dims2()?;
    let shape = Shape::from((t, 2 * op.k));
    let mut out = alloc(&dev, DType::F32, t * 2 * op.k)?;
    if t == 0 {
        return Ok((out, shape));
    }
    let stream = dev.cuda_stream();
    let func = function(&dev, MOE, "moe_topk_softmax_f32")?;
    let out_l = Layout::contiguous(shape.clone());
    let oa = arg_mut(&mut out, &out_l, &stream)?;
    let la = arg(l, l_l, &stream)?;
    let (nt, ne, k) = (
        to_i32(t, "tokens")?,
        to_i32(e, "experts")?,
        to_i32(op.k, "top k")?,
    );
    let normalize = op.normalize as i32;
    // Four warps (tokens) per block.
    let mut b = stream.launch_builder(&func);
    b.arg(&oa.addr)
        .arg(&la.addr)
        .arg(&nt)
        .arg(&ne)
        .arg(&k)
        .arg(&normalize);
    unsafe { b.launch(cfg(t.div_ceil(4), 128)) }.w()?;
    drop(oa);
    Ok((out, shape))
}

pub(crate) fn moe_combine(
    op: &MoeCombine,
    y: &CudaStorage,
    y_l: &Layout,
    rows: &CudaStorage,
    rows_l: &Layout,
    w: &CudaStorage,
    w_l: &Layout,
) -> Result<(CudaStorage, Shape)> {
    let dev = y.device.clone();
    let dtype = y.dtype();
    let (_, h) = y_l.shape().dims2()?;
    let (t, _) = w_l.shape().dims2()?;
    let shape = Shape::from((t, h));
    let mut out = alloc(&dev, dtype, t * h)?;
    if t * h == 0 {
        return Ok((out, shape));
    }
    let stream = dev.cuda_stream();
    let func = function(&dev, MOE, &format!("moe_combine_{}", dtype_suffix(dtype)?))?;
    let out_l = Layout::contiguous(shape.clone());
    let oa = arg_mut(&mut out, &out_l, &stream)?;
    let (ya, ra, wa) = (
        arg(y, y_l, &stream)?,
        arg(rows, rows_l, &stream)?,
        arg(w, w_l, &stream)?,
    );
    let (nt, k, nh) = (
        to_i32(t, "tokens")?,
        to_i32(op.k, "top k")?,
        to_i32(h, "hidden")?,
    );
    let blocks = (t * h).div_ceil(256).min(65535);
    let mut b = stream.launch_builder(&func);
    b.arg(&oa.addr)
        .arg(&ya.addr)
        .arg(&ra.addr)
        .arg(&wa.addr)
        .arg(&nt)
        .arg(&k)
        .arg(&nh);
    unsafe { b.launch(cfg(blocks, 256)) }.w()?;
    drop(oa);
    Ok((out, shape))
}
