//! lathe's own CPU quantized matmul: `y = x · Wᵀ` with W in a GGUF block format.
//!
//! Why our own: candle's Q4_1 dot product is scalar and its fast x86 paths need `cols % 256
//! == 0`, while the default model (SmolLM2-135M, Q4_1 + Q8_0, hidden 576) has neither.
//!
//! How, in four steps (one file each):
//! 1. [`formats`]: the GGUF block layouts and the ggml reference dequantization.
//! 2. `pack`: at load time every format is decoded into 16-row tiles of unsigned 4- or 8-bit
//!    values with one f16/f32 scale (and offset) per row and group: the layout `vpdpbusd`
//!    wants (see pack.rs for the byte map and why).
//! 3. `act`: each call quantizes the activations to int8 blocks of 32 (f32 scale + sums).
//! 4. `avx512` / `avx2` / `scalar`: tile kernels that do exact integer dot products per
//!    group and one float update per group, 8 activation rows per weight load (GEMM) or one
//!    (GEMV), spread over threads by `pool` in chunks of tiles (and of rows for tall x).
//!
//! The ISA is chosen at run time ([`Isa::best`]); every path computes the same integer sums,
//! so paths differ only by float rounding. Results differ from `dequantize() · x` by the
//! activation quantization (about 1e-2 relative, like llama.cpp's q8_1).
//!
//! The rest of a decoder layer's CPU work lives here too, on the same thread pool: f32 paged
//! [`attention`] and the row-wise ops of [`elementwise`], written over the 16-lane vectors of
//! `simd` (AVX-512, AVX2, portable). `crate::ops` calls them for f32 tensors.

mod act;
pub mod attention;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod elementwise;
pub mod formats;
mod op;
pub(crate) mod pack;
mod pool;
mod scalar;
mod simd;

pub use formats::{dequantize_gguf, QuantFormat};
pub use op::QuantMatMul;
pub use pool::{num_threads, set_num_threads};

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
}

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
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Isa::Scalar
        }
    }

    /// Every path this CPU can run, slowest first.
    pub fn available() -> Vec<Isa> {
        [Isa::Scalar, Isa::Avx2, Isa::Avx512Bw, Isa::Avx512Vnni]
            .into_iter()
            .filter(|i| i.is_supported())
            .collect()
    }

    /// The path `matmul` uses: the forced one (see [`force_isa`]) or the fastest available.
    pub fn best() -> Isa {
        match FORCED.load(Ordering::Relaxed) {
            0 => *DETECTED.get_or_init(|| *Self::available().last().unwrap()),
            v => [Isa::Scalar, Isa::Avx2, Isa::Avx512Bw, Isa::Avx512Vnni][v as usize - 1],
        }
    }
}

static FORCED: AtomicU8 = AtomicU8::new(0);
static DETECTED: OnceLock<Isa> = OnceLock::new();

/// Forces the path [`QuantMatrix::matmul`] uses (process-wide; `None` restores detection).
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

/// A `rows x cols` (out features x in features) quantized weight matrix, repacked for the
/// kernels at construction.
pub struct QuantMatrix {
    format: QuantFormat,
    packed: Packed,
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
    /// Builds from GGUF row-major block bytes (`rows * cols / block_elems` blocks).
    pub fn from_gguf_blocks(
        format: QuantFormat,
        rows: usize,
        cols: usize,
        data: &[u8],
    ) -> Result<Self, String> {
        let packed = with_kind!(format, K => pack::pack::<K>(format, rows, cols, data))?;
        Ok(QuantMatrix { format, packed })
    }

    /// Builds from a 2-D candle `QTensor` `[rows, cols]`; `None` for dtypes we do not handle.
    pub fn from_qtensor(t: &candle_core::quantized::QTensor) -> candle_core::Result<Option<Self>> {
        use candle_core::quantized::GgmlDType as D;
        let format = match t.dtype() {
            D::Q4_0 => QuantFormat::Q4_0,
            D::Q4_1 => QuantFormat::Q4_1,
            D::Q5_0 => QuantFormat::Q5_0,
            D::Q5_1 => QuantFormat::Q5_1,
            D::Q8_0 => QuantFormat::Q8_0,
            D::Q4K => QuantFormat::Q4K,
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
    /// share format and width and every part but the last has a multiple of 16 rows.
    pub fn concat_rows(parts: &[&QuantMatrix]) -> Option<QuantMatrix> {
        let format = parts.first()?.format;
        if parts.iter().any(|p| p.format != format) {
            return None;
        }
        let packed: Vec<&Packed> = parts.iter().map(|p| &p.packed).collect();
        Some(QuantMatrix {
            format,
            packed: pack::concat_rows(&packed)?,
        })
    }

    pub fn format(&self) -> QuantFormat {
        self.format
    }

    /// Output features.
    pub fn rows(&self) -> usize {
        self.packed.rows
    }

    /// Input features.
    pub fn cols(&self) -> usize {
        self.packed.cols
    }

    /// The weights as f32 `[rows][cols]`, bit-identical to ggml's dequantization.
    pub fn dequantize(&self) -> Vec<f32> {
        with_kind!(self.format, K => pack::unpack::<K>(&self.packed))
    }

    /// `out[m][rows] = x[m][cols] · Wᵀ` on [`Isa::best`], with [`num_threads`] threads.
    pub fn matmul(&self, x: &[f32], m: usize, out: &mut [f32]) {
        self.matmul_with(Isa::best(), x, m, out)
    }

    /// [`Self::matmul`] on a given path (tests compare paths; panics if unsupported).
    pub fn matmul_with(&self, isa: Isa, x: &[f32], m: usize, out: &mut [f32]) {
        let (rows, cols) = (self.rows(), self.cols());
        assert!(isa.is_supported(), "{isa:?} is not supported by this CPU");
        assert_eq!(x.len(), m * cols, "x must be [m, cols]");
        assert_eq!(out.len(), m * rows, "out must be [m, rows]");
        if m == 0 || rows == 0 {
            return;
        }
        let a = act::quantize(isa, x, m, cols);
        with_kind!(self.format, K => run::<K>(isa, &self.packed, &a, m, out));
    }
}

#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: the work items of one call write disjoint (tile, row-range) parts of the output.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// Splits the output into (activation-row range x tile range) work items for the pool.
fn run<K: Kind>(isa: Isa, p: &Packed, a: &act::ActQ, m: usize, out: &mut [f32]) {
    let threads = pool::num_threads();
    // Few tiles but many activation rows (e.g. a 49-row matrix in a prompt): also split rows.
    let parts = if p.tiles >= 4 * threads {
        1
    } else {
        (4 * threads).div_ceil(p.tiles).min(m.div_ceil(8))
    };
    let rows_per = m.div_ceil(parts);
    let items = p.tiles * parts;
    // About 6 chunks per thread (each claim moves a cache line between cores); below ~128k
    // multiply-adds (~1 us) one thread is faster than any hand-off.
    let chunk = if p.tiles * pack::TILE * p.cols * m < 1 << 17 {
        items
    } else {
        items.div_ceil(6 * threads)
    };
    let o = OutPtr(out.as_mut_ptr());
    let f = move |i0: usize, i1: usize| {
        let o = o;
        for i in i0..i1 {
            let (part, t) = (i / p.tiles, i % p.tiles);
            let (c0, c1) = (part * rows_per, ((part + 1) * rows_per).min(m));
            // SAFETY: `isa` is supported (checked by the caller) and each item writes its own
            // rows of its own tile; `out` has m * rows elements.
            unsafe { tile_range::<K>(isa, p, a, c0, c1, t, t + 1, o.0) };
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
) {
    if c0 >= c1 {
        return;
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni => avx512::tiles_vnni::<K>(p, a, c0, c1, t0, t1, out),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Bw => avx512::tiles_bw::<K>(p, a, c0, c1, t0, t1, out),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => avx2::tiles::<K>(p, a, c0, c1, t0, t1, out),
        _ => scalar::tiles::<K>(p, a, c0, c1, t0, t1, out),
    }
}
