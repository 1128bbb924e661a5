//! AVX-512 kernels (VNNI, or AVX-512BW emulating `vpdpbusd` with `vpmaddubsw` + `vpmaddwd`).
//!
//! One micro-kernel call computes a 16-row tile against `C` activation rows (C = 8, 4, 2, 1).
//! Per group and step j it loads one 64-byte weight register (unpacking nibbles for the 4-bit
//! formats) and issues `C` dot-product instructions with the 4 activation bytes broadcast from
//! memory (`{1to16}`), so the weight load is amortized over C rows and nothing is reduced
//! horizontally. The integer sum of a group is exact; it is converted once per group and
//! scaled by `d_w (16 lanes) * d_x (broadcast)`, plus `c_w * d_x * sum(q)` for the asymmetric
//! formats. Accumulators: 2C + 4 zmm, well within the 32 registers.
//!
//! The integer accumulators restart every group, so consecutive groups are independent and
//! out-of-order execution overlaps them even at C = 1 (decode); the only loop-carried chain is
//! the float accumulator. In decode (one pass of at most 8 activation rows over each tile) the
//! weights come straight from DRAM, so the kernel also prefetches 2 KB ahead in the tile's
//! stream: ~8% faster at batch 1 than the hardware prefetcher alone, which restarts at every
//! 4 KB page; at batch 8 without it, most samples of a profile sat on a group's first loads.

use super::act::ActQ;
use super::formats::IQ4_U;
use super::pack::{q_off, s_off, sub_scale_off, Kind, Packed, TILE};
use super::scalar::{act_sd, act_sum};
use std::arch::x86_64::*;

/// Activation rows handled per pass over a tile's weights (kept in L2 between tiles).
const MB: usize = 256;

/// Software prefetch distance for the GEMV path, in bytes.
const PF_AHEAD: usize = 2048;

#[inline(always)]
unsafe fn dp<K: Kind, const VNNI: bool>(acc: __m512i, w: __m512i, x: __m512i) -> __m512i {
    if VNNI {
        _mm512_dpbusd_epi32(acc, w, x)
    } else if !K::WIDE {
        let p = _mm512_maddubs_epi16(w, x);
        _mm512_add_epi32(acc, _mm512_madd_epi16(p, _mm512_set1_epi16(1)))
    } else {
        // maddubs saturates at i16: split u into its low 7 bits and its top bit (0 or 128).
        let lo = _mm512_and_si512(w, _mm512_set1_epi8(0x7f));
        let hi = _mm512_and_si512(w, _mm512_set1_epi8(-128));
        let ones = _mm512_set1_epi16(1);
        let a = _mm512_madd_epi16(_mm512_maddubs_epi16(lo, x), ones);
        let b = _mm512_madd_epi16(_mm512_maddubs_epi16(hi, x), ones);
        _mm512_add_epi32(acc, _mm512_add_epi32(a, b))
    }
}

/// Group `g`'s scales `which` (0: `d`, 1: `c`) for the tile's 16 rows.
#[inline(always)]
pub(crate) unsafe fn scales<K: Kind>(tile: *const u8, g: usize, which: usize) -> __m512 {
    let s = tile.add(s_off::<K>(g));
    if K::SUB == 1 {
        _mm512_cvtph_ps(_mm256_loadu_si256(s.add(which * TILE * 2) as *const __m256i))
    } else {
        let ds = _mm512_loadu_ps(s.add(which * TILE * 4) as *const f32);
        let ks = _mm_loadu_si128(s.add(sub_scale_off::<K>(which, g % K::SUB)) as *const __m128i);
        _mm512_mul_ps(ds, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(ks)))
    }
}

/// The high bits of step `k` in a group's bit plane `h`, moved to bit 4 of every byte (a
/// 16-bit shift: the bits it moves across bytes are masked off).
#[inline(always)]
unsafe fn high<K: Kind>(h: __m512i, k: usize) -> __m512i {
    let v = match K::HBITS as usize * k {
        0 => _mm512_slli_epi16::<4>(h),
        1 => _mm512_slli_epi16::<3>(h),
        2 => _mm512_slli_epi16::<2>(h),
        3 => _mm512_slli_epi16::<1>(h),
        4 => h,
        5 => _mm512_srli_epi16::<1>(h),
        6 => _mm512_srli_epi16::<2>(h),
        _ => _mm512_srli_epi16::<3>(h),
    };
    _mm512_and_si512(v, _mm512_set1_epi8((((1 << K::HBITS) - 1) << 4) as i8))
}

/// A 4-bit group's high-bit plane (zero for kinds without one).
#[inline(always)]
pub(crate) unsafe fn high_plane<K: Kind>(grp: *const u8) -> __m512i {
    if K::HBITS > 0 {
        _mm512_loadu_si512(grp.add(K::NIB_BYTES) as *const _)
    } else {
        _mm512_setzero_si512()
    }
}

/// Steps `j` and `j + G/8` of a 4-bit group as u8 weights: nibbles, plus the high bits of the
/// plane `hp`, through the IQ4 table `lut` for the IQ4 kinds (`m4`: 0x0f in every byte).
#[inline(always)]
pub(crate) unsafe fn unpack_step<K: Kind>(
    grp: *const u8,
    hp: __m512i,
    j: usize,
    m4: __m512i,
    lut: __m512i,
) -> (__m512i, __m512i) {
    let p = _mm512_loadu_si512(grp.add(64 * j) as *const _);
    let mut lo = _mm512_and_si512(p, m4);
    let mut hi = _mm512_and_si512(_mm512_srli_epi16(p, 4), m4);
    if K::HBITS > 0 {
        lo = _mm512_or_si512(lo, high::<K>(hp, j));
        hi = _mm512_or_si512(hi, high::<K>(hp, j + K::G / 8));
    }
    if K::LUT {
        lo = _mm512_shuffle_epi8(lut, lo);
        hi = _mm512_shuffle_epi8(lut, hi);
    }
    (lo, hi)
}

/// Folds group `g`'s integer sums `acc` of activation row `row` (the symmetric formats' bias
/// already in) into its float accumulator `f`: `f + cvt(acc) * (dw * dx) [+ cw * d_x sum(x)]`.
/// The VNNI and AMX kernels both end a group here, so they agree bit for bit.
#[inline(always)]
pub(crate) unsafe fn fold_group<K: Kind>(
    f: __m512,
    acc: __m512i,
    dw: __m512,
    cw: __m512,
    a: &ActQ,
    row: usize,
    g: usize,
) -> __m512 {
    let dx = _mm512_set1_ps(*a.d.get_unchecked(row * (a.cols / 32) + g * K::G / 32));
    let f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_mul_ps(dw, dx), f);
    if K::ASYM {
        _mm512_fmadd_ps(cw, _mm512_set1_ps(act_sd::<K>(a, row, g)), f)
    } else {
        f
    }
}

#[inline(always)]
unsafe fn bcast(p: *const i8) -> __m512i {
    _mm512_set1_epi32((p as *const i32).read_unaligned())
}

/// Tile `tile` against activation rows `c0..c0 + C`; writes `nvalid` lanes of each output row.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel<K: Kind, const VNNI: bool, const C: usize>(
    tile: *const u8,
    groups: usize,
    a: &ActQ,
    c0: usize,
    out: *mut f32,
    ldo: usize,
    mask: __mmask16,
    stream: bool,
) {
    let m4 = _mm512_set1_epi8(0x0f);
    // IQ4: index -> level + 128, the 16 bytes repeated in each 128-bit lane.
    let lut = _mm512_broadcast_i32x4(_mm_loadu_si128(IQ4_U.as_ptr() as *const __m128i));
    let mut f = [_mm512_setzero_ps(); C];
    for g in 0..groups {
        let grp = tile.add(q_off::<K>(g));
        if stream {
            // Decode streams the weights from DRAM once: ask for them PF_AHEAD bytes early,
            // a group's share of the stream per group. (Prefetching past the end of the tile
            // is harmless: prefetches never fault.)
            for l in (0..K::BLOCK_BYTES / K::SUB).step_by(64) {
                _mm_prefetch::<_MM_HINT_T0>(grp.add(PF_AHEAD + l) as *const i8);
            }
        }
        let xq: [*const i8; C] =
            std::array::from_fn(|c| a.q.as_ptr().add((c0 + c) * a.cols + g * K::G));
        let mut acc = [_mm512_setzero_si512(); C];
        if !K::ASYM {
            for (c, v) in acc.iter_mut().enumerate() {
                *v = _mm512_set1_epi32(K::BIAS * act_sum::<K>(a, c0 + c, g));
            }
        }
        if K::NIBBLE {
            let hp = high_plane::<K>(grp);
            for j in 0..K::G / 8 {
                let (lo, hi) = unpack_step::<K>(grp, hp, j, m4, lut);
                for c in 0..C {
                    acc[c] = dp::<K, VNNI>(acc[c], lo, bcast(xq[c].add(4 * j)));
                    acc[c] = dp::<K, VNNI>(acc[c], hi, bcast(xq[c].add(K::G / 2 + 4 * j)));
                }
            }
        } else {
            for j in 0..K::G / 4 {
                let w = _mm512_loadu_si512(grp.add(64 * j) as *const _);
                for c in 0..C {
                    acc[c] = dp::<K, VNNI>(acc[c], w, bcast(xq[c].add(4 * j)));
                }
            }
        }
        let dw = scales::<K>(tile, g, 0);
        let cw = if K::ASYM { scales::<K>(tile, g, 1) } else { dw };
        for c in 0..C {
            f[c] = fold_group::<K>(f[c], acc[c], dw, cw, a, c0 + c, g);
        }
    }
    for (c, v) in f.iter().enumerate() {
        _mm512_mask_storeu_ps(out.add((c0 + c) * ldo), mask, *v);
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn drive<K: Kind, const VNNI: bool>(
    p: &Packed,
    a: &ActQ,
    c0: usize,
    c1: usize,
    t0: usize,
    t1: usize,
    out: *mut f32,
    ldo: usize,
) {
    for mb in (c0..c1).step_by(MB) {
        let me = (mb + MB).min(c1);
        for t in t0..t1 {
            let tile = p.tile(t).as_ptr();
            let nvalid = (p.rows - t * TILE).min(TILE);
            let mask = ((1u32 << nvalid) - 1) as __mmask16;
            let o = out.add(t * TILE);
            // At most one 8-row call per tile (decode, batched decode): this pass reads the
            // tile once, straight from DRAM, so prefetch it; larger passes reuse it from cache.
            let stream = me - mb <= 8;
            let mut c = mb;
            while c + 8 <= me {
                kernel::<K, VNNI, 8>(tile, p.groups, a, c, o, ldo, mask, stream);
                c += 8;
            }
            if c + 4 <= me {
                kernel::<K, VNNI, 4>(tile, p.groups, a, c, o, ldo, mask, stream);
                c += 4;
            }
            if c + 2 <= me {
                kernel::<K, VNNI, 2>(tile, p.groups, a, c, o, ldo, mask, stream);
                c += 2;
            }
            if c < me {
                kernel::<K, VNNI, 1>(tile, p.groups, a, c, o, ldo, mask, stream);
            }
        }
    }
}

/// See [`super::scalar::tiles`]; requires AVX-512F/BW/VNNI.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn tiles_vnni<K: Kind>(
    p: &Packed,
    a: &ActQ,
    c0: usize,
    c1: usize,
    t0: usize,
    t1: usize,
    out: *mut f32,
    ldo: usize,
) {
    drive::<K, true>(p, a, c0, c1, t0, t1, out, ldo)
}

/// See [`super::scalar::tiles`]; requires AVX-512F/BW.
#[target_feature(enable = "avx512f,avx512bw")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn tiles_bw<K: Kind>(
    p: &Packed,
    a: &ActQ,
    c0: usize,
    c1: usize,
    t0: usize,
    t1: usize,
    out: *mut f32,
    ldo: usize,
) {
    drive::<K, false>(p, a, c0, c1, t0, t1, out, ldo)
}
