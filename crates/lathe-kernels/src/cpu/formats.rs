//! GGUF block layouts and their reference dequantization.
//!
//! Every format stores a row of `cols` weights as `cols / block_elems()` consecutive blocks
//! (row-major over the matrix, no padding between rows):
//!
//! | format | elems | bytes | layout (little endian)                                   | weight            |
//! |--------|-------|-------|----------------------------------------------------------|-------------------|
//! | Q4_0   | 32    | 18    | `d: f16, qs: [u8; 16]` lo nibble = elem i, hi = i + 16    | `d * (q - 8)`     |
//! | Q4_1   | 32    | 20    | `d: f16, m: f16, qs: [u8; 16]` nibbles as Q4_0           | `d * q + m`       |
//! | Q5_0   | 32    | 22    | `d: f16, qh: u32, qs: [u8; 16]` bit j of qh = bit 4 of j | `d * (q - 16)`    |
//! | Q5_1   | 32    | 24    | `d: f16, m: f16, qh: u32, qs: [u8; 16]`                  | `d * q + m`       |
//! | Q8_0   | 32    | 34    | `d: f16, qs: [i8; 32]`                                   | `d * q`           |
//! | Q4_K   | 256   | 144   | `d, dmin: f16, scales: [u8; 12], qs: [u8; 128]`          | `d*sc*q - dmin*m` |
//! | Q6_K   | 256   | 210   | `ql: [u8; 128], qh: [u8; 64], scales: [i8; 16], d: f16`  | `d * sc * (q-32)` |
//!
//! Q4_K has eight 32-element sub-blocks with 6-bit scale/min pairs packed in `scales`; Q6_K
//! has sixteen 16-element sub-blocks with i8 scales. [`decode_row`] splits any row into
//! *groups* (32 elements, 16 for Q6_K) each described by unsigned values `u` and one affine
//! map `w = d * u + c` (or `d * (u + bias)` for the symmetric formats), which is all the
//! packed kernels need. [`dequantize_gguf`] is the independent, ggml-identical reference.

use half::f16;

/// The GGUF block formats lathe's CPU kernels understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuantFormat {
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q4K,
    Q6K,
}

impl QuantFormat {
    /// Weights per GGUF block.
    pub fn block_elems(self) -> usize {
        match self {
            Self::Q4_0 | Self::Q4_1 | Self::Q5_0 | Self::Q5_1 | Self::Q8_0 => 32,
            Self::Q4K | Self::Q6K => 256,
        }
    }

    /// Bytes per GGUF block.
    pub fn block_bytes(self) -> usize {
        match self {
            Self::Q4_0 => 18,
            Self::Q4_1 => 20,
            Self::Q5_0 => 22,
            Self::Q5_1 => 24,
            Self::Q8_0 => 34,
            Self::Q4K => 144,
            Self::Q6K => 210,
        }
    }

    /// Elements per group (one scale / offset pair) after decoding.
    pub fn group_elems(self) -> usize {
        match self {
            Self::Q6K => 16,
            _ => 32,
        }
    }

    /// Bytes of one GGUF row of `cols` weights (`cols` must be a block multiple).
    pub fn row_bytes(self, cols: usize) -> usize {
        cols / self.block_elems() * self.block_bytes()
    }
}

/// One decoded group: `w[i] = d * u[i] + c` (only the first `group_elems` of `u` are used).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Group {
    pub u: [u8; 32],
    pub d: f32,
    pub c: f32,
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

/// Decodes one GGUF block into its groups (1 for the 32-element formats, 8 for Q4_K, 16 for
/// Q6_K). `c` is the additive offset for asymmetric formats and `d * bias` otherwise.
fn decode_block(format: QuantFormat, b: &[u8], out: &mut Vec<Group>) {
    let mut g = Group {
        u: [0; 32],
        d: 0.0,
        c: 0.0,
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
            // Five-bit values kept one per byte (the packed layout has no 5-bit form).
            let asym = format == QuantFormat::Q5_1;
            let off = if asym { 4 } else { 2 };
            g.d = h(b, 0);
            g.c = if asym { h(b, 2) } else { -16.0 * g.d };
            let (qh, qs) = (q5_high_bits(&b[off..]), &b[off + 4..off + 20]);
            for i in 0..16 {
                g.u[i] = (qs[i] & 0xF) | (((qh >> i) & 1) << 4) as u8;
                g.u[i + 16] = (qs[i] >> 4) | (((qh >> (i + 16)) & 1) << 4) as u8;
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
            for j in 0..8 {
                let (sc, m) = scale_min_k4(j, scales);
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
            for s in 0..16 {
                g.d = d * (sc[s] as i8) as f32;
                g.c = -32.0 * g.d;
                g.u[..16].copy_from_slice(&q[16 * s..16 * s + 16]);
                out.push(g);
            }
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
/// bytes (independent of the packed layout; the test oracle).
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
        }
    }
    Ok(y)
}
