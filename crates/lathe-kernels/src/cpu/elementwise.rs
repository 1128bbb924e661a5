//! The row-wise f32 ops of a decoder layer on the CPU: residual add + RMSNorm, rotary
//! embedding, SiLU-and-mul. Same contracts as their twins in `reference.rs` (tested against
//! them); vectorized through [`multiversion!`] and split over rows by the kernel pool only when
//! a call is large enough (a decode step's rows are done before a hand-off would be).

use super::pool;
use super::simd::{exp1, multiversion, Simd, L};
use crate::reference::RopeStyle;

/// Elements below which a call runs on the calling thread.
const PAR_MIN: usize = 1 << 15;

/// Runs `f(row0, row1)` over `rows` rows of `width` elements, split over the pool when large.
fn for_rows(rows: usize, width: usize, f: &(dyn Fn(usize, usize) + Sync)) {
    let chunk = if rows * width < PAR_MIN {
        rows
    } else {
        (PAR_MIN / width.max(1)).clamp(1, rows.div_ceil(2 * pool::num_threads()))
    };
    pool::parallel_for(rows, chunk, f);
}

/// A raw output pointer shared by disjoint row ranges.
#[derive(Clone, Copy)]
struct Out(*mut f32);
// SAFETY: every use writes only the rows of its own range.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    /// Rows `[r0, r1)` of width `w`.
    ///
    /// # Safety
    /// The rows must lie inside the buffer and belong to the caller's range only.
    unsafe fn rows(self, r0: usize, r1: usize, w: usize) -> &'static mut [f32] {
        std::slice::from_raw_parts_mut(self.0.add(r0 * w), (r1 - r0) * w)
    }
}

/// `residual' = x + residual`, `normed = rms_norm(residual') · weight` (rows of `weight.len()`).
pub fn add_rms_norm(
    x: &[f32],
    residual: &[f32],
    weight: &[f32],
    eps: f32,
    out_normed: &mut [f32],
    out_residual: &mut [f32],
) {
    let h = weight.len();
    let rows = x.len() / h.max(1);
    assert!(
        residual.len() == x.len() && out_normed.len() == x.len() && out_residual.len() == x.len()
    );
    let (n, r) = (Out(out_normed.as_mut_ptr()), Out(out_residual.as_mut_ptr()));
    for_rows(rows, h, &|r0, r1| {
        // SAFETY: rows [r0, r1) of both outputs are this call's alone.
        let (n, r) = unsafe { (n.rows(r0, r1, h), r.rows(r0, r1, h)) };
        let x = &x[r0 * h..r1 * h];
        let res = &residual[r0 * h..r1 * h];
        add_rms_norm_rows(x, res, weight, eps, n, r);
    });
}

multiversion!(fn add_rms_norm_rows(x: &[f32], res: &[f32], w: &[f32], eps: f32, normed: &mut [f32], out_res: &mut [f32]) => add_rms_norm_impl);

#[inline(always)]
fn add_rms_norm_impl<S: Simd>(
    x: &[f32],
    res: &[f32],
    w: &[f32],
    eps: f32,
    normed: &mut [f32],
    out_res: &mut [f32],
) {
    let h = w.len();
    let full = h / L * L;
    for (((x, r), n), o) in x
        .chunks_exact(h)
        .zip(res.chunks_exact(h))
        .zip(normed.chunks_exact_mut(h))
        .zip(out_res.chunks_exact_mut(h))
    {
        let mut acc = S::splat(0.0);
        for c in (0..full).step_by(L) {
            let v = S::add(S::load(&x[c..]), S::load(&r[c..]));
            S::store(v, &mut o[c..]);
            acc = S::fma(v, v, acc);
        }
        let mut sumsq = S::sum(acc);
        for c in full..h {
            o[c] = x[c] + r[c];
            sumsq = S::fma1(o[c], o[c], sumsq);
        }
        let inv = 1.0 / (sumsq / h as f32 + eps).sqrt();
        let iv = S::splat(inv);
        for c in (0..full).step_by(L) {
            S::store(
                S::mul(S::mul(S::load(&o[c..]), iv), S::load(&w[c..])),
                &mut n[c..],
            );
        }
        for c in full..h {
            n[c] = o[c] * inv * w[c];
        }
    }
}

/// Rotary embedding in place on `x` `[T, heads, head_dim]` (see `reference::rope`).
pub fn rope(
    x: &mut [f32],
    positions: &[u32],
    cos_sin: &[f32],
    head_dim: usize,
    rotary_dim: usize,
    style: RopeStyle,
) {
    let t = positions.len();
    if t == 0 {
        return;
    }
    let w = x.len() / t;
    let out = Out(x.as_mut_ptr());
    for_rows(t, w, &|r0, r1| {
        // SAFETY: tokens [r0, r1) are this call's alone.
        let x = unsafe { out.rows(r0, r1, w) };
        rope_rows(x, &positions[r0..r1], cos_sin, head_dim, rotary_dim, style);
    });
}

multiversion!(fn rope_rows(x: &mut [f32], positions: &[u32], cos_sin: &[f32], head_dim: usize, rotary_dim: usize, style: RopeStyle) => rope_impl);

#[inline(always)]
fn rope_impl<S: Simd>(
    x: &mut [f32],
    positions: &[u32],
    cos_sin: &[f32],
    head_dim: usize,
    rotary_dim: usize,
    style: RopeStyle,
) {
    let half = rotary_dim / 2;
    let w = x.len() / positions.len();
    for (tok, &pos) in x.chunks_exact_mut(w).zip(positions) {
        let cs = &cos_sin[pos as usize * rotary_dim..(pos as usize + 1) * rotary_dim];
        let (cos, sin) = cs.split_at(half);
        for head in tok.chunks_exact_mut(head_dim) {
            match style {
                RopeStyle::Neox => {
                    let (a, b) = head[..rotary_dim].split_at_mut(half);
                    for i in 0..half {
                        let (x0, x1) = (a[i], b[i]);
                        a[i] = S::fma1(x0, cos[i], -x1 * sin[i]);
                        b[i] = S::fma1(x1, cos[i], x0 * sin[i]);
                    }
                }
                RopeStyle::Gptj => {
                    for (i, p) in head[..rotary_dim].chunks_exact_mut(2).enumerate() {
                        let (x0, x1) = (p[0], p[1]);
                        p[0] = S::fma1(x0, cos[i], -x1 * sin[i]);
                        p[1] = S::fma1(x1, cos[i], x0 * sin[i]);
                    }
                }
            }
        }
    }
}

/// `[T, 2I] -> [T, I]`: silu(gate) · up, gate in the first `inter` columns of each row.
pub fn silu_and_mul(x: &[f32], inter: usize, out: &mut [f32]) {
    let t = out.len() / inter.max(1);
    assert_eq!(x.len(), 2 * out.len());
    let o = Out(out.as_mut_ptr());
    for_rows(t, inter, &|r0, r1| {
        // SAFETY: rows [r0, r1) are this call's alone.
        let o = unsafe { o.rows(r0, r1, inter) };
        silu_rows(&x[r0 * 2 * inter..r1 * 2 * inter], inter, o);
    });
}

multiversion!(fn silu_rows(x: &[f32], inter: usize, out: &mut [f32]) => silu_impl);

#[inline(always)]
fn silu_impl<S: Simd>(x: &[f32], inter: usize, out: &mut [f32]) {
    let full = inter / L * L;
    let one = S::splat(1.0);
    for (row, o) in x.chunks_exact(2 * inter).zip(out.chunks_exact_mut(inter)) {
        let (gate, up) = row.split_at(inter);
        for c in (0..full).step_by(L) {
            let g = S::load(&gate[c..]);
            let e = S::exp(S::mul(g, S::splat(-1.0)));
            let y = S::div(S::mul(g, S::load(&up[c..])), S::add(one, e));
            S::store(y, &mut o[c..]);
        }
        for j in full..inter {
            o[j] = gate[j] * up[j] / (1.0 + exp1::<S>(-gate[j]));
        }
    }
}
