//! Paged attention decode: achieved bytes/s over a batch × context grid, next to the
//! device-to-device copy bandwidth measured in the same run.
//!
//! `cargo bench -p lathe-kernels --features cuda --bench paged_attention [-- --quick]`
//!
//! - bytes per call = every K and V byte of every context (read once, as the GQA-grouped kernel
//!   does) + q + out + block tables; the copy bandwidth counts bytes read + written;
//! - timing: CUDA events around a run of calls, after a warm-up; criterion drives the sampling,
//!   this file keeps every sample and reports the median time per call;
//! - inputs: random bf16 on the device (never zeros), shuffled page tables; small shapes rotate
//!   over several independent input sets totalling more than 4 × L2 so the cache cannot
//!   flatter them;
//! - output: one JSON object per shape on its own line (`{"bench":...}`), then a markdown table.

use std::cell::RefCell;
use std::time::Duration;

use candle_core::cuda_backend::cudarc::driver::sys::{CUdevice_attribute, CUevent_flags};
use candle_core::cuda_backend::cudarc::driver::{CudaEvent, CudaStream};
use candle_core::{DType, Device, Result, Tensor};
use criterion::{BenchmarkId, Criterion, Throughput};
use lathe_kernels::ops::{self, PagedBatchTensors};
use lathe_kernels::AttentionOptions;

/// Attention shape of Qwen2.5-Coder-7B (28 query heads, 4 KV heads, head_dim 128), bf16 cache.
const MODEL: &str = "qwen2.5-coder-7b";
const HEADS: usize = 28;
const KV_HEADS: usize = 4;
const HEAD_DIM: usize = 128;
const BLOCK: usize = 16;
const DTYPE: DType = DType::BF16;

/// One input set: caches, queries and page tables for `batch` sequences of `ctx` tokens.
struct Inputs {
    q: Tensor,
    k: Tensor,
    v: Tensor,
    batch: PagedBatchTensors,
}

fn inputs(dev: &Device, batch: usize, ctx: usize) -> Result<Inputs> {
    let per_seq = ctx.div_ceil(BLOCK);
    let num_blocks = batch * per_seq;
    // Shuffled page ids (xorshift; the bench needs no statistical quality).
    let mut ids: Vec<u32> = (0..num_blocks as u32).collect();
    let mut state = 0x9e3779b97f4a7c15u64 ^ (batch * 31 + ctx) as u64;
    for i in (1..ids.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ids.swap(i, (state % (i as u64 + 1)) as usize);
    }
    let cache =
        || Tensor::randn(0f32, 1f32, (num_blocks, BLOCK, KV_HEADS, HEAD_DIM), dev)?.to_dtype(DTYPE);
    Ok(Inputs {
        q: Tensor::randn(0f32, 1f32, (batch, HEADS, HEAD_DIM), dev)?.to_dtype(DTYPE)?,
        k: cache()?,
        v: cache()?,
        batch: PagedBatchTensors {
            block_tables: Tensor::from_vec(ids, (batch, per_seq), dev)?,
            seq_lens: Tensor::from_vec(vec![ctx as u32; batch], batch, dev)?,
            query_start: Tensor::from_vec((0..=batch as u32).collect::<Vec<_>>(), batch + 1, dev)?,
            max_query_len: 1,
            max_seq_len: ctx,
        },
    })
}

fn bytes_per_call(batch: usize, ctx: usize) -> usize {
    let elem = DTYPE.size_in_bytes();
    let kv = 2 * batch * ctx * KV_HEADS * HEAD_DIM * elem;
    let q_out = 2 * batch * HEADS * HEAD_DIM * elem;
    kv + q_out + batch * ctx.div_ceil(BLOCK) * 4
}

/// Times `iters` calls of `f` with CUDA events; returns the elapsed time.
fn time_events(stream: &CudaStream, iters: u64, mut f: impl FnMut(u64)) -> Duration {
    let ctx = stream.context();
    let (start, end): (CudaEvent, CudaEvent) = (
        ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
            .unwrap(),
        ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
            .unwrap(),
    );
    start.record(stream).unwrap();
    for i in 0..iters {
        f(i);
    }
    end.record(stream).unwrap();
    end.synchronize().unwrap();
    Duration::from_secs_f64(start.elapsed_ms(&end).unwrap() as f64 * 1e-3)
}

fn median_per_iter(samples: &[(u64, Duration)]) -> f64 {
    let mut per: Vec<f64> = samples
        .iter()
        .map(|(n, d)| d.as_secs_f64() / *n as f64)
        .collect();
    per.sort_by(|a, b| a.partial_cmp(b).unwrap());
    per[per.len() / 2]
}

/// Device-to-device copy bandwidth (bytes read + written per second), median of samples.
fn copy_bandwidth(dev: &Device, c: &mut Criterion) -> f64 {
    let cuda = dev.as_cuda_device().unwrap();
    let stream = cuda.cuda_stream();
    let n = 1usize << 30;
    let src = stream.alloc_zeros::<u8>(n).unwrap();
    let mut dst = stream.alloc_zeros::<u8>(n).unwrap();
    let samples = RefCell::new(Vec::new());
    let mut g = c.benchmark_group("dtod_copy");
    g.throughput(Throughput::Bytes(2 * n as u64));
    g.bench_function("1GiB", |b| {
        b.iter_custom(|iters| {
            let d = time_events(&stream, iters, |_| {
                stream.memcpy_dtod(&src, &mut dst).unwrap()
            });
            samples.borrow_mut().push((iters, d));
            d
        })
    });
    g.finish();
    let t = median_per_iter(&samples.borrow());
    2.0 * n as f64 / t
}

struct Row {
    batch: usize,
    ctx: usize,
    us: f64,
    gbps: f64,
}

fn main() -> Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let dev = Device::new_cuda(0)?;
    let stream = dev.as_cuda_device()?.cuda_stream();
    let l2 = stream
        .context()
        .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE)
        .unwrap() as usize;
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(if quick { 500 } else { 1500 }))
        .sample_size(if quick { 10 } else { 30 });

    let copy_before = copy_bandwidth(&dev, &mut c);
    let batches: &[usize] = if quick { &[1, 16] } else { &[1, 4, 16, 64] };
    let contexts: &[usize] = if quick {
        &[1024, 32768]
    } else {
        &[512, 2048, 8192, 32768]
    };
    let opts = AttentionOptions {
        scale: 1.0 / (HEAD_DIM as f32).sqrt(),
        sliding_window: None,
        softcap: None,
    };
    let mut rows = Vec::new();
    let mut group = c.benchmark_group("paged_attention_decode");
    for &batch in batches {
        for &ctx in contexts {
            let bytes = bytes_per_call(batch, ctx);
            let sets = (4 * l2).div_ceil(bytes).clamp(1, 512);
            let all: Vec<Inputs> = (0..sets)
                .map(|_| inputs(&dev, batch, ctx))
                .collect::<Result<_>>()?;
            for x in &all {
                ops::paged_attention(&x.q, &x.k, &x.v, &x.batch, &opts, None)?; // load + JIT + warm
            }
            dev.synchronize()?;
            let samples = RefCell::new(Vec::new());
            group.throughput(Throughput::Bytes(bytes as u64));
            group.bench_function(
                BenchmarkId::new(format!("{MODEL}/batch{batch}"), ctx),
                |b| {
                    b.iter_custom(|iters| {
                        let d = time_events(&stream, iters, |i| {
                            let x = &all[i as usize % sets];
                            ops::paged_attention(&x.q, &x.k, &x.v, &x.batch, &opts, None).unwrap();
                        });
                        samples.borrow_mut().push((iters, d));
                        d
                    })
                },
            );
            let t = median_per_iter(&samples.borrow());
            let gbps = bytes as f64 / t / 1e9;
            println!(
                "{{\"bench\":\"paged_attention_decode\",\"model\":\"{MODEL}\",\"dtype\":\"bf16\",\"batch\":{batch},\"context\":{ctx},\"bytes\":{bytes},\"median_us\":{:.2},\"gbps\":{gbps:.1},\"copy_gbps\":{:.1},\"of_copy\":{:.3},\"input_sets\":{sets}}}",
                t * 1e6,
                copy_before / 1e9,
                gbps * 1e9 / copy_before
            );
            rows.push(Row {
                batch,
                ctx,
                us: t * 1e6,
                gbps,
            });
        }
    }
    group.finish();
    let copy_after = copy_bandwidth(&dev, &mut c);
    c.final_summary();

    println!("\n### paged_attention decode, {MODEL} attention shape (h={HEADS}, kv={KV_HEADS}, d={HEAD_DIM}, bf16, block {BLOCK})\n");
    println!(
        "device-to-device copy: {:.0} GB/s before, {:.0} GB/s after (read + write)\n",
        copy_before / 1e9,
        copy_after / 1e9
    );
    println!("| batch | context | median µs | GB/s | of copy |");
    println!("|------:|--------:|----------:|-----:|--------:|");
    for r in &rows {
        println!(
            "| {} | {} | {:.1} | {:.0} | {:.0}% |",
            r.batch,
            r.ctx,
            r.us,
            r.gbps,
            100.0 * r.gbps * 1e9 / copy_before
        );
    }
    Ok(())
}
