//! AVX2 + FMA + F16C kernels: the AVX-512 scheme at half width. A 16-row tile is processed
//! as two halves of 8 rows (bytes 0..32 and 32..64 of every 64-byte step, which is exactly
//! rows 0..8 and 8..16 of the packed layout), `vpdpbusd` is emulated with `vpmaddubsw` +
//! `vpmaddwd`, and at most 4 activation rows share a weight load (16 ymm registers only).

use super::act::ActQ;
use super::formats::IQ4_U;
use super::pack::{q_off, s_off, sub_scale_off, Kind, Packed, TILE};
use super::scalar::{act_sd, act_sum};
use std::arch::x86_64::*;

const MB: usize = 256;

#[inline(always)]
unsafe fn dp<K: Kind>(acc: __m256i, w: __m256i, x: __m256i) -> __m256i {
    let ones = _mm256_set1_epi16(1);
    if !K::WIDE {
        _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), ones))
    } else {
        // maddubs saturates at i16: split u into its low 7 bits and its top bit (0 or 128).
        let lo = _mm256_and_si256(w, _mm256_set1_epi8(0x7f));
        let hi = _mm256_and_si256(w, _mm256_set1_epi8(-128));
        let a = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, x), ones);
        let b = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, x), ones);
        _mm256_add_epi32(acc, _mm256_add_epi32(a, b))
    }
}

/// Group `g`'s scales `which` (0: `d`, 1: `c`) for rows `8h..8h+8` of the tile.
#[inline(always)]
unsafe fn scales<K: Kind>(tile: *const u8, g: usize, which: usize, h: usize) -> __m256 {
    let s = tile.add(s_off::<K>(g));
    if K::SUB == 1 {
        _mm256_cvtph_ps(_mm_loadu_si128(
            s.add(which * TILE * 2 + 16 * h) as *const __m128i
        ))
    } else {
        let ds = _mm256_loadu_ps(s.add(which * TILE * 4 + 32 * h) as *const f32);
        let at = s.add(sub_scale_off::<K>(which, g % K::SUB) + 8 * h);
        let ks = _mm_loadl_epi64(at as *const __m128i);
        _mm256_mul_ps(ds, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(ks)))
    }
}

/// The high bits of step `k` in (half of) a group's bit plane `h`, moved to bit 4 of every
/// byte (a 16-bit shift: the bits it moves across bytes are masked off).
#[inline(always)]
unsafe fn high<K: Kind>(h: __m256i, k: usize) -> __m256i {
    let v = match K::HBITS as usize * k {
        0 => _mm256_slli_epi16::<4>(h),
        1 => _mm256_slli_epi16::<3>(h),
        2 => _mm256_slli_epi16::<2>(h),
        3 => _mm256_slli_epi16::<1>(h),
        4 => h,
        5 => _mm256_srli_epi16::<1>(h),
        6 => _mm256_srli_epi16::<2>(h),
        _ => _mm256_srli_epi16::<3>(h),
    };
    _mm256_and_si256(v, _mm256_set1_epi8((((1 << K::HBITS) - 1) << 4) as i8))
}

#[inline(always)]
unsafe fn bcast(p: *const i8) -> __m256i {
    _mm256_set1_epi32((p as *const i32).read_unaligned())
}

/// Rows `8h..8h+8` of `tile` against activation rows `c0..c0 + C`; writes `nvalid` lanes.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel<K: Kind, const C: usize>(
    tile: *const u8,
    h: usize,
    groups: usize,
    a: &ActQ,
    c0: usize,
    out: *mut f32,
    ldo: usize,
    nvalid: usize,
) {
    let nb = a.cols / 32;
    let m4 = _mm256_set1_epi8(0x0f);
    // IQ4: index -> level + 128, the 16 bytes repeated in both 128-bit lanes.
    let lut = _mm256_broadcastsi128_si256(_mm_loadu_si128(IQ4_U.as_ptr() as *const __m128i));
    let mut f = [_mm256_setzero_ps(); C];
    for g in 0..groups {
        let grp = tile.add(q_off::<K>(g));
        let xq: [*const i8; C] =
            std::array::from_fn(|c| a.q.as_ptr().add((c0 + c) * a.cols + g * K::G));
        let mut acc = [_mm256_setzero_si256(); C];
        if !K::ASYM {
            for (c, v) in acc.iter_mut().enumerate() {
                *v = _mm256_set1_epi32(K::BIAS * act_sum::<K>(a, c0 + c, g));
            }
        }
        if K::NIBBLE {
            let hp = if K::HBITS > 0 {
                _mm256_loadu_si256(grp.add(K::NIB_BYTES + 32 * h) as *const _)
            } else {
                _mm256_setzero_si256()
            };
            for j in 0..K::G / 8 {
                let p = _mm256_loadu_si256(grp.add(64 * j + 32 * h) as *const _);
                let mut lo = _mm256_and_si256(p, m4);
                let mut hi = _mm256_and_si256(_mm256_srli_epi16(p, 4), m4);
                if K::HBITS > 0 {
                    lo = _mm256_or_si256(lo, high::<K>(hp, j));
                    hi = _mm256_or_si256(hi, high::<K>(hp, j + K::G / 8));
                }
                if K::LUT {
                    lo = _mm256_shuffle_epi8(lut, lo);
                    hi = _mm256_shuffle_epi8(lut, hi);
                }
                for c in 0..C {
                    acc[c] = dp::<K>(acc[c], lo, bcast(xq[c].add(4 * j)));
                    acc[c] = dp::<K>(acc[c], hi, bcast(xq[c].add(K::G / 2 + 4 * j)));
                }
            }
        } else {
            for j in 0..K::G / 4 {
                let w = _mm256_loadu_si256(grp.add(64 * j + 32 * h) as *const _);
                for c in 0..C {
                    acc[c] = dp::<K>(acc[c], w, bcast(xq[c].add(4 * j)));
                }
            }
        }
        let dw = scales::<K>(tile, g, 0, h);
        let cw = if K::ASYM {
            scales::<K>(tile, g, 1, h)
        } else {
            dw
        };
        for c in 0..C {
            let row = (c0 + c) * nb;
            let dx = _mm256_set1_ps(*a.d.get_unchecked(row + g * K::G / 32));
            f[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[c]), _mm256_mul_ps(dw, dx), f[c]);
            if K::ASYM {
                let sd = _mm256_set1_ps(act_sd::<K>(a, c0 + c, g));
                f[c] = _mm256_fmadd_ps(cw, sd, f[c]);
            }
        }
    }
    for (c, v) in f.iter().enumerate() {
        let o = out.add((c0 + c) * ldo + 8 * h);
        if nvalid >= 8 {
            _mm256_storeu_ps(o, *v);
        } else {
            let mut tmp = [0f32; 8];
            _mm256_storeu_ps(tmp.as_mut_ptr(), *v);
            std::ptr::copy_nonoverlapping(tmp.as_ptr(), o, nvalid);
        }
    }
}

/// See [`super::scalar::tiles`]; requires AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn tiles<K: Kind>(
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
            let o = out.add(t * TILE);
            for h in 0..2 {
                if nvalid <= 8 * h {
                    break;
                }
                let nv = nvalid - 8 * h;
                let mut c = mb;
                while c + 4 <= me {
                    kernel::<K, 4>(tile, h, p.groups, a, c, o, ldo, nv);
                    c += 4;
                }
                if c + 2 <= me {
                    kernel::<K, 2>(tile, h, p.groups, a, c, o, ldo, nv);
                    c += 2;
                }
                if c < me {
                    kernel::<K, 1>(tile, h, p.groups, a, c, o, ldo, nv);
                }
            }
        }
    }
}
