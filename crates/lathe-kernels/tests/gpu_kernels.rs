#![cfg(feature = "cuda")]
//! Every CUDA kernel against its CPU twin (`lathe_kernels::reference`, reached through the same
//! public ops on a CPU device) on fresh random inputs over a grid of shapes.
//!
//! - relative error ‖gpu − cpu‖ / ‖cpu‖ below 1e-2 for bf16 / f16 and 1e-3 for f32; NaN or
//!   infinity never passes;
//! - outputs are poisoned: the device pool is filled with NaN at the output's size right before
//!   each launch, so an element a kernel forgets to write shows up as NaN; cache slots no
//!   sequence owns (and page-table entries past a sequence's end) hold NaN, so a kernel that
//!   reads past a context fails too;
//! - paged attention runs twice on the same inputs and must give identical bits (races).
//!
//! Without a CUDA device the tests print a loud skip notice and pass, unless
//! `LATHE_REQUIRE_GPU=1`, which turns the missing device into a failure.

use candle_core::{DType, Device, Tensor};
use lathe_kernels::ops::{self, PagedBatchTensors};
use lathe_kernels::reference;
use lathe_kernels::{AttentionOptions, RopeStyle};
use rand::seq::SliceRandom;
use rand::Rng;

type Result<T> = candle_core::Result<T>;

fn gpu() -> Option<Device> {
    let dev = std::panic::catch_unwind(|| Device::new_cuda(0));
    let err = match dev {
        Ok(Ok(d)) => return Some(d),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "the CUDA driver library could not be loaded".to_string(),
    };
    if std::env::var("LATHE_REQUIRE_GPU").as_deref() == Ok("1") {
        panic!("LATHE_REQUIRE_GPU=1 but no CUDA device: {err}");
    }
    eprintln!("\n{0}\n!!! GPU TEST SKIPPED: no CUDA device ({err})\n!!! set LATHE_REQUIRE_GPU=1 to make this a failure\n{0}\n", "!".repeat(72));
    None
}

fn tolerance(dtype: DType) -> f64 {
    if dtype == DType::F32 {
        1e-3
    } else {
        1e-2
    }
}

fn randn(shape: &[usize], scale: f32, dtype: DType) -> Result<Tensor> {
    (Tensor::randn(0f32, 1f32, shape, &Device::Cpu)? * scale as f64)?.to_dtype(dtype)
}

/// ‖a − b‖ / ‖b‖ in f64; panics if `a` holds a NaN or an infinity.
fn rel_err(gpu: &Tensor, cpu: &Tensor) -> Result<f64> {
    let a = gpu
        .to_device(&Device::Cpu)?
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let b = cpu.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    assert_eq!(a.len(), b.len(), "shape mismatch");
    if let Some(i) = a.iter().position(|x| !x.is_finite()) {
        panic!(
            "GPU output has {} at flat index {i} of {} (unwritten or NaN-producing element)",
            a[i],
            a.len()
        );
    }
    let (mut num, mut den) = (0f64, 0f64);
    for (x, y) in a.iter().zip(&b) {
        num += (*x as f64 - *y as f64).powi(2);
        den += (*y as f64).powi(2);
    }
    Ok((num / den.max(1e-30)).sqrt())
}

/// Fills a device allocation of `len` elements of `dtype` with NaN and frees it, so that the
/// stream-ordered pool hands the poisoned memory to the next allocation of that size.
fn poison(dev: &Device, len: usize, dtype: DType) -> Result<()> {
    let t = Tensor::full(f32::NAN, len.max(1), dev)?.to_dtype(dtype)?;
    drop(t);
    Ok(())
}

fn check(what: &str, err: f64, dtype: DType) {
    let tol = tolerance(dtype);
    eprintln!("  {what:<64} {dtype:?}  rel err {err:.2e}");
    assert!(
        err < tol,
        "{what} ({dtype:?}): relative error {err:.3e} >= {tol:e}"
    );
}

// ---- paged attention ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct AttnCase {
    dtype: DType,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    block_size: usize,
    /// (context length including the new tokens, new tokens) per sequence.
    seqs: Vec<(usize, usize)>,
    window: Option<usize>,
    softcap: Option<f32>,
    sinks: bool,
}

impl AttnCase {
    fn new(
        dtype: DType,
        heads: usize,
        kv_heads: usize,
        head_dim: usize,
        block_size: usize,
        seqs: Vec<(usize, usize)>,
    ) -> Self {
        AttnCase {
            dtype,
            heads,
            kv_heads,
            head_dim,
            block_size,
            seqs,
            window: None,
            softcap: None,
            sinks: false,
        }
    }
    fn window(mut self, w: usize) -> Self {
        self.window = Some(w);
        self
    }
    fn softcap(mut self, c: f32) -> Self {
        self.softcap = Some(c);
        self
    }
    fn sinks(mut self) -> Self {
        self.sinks = true;
        self
    }
    fn describe(&self) -> String {
        let ctx_max = self.seqs.iter().map(|s| s.0).max().unwrap_or(0);
        let q_max = self.seqs.iter().map(|s| s.1).max().unwrap_or(0);
        format!(
            "S={} ctx<={ctx_max} q<={q_max} h={}/{} d={} bs={}{}{}{}",
            self.seqs.len(),
            self.heads,
            self.kv_heads,
            self.head_dim,
            self.block_size,
            self.window.map_or(String::new(), |w| format!(" win={w}")),
            self.softcap.map_or(String::new(), |c| format!(" cap={c}")),
            if self.sinks { " sinks" } else { "" }
        )
    }
}

fn run_attention(gpu: &Device, c: &AttnCase) -> Result<()> {
    let mut rng = rand::rng();
    let (h, kvh, d, bs) = (c.heads, c.kv_heads, c.head_dim, c.block_size);
    let s = c.seqs.len();
    // Pages: each sequence gets ceil(ctx / bs) shuffled block ids; spare blocks stay unowned.
    let per_seq: Vec<usize> = c.seqs.iter().map(|&(ctx, _)| ctx.div_ceil(bs)).collect();
    let num_blocks = per_seq.iter().sum::<usize>() + 2;
    let mut ids: Vec<u32> = (0..num_blocks as u32).collect();
    ids.shuffle(&mut rng);
    let spare = ids[num_blocks - 1];
    let max_blocks = per_seq.iter().copied().max().unwrap_or(0) + 1;
    let mut tables = vec![spare; s * max_blocks];
    let mut owned = vec![false; num_blocks * bs]; // slot is inside some context
    let mut next = 0;
    for (i, &(ctx, _)) in c.seqs.iter().enumerate() {
        for b in 0..per_seq[i] {
            tables[i * max_blocks + b] = ids[next];
            for o in 0..bs.min(ctx - b * bs) {
                owned[ids[next] as usize * bs + o] = true;
            }
            next += 1;
        }
    }
    let cache = |scale: f32| -> Result<Tensor> {
        let mut v = Tensor::randn(0f32, scale, (num_blocks * bs * kvh * d,), &Device::Cpu)?
            .to_vec1::<f32>()?;
        for (slot, &o) in owned.iter().enumerate() {
            if !o {
                v[slot * kvh * d..(slot + 1) * kvh * d].fill(f32::NAN);
            }
        }
        Tensor::from_vec(v, (num_blocks, bs, kvh, d), &Device::Cpu)?.to_dtype(c.dtype)
    };
    let (k_cache, v_cache) = (cache(1.0)?, cache(1.0)?);
    let t: usize = c.seqs.iter().map(|s| s.1).sum();
    let q = randn(&[t, h, d], rng.random_range(1.0..3.0), c.dtype)?;
    let seq_lens: Vec<u32> = c.seqs.iter().map(|s| s.0 as u32).collect();
    let mut query_start = vec![0u32];
    for &(_, n) in &c.seqs {
        query_start.push(query_start.last().unwrap() + n as u32);
    }
    let sinks = if c.sinks {
        Some(randn(&[h], 2.0, DType::F32)?)
    } else {
        None
    };
    let opts = AttentionOptions {
        scale: 1.0 / (d as f32).sqrt(),
        sliding_window: c.window,
        softcap: c.softcap,
    };
    let batch = |dev: &Device| -> Result<PagedBatchTensors> {
        Ok(PagedBatchTensors {
            block_tables: Tensor::from_vec(tables.clone(), (s, max_blocks), dev)?,
            seq_lens: Tensor::from_vec(seq_lens.clone(), s, dev)?,
            query_start: Tensor::from_vec(query_start.clone(), s + 1, dev)?,
            max_query_len: c.seqs.iter().map(|s| s.1).max().unwrap_or(0),
            max_seq_len: c.seqs.iter().map(|s| s.0).max().unwrap_or(0),
        })
    };

    let want = ops::paged_attention(
        &q,
        &k_cache,
        &v_cache,
        &batch(&Device::Cpu)?,
        &opts,
        sinks.as_ref(),
    )?;
    let (qg, kg, vg) = (
        q.to_device(gpu)?,
        k_cache.to_device(gpu)?,
        v_cache.to_device(gpu)?,
    );
    let (bg, sg) = (
        batch(gpu)?,
        sinks.as_ref().map(|x| x.to_device(gpu)).transpose()?,
    );
    poison(gpu, t * h * d, c.dtype)?;
    let got = ops::paged_attention(&qg, &kg, &vg, &bg, &opts, sg.as_ref())?;
    poison(gpu, t * h * d, c.dtype)?;
    let again = ops::paged_attention(&qg, &kg, &vg, &bg, &opts, sg.as_ref())?;
    check(&c.describe(), rel_err(&got, &want)?, c.dtype);
    let (a, b) = (
        got.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?,
        again
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?,
    );
    assert!(
        a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
        "{}: two runs differ (race?)",
        c.describe()
    );
    Ok(())
}

fn random_ctx(rng: &mut impl Rng, n: usize, lo: usize, hi: usize) -> Vec<(usize, usize)> {
    (0..n).map(|_| (rng.random_range(lo..=hi), 1)).collect()
}

#[test]
fn paged_attention_decode() -> Result<()> {
    let Some(gpu) = gpu() else { return Ok(()) };
    let mut rng = rand::rng();
    use DType::{BF16, F16, F32};
    let cases = [
        AttnCase::new(F32, 4, 4, 64, 16, vec![(1, 1)]),
        AttnCase::new(BF16, 4, 4, 64, 16, vec![(1, 1)]),
        AttnCase::new(BF16, 8, 2, 128, 16, vec![(1, 1), (17, 1), (33, 1), (16, 1)]),
        AttnCase::new(
            F32,
            8,
            2,
            128,
            16,
            vec![(1, 1), (17, 1), (33, 1), (512, 1), (513, 1)],
        ),
        AttnCase::new(BF16, 16, 2, 128, 32, random_ctx(&mut rng, 5, 400, 1500)),
        AttnCase::new(BF16, 28, 4, 128, 16, vec![(4097, 1), (1000, 1), (3, 1)]),
        AttnCase::new(F16, 32, 8, 64, 16, random_ctx(&mut rng, 64, 1, 2048)),
        AttnCase::new(BF16, 28, 4, 128, 16, vec![(32768, 1)]),
        AttnCase::new(BF16, 32, 8, 128, 16, random_ctx(&mut rng, 8, 30000, 32768)),
        AttnCase::new(BF16, 32, 32, 128, 16, random_ctx(&mut rng, 6, 1, 3000)),
        AttnCase::new(F32, 32, 32, 64, 32, random_ctx(&mut rng, 3, 1, 1200)),
        AttnCase::new(BF16, 32, 2, 128, 16, random_ctx(&mut rng, 3, 1, 2000)),
        AttnCase::new(BF16, 24, 2, 128, 16, random_ctx(&mut rng, 3, 1, 2000)),
        AttnCase::new(BF16, 48, 1, 128, 16, random_ctx(&mut rng, 2, 500, 1500)),
        AttnCase::new(BF16, 8, 4, 256, 16, random_ctx(&mut rng, 4, 1, 1500)),
        AttnCase::new(F32, 8, 4, 256, 32, random_ctx(&mut rng, 4, 1, 1500)),
        AttnCase::new(F16, 14, 2, 64, 32, random_ctx(&mut rng, 9, 1, 700)),
    ];
    for c in &cases {
        run_attention(&gpu, c)?;
    }
    Ok(())
}

#[test]
fn paged_attention_decode_features() -> Result<()> {
    let Some(gpu) = gpu() else { return Ok(()) };
    let mut rng = rand::rng();
    use DType::{BF16, F32};
    let cases = [
        AttnCase::new(
            BF16,
            8,
            2,
            128,
            16,
            vec![(700, 1), (50, 1), (100, 1), (101, 1)],
        )
        .window(100),
        AttnCase::new(
            F32,
            8,
            2,
            128,
            16,
            vec![(5000, 1), (4096, 1), (4097, 1), (10, 1)],
        )
        .window(4096),
        AttnCase::new(BF16, 28, 4, 128, 16, random_ctx(&mut rng, 4, 1, 3000)).softcap(5.0),
        AttnCase::new(F32, 28, 4, 128, 16, random_ctx(&mut rng, 4, 1, 3000)).softcap(5.0),
        AttnCase::new(BF16, 16, 2, 64, 32, random_ctx(&mut rng, 4, 1, 2000)).sinks(),
        AttnCase::new(F32, 16, 2, 64, 32, random_ctx(&mut rng, 4, 1, 2000)).sinks(),
        AttnCase::new(BF16, 8, 4, 256, 16, random_ctx(&mut rng, 4, 1, 5000))
            .window(1024)
            .softcap(30.0)
            .sinks(),
    ];
    for c in &cases {
        run_attention(&gpu, c)?;
    }
    Ok(())
}

#[test]
fn paged_attention_prefill_and_mixed() -> Result<()> {
    let Some(gpu) = gpu() else { return Ok(()) };
    use DType::{BF16, F16, F32};
    let cases = [
        AttnCase::new(F32, 4, 4, 64, 16, vec![(1, 1), (2, 2)]),
        AttnCase::new(BF16, 8, 2, 128, 16, vec![(100, 100)]),
        AttnCase::new(F32, 8, 2, 128, 16, vec![(100, 100), (37, 5)]),
        AttnCase::new(
            BF16,
            28,
            4,
            128,
            16,
            vec![(50, 50), (700, 1), (1000, 300), (17, 1)],
        ),
        AttnCase::new(BF16, 28, 4, 128, 16, vec![(4000, 64)]),
        AttnCase::new(F32, 28, 4, 128, 16, vec![(2100, 20), (600, 3)]),
        AttnCase::new(BF16, 32, 8, 128, 32, vec![(1000, 1000), (1000, 1000)]),
        AttnCase::new(
            F16,
            64,
            8,
            64,
            32,
            vec![(300, 77), (65, 65), (1, 1), (129, 0)],
        ),
        AttnCase::new(F32, 8, 4, 256, 16, vec![(200, 200), (90, 9)]),
        AttnCase::new(BF16, 8, 4, 256, 16, vec![(600, 150), (3000, 2)]),
        AttnCase::new(BF16, 32, 32, 128, 16, vec![(300, 300), (33, 2)]),
        AttnCase::new(BF16, 48, 1, 128, 16, vec![(130, 130), (700, 16)]),
        AttnCase::new(BF16, 64, 1, 128, 16, vec![(90, 90)]),
        AttnCase::new(BF16, 8, 2, 128, 16, vec![(300, 300), (1000, 40)]).window(64),
        AttnCase::new(F32, 8, 2, 128, 16, vec![(3000, 200)]).window(1000),
        AttnCase::new(BF16, 28, 4, 128, 16, vec![(400, 400), (900, 8)])
            .softcap(5.0)
            .sinks(),
        AttnCase::new(F32, 16, 2, 64, 32, vec![(2000, 31), (64, 64)])
            .softcap(5.0)
            .sinks()
            .window(700),
        AttnCase::new(F16, 16, 2, 64, 32, vec![(2000, 31), (64, 64)])
            .softcap(5.0)
            .sinks()
            .window(700),
    ];
    // Both prefill kernels: CUDA cores, then tensor cores (bf16/f16 at head_dim 64/128; other
    // cases fall back to CUDA cores). Only this test reads the variable.
    for kernel in ["simt", "mma"] {
        eprintln!("prefill kernel: {kernel}");
        std::env::set_var("LATHE_PREFILL_KERNEL", kernel);
        for c in &cases {
            run_attention(&gpu, c)?;
        }
    }
    std::env::remove_var("LATHE_PREFILL_KERNEL");
    Ok(())
}

// ---- write_kv ----------------------------------------------------------------------------------

#[test]
fn write_kv_matches_cpu() -> Result<()> {
    let Some(gpu) = gpu() else { return Ok(()) };
    let mut rng = rand::rng();
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        for &(nb, bs, kvh, d, t) in &[
            (4, 16, 1, 64, 1),
            (20, 16, 4, 128, 37),
            (64, 32, 8, 128, 300),
            (9, 16, 3, 60, 50),
        ] {
            let cache = randn(&[nb, bs, kvh, d], 1.0, dtype)?;
            let new = randn(&[t, kvh, d], 1.0, dtype)?;
            let mut slots: Vec<i64> = (0..(nb * bs) as i64).collect();
            slots.shuffle(&mut rng);
            let mut slots: Vec<i64> = slots.into_iter().take(t).collect();
            for s in slots.iter_mut() {
                if rng.random_bool(0.1) {
                    *s = -1;
                }
            }
            let slots_cpu = Tensor::from_vec(slots, t, &Device::Cpu)?;
            let cache_gpu = cache.to_device(&gpu)?;
            ops::write_kv(
                &cache_gpu,
                &new.to_device(&gpu)?,
                &slots_cpu.to_device(&gpu)?,
            )?;
            ops::write_kv(&cache, &new, &slots_cpu)?;
            let err = rel_err(&cache_gpu, &cache)?;
            eprintln!(
                "  write_kv cache [{nb},{bs},{kvh},{d}] rows {t} {dtype:?}: rel err {err:.1e}"
            );
            assert_eq!(err, 0.0, "write_kv must copy exactly");
        }
    }
    Ok(())
}

// ---- add_rms_norm ------------------------------------------------------------------------------

#[test]
fn add_rms_norm_matches_cpu() -> Result<()> {
    let Some(gpu) = gpu() else { return Ok(()) };
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        for &(t, hidden) in &[
            (1, 64),
            (7, 1000),
            (64, 4096),
            (3, 5120),
            (2, 8192),
            (5, 12288),
        ] {
            let x = randn(&[t, hidden], 1.0, dtype)?;
            let r = randn(&[t, hidden], 2.0, dtype)?;
            let w = (randn(&[hidden], 0.2, DType::F32)? + 1.0)?.to_dtype(dtype)?;
            let (n_cpu, r_cpu) = ops::add_rms_norm(&x, &r, &w, 1e-6)?;
            poison(&gpu, 2 * t * hidden, dtype)?;
            let (n_gpu, r_gpu) = ops::add_rms_norm(
                &x.to_device(&gpu)?,
                &r.to_device(&gpu)?,
                &w.to_device(&gpu)?,
                1e-6,
            )?;
            check(
                &format!("add_rms_norm normed [{t},{hidden}]"),
                rel_err(&n_gpu, &n_cpu)?,
                dtype,
            );
            check(
                &format!("add_rms_norm residual [{t},{hidden}]"),
                rel_err(&r_gpu, &r_cpu)?,
                dtype,
            );
        }
    }
    Ok(())
}

// ---- rope --------------------------------------------------------------------------------------

#[test]
fn rope_matches_cpu() -> Result<()> {
    let Some(gpu) = gpu() else { return Ok(()) };
    let mut rng = rand::rng();
    let max_pos = 4096;
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        for style in [RopeStyle::Neox, RopeStyle::Gptj] {
            for &(t, heads, head_dim, rotary_dim) in &[
                (1, 1, 64, 64),
                (33, 28, 128, 128),
                (5, 4, 128, 64),
                (17, 8, 256, 256),
                (9, 3, 80, 32),
            ] {
                let inv_freq: Vec<f32> = (0..rotary_dim / 2)
                    .map(|i| 10000f32.powf(-2.0 * i as f32 / rotary_dim as f32))
                    .collect();
                let table = reference::rope_cos_sin_table(&inv_freq, max_pos);
                let cos_sin = Tensor::from_vec(table, (max_pos, rotary_dim), &Device::Cpu)?;
                let positions: Vec<u32> = (0..t)
                    .map(|_| rng.random_range(0..max_pos as u32))
                    .collect();
                let positions = Tensor::from_vec(positions, t, &Device::Cpu)?;
                let x = randn(&[t, heads, head_dim], 1.0, dtype)?;
                let x_gpu = x.to_device(&gpu)?;
                let x_cpu = x.copy()?;
                ops::rope(&x_cpu, &positions, &cos_sin, style)?;
                ops::rope(
                    &x_gpu,
                    &positions.to_device(&gpu)?,
                    &cos_sin.to_device(&gpu)?,
                    style,
                )?;
                check(
                    &format!("rope {style:?} [{t},{heads},{head_dim}] rot {rotary_dim}"),
                    rel_err(&x_gpu, &x_cpu)?,
                    dtype,
                );
            }
        }
    }
    Ok(())
}

// ---- silu_and_mul ------------------------------------------------------------------------------

#[test]
fn silu_and_mul_matches_cpu() -> Result<()> {
    let Some(gpu) = gpu() else { return Ok(()) };
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        for &(t, inter) in &[(1, 11), (13, 64), (128, 4864), (3, 18944)] {
            let x = randn(&[t, 2 * inter], 3.0, dtype)?;
            let want = ops::silu_and_mul(&x)?;
            poison(&gpu, t * inter, dtype)?;
            let got = ops::silu_and_mul(&x.to_device(&gpu)?)?;
            check(
                &format!("silu_and_mul [{t},{}]", 2 * inter),
                rel_err(&got, &want)?,
                dtype,
            );
        }
    }
    Ok(())
}

#[test]
fn moe_topk_softmax_matches_cpu() -> Result<()> {
    let Some(gpu) = gpu() else { return Ok(()) };
    // Qwen3-Coder-30B-A3B (128 experts, 8 per token), Qwen3-235B-A22B-like 256, small ones.
    for &(t, e, k, normalize) in &[
        (1, 128, 8, true),
        (77, 128, 8, true),
        (5, 6, 2, false),
        (33, 256, 4, true),
    ] {
        let logits = randn(&[t, e], 2.0, DType::F32)?;
        let (want_ids, want_w) = ops::moe_topk_softmax(&logits, k, normalize)?;
        poison(&gpu, t * 2 * k, DType::F32)?;
        let (ids, w) = ops::moe_topk_softmax(&logits.to_device(&gpu)?, k, normalize)?;
        assert_eq!(
            ids.to_device(&Device::Cpu)?.to_vec2::<u32>()?,
            want_ids.to_vec2::<u32>()?,
            "moe_topk_softmax [{t},{e}] top {k}: expert ids"
        );
        check(
            &format!("moe_topk_softmax [{t},{e}] top {k}"),
            rel_err(&w, &want_w)?,
            DType::F32,
        );
    }
    Ok(())
}

#[test]
fn moe_combine_matches_cpu() -> Result<()> {
    let Some(gpu) = gpu() else { return Ok(()) };
    let mut rng = rand::rng();
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        for &(t, k, h) in &[(1, 8, 2048), (37, 8, 2048), (5, 2, 64)] {
            let y = randn(&[t * k, h], 1.0, dtype)?;
            let mut rows: Vec<u32> = (0..(t * k) as u32).collect();
            rows.shuffle(&mut rng);
            let rows = Tensor::new(rows.as_slice(), &Device::Cpu)?;
            let w = randn(&[t, k], 0.5, DType::F32)?;
            let want = ops::moe_combine(&y, &rows, &w)?;
            poison(&gpu, t * h, dtype)?;
            let got = ops::moe_combine(
                &y.to_device(&gpu)?,
                &rows.to_device(&gpu)?,
                &w.to_device(&gpu)?,
            )?;
            check(
                &format!("moe_combine [{t}·{k},{h}]"),
                rel_err(&got, &want)?,
                dtype,
            );
        }
    }
    Ok(())
}
