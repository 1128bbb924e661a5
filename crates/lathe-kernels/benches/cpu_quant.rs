//! lathe's CPU quantized matmul vs candle's `QMatMul`, SmolLM2-135M shapes, 2 threads.
//!
//! `cargo bench -p lathe-kernels --bench cpu_quant` (set RAYON_NUM_THREADS=2 so that candle
//! uses the same number of threads as we do). Groups:
//! - `gemv/{fmt}/{rows}x{cols}` (m = 1, decode) and `gemm/{fmt}/{rows}x{cols}` (m = 512,
//!   prompt), functions `lathe` and `candle`. The 49152-row lm_head is only benched at m = 1:
//!   a prompt needs logits for its last token only.
//! - `pool/576x576`: the same GEMV split in two halves, dispatched by our pool, by rayon
//!   (`join`) and by `std::thread::scope`, to justify the pool.
//! - `formats/m{1,64}/{fmt}`: every format lathe has (quantized and dense) at 896x1024
//!   (Qwen2.5-0.5B's hidden size, widened to a 256 multiple), lathe only.
//! - `group/qkv`: Qwen2.5-Coder-0.5B's q, k (Q5_0) and v (Q8_0) as one `matmul_group` call
//!   versus three matmuls.

use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{Device, Module, Tensor};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lathe_kernels::cpu::{self, QuantFormat, QuantMatrix};
use std::borrow::Cow;
use std::time::Duration;

const THREADS: usize = 2;

fn random_blocks(f: QuantFormat, rows: usize, cols: usize) -> Vec<u8> {
    let mut s = 0x9e3779b97f4a7c15u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let n = rows * cols / f.block_elems();
    let mut v = Vec::with_capacity(n * f.block_bytes());
    for _ in 0..n {
        let start = v.len();
        v.extend((0..f.block_bytes()).map(|_| next() as u8));
        // Sane scales: d (and m) as small f16 values (at the end for Q2_K, Q3_K, Q6_K;
        // dense values all small).
        let d = half::f16::from_f32(0.01).to_le_bytes();
        let end = v.len();
        match f {
            QuantFormat::Q2K | QuantFormat::Q3K | QuantFormat::Q6K => {
                v[end - 2..].copy_from_slice(&d);
                v[end - 4..end - 2].copy_from_slice(&d);
            }
            QuantFormat::F32 => v[start..end].copy_from_slice(&0.01f32.to_le_bytes()),
            QuantFormat::BF16 => {
                v[start..end].copy_from_slice(&half::bf16::from_f32(0.01).to_le_bytes())
            }
            _ => v[start..start + 2].copy_from_slice(&d),
        }
        if f == QuantFormat::Q4_1 {
            v[start + 2..start + 4].copy_from_slice(&half::f16::from_f32(-0.08).to_le_bytes());
        }
    }
    v
}

fn x_data(m: usize, cols: usize) -> Vec<f32> {
    (0..m * cols)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
        .collect()
}

fn candle_mm(f: QuantFormat, rows: usize, cols: usize, data: &[u8]) -> QMatMul {
    let dt = match f {
        QuantFormat::Q4_1 => GgmlDType::Q4_1,
        _ => GgmlDType::Q8_0,
    };
    let st = QStorage::from_data(Cow::Borrowed(data), &Device::Cpu, dt).unwrap();
    QMatMul::from_qtensor(QTensor::new(st, (rows, cols)).unwrap()).unwrap()
}

fn bench_matmul(c: &mut Criterion) {
    cpu::set_num_threads(THREADS);
    let shapes = [(576, 576), (1536, 576), (576, 1536), (49152, 576)];
    for (kind, m) in [("gemv", 1usize), ("gemm", 512)] {
        for f in [QuantFormat::Q4_1, QuantFormat::Q8_0] {
            let mut g = c.benchmark_group(format!("{kind}/{f:?}"));
            g.warm_up_time(Duration::from_millis(500));
            g.measurement_time(Duration::from_secs(if m == 1 { 2 } else { 4 }));
            g.sample_size(if m == 1 { 50 } else { 10 });
            for (rows, cols) in shapes {
                if m > 1 && rows > 4096 {
                    continue;
                }
                let data = random_blocks(f, rows, cols);
                let ours = QuantMatrix::from_gguf_blocks(f, rows, cols, &data).unwrap();
                let theirs = candle_mm(f, rows, cols, &data);
                let x = x_data(m, cols);
                let xt = Tensor::from_vec(x.clone(), (m, cols), &Device::Cpu).unwrap();
                let mut y = vec![0f32; m * rows];
                g.throughput(Throughput::Elements((m * rows * cols) as u64));
                let id = format!("{rows}x{cols}");
                g.bench_function(BenchmarkId::new("lathe", &id), |b| {
                    b.iter(|| ours.matmul(&x, m, &mut y))
                });
                g.bench_function(BenchmarkId::new("candle", &id), |b| {
                    b.iter(|| theirs.forward(&xt).unwrap())
                });
            }
            g.finish();
        }
    }
}

fn bench_pool(c: &mut Criterion) {
    let (rows, cols) = (576, 576);
    let f = QuantFormat::Q4_1;
    let half = random_blocks(f, rows / 2, cols);
    let a = QuantMatrix::from_gguf_blocks(f, rows / 2, cols, &half).unwrap();
    let b = QuantMatrix::from_gguf_blocks(f, rows / 2, cols, &half).unwrap();
    let full = random_blocks(f, rows, cols);
    let w = QuantMatrix::from_gguf_blocks(f, rows, cols, &full).unwrap();
    let x = x_data(1, cols);
    let (mut ya, mut yb, mut y) = (vec![0f32; rows / 2], vec![0f32; rows / 2], vec![0f32; rows]);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(THREADS)
        .build()
        .unwrap();
    let mut g = c.benchmark_group("pool/576x576");
    g.measurement_time(Duration::from_secs(2));
    cpu::set_num_threads(1);
    g.bench_function("single_thread", |bch| bch.iter(|| w.matmul(&x, 1, &mut y)));
    g.bench_function("rayon_join", |bch| {
        bch.iter(|| {
            pool.install(|| rayon::join(|| a.matmul(&x, 1, &mut ya), || b.matmul(&x, 1, &mut yb)))
        })
    });
    g.bench_function("thread_scope", |bch| {
        bch.iter(|| {
            std::thread::scope(|s| {
                s.spawn(|| a.matmul(&x, 1, &mut ya));
                b.matmul(&x, 1, &mut yb);
            })
        })
    });
    cpu::set_num_threads(THREADS);
    g.bench_function("lathe_pool", |bch| bch.iter(|| w.matmul(&x, 1, &mut y)));
    g.finish();
}

fn bench_formats(c: &mut Criterion) {
    cpu::set_num_threads(THREADS);
    let (rows, cols) = (896, 1024);
    for m in [1usize, 64] {
        let mut g = c.benchmark_group(format!("formats/m{m}"));
        g.warm_up_time(Duration::from_millis(300));
        g.measurement_time(Duration::from_secs(1));
        g.sample_size(20);
        g.throughput(Throughput::Elements((m * rows * cols) as u64));
        for f in QuantFormat::ALL {
            let data = random_blocks(f, rows, cols);
            let w = QuantMatrix::from_gguf_blocks(f, rows, cols, &data).unwrap();
            let x = x_data(m, cols);
            let mut y = vec![0f32; m * rows];
            g.bench_function(f.name(), |b| b.iter(|| w.matmul(&x, m, &mut y)));
        }
        // Baseline for the dense formats: candle's f32 matmul (the gemm crate).
        let wt = Tensor::from_vec(vec![0.01f32; rows * cols], (rows, cols), &Device::Cpu)
            .unwrap()
            .t()
            .unwrap();
        let xt = Tensor::from_vec(x_data(m, cols), (m, cols), &Device::Cpu).unwrap();
        g.bench_function("candle_f32_matmul", |b| b.iter(|| xt.matmul(&wt).unwrap()));
        g.finish();
    }
}

fn bench_group(c: &mut Criterion) {
    cpu::set_num_threads(THREADS);
    let cols = 896;
    let parts: Vec<QuantMatrix> = [
        (QuantFormat::Q5_0, 896),
        (QuantFormat::Q5_0, 128),
        (QuantFormat::Q8_0, 128),
    ]
    .into_iter()
    .map(|(f, rows)| {
        QuantMatrix::from_gguf_blocks(f, rows, cols, &random_blocks(f, rows, cols)).unwrap()
    })
    .collect();
    let refs: Vec<&QuantMatrix> = parts.iter().collect();
    let mut g = c.benchmark_group("group/qkv");
    g.warm_up_time(Duration::from_millis(300));
    g.measurement_time(Duration::from_secs(1));
    for m in [1usize, 64] {
        let x = x_data(m, cols);
        let mut y = vec![0f32; m * 1152];
        let mut ys: Vec<Vec<f32>> = parts.iter().map(|p| vec![0f32; m * p.rows()]).collect();
        g.bench_function(format!("matmul_group/m{m}"), |b| {
            b.iter(|| QuantMatrix::matmul_group(&refs, &x, m, &mut y))
        });
        g.bench_function(format!("separate/m{m}"), |b| {
            b.iter(|| {
                for (p, y) in parts.iter().zip(&mut ys) {
                    p.matmul(&x, m, y)
                }
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_pool,
    bench_matmul,
    bench_formats,
    bench_group
);
criterion_main!(benches);
