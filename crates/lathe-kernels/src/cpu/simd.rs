//! 16-lane f32 vectors for the non-matmul CPU kernels (attention, norms, activation), with
//! three implementations: AVX-512 (one `zmm`), AVX2 + FMA (two `ymm`) and portable.
//!
//! Kernels are written once, generic over [`Simd`], as `#[inline(always)]` bodies;
//! [`multiversion!`] inlines them into `#[target_feature]` wrappers and picks one at run time
//! from [`Isa::best`] (so `force_isa` reaches these kernels too). Explicit intrinsics, not
//! auto-vectorization: LLVM turned the same loops over `[f32; 16]` into 2-lane code, and the
//! crate is built for baseline x86-64 anyway.

/// Lanes of a vector.
pub(crate) const L: usize = 16;

/// A 16-lane f32 vector and the operations the kernels need.
pub(crate) trait Simd: Copy + 'static {
    type V: Copy;
    fn splat(x: f32) -> Self::V;
    /// The first 16 elements of `s`.
    fn load(s: &[f32]) -> Self::V;
    /// Into the first 16 elements of `s`.
    fn store(v: Self::V, s: &mut [f32]);
    /// 16 values at `p` (raw-pointer loads for the dense matmul's inner loop: no bounds or
    /// debug checks there).
    ///
    /// # Safety
    /// `p` must be valid for 16 reads.
    unsafe fn load_ptr(p: *const f32) -> Self::V;
    /// 16 values at `p`, widened to f32 (exact). F16C is needed on the AVX2 path.
    ///
    /// # Safety
    /// As [`Simd::load_ptr`].
    unsafe fn load_f16(p: *const half::f16) -> Self::V;
    /// 16 values at `p`, widened to f32 (exact).
    ///
    /// # Safety
    /// As [`Simd::load_ptr`].
    unsafe fn load_bf16(p: *const half::bf16) -> Self::V;
    /// `a · b + c`, fused on the FMA paths.
    fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    fn add(a: Self::V, b: Self::V) -> Self::V;
    fn mul(a: Self::V, b: Self::V) -> Self::V;
    fn div(a: Self::V, b: Self::V) -> Self::V;
    fn sum(v: Self::V) -> f32;
    /// `e^x` per lane (see [`exp`]).
    fn exp(v: Self::V) -> Self::V;
    /// Scalar multiply-add with the same rounding as [`Simd::fma`].
    fn fma1(a: f32, b: f32, c: f32) -> f32;
}

/// Defines `fn $name(args)` that runs `$imp::<S: Simd>(args)` compiled for the best
/// available ISA (an `#[inline(always)]` body inlined into a target-feature wrapper).
macro_rules! multiversion {
    ($(#[$m:meta])* fn $name:ident($($a:ident: $t:ty),* $(,)?) => $imp:ident) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        fn $name($($a: $t),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v512($($a: $t),*) {
                    $imp::<$crate::cpu::simd::Avx512>($($a),*)
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v256($($a: $t),*) {
                    $imp::<$crate::cpu::simd::Avx2>($($a),*)
                }
                use $crate::cpu::Isa;
                match Isa::best() {
                    // SAFETY: `Isa::best` only returns paths this CPU supports.
                    Isa::Amx | Isa::Avx512Vnni | Isa::Avx512Bw => return unsafe { v512($($a),*) },
                    Isa::Avx2 => return unsafe { v256($($a),*) },
                    Isa::Scalar => {}
                }
            }
            $imp::<$crate::cpu::simd::Plain>($($a),*)
        }
    };
}
pub(crate) use multiversion;

const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23: adding it rounds to an integer
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;
const EXP_LO: f32 = -87.0;
const EXP_HI: f32 = 88.3;
/// exp(r) on |r| <= ln2/2, Taylor degree 6 (Horner, highest first).
const POLY: [f32; 7] = [
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
    1.0,
    1.0,
];

/// `e^x`: range reduction by `ln 2` and a degree-6 polynomial on `|r| <= ln2/2` (relative
/// error ~2e-7). Below -87 it returns 0 (so masked `-inf` logits weigh nothing), NaN stays
/// NaN, above 88.3 it saturates. Every [`Simd::exp`] computes exactly these steps per lane.
#[inline(always)]
pub(crate) fn exp1<S: Simd>(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    if x < EXP_LO {
        return 0.0;
    }
    let c = x.min(EXP_HI);
    let t = S::fma1(c, std::f32::consts::LOG2_E, MAGIC);
    let n = t - MAGIC;
    let r = S::fma1(-n, LN2_LO, S::fma1(-n, LN2_HI, c));
    let p = POLY[1..].iter().fold(POLY[0], |p, &k| S::fma1(p, r, k));
    let ni = t.to_bits() as i32 - MAGIC.to_bits() as i32;
    p * f32::from_bits(((ni + 127) << 23) as u32)
}

/// Portable lanes: plain arrays, scalar math (`a * b + c`: a libm `fmaf` call would be slower
/// than the whole loop on CPUs without FMA).
#[derive(Clone, Copy)]
pub(crate) struct Plain;

impl Simd for Plain {
    type V = [f32; L];
    #[inline(always)]
    fn splat(x: f32) -> Self::V {
        [x; L]
    }
    #[inline(always)]
    fn load(s: &[f32]) -> Self::V {
        s[..L].try_into().unwrap()
    }
    #[inline(always)]
    fn store(v: Self::V, s: &mut [f32]) {
        s[..L].copy_from_slice(&v)
    }
    #[inline(always)]
    unsafe fn load_ptr(p: *const f32) -> Self::V {
        std::array::from_fn(|l| *p.add(l))
    }
    #[inline(always)]
    unsafe fn load_f16(p: *const half::f16) -> Self::V {
        std::array::from_fn(|l| (*p.add(l)).to_f32())
    }
    #[inline(always)]
    unsafe fn load_bf16(p: *const half::bf16) -> Self::V {
        std::array::from_fn(|l| f32::from_bits(((*p.add(l)).to_bits() as u32) << 16))
    }
    #[inline(always)]
    fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        std::array::from_fn(|l| a[l] * b[l] + c[l])
    }
    #[inline(always)]
    fn add(a: Self::V, b: Self::V) -> Self::V {
        std::array::from_fn(|l| a[l] + b[l])
    }
    #[inline(always)]
    fn mul(a: Self::V, b: Self::V) -> Self::V {
        std::array::from_fn(|l| a[l] * b[l])
    }
    #[inline(always)]
    fn div(a: Self::V, b: Self::V) -> Self::V {
        std::array::from_fn(|l| a[l] / b[l])
    }
    #[inline(always)]
    fn sum(v: Self::V) -> f32 {
        let h: [f32; 8] = std::array::from_fn(|l| v[l] + v[l + 8]);
        let q: [f32; 4] = std::array::from_fn(|l| h[l] + h[l + 4]);
        (q[0] + q[2]) + (q[1] + q[3])
    }
    #[inline(always)]
    fn exp(v: Self::V) -> Self::V {
        v.map(exp1::<Plain>)
    }
    #[inline(always)]
    fn fma1(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The intrinsics are only reached through `multiversion!`, whose wrappers enable the
    //! features; every `unsafe` below relies on that.
    use super::*;
    use std::arch::x86_64::*;

    #[derive(Clone, Copy)]
    pub(crate) struct Avx512;

    impl Simd for Avx512 {
        type V = __m512;
        #[inline(always)]
        fn splat(x: f32) -> __m512 {
            unsafe { _mm512_set1_ps(x) }
        }
        #[inline(always)]
        fn load(s: &[f32]) -> __m512 {
            assert!(s.len() >= L);
            unsafe { _mm512_loadu_ps(s.as_ptr()) }
        }
        #[inline(always)]
        fn store(v: __m512, s: &mut [f32]) {
            assert!(s.len() >= L);
            unsafe { _mm512_storeu_ps(s.as_mut_ptr(), v) }
        }
        #[inline(always)]
        unsafe fn load_ptr(p: *const f32) -> __m512 {
            _mm512_loadu_ps(p)
        }
        #[inline(always)]
        unsafe fn load_f16(p: *const half::f16) -> __m512 {
            _mm512_cvtph_ps(_mm256_loadu_si256(p as *const __m256i))
        }
        #[inline(always)]
        unsafe fn load_bf16(p: *const half::bf16) -> __m512 {
            let h = _mm512_cvtepu16_epi32(_mm256_loadu_si256(p as *const __m256i));
            _mm512_castsi512_ps(_mm512_slli_epi32::<16>(h))
        }
        #[inline(always)]
        fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
            unsafe { _mm512_fmadd_ps(a, b, c) }
        }
        #[inline(always)]
        fn add(a: __m512, b: __m512) -> __m512 {
            unsafe { _mm512_add_ps(a, b) }
        }
        #[inline(always)]
        fn mul(a: __m512, b: __m512) -> __m512 {
            unsafe { _mm512_mul_ps(a, b) }
        }
        #[inline(always)]
        fn div(a: __m512, b: __m512) -> __m512 {
            unsafe { _mm512_div_ps(a, b) }
        }
        #[inline(always)]
        fn sum(v: __m512) -> f32 {
            unsafe {
                let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
                sum8(_mm256_add_ps(_mm512_castps512_ps256(v), hi))
            }
        }
        #[inline(always)]
        fn exp(x: __m512) -> __m512 {
            unsafe {
                let c = _mm512_min_ps(
                    _mm512_max_ps(x, _mm512_set1_ps(EXP_LO)),
                    _mm512_set1_ps(EXP_HI),
                );
                let t = _mm512_fmadd_ps(
                    c,
                    _mm512_set1_ps(std::f32::consts::LOG2_E),
                    _mm512_set1_ps(MAGIC),
                );
                let n = _mm512_sub_ps(t, _mm512_set1_ps(MAGIC));
                let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), c);
                let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
                let mut p = _mm512_set1_ps(POLY[0]);
                for &k in &POLY[1..] {
                    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(k));
                }
                let ni = _mm512_sub_epi32(
                    _mm512_castps_si512(t),
                    _mm512_set1_epi32(MAGIC.to_bits() as i32),
                );
                let scale = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(
                    ni,
                    _mm512_set1_epi32(127),
                )));
                let y = _mm512_mul_ps(p, scale);
                // x < -87 (and -inf) -> 0; NaN -> x.
                let small = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_set1_ps(EXP_LO));
                let y = _mm512_mask_blend_ps(small, y, _mm512_setzero_ps());
                let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x);
                _mm512_mask_blend_ps(nan, y, x)
            }
        }
        #[inline(always)]
        fn fma1(a: f32, b: f32, c: f32) -> f32 {
            a.mul_add(b, c)
        }
    }

    #[derive(Clone, Copy)]
    pub(crate) struct Avx2;

    impl Simd for Avx2 {
        type V = [__m256; 2];
        #[inline(always)]
        fn splat(x: f32) -> Self::V {
            unsafe { [_mm256_set1_ps(x); 2] }
        }
        #[inline(always)]
        fn load(s: &[f32]) -> Self::V {
            assert!(s.len() >= L);
            unsafe {
                [
                    _mm256_loadu_ps(s.as_ptr()),
                    _mm256_loadu_ps(s.as_ptr().add(8)),
                ]
            }
        }
        #[inline(always)]
        fn store(v: Self::V, s: &mut [f32]) {
            assert!(s.len() >= L);
            unsafe {
                _mm256_storeu_ps(s.as_mut_ptr(), v[0]);
                _mm256_storeu_ps(s.as_mut_ptr().add(8), v[1]);
            }
        }
        #[inline(always)]
        unsafe fn load_ptr(p: *const f32) -> Self::V {
            [_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))]
        }
        /// Needs F16C on top of AVX2 (part of [`crate::cpu::Isa::Avx2`]).
        #[inline(always)]
        unsafe fn load_f16(p: *const half::f16) -> Self::V {
            let p = p as *const __m128i;
            [
                _mm256_cvtph_ps(_mm_loadu_si128(p)),
                _mm256_cvtph_ps(_mm_loadu_si128(p.add(1))),
            ]
        }
        #[inline(always)]
        unsafe fn load_bf16(p: *const half::bf16) -> Self::V {
            let p = p as *const __m128i;
            let w =
                |v: __m128i| _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(v)));
            [w(_mm_loadu_si128(p)), w(_mm_loadu_si128(p.add(1)))]
        }
        #[inline(always)]
        fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V {
            unsafe {
                [
                    _mm256_fmadd_ps(a[0], b[0], c[0]),
                    _mm256_fmadd_ps(a[1], b[1], c[1]),
                ]
            }
        }
        #[inline(always)]
        fn add(a: Self::V, b: Self::V) -> Self::V {
            unsafe { [_mm256_add_ps(a[0], b[0]), _mm256_add_ps(a[1], b[1])] }
        }
        #[inline(always)]
        fn mul(a: Self::V, b: Self::V) -> Self::V {
            unsafe { [_mm256_mul_ps(a[0], b[0]), _mm256_mul_ps(a[1], b[1])] }
        }
        #[inline(always)]
        fn div(a: Self::V, b: Self::V) -> Self::V {
            unsafe { [_mm256_div_ps(a[0], b[0]), _mm256_div_ps(a[1], b[1])] }
        }
        #[inline(always)]
        fn sum(v: Self::V) -> f32 {
            unsafe { sum8(_mm256_add_ps(v[0], v[1])) }
        }
        #[inline(always)]
        fn exp(v: Self::V) -> Self::V {
            unsafe { [exp8(v[0]), exp8(v[1])] }
        }
        #[inline(always)]
        fn fma1(a: f32, b: f32, c: f32) -> f32 {
            a.mul_add(b, c)
        }
    }

    /// Lane 0 + … + 7 as `((0+4) + (2+6)) + ((1+5) + (3+7))`: the tree of `Plain::sum`.
    #[inline(always)]
    unsafe fn sum8(s: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }

    #[inline(always)]
    unsafe fn exp8(x: __m256) -> __m256 {
        let c = _mm256_min_ps(
            _mm256_max_ps(x, _mm256_set1_ps(EXP_LO)),
            _mm256_set1_ps(EXP_HI),
        );
        let t = _mm256_fmadd_ps(
            c,
            _mm256_set1_ps(std::f32::consts::LOG2_E),
            _mm256_set1_ps(MAGIC),
        );
        let n = _mm256_sub_ps(t, _mm256_set1_ps(MAGIC));
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), c);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
        let mut p = _mm256_set1_ps(POLY[0]);
        for &k in &POLY[1..] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(k));
        }
        let ni = _mm256_sub_epi32(
            _mm256_castps_si256(t),
            _mm256_set1_epi32(MAGIC.to_bits() as i32),
        );
        let scale = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
            ni,
            _mm256_set1_epi32(127),
        )));
        let y = _mm256_mul_ps(p, scale);
        let small = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(EXP_LO));
        let y = _mm256_andnot_ps(small, y);
        let nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x);
        _mm256_blendv_ps(y, x, nan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate_and_handles_edges() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            worst = worst.max(((exp1::<Plain>(x) as f64 - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 5e-7, "relative error {worst}");
        assert_eq!(exp1::<Plain>(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp1::<Plain>(-100.0), 0.0);
        assert_eq!(exp1::<Plain>(0.0), 1.0);
        assert!(exp1::<Plain>(f32::NAN).is_nan());
        assert!(exp1::<Plain>(100.0).is_finite());
    }
}
