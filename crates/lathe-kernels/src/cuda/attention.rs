//! Paged attention launches: picks the decode or the prefill kernel, decides on split-K and
//! sizes the grids. The kernels and the partitioning they share are documented in
//! kernels/include/attention_common.cuh.
//!
//! - `max_query_len <= 1` (pure decode batch): the GQA-grouped decode kernel, one block per
//!   (KV head, sequence, 512-key partition); split-K whenever some context needs more than one
//!   partition, merged by the reduction kernel.
//! - otherwise (prefill, chunked prefill, decode mixed with prefill): the tiled prefill kernel,
//!   split-K only when the query tiles alone would leave most multiprocessors idle. Two
//!   versions: CUDA cores (every dtype and head size) and tensor cores (mma.sync, bf16/f16,
//!   head_dim 64/128, the default where it applies); `LATHE_PREFILL_KERNEL=simt` forces the
//!   CUDA-core one. Both pass the CPU-emulated kernel tests (kernels/emu); the GPU tests run
//!   both.
//!
//! `max_seq_len` and `max_query_len` are trusted as upper bounds: they size the grid.

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::sys::CUfunction_attribute;
use candle_core::cuda_backend::cudarc::driver::{DeviceRepr, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::WrapErr;
use candle_core::{CudaStorage, DType, Layout, Result, Shape};

use super::{
    alloc, arg, arg_mut, cuda_storage, dtype_suffix, function, num_sms, paged_attention_module, Arg,
};
use crate::ops::PagedAttention;

/// Keys per split-K partition. The decode kernel holds one partition's logits in shared memory
/// (`DecodeCfg::PS_MAX` = 512 in kernels/include/attention_decode.cuh): never above that.
pub(crate) const PARTITION_SIZE: usize = 512;
/// Head sizes with compiled kernels.
pub(crate) const HEAD_DIMS: [usize; 3] = [64, 128, 256];
const THREADS: u32 = 128;

/// Mirror of `lathe::PagedAttnParams` (kernels/include/attention_common.cuh), passed by value.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct AttnParams {
    q: u64,
    out: u64,
    k_cache: u64,
    v_cache: u64,
    block_tables: u64,
    seq_lens: u64,
    query_start: u64,
    sinks: u64,
    tmp_out: u64,
    tmp_ml: u64,
    num_tokens: i32,
    num_seqs: i32,
    num_heads: i32,
    num_kv_heads: i32,
    max_blocks: i32,
    block_size_log2: i32,
    sliding_window: i32,
    partition_size: i32,
    max_parts: i32,
    scale: f32,
    softcap: f32,
    reserved: i32,
}
const _: () = assert!(std::mem::size_of::<AttnParams>() == 128);
unsafe impl DeviceRepr for AttnParams {}

/// Whether prefill runs on the tensor-core kernel (see the module docs).
fn prefill_mma(dtype: DType, head_dim: usize) -> bool {
    matches!(dtype, DType::BF16 | DType::F16)
        && matches!(head_dim, 64 | 128)
        && std::env::var("LATHE_PREFILL_KERNEL").map_or(true, |v| v != "simt")
}

/// Query rows per prefill block and its dynamic shared memory in bytes (`MmaCfg` /
/// `PrefillCfg` in kernels/include/attention_prefill*.cuh).
fn prefill_tile(head_dim: usize, mma: bool) -> (usize, usize) {
    if mma {
        return (64, (64 + 2 * 64) * (head_dim + 8) * 2);
    }
    let bm = if head_dim <= 128 { 64 } else { 32 };
    let (ldq, kt, ldp) = (head_dim + 4, 32, 32 + 4);
    (bm, (bm * ldq + kt * ldq + bm * ldp) * 4)
}

fn to_i32(v: usize, what: &str) -> Result<i32> {
    i32::try_from(v)
        .map_err(|_| candle_core::Error::Msg(format!("paged_attention: {what} = {v} too large")))
}

pub(crate) fn paged_attention(
    op: &PagedAttention,
    q: &CudaStorage,
    q_l: &Layout,
) -> Result<(CudaStorage, Shape)> {
    let dev = &q.device;
    let dtype = q.dtype();
    let suffix = dtype_suffix(dtype)?;
    let (t, h, d) = q_l.shape().dims3()?;
    let kvh = op.num_kv_heads;
    if h != op.num_heads || d != op.head_dim || kvh == 0 || h % kvh != 0 {
        candle_core::bail!(
            "paged_attention: q {:?} does not match {} heads / {} kv heads / head_dim {}",
            q_l.dims(),
            op.num_heads,
            kvh,
            op.head_dim
        );
    }
    if !HEAD_DIMS.contains(&d) {
        candle_core::bail!("paged_attention: no CUDA kernel for head_dim {d} (have {HEAD_DIMS:?})");
    }
    if !op.block_size.is_power_of_two() {
        candle_core::bail!(
            "paged_attention: CUDA kernels need a power-of-two block size, got {}",
            op.block_size
        );
    }
    let window = match op.sliding_window {
        Some(0) => candle_core::bail!("paged_attention: sliding window of 0"),
        Some(w) => w.min(i32::MAX as usize),
        None => 0,
    };
    let group = h / kvh;
    let mut out = alloc(dev, dtype, t * h * d)?;
    let shape = q_l.shape().clone();
    if t == 0 {
        return Ok((out, shape));
    }

    // Operands: the guards of storage_and_layout() stay alive until the launches are queued.
    let (kst, kl) = op.k_cache.storage_and_layout();
    let (vst, vl) = op.v_cache.storage_and_layout();
    let (bst, bl) = op.block_tables.storage_and_layout();
    let (sst, sl) = op.seq_lens.storage_and_layout();
    let (qsst, qsl) = op.query_start.storage_and_layout();
    let sinks = match &op.sinks {
        Some(s) => Some(s.to_dtype(DType::F32)?.contiguous()?),
        None => None,
    };
    let sinks_guard = sinks.as_ref().map(|s| s.storage_and_layout());
    let kc = cuda_storage(&kst, kl, &op.k_cache, dev, dtype, "k_cache")?;
    let vc = cuda_storage(&vst, vl, &op.v_cache, dev, dtype, "v_cache")?;
    let tables = cuda_storage(&bst, bl, &op.block_tables, dev, DType::U32, "block_tables")?;
    let seq_lens = cuda_storage(&sst, sl, &op.seq_lens, dev, DType::U32, "seq_lens")?;
    let query_start = cuda_storage(&qsst, qsl, &op.query_start, dev, DType::U32, "query_start")?;
    let cache_dims = [kl.dims()[1..].to_vec(), vl.dims()[1..].to_vec()];
    if cache_dims
        .iter()
        .any(|c| c.as_slice() != [op.block_size, kvh, d])
    {
        candle_core::bail!("paged_attention: caches {:?} / {:?} do not match block_size {} kv heads {kvh} head_dim {d}", kl.dims(), vl.dims(), op.block_size);
    }
    let num_seqs = sl.dims().iter().product::<usize>();
    let (table_rows, max_blocks) = bl.shape().dims2()?;
    if table_rows != num_seqs || qsl.shape().elem_count() != num_seqs + 1 || num_seqs == 0 {
        candle_core::bail!(
            "paged_attention: {num_seqs} sequences, block_tables {:?}, query_start {:?}",
            bl.dims(),
            qsl.dims()
        );
    }

    let stream = dev.cuda_stream();
    let sinks_arg = match (&sinks, &sinks_guard) {
        (Some(s), Some((st, l))) => {
            if l.shape().elem_count() < h {
                candle_core::bail!(
                    "paged_attention: {} sinks for {h} heads",
                    l.shape().elem_count()
                );
            }
            arg(
                cuda_storage(st, l, s, dev, DType::F32, "sinks")?,
                l,
                &stream,
            )?
        }
        _ => Arg::null(),
    };

    // Keys one sequence may need, and how many partitions of them.
    let span = match op.sliding_window {
        Some(_) => op.max_seq_len.min(window + op.max_query_len.max(1) - 1),
        None => op.max_seq_len,
    }
    .max(1);
    let nparts = span.div_ceil(PARTITION_SIZE);
    let decode = op.max_query_len <= 1;
    let mma = !decode && prefill_mma(dtype, d);
    let (bm, smem) = prefill_tile(d, mma);
    let prefill_tiles = if decode {
        0
    } else {
        if group > bm {
            candle_core::bail!("paged_attention: {group} query heads per kv head, the prefill kernel takes at most {bm}");
        }
        t / (bm / group) + num_seqs
    };
    let split = nparts > 1 && (decode || prefill_tiles * kvh < 2 * num_sms(dev)?);
    let max_parts = if split { nparts } else { 1 };
    if num_seqs > 65535 || (split && t > 65535) {
        candle_core::bail!("paged_attention: grid too large ({num_seqs} sequences, {t} tokens)");
    }

    let mut tmp = if split {
        Some((
            alloc(dev, DType::F32, t * h * max_parts * d)?,
            alloc(dev, DType::F32, t * h * max_parts * 2)?,
        ))
    } else {
        None
    };
    let mut params = AttnParams {
        num_tokens: to_i32(t, "tokens")?,
        num_seqs: to_i32(num_seqs, "sequences")?,
        num_heads: to_i32(h, "heads")?,
        num_kv_heads: to_i32(kvh, "kv heads")?,
        max_blocks: to_i32(max_blocks, "max_blocks")?,
        block_size_log2: op.block_size.trailing_zeros() as i32,
        sliding_window: window as i32,
        partition_size: if split || decode {
            PARTITION_SIZE as i32
        } else {
            1 << 30
        },
        max_parts: max_parts as i32,
        scale: op.scale,
        softcap: op.softcap.map_or(0.0, f32::abs),
        ..Default::default()
    };
    let (qa, ka, va) = (
        arg(q, q_l, &stream)?,
        arg(kc, kl, &stream)?,
        arg(vc, vl, &stream)?,
    );
    let (ba, sa, qsa) = (
        arg(tables, bl, &stream)?,
        arg(seq_lens, sl, &stream)?,
        arg(query_start, qsl, &stream)?,
    );
    let out_l = Layout::contiguous(shape.clone());
    let oa = arg_mut(&mut out, &out_l, &stream)?;
    let tmp_args = match &mut tmp {
        Some((o, ml)) => Some((
            arg_mut(o, &Layout::contiguous(t * h * max_parts * d), &stream)?,
            arg_mut(ml, &Layout::contiguous(t * h * max_parts * 2), &stream)?,
        )),
        None => None,
    };
    params.q = qa.addr;
    params.out = oa.addr;
    params.k_cache = ka.addr;
    params.v_cache = va.addr;
    params.block_tables = ba.addr;
    params.seq_lens = sa.addr;
    params.query_start = qsa.addr;
    params.sinks = sinks_arg.addr;
    if let Some((o, ml)) = &tmp_args {
        params.tmp_out = o.addr;
        params.tmp_ml = ml.addr;
    }

    let z = max_parts as u32;
    let (name, cfg) = if decode {
        let gm = group.next_power_of_two().min(8);
        let grid = ((kvh * group.div_ceil(gm)) as u32, num_seqs as u32, z);
        (
            format!("paged_attention_decode_{suffix}_hd{d}_g{gm}"),
            LaunchConfig {
                grid_dim: grid,
                block_dim: (THREADS, 1, 1),
                shared_mem_bytes: 0,
            },
        )
    } else {
        let grid = (prefill_tiles as u32, kvh as u32, z);
        let kind = if mma { "prefill_mma" } else { "prefill" };
        (
            format!("paged_attention_{kind}_{suffix}_hd{d}"),
            LaunchConfig {
                grid_dim: grid,
                block_dim: (THREADS, 1, 1),
                shared_mem_bytes: smem as u32,
            },
        )
    };
    let module = paged_attention_module(dtype)?;
    let func = function(dev, module, &name)?;
    if !decode {
        func.set_attribute(
            CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
            smem as i32,
        )
        .w()?;
    }
    let mut b = stream.launch_builder(&func);
    b.arg(&params);
    unsafe { b.launch(cfg) }.w()?;

    if split {
        let func = function(
            dev,
            module,
            &format!("paged_attention_reduce_{suffix}_hd{d}"),
        )?;
        let cfg = LaunchConfig {
            grid_dim: (h as u32, t as u32, 1),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut b = stream.launch_builder(&func);
        b.arg(&params);
        unsafe { b.launch(cfg) }.w()?;
    }
    drop((qa, ka, va, ba, sa, qsa, oa, tmp_args, sinks_arg));
    Ok((out, shape))
}
