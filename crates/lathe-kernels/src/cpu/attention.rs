//! Paged attention for f32 on the CPU: the engine's path (the twin in `reference.rs` is the
//! oracle it is tested against).
//!
//! Work items are (sequence, KV head, tile of up to 16 query tokens); the rows of an item are
//! its tokens × the query heads sharing that KV head (GQA), so every key and value row loaded
//! serves all of them. Tiles of fewer than 4 tokens (decode) are split further by query head:
//! a decode step has only a few KV heads, too few items to keep every thread busy.
//! Keys go 16 at a time. With many rows the key tile is transposed into `kt[d][16]`, so the
//! 16 logits of a row are one vector accumulated over `d` (no horizontal sums); with few rows
//! that transposition would cost more than the products, so each logit is a dot product
//! instead. Then an online softmax (FlashAttention's running max and sum) and `o += p · v` per
//! key. Only keys inside a sequence's context are read: slots past it may hold anything (NaN
//! in the GPU tests).

use super::pool;
use super::simd::{exp1, multiversion, Simd, L};
use crate::reference::{AttentionOptions, AttentionShape, PagedBatch};

/// Query tokens per work item.
const QT: usize = 16;
/// Rows from which transposing the key tile pays.
const TRANSPOSE_ROWS: usize = 8;

/// One work item: sequence, its query rows `[t0, t1)` (flat batch rows), KV head and the
/// query heads `[h0, h1)` of its group.
#[derive(Clone, Copy)]
struct Item {
    seq: usize,
    t0: usize,
    t1: usize,
    kvh: usize,
    h0: usize,
    h1: usize,
}

struct Args<'a> {
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    batch: &'a PagedBatch<'a>,
    sinks: Option<&'a [f32]>,
    shape: AttentionShape,
    opts: AttentionOptions,
    out: *mut f32,
}

// SAFETY: items write disjoint (token, head) rows of `out`; everything else is shared reads.
unsafe impl Sync for Args<'_> {}

/// Same contract as `reference::paged_attention` for f32.
#[allow(clippy::too_many_arguments)]
pub fn paged_attention(
    q: &[f32],
    k_cache: &[f32],
    v_cache: &[f32],
    batch: &PagedBatch<'_>,
    sinks: Option<&[f32]>,
    shape: &AttentionShape,
    opts: &AttentionOptions,
    out: &mut [f32],
) {
    assert_eq!(q.len(), out.len());
    let mut items = Vec::new();
    let mut work = 0usize;
    for seq in 0..batch.seq_lens.len() {
        let (a, b) = (
            batch.query_start[seq] as usize,
            batch.query_start[seq + 1] as usize,
        );
        work += (b - a) * batch.seq_lens[seq] as usize;
        let g = shape.num_heads / shape.num_kv_heads;
        for t0 in (a..b).step_by(QT) {
            let t1 = (t0 + QT).min(b);
            let per = if t1 - t0 < 4 { 1 } else { g };
            for kvh in 0..shape.num_kv_heads {
                for h0 in (0..g).step_by(per) {
                    items.push(Item {
                        seq,
                        t0,
                        t1,
                        kvh,
                        h0,
                        h1: (h0 + per).min(g),
                    });
                }
            }
        }
    }
    let args = Args {
        q,
        k: k_cache,
        v: v_cache,
        batch,
        sinks,
        shape: *shape,
        opts: *opts,
        out: out.as_mut_ptr(),
    };
    let run = |i0: usize, i1: usize| {
        for it in &items[i0..i1] {
            item(&args, *it);
        }
    };
    // Below ~64k multiply-adds a hand-off costs more than it saves.
    let chunk = if work * shape.num_heads * shape.head_dim < 1 << 16 {
        items.len()
    } else {
        1
    };
    pool::parallel_for(items.len(), chunk, &run);
}

multiversion!(fn item(a: &Args<'_>, it: Item) => item_impl);

#[inline(always)]
fn item_impl<S: Simd>(a: &Args<'_>, it: Item) {
    let AttentionShape {
        num_heads,
        num_kv_heads,
        head_dim: d,
        block_size,
    } = a.shape;
    let g = num_heads / num_kv_heads;
    let b = a.batch;
    let (qs, seq_len) = (b.query_start[it.seq] as usize, b.seq_lens[it.seq] as usize);
    let first_pos = seq_len - (b.query_start[it.seq + 1] as usize - qs);
    let table = &b.block_tables[it.seq * b.max_blocks..(it.seq + 1) * b.max_blocks];
    let window = |pos: usize| {
        a.opts
            .sliding_window
            .map_or(0, |w| (pos + 1).saturating_sub(w))
    };

    // Rows r = (token i, head h0 + h): visible keys [lo, hi], q pre-scaled.
    let hn = it.h1 - it.h0;
    let rows = (it.t1 - it.t0) * hn;
    let mut qf = vec![0f32; rows * d];
    let mut range = Vec::with_capacity(rows);
    for i in 0..it.t1 - it.t0 {
        let pos = first_pos + (it.t0 - qs) + i;
        for h in 0..hn {
            let head = it.kvh * g + it.h0 + h;
            let src = &a.q[((it.t0 + i) * num_heads + head) * d..][..d];
            let r = i * hn + h;
            for (x, &s) in qf[r * d..(r + 1) * d].iter_mut().zip(src) {
                *x = s * a.opts.scale;
            }
            range.push((window(pos), pos));
        }
    }
    let klo = range.iter().map(|r| r.0).min().unwrap_or(0);
    let khi = range.iter().map(|r| r.1).max().unwrap_or(0);

    let mut m = vec![f32::NEG_INFINITY; rows];
    let mut l = vec![0f32; rows];
    let mut o = vec![0f32; rows * d];
    let transpose = rows >= TRANSPOSE_ROWS;
    let mut kt = vec![0f32; if transpose { d * L } else { 0 }];
    let mut offs = [0usize; L];
    let row_off = |j: usize| {
        let slot = table[j / block_size] as usize * block_size + j % block_size;
        (slot * num_kv_heads + it.kvh) * d
    };
    // Tiles start at multiples of 16 whatever the item, so a row's arithmetic never depends
    // on which rows share its item (batch invariance: decode and prefill agree to the bit).
    let mut j0 = klo - klo % L;
    while j0 <= khi {
        let n = (khi + 1 - j0).min(L);
        for (jj, off) in offs.iter_mut().enumerate().take(n) {
            *off = row_off(j0 + jj);
            if transpose {
                for (c, &x) in a.k[*off..*off + d].iter().enumerate() {
                    kt[c * L + jj] = x;
                }
            }
        }
        if transpose && n < L {
            for c in 0..d {
                kt[c * L + n..(c + 1) * L].fill(0.0);
            }
        }
        for r in 0..rows {
            let (lo, hi) = range[r];
            if j0 > hi || j0 + n <= lo {
                continue;
            }
            // s[jj] = q_r · k_{j0+jj}
            let qr = &qf[r * d..(r + 1) * d];
            let mut s = [0f32; L];
            if transpose {
                logits_transposed::<S>(qr, &kt, &mut s);
            } else {
                for jj in 0..n {
                    s[jj] = dot::<S>(qr, &a.k[offs[jj]..offs[jj] + d]);
                }
            }
            if let Some(cap) = a.opts.softcap {
                for x in s.iter_mut() {
                    *x = cap * (*x / cap).tanh();
                }
            }
            let mut mx = f32::NEG_INFINITY;
            for (jj, x) in s.iter_mut().enumerate() {
                let j = j0 + jj;
                if jj >= n || j < lo || j > hi {
                    *x = f32::NEG_INFINITY;
                }
                mx = mx.max(*x);
            }
            let m_new = m[r].max(mx);
            let corr = exp1::<S>(m[r] - m_new);
            let pv = S::exp(S::add(S::load(&s), S::splat(-m_new)));
            let mut p = [0f32; L];
            S::store(pv, &mut p);
            m[r] = m_new;
            l[r] = l[r] * corr + S::sum(pv);
            accumulate::<S>(&mut o[r * d..(r + 1) * d], corr, &p[..n], &offs[..n], a.v);
        }
        j0 += n;
    }

    for r in 0..rows {
        let (i, h) = (r / hn, r % hn);
        let head = it.kvh * g + it.h0 + h;
        let mut denom = l[r];
        let mut sc = 1.0;
        if let Some(sinks) = a.sinks {
            // The sink joins the softmax: renormalise to max(m, sink).
            let mx = m[r].max(sinks[head]);
            sc = exp1::<S>(m[r] - mx);
            denom = l[r] * sc + exp1::<S>(sinks[head] - mx);
        }
        let inv = sc / denom;
        // SAFETY: row (token t0 + i, head) belongs to this item only; `out` has q's length.
        let dst = unsafe {
            std::slice::from_raw_parts_mut(a.out.add(((it.t0 + i) * num_heads + head) * d), d)
        };
        for (y, &x) in dst.iter_mut().zip(&o[r * d..(r + 1) * d]) {
            *y = x * inv;
        }
    }
}

/// `s[jj] = q · k_jj` from the transposed tile `kt[d][16]`, summed in exactly the order of
/// [`dot`] (16 lane sums over `d`, [`Simd::sum`]'s tree, then the tail), one key per lane.
#[inline(always)]
fn logits_transposed<S: Simd>(q: &[f32], kt: &[f32], s: &mut [f32; L]) {
    let full = q.len() / L * L;
    let mut part = [S::splat(0.0); L];
    for c0 in (0..full).step_by(L) {
        for (l, p) in part.iter_mut().enumerate() {
            *p = S::fma(S::splat(q[c0 + l]), S::load(&kt[(c0 + l) * L..]), *p);
        }
    }
    // The tree of `Simd::sum`: lanes l + l+8, then + l+4, then (0+2) + (1+3).
    for l in 0..8 {
        part[l] = S::add(part[l], part[l + 8]);
    }
    for l in 0..4 {
        part[l] = S::add(part[l], part[l + 4]);
    }
    let mut acc = S::add(S::add(part[0], part[2]), S::add(part[1], part[3]));
    for c in full..q.len() {
        acc = S::fma(S::splat(q[c]), S::load(&kt[c * L..]), acc);
    }
    S::store(acc, s);
}

/// `a · b`: 16 lane sums, [`Simd::sum`], then the tail.
#[inline(always)]
fn dot<S: Simd>(a: &[f32], b: &[f32]) -> f32 {
    let full = a.len() / L * L;
    let mut acc = S::splat(0.0);
    for c in (0..full).step_by(L) {
        acc = S::fma(S::load(&a[c..]), S::load(&b[c..]), acc);
    }
    let mut s = S::sum(acc);
    for c in full..a.len() {
        s = S::fma1(a[c], b[c], s);
    }
    s
}

/// `o = o · corr + Σ_jj p[jj] · v[offs[jj]..]`, keys in order, zero weights skipped. Each
/// 16-lane slice of `o` stays in a register across the tile's keys (one load and store per
/// tile instead of per key).
#[inline(always)]
fn accumulate<S: Simd>(o: &mut [f32], corr: f32, p: &[f32], offs: &[usize], v: &[f32]) {
    let full = o.len() / L * L;
    for c in (0..full).step_by(L) {
        let mut acc = S::load(&o[c..]);
        if corr != 1.0 {
            acc = S::mul(acc, S::splat(corr));
        }
        for (&w, &off) in p.iter().zip(offs) {
            if w != 0.0 {
                acc = S::fma(S::splat(w), S::load(&v[off + c..]), acc);
            }
        }
        S::store(acc, &mut o[c..]);
    }
    for c in full..o.len() {
        let mut y = o[c];
        if corr != 1.0 {
            y *= corr;
        }
        for (&w, &off) in p.iter().zip(offs) {
            if w != 0.0 {
                y = S::fma1(w, v[off + c], y);
            }
        }
        o[c] = y;
    }
}
