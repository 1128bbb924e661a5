//! lathe's own CPU matmul: `y = x · Wᵀ` with W in a GGUF tensor format.
//!
//! Why our own: candle's Q4_1 dot product is scalar and its fast x86 paths need `cols % 256
//! == 0`, while the default model (SmolLM2-135M, Q4_1 + Q8_0, hidden 576) has neither.
//!
//! Formats ([`QuantFormat`], GGUF type ids via [`QuantFormat::from_ggml_type`]): Q4_0, Q4_1,
//! Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS (block-quantized) and F32,
//! F16, BF16 (dense). [`QuantMatrix::from_gguf_blocks`] takes the raw tensor bytes of any of
//! them; [`QuantMatrix::from_qtensor`] takes candle's block-quantized `QTensor`s.
//!
//! How, for the block-quantized formats, in four steps (one file each):
//! 1. [`formats`]: the GGUF block layouts and the ggml reference dequantization.
//! 2. `pack`: at load time every format is decoded into 16-row tiles of unsigned 4- or 8-bit
//!    values with one f16/f32 scale (and offset) per row and group (32 weights, 16 for Q2_K,
//!    Q3_K, Q6_K): the layout `vpdpbusd` wants (see pack.rs for the byte map, why, and which
//!    formats share a packed kind; IQ4 keeps its 4-bit indices and the kernels map them to
//!    the non-linear levels `T[q] + 128` with a byte shuffle).
//! 3. `act`: each call quantizes the activations to int8 blocks of 32 (f32 scale + sums).
//! 4. `avx512` / `avx2` / `scalar`: tile kernels that do exact integer dot products per
//!    group and one float update per group, 8 activation rows per weight load (GEMM) or one
//!    (GEMV), spread over threads by `pool` in chunks of tiles (and of rows for tall x).
//!
//! The ISA is chosen at run time ([`Isa::best`]); every path computes the same integer sums,
//! so paths differ only by float rounding. Results differ from `dequantize() · x` by the
//! activation quantization (about 1e-2 relative, like llama.cpp's q8_1).
//!
//! Dense F32 / F16 / BF16 weights (`dense`) are kept in their precision and multiplied in
//! f32 with FMA (F16C / AVX-512 conversion in registers), activations unquantized: relative
//! error ~1e-7, bounded by the f32 accumulation (see dense.rs).
//!
//! [`QuantMatrix::matmul_group`] runs matrices of one width in *different* formats (e.g.
//! q/k in Q5_0 and v in Q8_0) over the same input as one call: one activation quantization,
//! one job list over all their tiles, outputs side by side. Same-format matrices can also be
//! stacked once at load time with [`QuantMatrix::concat_rows`].
//!
//! The rest of a decoder layer's CPU work lives here too, on the same thread pool: f32 paged
//! [`attention`] and the row-wise ops of [`elementwise`], written over the 16-lane vectors of
//! `simd` (AVX-512, AVX2, portable). `crate::ops` calls them for f32 tensors.

mod act;
#[cfg(target_arch = "x86_64")]
mod amx;
pub mod attention;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod dense;
pub mod elementwise;
pub mod formats;
mod grouped;
mod op;
pub(crate) mod pack;
mod pool;
mod scalar;
mod simd;

pub use formats::{dequantize_gguf, QuantFormat, KVALUES_IQ4NL};
pub use op::{QuantGroupMatMul, QuantMatMul};
pub use pool::{num_threads, pool_stalls, set_num_threads};

use dense::Dense;
use pack::{with_kind, Kind, Packed};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

/// The instruction-set paths of the kernels, slowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable Rust, exact integer math.
    Scalar,
    /// AVX2 + FMA + F16C (`vpmaddubsw`-based dot products, 8 rows per register).
    Avx2,
    /// AVX-512F/BW without VNNI (`vpmaddubsw` at 16 rows per register).
    Avx512Bw,
    /// AVX-512 VNNI (`vpdpbusd`).
    Avx512Vnni,
    /// AVX-512 VNNI plus AMX-INT8 tiles for the 16-row blocks of the prompt (GEMM) path.
    Amx,
}

/// Every path, in [`Isa`] order.
const ALL: [Isa; 5] = [
    Isa::Scalar,
    Isa::Avx2,
    Isa::Avx512Bw,
    Isa::Avx512Vnni,
    Isa::Amx,
];

impl Isa {
    /// Whether this CPU can run the path.
    pub fn is_supported(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let avx512 = has!("avx512f") && has!("avx512bw");
            match self {
                Isa::Scalar => true,
                Isa::Avx2 => has!("avx2") && has!("fma") && has!("f16c"),
                Isa::Avx512Bw => avx512,
                Isa::Avx512Vnni => avx512 && has!("avx512vnni"),
                Isa::Amx => avx512 && has!("avx512vnni") && amx::supported(),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Isa::Scalar
        }
    }

    /// Every path this CPU can run, slowest first.
    pub fn available() -> Vec<Isa> {
        ALL.into_iter().filter(|i| i.is_supported()).collect()
    }

    /// The path `matmul` uses: the forced one (see [`force_isa`]) or the fastest available.
    pub fn best() -> Isa {
        match FORCED.load(Ordering::Relaxed) {
            0 => *DETECTED.get_or_init(|| *Self::available().last().unwrap()),
            v => ALL[v as usize - 1],
        }
    }
}

static FORCED: AtomicU8 = AtomicU8::new(0);
static DETECTED: OnceLock<Isa> = OnceLock::new();

/// Forces the path [`QuantMatrix::matmul`] uses (process-wide; `None` restores detection;
/// the dense formats use the AVX-512 kernels for both AVX-512 paths).
/// Meant for tests and benchmarks; panics if the CPU lacks `isa`.
pub fn force_isa(isa: Option<Isa>) {
    let v = match isa {
        None => 0,
        Some(i) => {
            assert!(i.is_supported(), "{i:?} is not supported by this CPU");
            i as u8 + 1
        }
    };
    FORCED.store(v, Ordering::Relaxed);
}

/// A `rows x cols` (out features x in features) weight matrix for lathe's CPU matmul: a
/// block-quantized one repacked into tiles at construction, or a dense F32 / F16 / BF16 one
/// kept in its precision (see `dense.rs`). Both have the same API.
pub struct QuantMatrix {
    format: QuantFormat,
    w: Weights,
}

enum Weights {
    Packed(Packed),
    Dense(Dense),
}

impl std::fmt::Debug for QuantMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "QuantMatrix({:?}, {}x{})",
            self.format,
            self.rows(),
            self.cols()
        )
    }
}

impl QuantMatrix {
    /// Builds from GGUF row-major tensor bytes: `rows * cols / block_elems` blocks of a
    /// quantized format, or `rows * cols` little-endian values of F32 / F16 / BF16.
    pub fn from_gguf_blocks(
        format: QuantFormat,
        rows: usize,
        cols: usize,
        data: &[u8],
    ) -> Result<Self, String> {
        let w = if format.is_dense() {
            Weights::Dense(Dense::from_bytes(format, rows, cols, data)?)
        } else {
            Weights::Packed(with_kind!(format, K => pack::pack::<K>(format, rows, cols, data))?)
        };
        Ok(QuantMatrix { format, w })
    }

    /// Builds from a 2-D candle `QTensor` `[rows, cols]`; `None` for dtypes we do not handle.
    /// Only block-quantized dtypes are taken (F32 / F16 / BF16 tensors give `None`, so
    /// callers keep dense weights on candle's matmul; use [`Self::from_gguf_blocks`] to run
    /// them here).
    pub fn from_qtensor(t: &candle_core::quantized::QTensor) -> candle_core::Result<Option<Self>> {
        use candle_core::quantized::GgmlDType as D;
        let format = match t.dtype() {
            D::Q4_0 => QuantFormat::Q4_0,
            D::Q4_1 => QuantFormat::Q4_1,
            D::Q5_0 => QuantFormat::Q5_0,
            D::Q5_1 => QuantFormat::Q5_1,
            D::Q8_0 => QuantFormat::Q8_0,
            D::Q2K => QuantFormat::Q2K,
            D::Q3K => QuantFormat::Q3K,
            D::Q4K => QuantFormat::Q4K,
            D::Q5K => QuantFormat::Q5K,
            D::Q6K => QuantFormat::Q6K,
            _ => return Ok(None),
        };
        let (rows, cols) = t.shape().dims2()?;
        let data = t.data()?;
        Self::from_gguf_blocks(format, rows, cols, &data)
            .map(Some)
            .map_err(candle_core::Error::msg)
    }

    /// The rows of `parts` stacked into one matrix, so that linears over the same input run
    /// as one matmul (one activation quantization, one thread hand-off). `None` unless all
    /// share format and width and (quantized formats) every part but the last has a multiple
    /// of 16 rows. Parts in different formats: see [`Self::matmul_group`].
    pub fn concat_rows(parts: &[&QuantMatrix]) -> Option<QuantMatrix> {
        let format = parts.first()?.format;
        if parts.iter().any(|p| p.format != format) {
            return None;
        }
        let w = if format.is_dense() {
            let d: Option<Vec<&Dense>> = parts
                .iter()
                .map(|p| match &p.w {
                    Weights::Dense(d) => Some(d),
                    Weights::Packed(_) => None,
                })
                .collect();
            Weights::Dense(Dense::concat_rows(&d?)?)
        } else {
            let packed: Option<Vec<&Packed>> = parts
                .iter()
                .map(|p| match &p.w {
                    Weights::Packed(p) => Some(p),
                    Weights::Dense(_) => None,
                })
                .collect();
            Weights::Packed(pack::concat_rows(&packed?)?)
        };
        Some(QuantMatrix { format, w })
    }

    pub fn format(&self) -> QuantFormat {
        self.format
    }

    /// Output features.
    pub fn rows(&self) -> usize {
        match &self.w {
            Weights::Packed(p) => p.rows,
            Weights::Dense(d) => d.rows,
        }
    }

    /// Input features.
    pub fn cols(&self) -> usize {
        match &self.w {
            Weights::Packed(p) => p.cols,
            Weights::Dense(d) => d.cols,
        }
    }

    fn tiles(&self) -> usize {
        match &self.w {
            Weights::Packed(p) => p.tiles,
            Weights::Dense(d) => d.tiles(),
        }
    }

    /// The weights as f32 `[rows][cols]`, bit-identical to ggml's dequantization.
    pub fn dequantize(&self) -> Vec<f32> {
        match &self.w {
            Weights::Packed(p) => with_kind!(self.format, K => pack::unpack::<K>(p)),
            Weights::Dense(d) => d.dequantize(),
        }
    }

    /// Rows `ids` as f32, one after the other in `out` (`ids.len() * cols` values), exactly
    /// as [`Self::dequantize`] has them: an embedding lookup on the packed weights. Panics on
    /// an id out of range (callers check ids against the vocabulary).
    pub fn dequantize_rows(&self, ids: &[u32], out: &mut [f32]) {
        let cols = self.cols();
        assert_eq!(out.len(), ids.len() * cols, "dequantize_rows: output size");
        for (&id, out) in ids.iter().zip(out.chunks_exact_mut(cols)) {
            let row = id as usize;
            assert!(
                row < self.rows(),
                "row {row} of a {}-row matrix",
                self.rows()
            );
            match &self.w {
                Weights::Packed(p) => {
                    with_kind!(self.format, K => pack::unpack_row::<K>(p, row, out))
                }
                Weights::Dense(d) => d.row(row, out),
            }
        }
    }

    /// `out[m][rows] = x[m][cols] · Wᵀ` on [`Isa::best`], with [`num_threads`] threads.
    pub fn matmul(&self, x: &[f32], m: usize, out: &mut [f32]) {
        self.matmul_with(Isa::best(), x, m, out)
    }

    /// [`Self::matmul`] on a given path (tests compare paths; panics if unsupported).
    pub fn matmul_with(&self, isa: Isa, x: &[f32], m: usize, out: &mut [f32]) {
        Self::matmul_group_with(isa, &[self], x, m, out)
    }

    /// Several matrices of one width (any formats, e.g. q/k in Q5_0 and v in Q8_0) over the
    /// same input as one call: `out[m][Σ rows]` holds each part's outputs side by side, in
    /// order. The activations are quantized once (the int8 blocks do not depend on the
    /// weight format) and one job list on the pool covers every part's tiles, so this costs
    /// one thread hand-off instead of one per part; each output is bit-identical to the
    /// part's own [`Self::matmul`]. Panics if `parts` is empty or the widths differ.
    pub fn matmul_group(parts: &[&QuantMatrix], x: &[f32], m: usize, out: &mut [f32]) {
        Self::matmul_group_with(Isa::best(), parts, x, m, out)
    }

    /// [`Self::matmul_group`] on a given path (panics if unsupported).
    pub fn matmul_group_with(
        isa: Isa,
        parts: &[&QuantMatrix],
        x: &[f32],
        m: usize,
        out: &mut [f32],
    ) {
        assert!(isa.is_supported(), "{isa:?} is not supported by this CPU");
        let cols = parts.first().expect("matmul_group needs a part").cols();
        assert!(
            parts.iter().all(|p| p.cols() == cols),
            "matmul_group: parts of different widths"
        );
        let rows: usize = parts.iter().map(|p| p.rows()).sum();
        assert_eq!(x.len(), m * cols, "x must be [m, cols]");
        assert_eq!(out.len(), m * rows, "out must be [m, rows]");
        if m == 0 || rows == 0 {
            return;
        }
        let quantized = parts.iter().any(|p| matches!(p.w, Weights::Packed(_)));
        let a = quantized.then(|| act::quantize(isa, x, m, cols));
        run_group(isa, parts, a.as_ref(), x, m, rows, out);
    }
}

#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: the work items of one call write disjoint (tile, row-range) parts of the output.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// Splits the output of all `parts` into (activation-row range x tile) work items for the
/// pool: the parts' tiles are numbered one after the other, part j's outputs start at column
/// `Σ_{i<j} rows_i` of `out` (row stride `ldo`). `a` is the quantized `x` (needed when any part
/// is block-quantized).
fn run_group(
    isa: Isa,
    parts: &[&QuantMatrix],
    a: Option<&act::ActQ>,
    x: &[f32],
    m: usize,
    ldo: usize,
    out: &mut [f32],
) {
    let threads = pool::num_threads();
    let tiles: usize = parts.iter().map(|p| p.tiles()).sum();
    let cols = parts[0].cols();
    // Few tiles but many activation rows (e.g. a 49-row matrix in a prompt): also split rows.
    let splits = if tiles >= 4 * threads {
        1
    } else {
        (4 * threads).div_ceil(tiles).min(m.div_ceil(8))
    };
    let rows_per = m.div_ceil(splits);
    let items = tiles * splits;
    // About 6 chunks per thread (each claim moves a cache line between cores); below ~128k
    // multiply-adds (~1 us) one thread is faster than any hand-off.
    let chunk = if tiles * pack::TILE * cols * m < 1 << 17 {
        items
    } else {
        items.div_ceil(6 * threads)
    };
    let o = OutPtr(out.as_mut_ptr());
    let f = move |i0: usize, i1: usize| {
        let o = o;
        for i in i0..i1 {
            let (split, mut t) = (i / tiles, i % tiles);
            let (c0, c1) = (split * rows_per, ((split + 1) * rows_per).min(m));
            if c0 >= c1 {
                continue;
            }
            // The part holding global tile t, and where its outputs start.
            let mut off = 0;
            let mut part = parts[0];
            for p in parts {
                part = p;
                if t < p.tiles() {
                    break;
                }
                t -= p.tiles();
                off += p.rows();
            }
            // SAFETY: `isa` is supported (checked by the caller) and each item writes its own
            // rows of its own tile of its own part; `out` has m * ldo elements.
            unsafe {
                let out = o.0.add(off);
                match &part.w {
                    Weights::Packed(p) => {
                        let a = a.expect("quantized activations");
                        with_kind!(part.format, K => tile_range::<K>(isa, p, a, c0, c1, t, t + 1, out, ldo))
                    }
                    Weights::Dense(d) => d.tile_range(isa, x, c0, c1, t, t + 1, out, ldo),
                }
            }
        }
    };
    pool::parallel_for(items, chunk, &f);
}

#[allow(clippy::too_many_arguments)]
unsafe fn tile_range<K: Kind>(
    isa: Isa,
    p: &Packed,
    a: &act::ActQ,
    c0: usize,
    c1: usize,
    t0: usize,
    t1: usize,
    out: *mut f32,
    ldo: usize,
) {
    if c0 >= c1 {
        return;
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Amx => amx::tiles::<K>(p, a, c0, c1, t0, t1, out, ldo),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni => avx512::tiles_vnni::<K>(p, a, c0, c1, t0, t1, out, ldo),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Bw => avx512::tiles_bw::<K>(p, a, c0, c1, t0, t1, out, ldo),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => avx2::tiles::<K>(p, a, c0, c1, t0, t1, out, ldo),
        _ => scalar::tiles::<K>(p, a, c0, c1, t0, t1, out, ldo),
    }
}
