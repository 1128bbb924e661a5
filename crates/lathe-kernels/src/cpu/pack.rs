//! The load-time repacked weight layout shared by every kernel (scalar, AVX2, AVX-512).
//!
//! Rows are cut into *tiles* of 16 (one i32 lane per row in a 512-bit register; the last tile
//! is padded with zero rows). A tile stores its groups (G = 32 weights, 16 for Q2_K, Q3_K and
//! Q6_K) one after the other, so one tile is one contiguous stream that the hardware prefetcher
//! follows. A group is
//!
//! ```text
//! q: G/4 "steps" of 64 bytes; step j holds, for row r, bytes [4r, 4r+4) = u[r][4j..4j+4]
//!    (4-bit kinds: two steps share 64 bytes, low nibbles = step j, high nibbles = step
//!    j + G/8, which for G = 32 is exactly GGUF's "low nibble = element i, high = i + 16")
//! D: 16 scales (f16 for the legacy formats: lossless; f32 for K-quants where d*sc is a product)
//! C: 16 offsets, asymmetric formats only (Q4_1: m, Q4_K: -dmin*m)
//! ```
//!
//! | kind   | formats       | values          | G  | offset          | scales |
//! |--------|---------------|-----------------|----|-----------------|--------|
//! | KQ4_0  | Q4_0          | 4-bit           | 32 | bias -8         | f16    |
//! | KQ4_1  | Q4_1          | 4-bit           | 32 | stored `m`      | f16    |
//! | KQ5_0  | Q5_0          | u8 (0..32)      | 32 | bias -16        | f16    |
//! | KQ5_1  | Q5_1          | u8 (0..32)      | 32 | stored `m`      | f16    |
//! | KQ8_0  | Q8_0          | u8 (q+128)      | 32 | bias -128       | f16    |
//! | KIQ4NL | IQ4_NL        | 4-bit index     | 32 | bias -128       | f16    |
//! | KQ2K   | Q2_K          | 4-bit (0..4)    | 16 | stored -dmin*m  | f32    |
//! | KQ3K   | Q3_K          | 4-bit (0..8)    | 16 | bias -4         | f32    |
//! | KQ4K   | Q4_K          | 4-bit           | 32 | stored -dmin*m  | f32    |
//! | KQ5K   | Q5_K          | u8 (0..32)      | 32 | stored -dmin*m  | f32    |
//! | KQ6K   | Q6_K          | u8 (0..64)      | 16 | bias -32        | f32    |
//! | KIQ4XS | IQ4_XS        | 4-bit index     | 32 | bias -128       | f32    |
//!
//! The IQ4 kinds store the 4-bit index `q` (half the bytes of `T[q] + 128` as u8) and map it
//! to `T[q] + 128` in registers with a 16-entry byte shuffle (`vpshufb`) before the dot
//! product.
//!
//! Why: `vpdpbusd zmm, zmm_w, dword [x]{1to16}` multiplies the 4 weights of each of the 16
//! rows by the same 4 activation bytes (broadcast straight from memory), so one instruction does
//! 16 rows x 4 columns, with no horizontal reduction; a group needs G/4 of them per activation
//! row, and the weight registers are reused across all activation rows of a GEMM tile.
//! Weights are stored unsigned (`u = q + 128` for Q8_0, `T[q] + 128` for IQ4_NL / IQ4_XS,
//! `q + 4 * hbit` for Q3_K, `q` for the others) because `vpdpbusd` wants unsigned x signed;
//! symmetric formats fold `bias * sum(x_q)` into the integer sum. Unpacking reproduces ggml's
//! float expression for every format (`d * (u + bias)` = `d * q`, `d * u + c` with
//! `c = -dmin * m`), hence the bit-identical `unpack`.

use super::formats::{check_shape, decode_row, Group, QuantFormat, IQ4_U};
use half::f16;

/// Rows per tile.
pub(crate) const TILE: usize = 16;

/// Compile-time description of one packed format; kernels are monomorphized over it.
pub(crate) trait Kind: Send + Sync + 'static {
    /// Two 4-bit values per byte (else one u8 per value).
    const NIBBLE: bool;
    /// Weights per group (one scale each).
    const G: usize;
    /// `w = d * u + c` with a stored `c` (else `w = d * (u + BIAS)`).
    const ASYM: bool;
    /// Scales stored as f32 (else f16).
    const F32: bool;
    /// Integer bias of the symmetric formats.
    const BIAS: i32;
    /// Values may exceed 127 (matters for `maddubs`, which saturates i16 pairs).
    const WIDE: bool;
    /// The stored 4-bit values are indices into [`IQ4_U`] (the IQ4 levels + 128).
    const LUT: bool = false;
    const QBYTES: usize = if Self::NIBBLE {
        Self::G * TILE / 2
    } else {
        Self::G * TILE
    };
    const SBYTES: usize = TILE * if Self::F32 { 4 } else { 2 };
    const GROUP_BYTES: usize = Self::QBYTES + Self::SBYTES * (1 + Self::ASYM as usize);
}

macro_rules! kind {
    ($name:ident, $nib:expr, $g:expr, $asym:expr, $f32:expr, $bias:expr, $wide:expr $(, $lut:expr)?) => {
        pub(crate) struct $name;
        impl Kind for $name {
            const NIBBLE: bool = $nib;
            const G: usize = $g;
            const ASYM: bool = $asym;
            const F32: bool = $f32;
            const BIAS: i32 = $bias;
            const WIDE: bool = $wide;
            $(const LUT: bool = $lut;)?
        }
    };
}
kind!(KQ4_0, true, 32, false, false, -8, false);
kind!(KQ4_1, true, 32, true, false, 0, false);
kind!(KQ5_0, false, 32, false, false, -16, false);
kind!(KQ5_1, false, 32, true, false, 0, false);
kind!(KQ8_0, false, 32, false, false, -128, true);
kind!(KQ2K, true, 16, true, true, 0, false);
kind!(KQ3K, true, 16, false, true, -4, false);
kind!(KQ4K, true, 32, true, true, 0, false);
kind!(KQ5K, false, 32, true, true, 0, false);
kind!(KQ6K, false, 16, false, true, -32, false);
kind!(KIQ4NL, true, 32, false, false, -128, true, true);
kind!(KIQ4XS, true, 32, false, true, -128, true, true);

/// Calls `$body` with `$k` bound to the packed kind of `$fmt` (a type alias in scope).
macro_rules! with_kind {
    ($fmt:expr, $k:ident => $body:expr) => {
        match $fmt {
            $crate::cpu::QuantFormat::Q4_0 => {
                type $k = $crate::cpu::pack::KQ4_0;
                $body
            }
            $crate::cpu::QuantFormat::Q4_1 => {
                type $k = $crate::cpu::pack::KQ4_1;
                $body
            }
            $crate::cpu::QuantFormat::Q5_0 => {
                type $k = $crate::cpu::pack::KQ5_0;
                $body
            }
            $crate::cpu::QuantFormat::Q5_1 => {
                type $k = $crate::cpu::pack::KQ5_1;
                $body
            }
            $crate::cpu::QuantFormat::Q8_0 => {
                type $k = $crate::cpu::pack::KQ8_0;
                $body
            }
            $crate::cpu::QuantFormat::IQ4NL => {
                type $k = $crate::cpu::pack::KIQ4NL;
                $body
            }
            $crate::cpu::QuantFormat::Q2K => {
                type $k = $crate::cpu::pack::KQ2K;
                $body
            }
            $crate::cpu::QuantFormat::Q3K => {
                type $k = $crate::cpu::pack::KQ3K;
                $body
            }
            $crate::cpu::QuantFormat::Q4K => {
                type $k = $crate::cpu::pack::KQ4K;
                $body
            }
            $crate::cpu::QuantFormat::Q5K => {
                type $k = $crate::cpu::pack::KQ5K;
                $body
            }
            $crate::cpu::QuantFormat::Q6K => {
                type $k = $crate::cpu::pack::KQ6K;
                $body
            }
            $crate::cpu::QuantFormat::IQ4XS => {
                type $k = $crate::cpu::pack::KIQ4XS;
                $body
            }
            f @ ($crate::cpu::QuantFormat::F32
            | $crate::cpu::QuantFormat::F16
            | $crate::cpu::QuantFormat::BF16) => {
                unreachable!("{f:?} is dense: it has no packed kind")
            }
        }
    };
}
pub(crate) use with_kind;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// A matrix in the packed tile layout.
pub(crate) struct Packed {
    pub rows: usize,
    pub cols: usize,
    pub groups: usize,
    pub tiles: usize,
    pub tile_bytes: usize,
    buf: Vec<Line>,
}

impl Packed {
    pub fn bytes(&self) -> &[u8] {
        let len = self.tiles * self.tile_bytes;
        // SAFETY: Line is 64 plain bytes; the buffer holds at least `len` of them.
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr() as *const u8, len) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        let len = self.tiles * self.tile_bytes;
        // SAFETY: as in `bytes`, and we hold the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.buf.as_mut_ptr() as *mut u8, len) }
    }

    /// The bytes of tile `t` (all of its groups).
    pub fn tile(&self, t: usize) -> &[u8] {
        &self.bytes()[t * self.tile_bytes..(t + 1) * self.tile_bytes]
    }
}

/// Stacks matrices of one format and width along rows (q/k/v or gate/up as one matmul).
/// Every part but the last must fill its tiles (`rows % TILE == 0`); `None` otherwise.
pub(crate) fn concat_rows(parts: &[&Packed]) -> Option<Packed> {
    let first = parts.first()?;
    if parts[..parts.len() - 1].iter().any(|p| p.rows % TILE != 0)
        || parts
            .iter()
            .any(|p| (p.cols, p.tile_bytes) != (first.cols, first.tile_bytes))
    {
        return None;
    }
    let tiles: usize = parts.iter().map(|p| p.tiles).sum();
    let mut out = Packed {
        rows: parts.iter().map(|p| p.rows).sum(),
        cols: first.cols,
        groups: first.groups,
        tiles,
        tile_bytes: first.tile_bytes,
        buf: vec![Line([0; 64]); (tiles * first.tile_bytes).div_ceil(64)],
    };
    let mut at = 0;
    let bytes = out.bytes_mut();
    for p in parts {
        bytes[at..at + p.bytes().len()].copy_from_slice(p.bytes());
        at += p.bytes().len();
    }
    Some(out)
}

/// Byte offset of value `e` of row `r` inside a group's `q` area, and its nibble shift.
#[inline(always)]
pub(crate) fn q_pos<K: Kind>(r: usize, e: usize) -> (usize, u32) {
    if K::NIBBLE {
        let (e, sh) = if e < K::G / 2 {
            (e, 0)
        } else {
            (e - K::G / 2, 4)
        };
        ((e / 4) * 64 + r * 4 + e % 4, sh)
    } else {
        ((e / 4) * 64 + r * 4 + e % 4, 0)
    }
}

/// The unsigned value `e` of row `r` of one packed group.
#[inline(always)]
pub(crate) fn q_get<K: Kind>(grp: &[u8], r: usize, e: usize) -> u8 {
    let (at, sh) = q_pos::<K>(r, e);
    if K::LUT {
        IQ4_U[((grp[at] >> sh) & 0xF) as usize]
    } else if K::NIBBLE {
        (grp[at] >> sh) & 0xF
    } else {
        grp[at]
    }
}

/// Scale `i` (0: D, 1: C) of row `r` of one packed group.
#[inline(always)]
pub(crate) fn scale_get<K: Kind>(grp: &[u8], which: usize, r: usize) -> f32 {
    let at = K::QBYTES + which * K::SBYTES;
    if K::F32 {
        let p = at + 4 * r;
        f32::from_le_bytes([grp[p], grp[p + 1], grp[p + 2], grp[p + 3]])
    } else {
        f16::from_le_bytes([grp[at + 2 * r], grp[at + 2 * r + 1]]).to_f32()
    }
}

fn scale_put<K: Kind>(grp: &mut [u8], which: usize, r: usize, v: f32) {
    let at = K::QBYTES + which * K::SBYTES;
    if K::F32 {
        grp[at + 4 * r..at + 4 * r + 4].copy_from_slice(&v.to_le_bytes());
    } else {
        grp[at + 2 * r..at + 2 * r + 2].copy_from_slice(&f16::from_f32(v).to_le_bytes());
    }
}

/// Repacks GGUF row-major blocks into tiles.
pub(crate) fn pack<K: Kind>(
    format: QuantFormat,
    rows: usize,
    cols: usize,
    data: &[u8],
) -> Result<Packed, String> {
    check_shape(format, rows, cols, data)?;
    debug_assert_eq!(format.group_elems(), K::G);
    let groups = cols / K::G;
    let tiles = rows.div_ceil(TILE);
    let tile_bytes = groups * K::GROUP_BYTES;
    let lines = (tiles * tile_bytes).div_ceil(64);
    let mut p = Packed {
        rows,
        cols,
        groups,
        tiles,
        tile_bytes,
        buf: vec![Line([0; 64]); lines],
    };
    let row_bytes = format.row_bytes(cols);
    let mut dec: Vec<Group> = Vec::with_capacity(groups);
    let bytes = p.bytes_mut();
    for row in 0..rows {
        decode_row(
            format,
            &data[row * row_bytes..(row + 1) * row_bytes],
            &mut dec,
        );
        let (t, r) = (row / TILE, row % TILE);
        for (gi, g) in dec.iter().enumerate() {
            let at = t * tile_bytes + gi * K::GROUP_BYTES;
            let grp = &mut bytes[at..at + K::GROUP_BYTES];
            for e in 0..K::G {
                let (pos, sh) = q_pos::<K>(r, e);
                let v = if K::LUT {
                    IQ4_U.iter().position(|&u| u == g.u[e]).unwrap() as u8
                } else {
                    g.u[e]
                };
                grp[pos] |= v << sh;
            }
            scale_put::<K>(grp, 0, r, g.d);
            if K::ASYM {
                scale_put::<K>(grp, 1, r, g.c);
            }
        }
    }
    Ok(p)
}

/// Dequantizes the packed matrix (identical to the ggml reference, bit for bit).
pub(crate) fn unpack<K: Kind>(p: &Packed) -> Vec<f32> {
    let mut y = vec![0f32; p.rows * p.cols];
    for (row, out) in y.chunks_exact_mut(p.cols).enumerate() {
        unpack_row::<K>(p, row, out);
    }
    y
}

/// Dequantizes row `row` into `out` (`cols` values), as [`unpack`] does.
pub(crate) fn unpack_row<K: Kind>(p: &Packed, row: usize, out: &mut [f32]) {
    let (t, r) = (row / TILE, row % TILE);
    let tile = p.tile(t);
    for gi in 0..p.groups {
        let grp = &tile[gi * K::GROUP_BYTES..(gi + 1) * K::GROUP_BYTES];
        let d = scale_get::<K>(grp, 0, r);
        let out = &mut out[gi * K::G..][..K::G];
        for (e, o) in out.iter_mut().enumerate() {
            let u = q_get::<K>(grp, r, e);
            *o = if K::ASYM {
                u as f32 * d + scale_get::<K>(grp, 1, r)
            } else {
                (u as i32 + K::BIAS) as f32 * d
            };
        }
    }
}
