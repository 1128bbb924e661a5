//! Dense F32 / F16 / BF16 weights: `y = x · Wᵀ` in f32, straight from the stored rows.
//!
//! The weights stay in their GGUF precision (row-major `[rows][cols]`, 2 bytes per value for
//! F16 / BF16) and are widened in registers: F16 by F16C / AVX-512 `vcvtph2ps`, BF16 by a
//! 16-bit shift (both exact), then multiplied into f32 accumulators with FMA. Activations are
//! not quantized. One micro-kernel keeps `R x C` accumulators of 16 lanes (R weight rows x C
//! activation rows; AVX-512: 4 x 4 zmm for GEMM, AVX2: 2 x 2 ymm pairs, both 4 x 1 for GEMV),
//! so each weight load is reused C times and each activation load R times; lane sums are
//! reduced once per output and the `cols % 16` tail is added in scalar. Work is split over the
//! pool in 16-row tiles, like the packed formats (see `run_group` in mod.rs).
//!
//! Every path sums each output as 16 lane-wise partial sums over `cols / 16` steps, then the
//! lanes as a fixed tree, then the tail in order, so paths differ only by FMA fusion (the
//! portable path rounds the product separately). The error against an exact (f64) product is
//! bounded by about `(cols / 16 + 5) · 2^-24 · Σ|w x|`.

use super::formats::{check_shape, QuantFormat};
use super::pack::TILE;
use super::simd::{Plain, Simd, L};
use super::Isa;
use half::{bf16, f16};

/// A stored value type of a dense matrix.
pub(crate) trait Elem: Copy + Send + Sync + 'static {
    fn to_f32(self) -> f32;
    /// 16 values at `p`, widened.
    ///
    /// # Safety
    /// `p` must be valid for 16 reads (and the ISA of `S` enabled).
    unsafe fn load<S: Simd>(p: *const Self) -> S::V;
}

impl Elem for f32 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    unsafe fn load<S: Simd>(p: *const f32) -> S::V {
        S::load_ptr(p)
    }
}

impl Elem for f16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    #[inline(always)]
    unsafe fn load<S: Simd>(p: *const f16) -> S::V {
        S::load_f16(p)
    }
}

impl Elem for bf16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f32::from_bits((self.to_bits() as u32) << 16)
    }
    #[inline(always)]
    unsafe fn load<S: Simd>(p: *const bf16) -> S::V {
        S::load_bf16(p)
    }
}

/// The stored weights, `[rows][cols]`.
pub(crate) enum Data {
    F32(Vec<f32>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
}

/// A dense `rows x cols` weight matrix.
pub(crate) struct Dense {
    pub rows: usize,
    pub cols: usize,
    data: Data,
}

impl Dense {
    /// From GGUF little-endian bytes (`rows * cols` values of `format`).
    pub fn from_bytes(
        format: QuantFormat,
        rows: usize,
        cols: usize,
        bytes: &[u8],
    ) -> Result<Dense, String> {
        check_shape(format, rows, cols, bytes)?;
        let data = match format {
            QuantFormat::F32 => Data::F32(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            ),
            QuantFormat::F16 => Data::F16(
                bytes
                    .chunks_exact(2)
                    .map(|b| f16::from_le_bytes([b[0], b[1]]))
                    .collect(),
            ),
            QuantFormat::BF16 => Data::BF16(
                bytes
                    .chunks_exact(2)
                    .map(|b| bf16::from_le_bytes([b[0], b[1]]))
                    .collect(),
            ),
            f => return Err(format!("{f:?} is not a dense format")),
        };
        Ok(Dense { rows, cols, data })
    }

    /// 16-row tiles (the unit of work on the pool).
    pub fn tiles(&self) -> usize {
        self.rows.div_ceil(TILE)
    }

    /// The weights as f32 `[rows][cols]` (exact).
    pub fn dequantize(&self) -> Vec<f32> {
        match &self.data {
            Data::F32(v) => v.clone(),
            Data::F16(v) => v.iter().map(|w| w.to_f32()).collect(),
            Data::BF16(v) => v.iter().map(|w| Elem::to_f32(*w)).collect(),
        }
    }

    /// Row `row` as f32 into `out` (`cols` values, exact).
    pub fn row(&self, row: usize, out: &mut [f32]) {
        let at = row * self.cols..(row + 1) * self.cols;
        match &self.data {
            Data::F32(v) => out.copy_from_slice(&v[at]),
            Data::F16(v) => out
                .iter_mut()
                .zip(&v[at])
                .for_each(|(o, w)| *o = w.to_f32()),
            Data::BF16(v) => out
                .iter_mut()
                .zip(&v[at])
                .for_each(|(o, w)| *o = Elem::to_f32(*w)),
        }
    }

    /// `parts` stacked along rows; `None` unless they share the stored type and width.
    pub fn concat_rows(parts: &[&Dense]) -> Option<Dense> {
        let first = parts.first()?;
        let cols = first.cols;
        let rows = parts.iter().map(|p| p.rows).sum();
        if parts.iter().any(|p| p.cols != cols) {
            return None;
        }
        macro_rules! cat {
            ($v:ident) => {{
                let mut out = Vec::with_capacity(rows * cols);
                for p in parts {
                    let Data::$v(d) = &p.data else { return None };
                    out.extend_from_slice(d);
                }
                Data::$v(out)
            }};
        }
        let data = match first.data {
            Data::F32(_) => cat!(F32),
            Data::F16(_) => cat!(F16),
            Data::BF16(_) => cat!(BF16),
        };
        Some(Dense { rows, cols, data })
    }

    /// `out[c * ldo + r] = x[c] · w[r]` for activation rows `c0..c1` and the rows of tiles
    /// `t0..t1`.
    ///
    /// # Safety
    /// `isa` must be supported; `x` holds at least `c1` rows of `cols`; `out` points to
    /// `c1 * ldo` writable floats (`ldo >= rows`) that no one else writes for these rows.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn tile_range(
        &self,
        isa: Isa,
        x: &[f32],
        c0: usize,
        c1: usize,
        t0: usize,
        t1: usize,
        out: *mut f32,
        ldo: usize,
    ) {
        debug_assert!(x.len() >= c1 * self.cols && ldo >= self.rows);
        let (r0, r1) = (t0 * TILE, (t1 * TILE).min(self.rows));
        let j = Job {
            cols: self.cols,
            x,
            c0,
            c1,
            r0,
            r1,
            out,
            ldo,
        };
        match &self.data {
            Data::F32(w) => drive_isa(isa, w, j),
            Data::F16(w) => drive_isa(isa, w, j),
            Data::BF16(w) => drive_isa(isa, w, j),
        }
    }
}

/// One call's rectangle: weight rows `r0..r1` x activation rows `c0..c1`.
#[derive(Clone, Copy)]
struct Job<'a> {
    cols: usize,
    x: &'a [f32],
    c0: usize,
    c1: usize,
    r0: usize,
    r1: usize,
    out: *mut f32,
    ldo: usize,
}

unsafe fn drive_isa<E: Elem>(isa: Isa, w: &[E], j: Job) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Amx | Isa::Avx512Vnni | Isa::Avx512Bw => drive_avx512(w, j),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => drive_avx2(w, j),
        _ => drive::<Plain, E, 2, 2>(w, j),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
unsafe fn drive_avx512<E: Elem>(w: &[E], j: Job) {
    drive::<super::simd::Avx512, E, 4, 4>(w, j)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn drive_avx2<E: Elem>(w: &[E], j: Job) {
    drive::<super::simd::Avx2, E, 2, 2>(w, j)
}

/// Blocks of `RG x CG` (GEMM), `4 x 1` (the last activation rows, GEMV) and `1 x _` tails.
#[inline(always)]
unsafe fn drive<S: Simd, E: Elem, const RG: usize, const CG: usize>(w: &[E], j: Job) {
    let mut c = j.c0;
    while c + CG <= j.c1 {
        let mut r = j.r0;
        while r + RG <= j.r1 {
            block::<S, E, RG, CG>(w, &j, r, c);
            r += RG;
        }
        while r < j.r1 {
            block::<S, E, 1, CG>(w, &j, r, c);
            r += 1;
        }
        c += CG;
    }
    while c < j.c1 {
        let mut r = j.r0;
        while r + 4 <= j.r1 {
            block::<S, E, 4, 1>(w, &j, r, c);
            r += 4;
        }
        while r < j.r1 {
            block::<S, E, 1, 1>(w, &j, r, c);
            r += 1;
        }
        c += 1;
    }
}

/// Outputs `[c0, c0 + C) x [r0, r0 + R)`.
#[inline(always)]
unsafe fn block<S: Simd, E: Elem, const R: usize, const C: usize>(
    w: &[E],
    j: &Job,
    r0: usize,
    c0: usize,
) {
    // Raw pointers in the loop: slice indexing (even `get_unchecked`, whose debug checks
    // the dev profile keeps) made LLVM spill the accumulators.
    let cols = j.cols;
    let main = cols / L * L;
    let mut acc = [[S::splat(0.0); C]; R];
    let wrow: [*const E; R] = std::array::from_fn(|r| w.as_ptr().add((r0 + r) * cols));
    let xrow: [*const f32; C] = std::array::from_fn(|c| j.x.as_ptr().add((c0 + c) * cols));
    let mut k = 0;
    while k < main {
        let xv: [S::V; C] = std::array::from_fn(|c| S::load_ptr(xrow[c].add(k)));
        for r in 0..R {
            let wv = E::load::<S>(wrow[r].add(k));
            for c in 0..C {
                acc[r][c] = S::fma(wv, xv[c], acc[r][c]);
            }
        }
        k += L;
    }
    for r in 0..R {
        for c in 0..C {
            let mut s = S::sum(acc[r][c]);
            for k in main..cols {
                s = S::fma1((*wrow[r].add(k)).to_f32(), *xrow[c].add(k), s);
            }
            *j.out.add((c0 + c) * j.ldo + r0 + r) = s;
        }
    }
}
