//! Plain-Rust twins of every kernel in kernels/: the oracle the GPU kernels and lathe's
//! vectorized CPU kernels (`crate::cpu`, the engine's f32 path) are tested against, and the
//! CPU path for f16/bf16. They favour clarity over speed.
//!
//! Layouts (all row-major, contiguous):
//! - KV cache: `[num_blocks, block_size, num_kv_heads, head_dim]` (NHD: head_dim contiguous).
//! - q / out: `[T, num_heads, head_dim]`, T = all query tokens of the batch, sequence after sequence.

use half::{bf16, f16};
use rayon::prelude::*;

/// Element types the kernels accept; arithmetic is always done in f32.
pub trait Element: Copy + Send + Sync + 'static {
    fn to_f32(self) -> f32;
    fn from_f32(v: f32) -> Self;
}

impl Element for f32 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v
    }
}

impl Element for f16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        f16::from_f32(v)
    }
}

impl Element for bf16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        bf16::from_f32(v)
    }
}

/// Scatter `new` rows (`[T, row_width]`, row_width = kv_heads · head_dim) into the cache by
/// flat slot (block · block_size + offset). Slot −1 marks a padding row that is skipped.
pub fn write_kv<T: Element>(new: &[T], cache: &mut [T], slot_mapping: &[i64], row_width: usize) {
    for (t, &slot) in slot_mapping.iter().enumerate() {
        if slot < 0 {
            continue;
        }
        let dst = slot as usize * row_width;
        cache[dst..dst + row_width].copy_from_slice(&new[t * row_width..(t + 1) * row_width]);
    }
}

/// Static shape of the attention problem.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionShape {
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub block_size: usize,
}

/// Per-model attention options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionOptions {
    pub scale: f32,
    /// Attend only to the last `w` positions (the query's own included).
    pub sliding_window: Option<usize>,
    /// Logits become `c · tanh(logits / c)` (Gemma-2 style soft-capping).
    pub softcap: Option<f32>,
}

/// The batch's paged layout: which cache blocks hold each sequence and where its queries are.
#[derive(Debug, Clone, Copy)]
pub struct PagedBatch<'a> {
    /// `[S, max_blocks]` block ids per sequence.
    pub block_tables: &'a [u32],
    pub max_blocks: usize,
    /// `[S]` context length of each sequence *including* this step's query tokens.
    pub seq_lens: &'a [u32],
    /// `[S + 1]` prefix sums of query tokens per sequence.
    pub query_start: &'a [u32],
}

/// Paged attention over the cache, GQA, causal among the new tokens, decode and prefill alike.
///
/// Sequence `s` owns query rows `query_start[s]..query_start[s+1]`: the last `n` tokens of its
/// context, so row `i` sits at position `seq_lens[s] − n + i` and sees keys `0..=pos` (only the
/// last `sliding_window` of them with a window). `sinks[h]` adds an extra logit that takes part
/// in the softmax normalisation but carries no value (gpt-oss attention sinks).
#[allow(clippy::too_many_arguments)]
pub fn paged_attention<T: Element>(
    q: &[T],
    k_cache: &[T],
    v_cache: &[T],
    batch: &PagedBatch<'_>,
    sinks: Option<&[f32]>,
    shape: &AttentionShape,
    opts: &AttentionOptions,
    out: &mut [T],
) {
    let AttentionShape {
        num_heads,
        num_kv_heads,
        head_dim,
        block_size,
    } = *shape;
    let row = num_heads * head_dim;
    let group = num_heads / num_kv_heads;
    // Which sequence and position each query row belongs to.
    let mut rows = Vec::with_capacity(out.len() / row.max(1));
    for s in 0..batch.seq_lens.len() {
        let (start, end) = (
            batch.query_start[s] as usize,
            batch.query_start[s + 1] as usize,
        );
        let first_pos = batch.seq_lens[s] as usize - (end - start);
        for i in 0..end - start {
            rows.push((s, first_pos + i));
        }
    }
    out.par_chunks_mut(row)
        .zip(rows.par_iter())
        .enumerate()
        .for_each_init(
            || {
                (
                    vec![0f32; head_dim],
                    vec![0f32; head_dim],
                    Vec::<f32>::new(),
                )
            },
            |(qf, acc, logits), (t, (out_row, &(s, pos)))| {
                let table = &batch.block_tables[s * batch.max_blocks..(s + 1) * batch.max_blocks];
                let lo = opts
                    .sliding_window
                    .map_or(0, |w| (pos + 1).saturating_sub(w));
                for h in 0..num_heads {
                    let kvh = h / group;
                    let q_off = (t * num_heads + h) * head_dim;
                    for (dst, src) in qf.iter_mut().zip(&q[q_off..q_off + head_dim]) {
                        *dst = src.to_f32();
                    }
                    let cache_off = |j: usize| {
                        let slot = table[j / block_size] as usize * block_size + j % block_size;
                        (slot * num_kv_heads + kvh) * head_dim
                    };
                    logits.clear();
                    let mut max = f32::NEG_INFINITY;
                    for j in lo..=pos {
                        let k = &k_cache[cache_off(j)..cache_off(j) + head_dim];
                        let mut l = dot(qf, k) * opts.scale;
                        if let Some(c) = opts.softcap {
                            l = c * (l / c).tanh();
                        }
                        max = max.max(l);
                        logits.push(l);
                    }
                    let sink = sinks.map(|s| s[h]);
                    if let Some(sk) = sink {
                        max = max.max(sk);
                    }
                    let mut denom = sink.map_or(0.0, |sk| (sk - max).exp());
                    for l in logits.iter_mut() {
                        *l = (*l - max).exp();
                        denom += *l;
                    }
                    acc.fill(0.0);
                    for (j, &w) in (lo..=pos).zip(logits.iter()) {
                        let v = &v_cache[cache_off(j)..cache_off(j) + head_dim];
                        for (a, x) in acc.iter_mut().zip(v) {
                            *a += w * x.to_f32();
                        }
                    }
                    let inv = 1.0 / denom;
                    for (o, a) in out_row[h * head_dim..(h + 1) * head_dim]
                        .iter_mut()
                        .zip(acc.iter())
                    {
                        *o = T::from_f32(a * inv);
                    }
                }
            },
        );
}

#[inline]
fn dot<T: Element>(a: &[f32], b: &[T]) -> f32 {
    // Eight independent partial sums so the loop vectorises and keeps f32 error low.
    let mut acc = [0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        for l in 0..8 {
            acc[l] += a[c * 8 + l] * b[c * 8 + l].to_f32();
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for i in chunks * 8..a.len() {
        sum += a[i] * b[i].to_f32();
    }
    sum
}

/// `residual' = x + residual`, `normed = rms_norm(residual') · weight`; rows of width `weight.len()`.
/// Writes normed into `out_normed` and residual' into `out_residual`.
pub fn add_rms_norm<T: Element>(
    x: &[T],
    residual: &[T],
    weight: &[T],
    eps: f32,
    out_normed: &mut [T],
    out_residual: &mut [T],
) {
    let h = weight.len();
    out_normed
        .par_chunks_mut(h)
        .zip(out_residual.par_chunks_mut(h))
        .enumerate()
        .for_each(|(t, (normed, res))| {
            let mut sumsq = 0f32;
            for i in 0..h {
                let v = x[t * h + i].to_f32() + residual[t * h + i].to_f32();
                res[i] = T::from_f32(v);
                sumsq += v * v;
            }
            let inv = 1.0 / (sumsq / h as f32 + eps).sqrt();
            for i in 0..h {
                // Normalise the rounded residual, as the next layer will see it.
                normed[i] = T::from_f32(res[i].to_f32() * inv * weight[i].to_f32());
            }
        });
}

/// Rotary embedding style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// Rotate pairs `(i, i + rotary_dim/2)` (HF Llama/Qwen "rotate_half").
    Neox,
    /// Rotate adjacent pairs `(2i, 2i+1)` (GPT-J; GGUF llama weights are permuted for this).
    Gptj,
}

/// Rotary embedding in place on `x` `[T, heads, head_dim]`; `cos_sin` is `[max_pos, rotary_dim]`
/// with cos in the first half of each row and sin in the second.
pub fn rope<T: Element>(
    x: &mut [T],
    positions: &[u32],
    cos_sin: &[f32],
    head_dim: usize,
    rotary_dim: usize,
    style: RopeStyle,
) {
    let half = rotary_dim / 2;
    let tokens = positions.len();
    let heads = x.len() / (tokens * head_dim).max(1);
    x.par_chunks_mut(heads * head_dim)
        .zip(positions.par_iter())
        .for_each(|(tok, &pos)| {
            let cs = &cos_sin[pos as usize * rotary_dim..(pos as usize + 1) * rotary_dim];
            for head in tok.chunks_mut(head_dim) {
                for i in 0..half {
                    let (a, b) = match style {
                        RopeStyle::Neox => (i, i + half),
                        RopeStyle::Gptj => (2 * i, 2 * i + 1),
                    };
                    let (x0, x1) = (head[a].to_f32(), head[b].to_f32());
                    let (c, s) = (cs[i], cs[half + i]);
                    head[a] = T::from_f32(x0 * c - x1 * s);
                    head[b] = T::from_f32(x1 * c + x0 * s);
                }
            }
        });
}

/// `[T, 2I] -> [T, I]`: silu(gate) · up, with gate the first `inter` columns of each row.
pub fn silu_and_mul<T: Element>(x: &[T], inter: usize, out: &mut [T]) {
    out.par_chunks_mut(inter).enumerate().for_each(|(t, o)| {
        let row = &x[t * 2 * inter..(t + 1) * 2 * inter];
        for j in 0..inter {
            let g = row[j].to_f32();
            o[j] = T::from_f32(g / (1.0 + (-g).exp()) * row[inter + j].to_f32());
        }
    });
}

/// cos/sin table `[max_pos, rotary_dim]` for the given inverse frequencies (`rotary_dim/2` of them).
pub fn rope_cos_sin_table(inv_freq: &[f32], max_pos: usize) -> Vec<f32> {
    let half = inv_freq.len();
    let mut table = vec![0f32; max_pos * 2 * half];
    for p in 0..max_pos {
        for (i, f) in inv_freq.iter().enumerate() {
            let angle = p as f32 * f;
            table[p * 2 * half + i] = angle.cos();
            table[p * 2 * half + half + i] = angle.sin();
        }
    }
    table
}

/// Mixture-of-experts routing over `logits` `[T, E]`: softmax per token, the top `k` experts
/// (ties to the lower id), in the order chosen. `out` `[T, 2k]`: the k expert ids (as f32,
/// exact below 2^24) then their probabilities, renormalised over the k when `normalize`.
pub fn moe_topk_softmax(
    logits: &[f32],
    experts: usize,
    k: usize,
    normalize: bool,
    out: &mut [f32],
) {
    let mut order: Vec<usize> = Vec::with_capacity(experts);
    for (l, row) in logits.chunks(experts).zip(out.chunks_mut(2 * k)) {
        let max = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let p: Vec<f32> = l.iter().map(|&x| (x - max).exp()).collect();
        let total: f32 = p.iter().sum();
        order.clear();
        order.extend(0..experts);
        // Stable: equal probabilities keep the lower expert first.
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
        let chosen: f32 = order[..k].iter().map(|&e| p[e] / total).sum();
        for (j, &e) in order[..k].iter().enumerate() {
            row[j] = e as f32;
            row[k + j] = if normalize {
                p[e] / total / chosen
            } else {
                p[e] / total
            };
        }
    }
}

/// `out[t, h] = Σ_j w[t·k + j] · y[rows[t·k + j], h]`, in f32 with j in order: the experts'
/// outputs `y` `[M, H]` (grouped by expert) summed back per token with their routing weights.
pub fn moe_combine<T: Element>(y: &[T], rows: &[u32], w: &[f32], k: usize, out: &mut [T]) {
    let hidden = out.len() / (rows.len() / k.max(1)).max(1);
    out.par_chunks_mut(hidden.max(1))
        .enumerate()
        .for_each(|(t, o)| {
            for (h, dst) in o.iter_mut().enumerate() {
                let mut acc = 0f32;
                for j in 0..k {
                    acc += w[t * k + j] * y[rows[t * k + j] as usize * hidden + h].to_f32();
                }
                *dst = T::from_f32(acc);
            }
        });
}
