//! Plain-Rust f32 code compiled three times: for AVX-512, for AVX2 + FMA and portable.
//!
//! The non-matmul CPU kernels (attention, norms, rope, activation) are written once over
//! fixed-width `[f32; 16]` lanes, which LLVM vectorizes reliably; [`multiversion!`] inlines
//! that body into `#[target_feature]` wrappers and picks one at run time from [`Isa::best`]
//! (so `force_isa` reaches these kernels too). The crate itself is built for baseline x86-64,
//! where the same loops would only get SSE2.

/// Multiply-add: fused on the FMA paths, `a * b + c` on the portable one (a libm `fmaf` call
/// there would be slower than the whole loop).
pub(crate) trait Fma: Copy + 'static {
    fn fma(a: f32, b: f32, c: f32) -> f32;
}

#[derive(Clone, Copy)]
pub(crate) struct Fused;
#[derive(Clone, Copy)]
pub(crate) struct Plain;

impl Fma for Fused {
    #[inline(always)]
    fn fma(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

impl Fma for Plain {
    #[inline(always)]
    fn fma(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// Defines `fn $name(args)` that runs `$imp::<M: Fma>(args)` compiled for the
/// best available ISA (an `#[inline(always)]` body inlined into a target-feature wrapper).
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
                    $imp::<$crate::cpu::simd::Fused>($($a),*)
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v256($($a: $t),*) {
                    $imp::<$crate::cpu::simd::Fused>($($a),*)
                }
                use $crate::cpu::Isa;
                match Isa::best() {
                    // SAFETY: `Isa::best` only returns paths this CPU supports.
                    Isa::Avx512Vnni | Isa::Avx512Bw => return unsafe { v512($($a),*) },
                    Isa::Avx2 => return unsafe { v256($($a),*) },
                    Isa::Scalar => {}
                }
            }
            $imp::<$crate::cpu::simd::Plain>($($a),*)
        }
    };
}
pub(crate) use multiversion;

/// Lanes of the fixed-width loops.
pub(crate) const L: usize = 16;

/// `e^x`, branch-free so that a loop over lanes vectorizes: range reduction by `ln 2` and a
/// degree-6 Taylor polynomial on `|r| <= ln2/2` (relative error ~2e-7). Below -87 it returns
/// 0 (so masked `-inf` logits weigh nothing), NaN stays NaN, above 88.3 it saturates.
#[inline(always)]
pub(crate) fn exp<M: Fma>(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23: adding it rounds to an integer
    let c = x.clamp_fast(-87.0, 88.3);
    let t = M::fma(c, std::f32::consts::LOG2_E, MAGIC);
    let n = t - MAGIC;
    let r = M::fma(n, -0.693_145_75, c);
    let r = M::fma(n, -1.428_606_8e-6, r);
    let mut p = 1.0 / 720.0;
    p = M::fma(p, r, 1.0 / 120.0);
    p = M::fma(p, r, 1.0 / 24.0);
    p = M::fma(p, r, 1.0 / 6.0);
    p = M::fma(p, r, 0.5);
    p = M::fma(p, r, 1.0);
    p = M::fma(p, r, 1.0);
    let ni = t.to_bits() as i32 - MAGIC.to_bits() as i32;
    let y = p * f32::from_bits(((ni + 127) << 23) as u32);
    let y = if x < -87.0 { 0.0 } else { y };
    if x.is_nan() {
        x
    } else {
        y
    }
}

/// `min`/`max` without NaN handling (the caller deals with NaN): plain compares vectorize.
trait ClampFast {
    fn clamp_fast(self, lo: f32, hi: f32) -> f32;
}

impl ClampFast for f32 {
    #[inline(always)]
    fn clamp_fast(self, lo: f32, hi: f32) -> f32 {
        let v = if self < lo { lo } else { self };
        if v > hi {
            hi
        } else {
            v
        }
    }
}

/// Sum of squares with 16 independent accumulators (vectorizes; lower rounding error).
#[inline(always)]
pub(crate) fn sum_sq<M: Fma>(x: &[f32]) -> f32 {
    let mut acc = [0f32; L];
    let mut chunks = x.chunks_exact(L);
    for c in &mut chunks {
        for l in 0..L {
            acc[l] = M::fma(c[l], c[l], acc[l]);
        }
    }
    let mut s: f32 = acc.iter().sum();
    for &v in chunks.remainder() {
        s = M::fma(v, v, s);
    }
    s
}

/// `y += a · x`.
#[inline(always)]
pub(crate) fn axpy<M: Fma>(y: &mut [f32], a: f32, x: &[f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = M::fma(a, x, *y);
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
            for y in [exp::<Plain>(x), exp::<Fused>(x)] {
                let want = (x as f64).exp();
                worst = worst.max(((y as f64 - want) / want).abs());
            }
            x += 0.0137;
        }
        assert!(worst < 5e-7, "relative error {worst}");
        assert_eq!(exp::<Plain>(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp::<Plain>(-100.0), 0.0);
        assert_eq!(exp::<Plain>(0.0), 1.0);
        assert!(exp::<Plain>(f32::NAN).is_nan());
        assert!(exp::<Plain>(100.0).is_finite());
    }
}
