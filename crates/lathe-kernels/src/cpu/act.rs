//! Activation quantization: f32 rows -> int8 blocks of 32 with one f32 scale each.
//!
//! Like llama.cpp's `q8_1`, but with f32 scales (llama.cpp rounds them to f16): for each block
//! `d = max|x| / 127`, `q = round_ties_even(x / d)` (so |q| <= 127, which keeps `maddubs`
//! from saturating), plus the integer sums of `q` over each 16 and each 32 elements that the
//! kernels need for the weight offsets (`sum_i (d_w u_i + c) d_x q_i = d_w d_x sum(u q) +
//! c d_x sum(q)`). Scalar and SIMD paths produce bit-identical blocks (same products, same
//! rounding), so every ISA computes the same integer dot products. A block containing NaN or
//! infinity gets `d = NaN`, so the non-finite input shows up as NaN in the output instead of
//! silently quantizing to zero.

use super::{pool, Isa};

/// Quantized activations: `m` rows of `cols` (a multiple of 32) values.
pub(crate) struct ActQ {
    pub cols: usize,
    /// `[m][cols]` int8 values.
    pub q: Vec<i8>,
    /// `[m][cols/32]` block scales.
    pub d: Vec<f32>,
    /// `[m][cols/32]` sum of q per block.
    pub s32: Vec<i32>,
    /// `[m][cols/32]` `d * s32` (the offset factor of asymmetric formats).
    pub sd32: Vec<f32>,
    /// `[m][cols/16]` sum of q per half block (the 16-element groups of Q2_K, Q3_K, Q6_K).
    pub s16: Vec<i32>,
    /// `[m][cols/16]` `d * s16` (the offset factor of Q2_K's asymmetric 16-element groups).
    pub sd16: Vec<f32>,
}

/// One row's worth of outputs.
struct RowOut<'a> {
    q: &'a mut [i8],
    d: &'a mut [f32],
    s32: &'a mut [i32],
    sd32: &'a mut [f32],
    s16: &'a mut [i32],
    sd16: &'a mut [f32],
}

fn scale_of(amax: f32) -> (f32, f32) {
    let d = amax / 127.0;
    (d, if d > 0.0 { 1.0 / d } else { 0.0 })
}

/// A block with NaN or infinity: q = 0 and sums 0, d = NaN (so its outputs are NaN).
fn non_finite_block(o: &mut RowOut, b: usize) {
    o.q[32 * b..32 * b + 32].fill(0);
    o.d[b] = f32::NAN;
    o.s16[2 * b] = 0;
    o.s16[2 * b + 1] = 0;
    o.s32[b] = 0;
    o.sd32[b] = f32::NAN;
    o.sd16[2 * b] = f32::NAN;
    o.sd16[2 * b + 1] = f32::NAN;
}

fn quantize_row_scalar(x: &[f32], mut o: RowOut) {
    for (b, xb) in x.chunks_exact(32).enumerate() {
        let amax = xb.iter().fold(0f32, |a, v| a.max(v.abs()));
        if !xb.iter().all(|v| v.is_finite()) {
            non_finite_block(&mut o, b);
            continue;
        }
        let (d, id) = scale_of(amax);
        let mut s = [0i32; 2];
        for (i, &v) in xb.iter().enumerate() {
            let q = (v * id).round_ties_even() as i32;
            o.q[32 * b + i] = q as i8;
            s[i / 16] += q;
        }
        o.d[b] = d;
        o.s16[2 * b] = s[0];
        o.s16[2 * b + 1] = s[1];
        o.s32[b] = s[0] + s[1];
        o.sd32[b] = d * (s[0] + s[1]) as f32;
        o.sd16[2 * b] = d * s[0] as f32;
        o.sd16[2 * b + 1] = d * s[1] as f32;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn quantize_row_avx512(x: &[f32], mut o: RowOut) {
    use std::arch::x86_64::*;
    for b in 0..x.len() / 32 {
        let p = x.as_ptr().add(32 * b);
        let (v0, v1) = (_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16)));
        let amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        // x * 0 is NaN exactly when x is NaN or infinite.
        let z = _mm512_add_ps(
            _mm512_mul_ps(v0, _mm512_setzero_ps()),
            _mm512_mul_ps(v1, _mm512_setzero_ps()),
        );
        if _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(z, z) != 0 {
            non_finite_block(&mut o, b);
            continue;
        }
        let (d, id) = scale_of(amax);
        let idv = _mm512_set1_ps(id);
        let q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, idv));
        let q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, idv));
        let dst = o.q.as_mut_ptr().add(32 * b) as *mut __m128i;
        _mm_storeu_si128(dst, _mm512_cvtepi32_epi8(q0));
        _mm_storeu_si128(dst.add(1), _mm512_cvtepi32_epi8(q1));
        let (s0, s1) = (_mm512_reduce_add_epi32(q0), _mm512_reduce_add_epi32(q1));
        o.d[b] = d;
        o.s16[2 * b] = s0;
        o.s16[2 * b + 1] = s1;
        o.s32[b] = s0 + s1;
        o.sd32[b] = d * (s0 + s1) as f32;
        o.sd16[2 * b] = d * s0 as f32;
        o.sd16[2 * b + 1] = d * s1 as f32;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_row_avx2(x: &[f32], mut o: RowOut) {
    use std::arch::x86_64::*;
    let sign = _mm256_set1_ps(-0.0);
    for b in 0..x.len() / 32 {
        let p = x.as_ptr().add(32 * b);
        let v: [__m256; 4] = std::array::from_fn(|i| _mm256_loadu_ps(p.add(8 * i)));
        let mut mx = _mm256_setzero_ps();
        let mut z = _mm256_setzero_ps();
        for vi in v {
            mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, vi));
            z = _mm256_add_ps(z, _mm256_mul_ps(vi, _mm256_setzero_ps()));
        }
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), mx);
        let amax = lanes.iter().fold(0f32, |a, &v| a.max(v));
        if _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_UNORD_Q>(z, z)) != 0 {
            non_finite_block(&mut o, b);
            continue;
        }
        let (d, id) = scale_of(amax);
        let idv = _mm256_set1_ps(id);
        let mut s = [0i32; 2];
        for (i, vi) in v.into_iter().enumerate() {
            let q = _mm256_cvtps_epi32(_mm256_mul_ps(vi, idv));
            let mut qi = [0i32; 8];
            _mm256_storeu_si256(qi.as_mut_ptr() as *mut __m256i, q);
            for (k, &qv) in qi.iter().enumerate() {
                o.q[32 * b + 8 * i + k] = qv as i8;
                s[i / 2] += qv;
            }
        }
        o.d[b] = d;
        o.s16[2 * b] = s[0];
        o.s16[2 * b + 1] = s[1];
        o.s32[b] = s[0] + s[1];
        o.sd32[b] = d * (s[0] + s[1]) as f32;
        o.sd16[2 * b] = d * s[0] as f32;
        o.sd16[2 * b + 1] = d * s[1] as f32;
    }
}

fn quantize_row(isa: Isa, x: &[f32], o: RowOut) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` is only constructed for features the CPU has (see `Isa::available`).
        Isa::Amx | Isa::Avx512Vnni | Isa::Avx512Bw => unsafe { quantize_row_avx512(x, o) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { quantize_row_avx2(x, o) },
        _ => quantize_row_scalar(x, o),
    }
}

/// Raw pointers to the output arrays, shared by the threads that fill disjoint rows.
#[derive(Clone, Copy)]
struct Ptrs(*mut i8, *mut f32, *mut i32, *mut f32, *mut i32, *mut f32);
// SAFETY: every thread writes only its own rows.
unsafe impl Send for Ptrs {}
unsafe impl Sync for Ptrs {}

/// Quantizes `x` (`[m][cols]`), in parallel for large `m`.
pub(crate) fn quantize(isa: Isa, x: &[f32], m: usize, cols: usize) -> ActQ {
    assert!(cols.is_multiple_of(32) && x.len() == m * cols);
    let nb = cols / 32;
    let mut a = ActQ {
        cols,
        q: vec![0; m * cols],
        d: vec![0.0; m * nb],
        s32: vec![0; m * nb],
        sd32: vec![0.0; m * nb],
        s16: vec![0; m * 2 * nb],
        sd16: vec![0.0; m * 2 * nb],
    };
    let p = Ptrs(
        a.q.as_mut_ptr(),
        a.d.as_mut_ptr(),
        a.s32.as_mut_ptr(),
        a.sd32.as_mut_ptr(),
        a.s16.as_mut_ptr(),
        a.sd16.as_mut_ptr(),
    );
    let rows = move |r0: usize, r1: usize| {
        let p = p;
        for r in r0..r1 {
            // SAFETY: row r's ranges are disjoint from every other row's and in bounds.
            let o = unsafe {
                RowOut {
                    q: std::slice::from_raw_parts_mut(p.0.add(r * cols), cols),
                    d: std::slice::from_raw_parts_mut(p.1.add(r * nb), nb),
                    s32: std::slice::from_raw_parts_mut(p.2.add(r * nb), nb),
                    sd32: std::slice::from_raw_parts_mut(p.3.add(r * nb), nb),
                    s16: std::slice::from_raw_parts_mut(p.4.add(r * 2 * nb), 2 * nb),
                    sd16: std::slice::from_raw_parts_mut(p.5.add(r * 2 * nb), 2 * nb),
                }
            };
            quantize_row(isa, &x[r * cols..(r + 1) * cols], o);
        }
    };
    if m * cols >= 1 << 15 {
        pool::parallel_for(m, 8, &rows);
    } else {
        rows(0, m);
    }
    a
}
