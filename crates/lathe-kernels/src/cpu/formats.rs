//! GGUF block layouts and their reference dequantization.
//!
//! Every format stores a row of `cols` weights as `cols / block_elems()` consecutive blocks
//! (row-major over the matrix, no padding between rows):
//!
//! | format | id | elems | bytes | layout (little endian)                                        | weight              |
//! |--------|----|-------|-------|---------------------------------------------------------------|---------------------|
//! | F32    | 0  | 1     | 4     | `f32`                                                         | as is               |
//! | F16    | 1  | 1     | 2     | `f16`                                                         | as is               |
//! | BF16   | 30 | 1     | 2     | `bf16`                                                        | as is               |
//! | Q4_0   | 2  | 32    | 18    | `d: f16, qs: [u8; 16]` lo nibble = elem i, hi = i + 16        | `d * (q - 8)`       |
//! | Q4_1   | 3  | 32    | 20    | `d: f16, m: f16, qs: [u8; 16]` nibbles as Q4_0                | `d * q + m`         |
//! | Q5_0   | 6  | 32    | 22    | `d: f16, qh: u32, qs: [u8; 16]` bit j of qh = bit 4 of j      | `d * (q - 16)`      |
//! | Q5_1   | 7  | 32    | 24    | `d: f16, m: f16, qh: u32, qs: [u8; 16]`                       | `d * q + m`         |
//! | Q8_0   | 8  | 32    | 34    | `d: f16, qs: [i8; 32]`                                        | `d * q`             |
//! | Q2_K   | 10 | 256   | 84    | `scales: [u8; 16], qs: [u8; 64], d, dmin: f16`                | `d*sc*q - dmin*m`   |
//! | Q3_K   | 11 | 256   | 110   | `hmask: [u8; 32], qs: [u8; 64], scales: [u8; 12], d: f16`     | `d*(sc-32)*(q-4)`   |
//! | Q4_K   | 12 | 256   | 144   | `d, dmin: f16, scales: [u8; 12], qs: [u8; 128]`               | `d*sc*q - dmin*m`   |
//! | Q5_K   | 13 | 256   | 176   | `d, dmin: f16, scales: [u8; 12], qh: [u8; 32], qs: [u8; 128]` | `d*sc*q - dmin*m`   |
//! | Q6_K   | 14 | 256   | 210   | `ql: [u8; 128], qh: [u8; 64], scales: [i8; 16], d: f16`       | `d * sc * (q-32)`   |
//! | IQ4_NL | 20 | 32    | 18    | `d: f16, qs: [u8; 16]` nibbles as Q4_0                        | `d * T[q]`          |
//! | IQ4_XS | 23 | 256   | 136   | `d: f16, scales_h: u16, scales_l: [u8; 4], qs: [u8; 128]`     | `d * (ls-32) * T[q]`|
//!
//! (`id` is the GGUF/ggml type id, see [`QuantFormat::from_ggml_type`].) Q2_K has sixteen
//! 16-element sub-blocks with 4-bit scale / min pairs and 2-bit quants; Q3_K sixteen with
//! 6-bit scales (packed in 12 bytes) and 3-bit quants (2 low bits in `qs`, the third in
//! `hmask`; a clear bit means `q - 4`); Q4_K and Q5_K eight 32-element sub-blocks with 6-bit
//! scale / min pairs packed in `scales` (Q5_K adds a fifth bit per weight in `qh`); Q6_K
//! sixteen 16-element sub-blocks with i8 scales; IQ4_NL / IQ4_XS map 4-bit indices through the
//! non-linear table `T` = [`KVALUES_IQ4NL`] (IQ4_XS with eight 32-element sub-blocks and 6-bit
//! scales `ls`). [`decode_row`] splits any quantized row into *groups* (32 elements, 16 for
//! Q2_K, Q3_K and Q6_K) each described by unsigned values `u` and one affine map
//! `w = d * u + c` (or `d * (u + bias)` for the symmetric formats; IQ4 decodes to
//! `u = T[q] + 128` with bias -128, like Q8_0, and is packed as its 4-bit indices), which is
//! all the packed kernels need. F32 / F16 / BF16 are
//! dense: they are not decoded but multiplied as they are (`dense.rs`). [`dequantize_gguf`] is
//! the independent, ggml-identical reference.

use half::{bf16, f16};

/// ggml's `kvalues_iq4nl`: the 16 levels of IQ4_NL and IQ4_XS.
pub const KVALUES_IQ4NL: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// The GGUF tensor formats lathe's CPU kernels understand: block-quantized ones (repacked
/// into tiles) and dense F32 / F16 / BF16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuantFormat {
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
    IQ4NL,
    IQ4XS,
    F32,
    F16,
    BF16,
}

impl QuantFormat {
    /// Every format, in GGUF type-id order.
    pub const ALL: [QuantFormat; 15] = [
        Self::F32,
        Self::F16,
        Self::Q4_0,
        Self::Q4_1,
        Self::Q5_0,
        Self::Q5_1,
        Self::Q8_0,
        Self::Q2K,
        Self::Q3K,
        Self::Q4K,
        Self::Q5K,
        Self::Q6K,
        Self::IQ4NL,
        Self::IQ4XS,
        Self::BF16,
    ];

    /// The format of a GGUF tensor of ggml type `id` (`ggml_type` in ggml.h), `None` for the
    /// types lathe has no kernel for.
    pub fn from_ggml_type(id: u32) -> Option<QuantFormat> {
        Some(match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            6 => Self::Q5_0,
            7 => Self::Q5_1,
            8 => Self::Q8_0,
            10 => Self::Q2K,
            11 => Self::Q3K,
            12 => Self::Q4K,
            13 => Self::Q5K,
            14 => Self::Q6K,
            20 => Self::IQ4NL,
            23 => Self::IQ4XS,
            30 => Self::BF16,
            _ => return None,
        })
    }

    /// The ggml type id (inverse of [`Self::from_ggml_type`]).
    pub fn ggml_type(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q4_1 => 3,
            Self::Q5_0 => 6,
            Self::Q5_1 => 7,
            Self::Q8_0 => 8,
            Self::Q2K => 10,
            Self::Q3K => 11,
            Self::Q4K => 12,
            Self::Q5K => 13,
            Self::Q6K => 14,
            Self::IQ4NL => 20,
            Self::IQ4XS => 23,
            Self::BF16 => 30,
        }
    }

    /// llama.cpp's name of the type (`ggml_type_name`): "Q4_K", "IQ4_XS", "BF16", ...
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "F32",
            Self::F16 => "F16",
            Self::Q4_0 => "Q4_0",
            Self::Q4_1 => "Q4_1",
            Self::Q5_0 => "Q5_0",
            Self::Q5_1 => "Q5_1",
            Self::Q8_0 => "Q8_0",
            Self::Q2K => "Q2_K",
            Self::Q3K => "Q3_K",
            Self::Q4K => "Q4_K",
            Self::Q5K => "Q5_K",
            Self::Q6K => "Q6_K",
            Self::IQ4NL => "IQ4_NL",
            Self::IQ4XS => "IQ4_XS",
            Self::BF16 => "BF16",
        }
    }

    /// Dense (F32 / F16 / BF16: one value per "block", multiplied as is) rather than
    /// block-quantized.
    pub fn is_dense(self) -> bool {
        matches!(self, Self::F32 | Self::F16 | Self::BF16)
    }

    /// Weights per GGUF block.
    pub fn block_elems(self) -> usize {
        match self {
            Self::F32 | Self::F16 | Self::BF16 => 1,
            Self::Q4_0 | Self::Q4_1 | Self::Q5_0 | Self::Q5_1 | Self::Q8_0 | Self::IQ4NL => 32,
            Self::Q2K | Self::Q3K | Self::Q4K | Self::Q5K | Self::Q6K | Self::IQ4XS => 256,
        }
    }

    /// Bytes per GGUF block.
    pub fn block_bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 | Self::BF16 => 2,
            Self::Q4_0 | Self::IQ4NL => 18,
            Self::Q4_1 => 20,
            Self::Q5_0 => 22,
            Self::Q5_1 => 24,
            Self::Q8_0 => 34,
            Self::Q2K => 84,
            Self::Q3K => 110,
            Self::Q4K => 144,
            Self::Q5K => 176,
            Self::Q6K => 210,
            Self::IQ4XS => 136,
        }
    }

    /// Elements per group (one scale / offset pair) after decoding (1 for the dense formats,
    /// which have no groups).
    pub fn group_elems(self) -> usize {
        match self {
            Self::F32 | Self::F16 | Self::BF16 => 1,
            Self::Q2K | Self::Q3K | Self::Q6K => 16,
            _ => 32,
        }
    }

    /// Bytes of one GGUF row of `cols` weights (`cols` must be a block multiple).
    pub fn row_bytes(self, cols: usize) -> usize {
        cols / self.block_elems() * self.block_bytes()
    }
}

impl std::fmt::Display for QuantFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One decoded group: `w[i] = d * u[i] + c` (only the first `group_elems` of `u` are used).
/// K-quants also keep the factors of `d` and `c`: `d = ds * ks` and `c = cs * kc`, with the
/// super-block's f32 scales `ds`, `cs` and the group's small integer scales `ks`, `kc` (so
/// the packed layout stores one byte per group and row instead of an f32 product).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Group {
    pub u: [u8; 32],
    pub d: f32,
    pub c: f32,
    pub ds: f32,
    pub ks: i8,
    pub cs: f32,
    pub kc: i8,
}

fn h(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// The 32 fifth bits of a Q5_0 / Q5_1 block (little-endian u32: bit j belongs to element j).
fn q5_high_bits(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// ggml's `get_scale_min_k4`: the j-th 6-bit (scale, min) pair of a Q4_K block.
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        let d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        let m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        (d, m)
    }
}

/// The i-th 6-bit scale (0..64) of a Q3_K block's 12 `scales` bytes: the low 4 bits are the
/// low (i < 8) or high (i >= 8) nibble of byte `i % 8`, the top 2 bits come from byte
/// `8 + i % 4` at bit `2 * (i / 4)` (what ggml's `kmask1` / `kmask2` shuffle computes).
fn q3k_scale(i: usize, s: &[u8]) -> i32 {
    let lo = if i < 8 { s[i % 8] & 0xF } else { s[i % 8] >> 4 };
    let hi = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
    (lo | (hi << 4)) as i32
}

/// The IQ4 levels as unsigned values, `T[q] + 128` (1..=241, increasing).
pub(crate) const IQ4_U: [u8; 16] = {
    let mut u = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        u[i] = (KVALUES_IQ4NL[i] as i16 + 128) as u8;
        i += 1;
    }
    u
};

/// IQ4 index `q` as an unsigned value: `T[q] + 128`.
fn iq4_u(q: u8) -> u8 {
    IQ4_U[q as usize]
}

/// Decodes one GGUF block into its groups (1 for the 32-element formats, 8 for Q4_K, Q5_K
/// and IQ4_XS, 16 for Q2_K, Q3_K and Q6_K). `c` is the additive offset for asymmetric formats
/// and `d * bias` otherwise.
fn decode_block(format: QuantFormat, b: &[u8], out: &mut Vec<Group>) {
    let mut g = Group {
        u: [0; 32],
        d: 0.0,
        c: 0.0,
        ds: 0.0,
        ks: 0,
        cs: 0.0,
        kc: 0,
    };
    match format {
        QuantFormat::Q4_0 | QuantFormat::Q4_1 => {
            let off = if format == QuantFormat::Q4_1 { 4 } else { 2 };
            g.d = h(b, 0);
            g.c = if format == QuantFormat::Q4_1 {
                h(b, 2)
            } else {
                -8.0 * g.d
            };
            for i in 0..16 {
                g.u[i] = b[off + i] & 0xF;
                g.u[i + 16] = b[off + i] >> 4;
            }
            out.push(g);
        }
        QuantFormat::Q5_0 | QuantFormat::Q5_1 => {
            // Five-bit values (packed as a nibble plus one high bit).
            let asym = format == QuantFormat::Q5_1;
            let off = if asym { 4 } else { 2 };
            g.d = h(b, 0);
            g.c = if asym { h(b, 2) } else { -16.0 * g.d };
            let (qh, qs) = (q5_high_bits(&b[off..]), &b[off + 4..off + 20]);
            for (i, &q) in qs.iter().enumerate() {
                g.u[i] = (q & 0xF) | (((qh >> i) & 1) << 4) as u8;
                g.u[i + 16] = (q >> 4) | (((qh >> (i + 16)) & 1) << 4) as u8;
            }
            out.push(g);
        }
        QuantFormat::Q8_0 => {
            g.d = h(b, 0);
            g.c = -128.0 * g.d;
            for i in 0..32 {
                g.u[i] = (b[2 + i] as i8 as i16 + 128) as u8;
            }
            out.push(g);
        }
        QuantFormat::Q4K => {
            let (d, dmin) = (h(b, 0), h(b, 2));
            let (scales, qs) = (&b[4..16], &b[16..144]);
            (g.ds, g.cs) = (d, -dmin);
            for j in 0..8 {
                let (sc, m) = scale_min_k4(j, scales);
                (g.ks, g.kc) = (sc as i8, m as i8);
                g.d = d * sc as f32;
                g.c = -(dmin * m as f32);
                let q = &qs[32 * (j / 2)..32 * (j / 2) + 32];
                for (u, &b) in g.u.iter_mut().zip(q) {
                    *u = if j % 2 == 0 { b & 0xF } else { b >> 4 };
                }
                out.push(g);
            }
        }
        QuantFormat::Q6K => {
            let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
            let d = h(b, 208);
            let mut q = [0u8; 256];
            for n in 0..2 {
                let (ql, qh, y) = (&ql[64 * n..], &qh[32 * n..], &mut q[128 * n..]);
                for l in 0..32 {
                    y[l] = (ql[l] & 0xF) | ((qh[l] & 3) << 4);
                    y[l + 32] = (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4);
                    y[l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
                    y[l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
                }
            }
            g.ds = d;
            for s in 0..16 {
                g.ks = sc[s] as i8;
                g.d = d * (sc[s] as i8) as f32;
                g.c = -32.0 * g.d;
                g.u[..16].copy_from_slice(&q[16 * s..16 * s + 16]);
                out.push(g);
            }
        }
        QuantFormat::Q2K => {
            let (scales, qs) = (&b[0..16], &b[16..80]);
            let (d, dmin) = (h(b, 80), h(b, 82));
            // Sub-block s: 2-bit field j = (s % 8) / 2 of bytes 32 n + 16 (s % 2) + l, n = s / 8.
            (g.ds, g.cs) = (d, -dmin);
            for (s, &sc) in scales.iter().enumerate() {
                (g.ks, g.kc) = ((sc & 0xF) as i8, (sc >> 4) as i8);
                g.d = d * (sc & 0xF) as f32;
                g.c = -(dmin * (sc >> 4) as f32);
                let (q, sh) = (&qs[32 * (s / 8) + 16 * (s % 2)..], 2 * ((s % 8) / 2));
                for (u, &q) in g.u[..16].iter_mut().zip(q) {
                    *u = (q >> sh) & 3;
                }
                out.push(g);
            }
        }
        QuantFormat::Q3K => {
            let (hmask, qs, scales) = (&b[0..32], &b[32..96], &b[96..108]);
            let d = h(b, 108);
            // As Q2_K, plus bit 4 n + j of hmask[16 (s % 2) + l] (set: +4; stored u = q + 4 h
            // with bias -4).
            g.ds = d;
            for s in 0..16 {
                g.ks = (q3k_scale(s, scales) - 32) as i8;
                g.d = d * (q3k_scale(s, scales) - 32) as f32;
                g.c = -4.0 * g.d;
                let (n, j) = (s / 8, (s % 8) / 2);
                let (q, hm) = (&qs[32 * n + 16 * (s % 2)..], &hmask[16 * (s % 2)..]);
                for l in 0..16 {
                    g.u[l] = ((q[l] >> (2 * j)) & 3) | (((hm[l] >> (4 * n + j)) & 1) << 2);
                }
                out.push(g);
            }
        }
        QuantFormat::Q5K => {
            let (d, dmin) = (h(b, 0), h(b, 2));
            let (scales, qh, qs) = (&b[4..16], &b[16..48], &b[48..176]);
            (g.ds, g.cs) = (d, -dmin);
            for j in 0..8 {
                let (sc, m) = scale_min_k4(j, scales);
                (g.ks, g.kc) = (sc as i8, m as i8);
                g.d = d * sc as f32;
                g.c = -(dmin * m as f32);
                let q = &qs[32 * (j / 2)..32 * (j / 2) + 32];
                for l in 0..32 {
                    let lo = if j % 2 == 0 { q[l] & 0xF } else { q[l] >> 4 };
                    g.u[l] = lo | (((qh[l] >> j) & 1) << 4);
                }
                out.push(g);
            }
        }
        QuantFormat::IQ4NL => {
            g.d = h(b, 0);
            g.c = -128.0 * g.d;
            for i in 0..16 {
                g.u[i] = iq4_u(b[2 + i] & 0xF);
                g.u[i + 16] = iq4_u(b[2 + i] >> 4);
            }
            out.push(g);
        }
        QuantFormat::IQ4XS => {
            let d = h(b, 0);
            let sh = u16::from_le_bytes([b[2], b[3]]);
            let (sl, qs) = (&b[4..8], &b[8..136]);
            for ib in 0..8 {
                let ls = ((sl[ib / 2] >> (4 * (ib % 2))) & 0xF) as i32
                    | ((((sh >> (2 * ib)) & 3) as i32) << 4);
                g.ds = d;
                g.ks = (ls - 32) as i8;
                g.d = d * (ls - 32) as f32;
                g.c = -128.0 * g.d;
                for (i, &q) in qs[16 * ib..16 * ib + 16].iter().enumerate() {
                    g.u[i] = iq4_u(q & 0xF);
                    g.u[i + 16] = iq4_u(q >> 4);
                }
                out.push(g);
            }
        }
        QuantFormat::F32 | QuantFormat::F16 | QuantFormat::BF16 => {
            unreachable!("{format:?} is dense: it has no groups")
        }
    }
}

/// Decodes one GGUF row (`row.len() == format.row_bytes(cols)`) into its groups.
pub(crate) fn decode_row(format: QuantFormat, row: &[u8], out: &mut Vec<Group>) {
    out.clear();
    for b in row.chunks_exact(format.block_bytes()) {
        decode_block(format, b, out);
    }
}

/// Checks that `data` holds exactly a `rows x cols` matrix of `format` blocks.
pub(crate) fn check_shape(
    format: QuantFormat,
    rows: usize,
    cols: usize,
    data: &[u8],
) -> Result<(), String> {
    if cols == 0 || !cols.is_multiple_of(format.block_elems()) {
        return Err(format!(
            "{format:?}: cols {cols} is not a multiple of {}",
            format.block_elems()
        ));
    }
    let want = rows * format.row_bytes(cols);
    if data.len() != want {
        return Err(format!(
            "{format:?} {rows}x{cols}: expected {want} bytes, got {}",
            data.len()
        ));
    }
    Ok(())
}

/// The ggml reference dequantization of a whole `rows x cols` matrix, straight from the GGUF
/// bytes (independent of the packed layout; the test oracle). Each arm follows ggml's
/// `dequantize_row_*` (same expressions, same rounding); dense formats are widened exactly.
pub fn dequantize_gguf(
    format: QuantFormat,
    rows: usize,
    cols: usize,
    data: &[u8],
) -> Result<Vec<f32>, String> {
    check_shape(format, rows, cols, data)?;
    let mut y = Vec::with_capacity(rows * cols);
    for b in data.chunks_exact(format.block_bytes()) {
        match format {
            QuantFormat::Q4_0 => {
                let d = h(b, 0);
                let q = &b[2..18];
                y.extend((0..32).map(|i| {
                    let v = if i < 16 { q[i] & 0xF } else { q[i - 16] >> 4 };
                    (v as i32 - 8) as f32 * d
                }));
            }
            QuantFormat::Q4_1 => {
                let (d, m) = (h(b, 0), h(b, 2));
                let q = &b[4..20];
                y.extend((0..32).map(|i| {
                    let v = if i < 16 { q[i] & 0xF } else { q[i - 16] >> 4 };
                    v as f32 * d + m
                }));
            }
            QuantFormat::Q5_0 | QuantFormat::Q5_1 => {
                // ggml's dequantize_row_q5_0 / _q5_1.
                let asym = format == QuantFormat::Q5_1;
                let off = if asym { 4 } else { 2 };
                let (d, m) = (h(b, 0), if asym { h(b, 2) } else { 0.0 });
                let qh = q5_high_bits(&b[off..]);
                let qs = &b[off + 4..off + 20];
                let mut blk = [0f32; 32];
                for j in 0..16 {
                    let x0 = ((qs[j] & 0xF) as u32 | ((qh >> j) << 4) & 0x10) as i32;
                    let x1 = ((qs[j] >> 4) as u32 | (qh >> (j + 12)) & 0x10) as i32;
                    if asym {
                        blk[j] = x0 as f32 * d + m;
                        blk[j + 16] = x1 as f32 * d + m;
                    } else {
                        blk[j] = (x0 - 16) as f32 * d;
                        blk[j + 16] = (x1 - 16) as f32 * d;
                    }
                }
                y.extend_from_slice(&blk);
            }
            QuantFormat::Q8_0 => {
                let d = h(b, 0);
                y.extend(b[2..34].iter().map(|&q| q as i8 as f32 * d));
            }
            QuantFormat::Q4K => {
                let (d, min) = (h(b, 0), h(b, 2));
                let (scales, qs) = (&b[4..16], &b[16..144]);
                for j in 0..8 {
                    let (sc, m) = scale_min_k4(j, scales);
                    let (d1, m1) = (d * sc as f32, min * m as f32);
                    let q = &qs[32 * (j / 2)..];
                    let sh = 4 * (j % 2);
                    y.extend((0..32).map(|l| d1 * ((q[l] >> sh) & 0xF) as f32 - m1));
                }
            }
            QuantFormat::Q6K => {
                let d = h(b, 208);
                let mut blk = [0f32; 256];
                for n in 0..2 {
                    let (ql, qh) = (&b[64 * n..], &b[128 + 32 * n..]);
                    let sc = &b[192 + 8 * n..];
                    let y = &mut blk[128 * n..];
                    for l in 0..32 {
                        let is = l / 16;
                        let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32;
                        let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                        let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                        let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                        let s = |k: usize| (sc[is + k] as i8) as f32;
                        y[l] = d * s(0) * q1 as f32;
                        y[l + 32] = d * s(2) * q2 as f32;
                        y[l + 64] = d * s(4) * q3 as f32;
                        y[l + 96] = d * s(6) * q4 as f32;
                    }
                }
                y.extend_from_slice(&blk);
            }
            QuantFormat::Q2K => {
                // ggml's dequantize_row_q2_K.
                let (sc, q) = (&b[0..16], &b[16..80]);
                let (d, min) = (h(b, 80), h(b, 82));
                let mut is = 0;
                for n in 0..2 {
                    let q = &q[32 * n..];
                    for shift in [0, 2, 4, 6] {
                        for half in 0..2 {
                            let s = sc[is];
                            is += 1;
                            let (dl, ml) = (d * (s & 0xF) as f32, min * (s >> 4) as f32);
                            let q = &q[16 * half..];
                            y.extend((0..16).map(|l| dl * ((q[l] >> shift) & 3) as i8 as f32 - ml));
                        }
                    }
                }
            }
            QuantFormat::Q3K => {
                // ggml's dequantize_row_q3_K, with its 32-bit scale shuffle.
                let (hm, q) = (&b[0..32], &b[32..96]);
                let d_all = h(b, 108);
                let word = |i: usize| {
                    u32::from_le_bytes([b[96 + 4 * i], b[97 + 4 * i], b[98 + 4 * i], b[99 + 4 * i]])
                };
                let (kmask1, kmask2) = (0x0303_0303u32, 0x0f0f_0f0fu32);
                let (a0, a1, tmp) = (word(0), word(1), word(2));
                let aux = [
                    (a0 & kmask2) | ((tmp & kmask1) << 4),
                    (a1 & kmask2) | (((tmp >> 2) & kmask1) << 4),
                    ((a0 >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4),
                    ((a1 >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4),
                ];
                let scales: Vec<i8> = aux
                    .iter()
                    .flat_map(|a| a.to_le_bytes())
                    .map(|v| v as i8)
                    .collect();
                let (mut is, mut m) = (0, 1u8);
                for n in 0..2 {
                    let q = &q[32 * n..];
                    for shift in [0, 2, 4, 6] {
                        for half in 0..2 {
                            let dl = d_all * (scales[is] as i32 - 32) as f32;
                            is += 1;
                            let (q, hm) = (&q[16 * half..], &hm[16 * half..]);
                            y.extend((0..16).map(|l| {
                                let v = ((q[l] >> shift) & 3) as i8
                                    - if hm[l] & m != 0 { 0 } else { 4 };
                                dl * v as f32
                            }));
                        }
                        m <<= 1;
                    }
                }
            }
            QuantFormat::Q5K => {
                // ggml's dequantize_row_q5_K.
                let (d, min) = (h(b, 0), h(b, 2));
                let (scales, qh, qs) = (&b[4..16], &b[16..48], &b[48..176]);
                let (mut u1, mut u2) = (1u8, 2u8);
                for p in 0..4 {
                    let ql = &qs[32 * p..];
                    let (sc1, m1) = scale_min_k4(2 * p, scales);
                    let (sc2, m2) = scale_min_k4(2 * p + 1, scales);
                    let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
                    let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
                    let hb = |l: usize, u: u8| if qh[l] & u != 0 { 16 } else { 0 };
                    y.extend((0..32).map(|l| d1 * ((ql[l] & 0xF) + hb(l, u1)) as f32 - m1));
                    y.extend((0..32).map(|l| d2 * ((ql[l] >> 4) + hb(l, u2)) as f32 - m2));
                    u1 <<= 2;
                    u2 <<= 2;
                }
            }
            QuantFormat::IQ4NL => {
                // ggml's dequantize_row_iq4_nl.
                let d = h(b, 0);
                let qs = &b[2..18];
                let mut blk = [0f32; 32];
                for j in 0..16 {
                    blk[j] = d * KVALUES_IQ4NL[(qs[j] & 0xF) as usize] as f32;
                    blk[j + 16] = d * KVALUES_IQ4NL[(qs[j] >> 4) as usize] as f32;
                }
                y.extend_from_slice(&blk);
            }
            QuantFormat::IQ4XS => {
                // ggml's dequantize_row_iq4_xs.
                let d = h(b, 0);
                let scales_h = u16::from_le_bytes([b[2], b[3]]) as i32;
                let (scales_l, qs) = (&b[4..8], &b[8..136]);
                for ib in 0..8 {
                    let ls = ((scales_l[ib / 2] as i32 >> (4 * (ib % 2))) & 0xF)
                        | (((scales_h >> (2 * ib)) & 3) << 4);
                    let dl = d * (ls - 32) as f32;
                    let qs = &qs[16 * ib..];
                    let mut blk = [0f32; 32];
                    for j in 0..16 {
                        blk[j] = dl * KVALUES_IQ4NL[(qs[j] & 0xF) as usize] as f32;
                        blk[j + 16] = dl * KVALUES_IQ4NL[(qs[j] >> 4) as usize] as f32;
                    }
                    y.extend_from_slice(&blk);
                }
            }
            QuantFormat::F32 => y.push(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            QuantFormat::F16 => y.push(h(b, 0)),
            QuantFormat::BF16 => y.push(bf16::from_le_bytes([b[0], b[1]]).to_f32()),
        }
    }
    Ok(y)
}
