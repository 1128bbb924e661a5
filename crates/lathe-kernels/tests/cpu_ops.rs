//! lathe's vectorized f32 CPU kernels (`cpu::attention`, `cpu::elementwise`) against their
//! plain twins in `reference` on fresh random inputs, on every ISA path this CPU has plus the
//! portable one, single- and multi-threaded.
//!
//! Tolerance: max |fast − ref| ≤ 1e-5 · max(1, max |ref|) per case. Both sides compute in f32;
//! they differ only by summation order, fused multiply-adds and the vectorized `exp` (relative
//! error ~2e-7), which stays far below that. A NaN or infinity in any output fails. Cache slots
//! no sequence owns hold NaN, so a kernel that reads past a context fails too.

use lathe_kernels::cpu::{self, attention, elementwise, Isa};
use lathe_kernels::reference::{self, AttentionOptions, AttentionShape, PagedBatch, RopeStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Mutex;

/// `force_isa` and the thread count are process-wide: one test at a time changes them.
static GLOBAL: Mutex<()> = Mutex::new(());

fn randv(rng: &mut StdRng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-scale..scale)).collect()
}

fn check(what: &str, fast: &[f32], reference: &[f32]) {
    assert_eq!(fast.len(), reference.len(), "{what}: lengths");
    let peak = reference.iter().fold(1f32, |a, v| a.max(v.abs()));
    for (i, (f, r)) in fast.iter().zip(reference).enumerate() {
        assert!(f.is_finite(), "{what}: element {i} is {f}");
        assert!(
            (f - r).abs() <= 1e-5 * peak,
            "{what}: element {i} is {f}, reference {r}"
        );
    }
}

/// Runs `f` on every ISA path and with 1 and 2 threads.
fn each_path(mut f: impl FnMut(&str)) {
    let _g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    for isa in Isa::available() {
        cpu::force_isa(Some(isa));
        for threads in [1, 2] {
            cpu::set_num_threads(threads);
            f(&format!("{isa:?}/{threads}t"));
        }
    }
    cpu::force_isa(None);
    cpu::set_num_threads(0);
}

/// A random paged batch: sequences of (query tokens, context length) with shuffled blocks.
struct Case {
    block_tables: Vec<u32>,
    max_blocks: usize,
    seq_lens: Vec<u32>,
    query_start: Vec<u32>,
    k: Vec<f32>,
    v: Vec<f32>,
    q: Vec<f32>,
}

fn attention_case(rng: &mut StdRng, shape: AttentionShape, seqs: &[(usize, usize)]) -> Case {
    let bs = shape.block_size;
    let max_blocks = seqs.iter().map(|s| s.1.div_ceil(bs)).max().unwrap();
    let total_blocks: usize = seqs.iter().map(|s| s.1.div_ceil(bs)).sum::<usize>() + 3;
    let mut ids: Vec<u32> = (0..total_blocks as u32).collect();
    for i in (1..ids.len()).rev() {
        ids.swap(i, rng.random_range(0..=i));
    }
    let row = shape.num_kv_heads * shape.head_dim;
    // Unowned slots (and the tails of last blocks) stay NaN.
    let mut k = vec![f32::NAN; total_blocks * bs * row];
    let mut v = k.clone();
    let (mut block_tables, mut seq_lens, mut query_start) = (Vec::new(), Vec::new(), vec![0u32]);
    let mut next = 0;
    for &(nq, ctx) in seqs {
        let mut table = vec![0u32; max_blocks];
        let used = ctx.div_ceil(bs);
        table[..used].copy_from_slice(&ids[next..next + used]);
        next += used;
        for j in 0..ctx {
            let slot = table[j / bs] as usize * bs + j % bs;
            for e in 0..row {
                k[slot * row + e] = rng.random_range(-1.0..1.0);
                v[slot * row + e] = rng.random_range(-1.0..1.0);
            }
        }
        block_tables.extend(table);
        seq_lens.push(ctx as u32);
        query_start.push(query_start.last().unwrap() + nq as u32);
    }
    let t = *query_start.last().unwrap() as usize;
    let q = randv(rng, t * shape.num_heads * shape.head_dim, 2.0);
    Case {
        block_tables,
        max_blocks,
        seq_lens,
        query_start,
        k,
        v,
        q,
    }
}

#[test]
fn paged_attention_matches_reference() {
    let mut rng = StdRng::seed_from_u64(7);
    // (heads, kv heads, head_dim, block size)
    let shapes = [
        (9, 3, 64, 16),
        (4, 4, 128, 16),
        (8, 2, 80, 8),
        (6, 1, 72, 16),
    ];
    // Decode, prefill, chunked prefill (fewer queries than context) and mixes of them.
    let batches: [&[(usize, usize)]; 5] = [
        &[(1, 1)],
        &[(1, 37)],
        &[(53, 53)],
        &[(1, 100), (20, 20), (7, 70), (1, 17)],
        &[(300, 300)],
    ];
    let options = [
        AttentionOptions {
            scale: 0.125,
            sliding_window: None,
            softcap: None,
        },
        AttentionOptions {
            scale: 0.3,
            sliding_window: Some(19),
            softcap: None,
        },
        AttentionOptions {
            scale: 0.2,
            sliding_window: None,
            softcap: Some(5.0),
        },
    ];
    for (h, kvh, d, bs) in shapes {
        let shape = AttentionShape {
            num_heads: h,
            num_kv_heads: kvh,
            head_dim: d,
            block_size: bs,
        };
        for seqs in batches {
            for (oi, opts) in options.iter().enumerate() {
                let c = attention_case(&mut rng, shape, seqs);
                let sinks = (oi == 2).then(|| randv(&mut rng, h, 3.0));
                let batch = PagedBatch {
                    block_tables: &c.block_tables,
                    max_blocks: c.max_blocks,
                    seq_lens: &c.seq_lens,
                    query_start: &c.query_start,
                };
                let mut want = vec![0f32; c.q.len()];
                reference::paged_attention(
                    &c.q,
                    &c.k,
                    &c.v,
                    &batch,
                    sinks.as_deref(),
                    &shape,
                    opts,
                    &mut want,
                );
                each_path(|path| {
                    let mut got = vec![f32::NAN; c.q.len()];
                    attention::paged_attention(
                        &c.q,
                        &c.k,
                        &c.v,
                        &batch,
                        sinks.as_deref(),
                        &shape,
                        opts,
                        &mut got,
                    );
                    check(
                        &format!("attention {shape:?} {seqs:?} {opts:?} {path}"),
                        &got,
                        &want,
                    );
                });
            }
        }
    }
}

#[test]
fn add_rms_norm_matches_reference() {
    let mut rng = StdRng::seed_from_u64(8);
    for (t, h) in [(1, 576), (3, 40), (512, 576), (70, 1000), (2, 7)] {
        let x = randv(&mut rng, t * h, 3.0);
        let r = randv(&mut rng, t * h, 3.0);
        let w = randv(&mut rng, h, 1.5);
        let (mut wn, mut wr) = (vec![0f32; t * h], vec![0f32; t * h]);
        reference::add_rms_norm(&x, &r, &w, 1e-5, &mut wn, &mut wr);
        each_path(|path| {
            let (mut n, mut res) = (vec![f32::NAN; t * h], vec![f32::NAN; t * h]);
            elementwise::add_rms_norm(&x, &r, &w, 1e-5, &mut n, &mut res);
            check(&format!("add_rms_norm {t}x{h} {path}"), &n, &wn);
            check(&format!("add_rms_norm residual {t}x{h} {path}"), &res, &wr);
        });
    }
}

#[test]
fn rope_matches_reference() {
    let mut rng = StdRng::seed_from_u64(9);
    for style in [RopeStyle::Neox, RopeStyle::Gptj] {
        for (t, heads, d, rot) in [
            (1, 9, 64, 64),
            (512, 3, 64, 64),
            (5, 2, 128, 64),
            (33, 4, 80, 80),
        ] {
            let max_pos = 600;
            let inv: Vec<f32> = (0..rot / 2)
                .map(|i| 1.0 / 10000f32.powf(2.0 * i as f32 / rot as f32))
                .collect();
            let table = reference::rope_cos_sin_table(&inv, max_pos);
            let pos: Vec<u32> = (0..t)
                .map(|_| rng.random_range(0..max_pos as u32))
                .collect();
            let x = randv(&mut rng, t * heads * d, 2.0);
            let mut want = x.clone();
            reference::rope(&mut want, &pos, &table, d, rot, style);
            each_path(|path| {
                let mut got = x.clone();
                elementwise::rope(&mut got, &pos, &table, d, rot, style);
                check(
                    &format!("rope {style:?} {t}x{heads}x{d}/{rot} {path}"),
                    &got,
                    &want,
                );
            });
        }
    }
}

#[test]
fn silu_and_mul_matches_reference() {
    let mut rng = StdRng::seed_from_u64(10);
    for (t, inter) in [(1, 1536), (512, 1536), (3, 37), (9, 16)] {
        let mut x = randv(&mut rng, t * 2 * inter, 8.0);
        x[0] = -120.0; // exp overflow territory on the reference side
        x[1] = 95.0;
        let mut want = vec![0f32; t * inter];
        reference::silu_and_mul(&x, inter, &mut want);
        each_path(|path| {
            let mut got = vec![f32::NAN; t * inter];
            elementwise::silu_and_mul(&x, inter, &mut got);
            check(&format!("silu_and_mul {t}x{inter} {path}"), &got, &want);
        });
    }
}

#[test]
fn nan_input_gives_nan() {
    let _g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut x = vec![1f32; 64];
    x[3] = f32::NAN;
    let mut out = vec![0f32; 32];
    elementwise::silu_and_mul(&x, 32, &mut out);
    assert!(out[3].is_nan());
    let (mut n, mut r) = (vec![0f32; 64], vec![0f32; 64]);
    elementwise::add_rms_norm(&x, &[0f32; 64], &[1f32; 64], 1e-5, &mut n, &mut r);
    assert!(n.iter().all(|v| v.is_nan()));
}

/// A query row's result does not depend on the rows batched with it: the last token of a
/// prefill equals, to the bit, the same token run alone as a decode step (the engine's batch
/// invariance and preemption-by-recompute rely on it).
#[test]
fn attention_rows_are_batch_invariant() {
    let mut rng = StdRng::seed_from_u64(11);
    let shape = AttentionShape {
        num_heads: 9,
        num_kv_heads: 3,
        head_dim: 64,
        block_size: 16,
    };
    let opts = AttentionOptions {
        scale: 0.125,
        sliding_window: Some(21),
        softcap: None,
    };
    let c = attention_case(&mut rng, shape, &[(45, 45)]);
    let row = shape.num_heads * shape.head_dim;
    let prefill = PagedBatch {
        block_tables: &c.block_tables,
        max_blocks: c.max_blocks,
        seq_lens: &c.seq_lens,
        query_start: &c.query_start,
    };
    let decode = PagedBatch {
        query_start: &[0, 1],
        ..prefill
    };
    each_path(|path| {
        let mut all = vec![0f32; c.q.len()];
        attention::paged_attention(&c.q, &c.k, &c.v, &prefill, None, &shape, &opts, &mut all);
        let mut one = vec![0f32; row];
        let q_last = &c.q[44 * row..];
        attention::paged_attention(q_last, &c.k, &c.v, &decode, None, &shape, &opts, &mut one);
        assert!(
            one == all[44 * row..],
            "{path}: decode row differs from the prefill row"
        );
    });
}
