//! The load-time repacked weight layout shared by every kernel (scalar, AVX2, AVX-512).
//!
//! Rows are cut into *tiles* of 16 (one i32 lane per row in a 512-bit register; the last tile
//! is padded with zero rows). A tile is one contiguous stream that the hardware prefetcher
//! follows: its *blocks* one after the other, a block being `SUB` groups' values and then
//! their scales. A group (G = 32 weights, 16 for Q2_K, Q3_K and Q6_K) stores
//!
//! ```text
//! q: G/4 "steps" of 64 bytes; step j holds, for row r, bytes [4r, 4r+4) = u[r][4j..4j+4]
//!    (4-bit kinds: two steps share 64 bytes, low nibbles = step j, high nibbles = step
//!    j + G/8, which for G = 32 is exactly GGUF's "low nibble = element i, high = i + 16")
//! h: 5- and 6-bit kinds only: the bits above the nibble, 64 bytes: byte 4r + i holds, at
//!    bits [HBITS*j, HBITS*(j+1)), the high bits of u[r][4j + i]
//! ```
//!
//! Scales: the legacy formats (one f16 scale per 32 weights in GGUF) have blocks of one group
//! followed by `D` = 16 f16 scales and, asymmetric formats only, `C` = 16 f16 offsets. The
//! K-quants' blocks are their 256-weight super-blocks (SUB = 8 or 16 groups): after the values
//! come `DS` = 16 f32 super-scales (`d` of each row), `CS` = 16 f32 (`-dmin`, asymmetric only),
//! then one i8 sub-scale per group and row (`KS`, SUB x 16 bytes) and `KC` likewise; a group's
//! `d = DS * KS`, `c = CS * KC`, the same f32 products ggml forms (exact: 11 x 8 bits).
//!
//! | kind   | formats       | values          | G  | offset          | bits/weight (GGUF) |
//! |--------|---------------|-----------------|----|-----------------|--------------------|
//! | KQ4_0  | Q4_0          | 4-bit           | 32 | bias -8         | 4.5 (4.5)          |
//! | KQ4_1  | Q4_1          | 4-bit           | 32 | stored `m`      | 5 (5)              |
//! | KQ5_0  | Q5_0          | 4 + 1 bits      | 32 | bias -16        | 5.5 (5.5)          |
//! | KQ5_1  | Q5_1          | 4 + 1 bits      | 32 | stored `m`      | 6 (6)              |
//! | KQ8_0  | Q8_0          | u8 (q+128)      | 32 | bias -128       | 8.5 (8.5)          |
//! | KIQ4NL | IQ4_NL        | 4-bit index     | 32 | bias -128       | 4.5 (4.5)          |
//! | KQ2K   | Q2_K          | 4-bit (0..4)    | 16 | -dmin * m       | 5.25 (2.625)       |
//! | KQ3K   | Q3_K          | 4-bit (0..8)    | 16 | bias -4         | 4.625 (3.4375)     |
//! | KQ4K   | Q4_K          | 4-bit           | 32 | -dmin * m       | 4.75 (4.5)         |
//! | KQ5K   | Q5_K          | 4 + 1 bits      | 32 | -dmin * m       | 5.75 (5.5)         |
//! | KQ6K   | Q6_K          | 4 + 2 bits      | 16 | bias -32        | 6.625 (6.5625)     |
//! | KIQ4XS | IQ4_XS        | 4-bit index     | 32 | bias -128       | 4.375 (4.25)       |
//!
//! Decode streams every weight byte from DRAM once per step, so the bytes per weight are the
//! speed limit there: hence the bit planes and the integer sub-scales (an f32 scale per group
//! and row would cost Q4_K 6 bits/weight, one byte per 6-bit value Q6_K 10).
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
    /// Values stored as nibbles (plus `HBITS` high bits in a plane); else one u8 per value.
    const NIBBLE: bool;
    /// Weights per group (one scale each).
    const G: usize;
    /// `w = d * u + c` with a stored `c` (else `w = d * (u + BIAS)`).
    const ASYM: bool;
    /// Groups per block: 1 (f16 scales per group) or a K-quant super-block's groups (f32
    /// super-scales times i8 sub-scales).
    const SUB: usize;
    /// Integer bias of the symmetric formats.
    const BIAS: i32;
    /// Values may exceed 127 (matters for `maddubs`, which saturates i16 pairs).
    const WIDE: bool;
    /// The stored 4-bit values are indices into [`IQ4_U`] (the IQ4 levels + 128).
    const LUT: bool = false;
    /// Bits above the nibble (5-bit kinds 1, Q6_K 2), in a 64-byte plane after the nibbles.
    const HBITS: u32 = 0;
    /// Bytes of a group's nibbles (or u8 values).
    const NIB_BYTES: usize = if Self::NIBBLE {
        Self::G * TILE / 2
    } else {
        Self::G * TILE
    };
    /// Bytes of a group's values (nibbles and high-bit plane).
    const QBYTES: usize = Self::NIB_BYTES + if Self::HBITS > 0 { 64 } else { 0 };
    /// Scale sets per group: `d`, and `c` for the asymmetric formats.
    const NSCALES: usize = 1 + Self::ASYM as usize;
    /// Bytes of a block's scales.
    const SBYTES: usize = if Self::SUB == 1 {
        Self::NSCALES * TILE * 2
    } else {
        Self::NSCALES * (TILE * 4 + Self::SUB * TILE)
    };
    const BLOCK_BYTES: usize = Self::SUB * Self::QBYTES + Self::SBYTES;
}

macro_rules! kind {
    ($name:ident, $nib:expr, $g:expr, $asym:expr, $sub:expr, $bias:expr, $wide:expr
     $(, lut = $lut:expr)? $(, hbits = $hb:expr)?) => {
        pub(crate) struct $name;
        impl Kind for $name {
            const NIBBLE: bool = $nib;
            const G: usize = $g;
            const ASYM: bool = $asym;
            const SUB: usize = $sub;
            const BIAS: i32 = $bias;
            const WIDE: bool = $wide;
            $(const LUT: bool = $lut;)?
            $(const HBITS: u32 = $hb;)?
        }
    };
}
kind!(KQ4_0, true, 32, false, 1, -8, false);
kind!(KQ4_1, true, 32, true, 1, 0, false);
kind!(KQ5_0, true, 32, false, 1, -16, false, hbits = 1);
kind!(KQ5_1, true, 32, true, 1, 0, false, hbits = 1);
kind!(KQ8_0, false, 32, false, 1, -128, true);
kind!(KQ2K, true, 16, true, 16, 0, false);
kind!(KQ3K, true, 16, false, 16, -4, false);
kind!(KQ4K, true, 32, true, 8, 0, false);
kind!(KQ5K, true, 32, true, 8, 0, false, hbits = 1);
kind!(KQ6K, true, 16, false, 16, -32, false, hbits = 2);
kind!(KIQ4NL, true, 32, false, 1, -128, true, lut = true);
kind!(KIQ4XS, true, 32, false, 8, -128, true, lut = true);

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

/// Offset of group `g`'s values inside its tile.
#[inline(always)]
pub(crate) fn q_off<K: Kind>(g: usize) -> usize {
    (g / K::SUB) * K::BLOCK_BYTES + (g % K::SUB) * K::QBYTES
}

/// Offset of the scales of group `g`'s block inside its tile.
#[inline(always)]
pub(crate) fn s_off<K: Kind>(g: usize) -> usize {
    (g / K::SUB) * K::BLOCK_BYTES + K::SUB * K::QBYTES
}

/// Offset, from a K-quant block's scales, of the i8 sub-scales `which` (0: KS, 1: KC) of
/// its group `sub` (16 rows).
#[inline(always)]
pub(crate) fn sub_scale_off<K: Kind>(which: usize, sub: usize) -> usize {
    K::NSCALES * TILE * 4 + (which * K::SUB + sub) * TILE
}

/// Byte offset of value `e` of row `r` inside a group's nibbles (or u8 values), and its
/// nibble shift.
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

/// Byte offset of value `e` of row `r` in a group's high-bit plane, and its bit shift.
#[inline(always)]
fn h_pos<K: Kind>(r: usize, e: usize) -> (usize, u32) {
    (K::NIB_BYTES + r * 4 + e % 4, K::HBITS * (e / 4) as u32)
}

/// The unsigned value `e` of row `r` of group `g` of a tile.
#[inline(always)]
pub(crate) fn q_get<K: Kind>(tile: &[u8], g: usize, r: usize, e: usize) -> u8 {
    let grp = &tile[q_off::<K>(g)..];
    let (at, sh) = q_pos::<K>(r, e);
    if !K::NIBBLE {
        return grp[at];
    }
    let mut v = (grp[at] >> sh) & 0xF;
    if K::HBITS > 0 {
        let (hat, hsh) = h_pos::<K>(r, e);
        v |= ((grp[hat] >> hsh) & ((1 << K::HBITS) - 1)) << 4;
    }
    if K::LUT {
        IQ4_U[v as usize]
    } else {
        v
    }
}

/// Scale `which` (0: `d`, 1: `c`) of row `r` of group `g` of a tile.
#[inline(always)]
pub(crate) fn scale_get<K: Kind>(tile: &[u8], g: usize, which: usize, r: usize) -> f32 {
    let s = &tile[s_off::<K>(g)..];
    if K::SUB == 1 {
        let p = which * TILE * 2 + 2 * r;
        f16::from_le_bytes([s[p], s[p + 1]]).to_f32()
    } else {
        let p = which * TILE * 4 + 4 * r;
        let ds = f32::from_le_bytes([s[p], s[p + 1], s[p + 2], s[p + 3]]);
        ds * s[sub_scale_off::<K>(which, g % K::SUB) + r] as i8 as f32
    }
}

/// Stores group `g`'s scales of row `r` into its tile.
fn scales_put<K: Kind>(tile: &mut [u8], g: usize, r: usize, grp: &Group) {
    let s = &mut tile[s_off::<K>(g)..];
    if K::SUB == 1 {
        for (which, v) in [grp.d, grp.c].into_iter().take(K::NSCALES).enumerate() {
            let p = which * TILE * 2 + 2 * r;
            s[p..p + 2].copy_from_slice(&f16::from_f32(v).to_le_bytes());
        }
        return;
    }
    let (sup, sub) = ([grp.ds, grp.cs], [grp.ks, grp.kc]);
    for which in 0..K::NSCALES {
        let p = which * TILE * 4 + 4 * r;
        // Every group of a block comes from one GGUF super-block: one super-scale per row.
        debug_assert!(g.is_multiple_of(K::SUB) || s[p..p + 4] == sup[which].to_le_bytes());
        s[p..p + 4].copy_from_slice(&sup[which].to_le_bytes());
        s[sub_scale_off::<K>(which, g % K::SUB) + r] = sub[which] as u8;
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
    const { assert!(K::HBITS == 0 || (K::NIBBLE && K::HBITS as usize * K::G / 4 == 8)) };
    let groups = cols / K::G;
    debug_assert_eq!(groups % K::SUB, 0, "K-quant rows are whole super-blocks");
    let tiles = rows.div_ceil(TILE);
    let tile_bytes = groups / K::SUB * K::BLOCK_BYTES;
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
        let tile = &mut bytes[t * tile_bytes..(t + 1) * tile_bytes];
        for (gi, g) in dec.iter().enumerate() {
            let grp = &mut tile[q_off::<K>(gi)..][..K::QBYTES];
            for e in 0..K::G {
                let (pos, sh) = q_pos::<K>(r, e);
                let v = if K::LUT {
                    IQ4_U.iter().position(|&u| u == g.u[e]).unwrap() as u8
                } else {
                    g.u[e]
                };
                if !K::NIBBLE {
                    grp[pos] = v;
                    continue;
                }
                grp[pos] |= (v & 0xF) << sh;
                if K::HBITS > 0 {
                    let (hpos, hsh) = h_pos::<K>(r, e);
                    grp[hpos] |= (v >> 4) << hsh;
                }
            }
            scales_put::<K>(tile, gi, r, g);
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
        let d = scale_get::<K>(tile, gi, 0, r);
        let out = &mut out[gi * K::G..][..K::G];
        for (e, o) in out.iter_mut().enumerate() {
            let u = q_get::<K>(tile, gi, r, e);
            *o = if K::ASYM {
                u as f32 * d + scale_get::<K>(tile, gi, 1, r)
            } else {
                (u as i32 + K::BIAS) as f32 * d
            };
        }
    }
}
