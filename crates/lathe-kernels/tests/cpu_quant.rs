//! lathe's CPU quantized matmul against two oracles: ggml-style dequantization followed by an
//! f64 matmul, and candle's own `QMatMul` (for the formats candle has; IQ4_NL / IQ4_XS are
//! checked against hand-built blocks instead). Every format runs on every ISA path this CPU has
//! plus the scalar fallback, over odd row counts, the SmolLM2 widths and several batch sizes.
//!
//! Tolerance: the kernels quantize activations to int8 blocks of 32 (step `amax/127`), so each
//! output may differ from the exact `W · x` by at most `Σ_i |w_i| · amax(block of i) / 254`
//! (plus float rounding); every output is checked against that bound, and the relative error
//! ‖y − ref‖ / ‖ref‖ of well-conditioned cases (≥ 49 outputs) must stay under 2e-2 (it is
//! about 5e-3). Paths must agree with the scalar path to 1e-5 relative (same integer sums,
//! different float rounding only). A NaN never passes any check.

use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{Device, Module, Tensor};
use lathe_kernels::cpu::{
    self, dequantize_gguf, Isa, QuantFormat, QuantGroupMatMul, QuantMatMul, QuantMatrix,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::borrow::Cow;
use std::sync::Arc;

const TOL_REF: f64 = 2e-2;
const TOL_PATH: f64 = 1e-5;

const LEGACY: [QuantFormat; 5] = [
    QuantFormat::Q4_0,
    QuantFormat::Q4_1,
    QuantFormat::Q5_0,
    QuantFormat::Q5_1,
    QuantFormat::Q8_0,
];
const KQUANT: [QuantFormat; 2] = [QuantFormat::Q4K, QuantFormat::Q6K];
/// The formats added for issue 11 (256-element super-blocks except IQ4_NL).
const NEW_SUPER: [QuantFormat; 4] = [
    QuantFormat::Q2K,
    QuantFormat::Q3K,
    QuantFormat::Q5K,
    QuantFormat::IQ4XS,
];
const DENSE: [QuantFormat; 3] = [QuantFormat::F32, QuantFormat::F16, QuantFormat::BF16];

fn f16b(v: f32) -> [u8; 2] {
    half::f16::from_f32(v).to_le_bytes()
}

/// One random GGUF block with realistic (small, positive) scales and random quants (and
/// random sub-block scales / mins for the K-quants and IQ4_XS); dense formats get one random
/// value in ±0.1.
fn random_block(f: QuantFormat, rng: &mut StdRng, out: &mut Vec<u8>) {
    let d = rng.random_range(0.002f32..0.02);
    let start = out.len();
    match f {
        QuantFormat::F32 => return out.extend(rng.random_range(-0.1f32..0.1).to_le_bytes()),
        QuantFormat::F16 => return out.extend(f16b(rng.random_range(-0.1f32..0.1))),
        QuantFormat::BF16 => {
            let v = half::bf16::from_f32(rng.random_range(-0.1f32..0.1));
            return out.extend(v.to_le_bytes());
        }
        QuantFormat::Q4_0 => out.extend(f16b(d)),
        QuantFormat::Q5_0 => out.extend(f16b(d / 2.0)),
        QuantFormat::Q4_1 | QuantFormat::Q5_1 => {
            out.extend(f16b(d));
            out.extend(f16b(-d * rng.random_range(4.0f32..12.0)));
        }
        QuantFormat::Q8_0 | QuantFormat::IQ4NL => out.extend(f16b(d / 8.0)),
        QuantFormat::Q4K => {
            out.extend(f16b(d / 16.0));
            out.extend(f16b(d / 32.0));
        }
        QuantFormat::Q5K => {
            out.extend(f16b(d / 32.0));
            out.extend(f16b(d / 64.0));
        }
        QuantFormat::IQ4XS => out.extend(f16b(d / 256.0)),
        QuantFormat::Q2K | QuantFormat::Q3K | QuantFormat::Q6K => {}
    }
    let body = f.block_bytes() - (out.len() - start);
    out.extend((0..body).map(|_| rng.random::<u8>()));
    let n = out.len();
    // Formats with the super-block scale(s) at the end of the block.
    match f {
        QuantFormat::Q6K => out[n - 2..].copy_from_slice(&f16b(d / 64.0)),
        QuantFormat::Q3K => out[n - 2..].copy_from_slice(&f16b(d / 64.0)),
        QuantFormat::Q2K => {
            out[n - 4..n - 2].copy_from_slice(&f16b(d / 4.0));
            out[n - 2..].copy_from_slice(&f16b(d / 8.0));
        }
        _ => {}
    }
}

fn random_matrix(f: QuantFormat, rows: usize, cols: usize, seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut v = Vec::with_capacity(rows * f.row_bytes(cols));
    for _ in 0..rows * cols / f.block_elems() {
        random_block(f, &mut rng, &mut v);
    }
    v
}

/// Activations like a transformer's: mostly small, a few large channels (every 256th).
fn random_x(m: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    (0..m * cols)
        .map(|i| {
            let v = rng.random_range(-1.0f32..1.0);
            if i % cols % 256 == 13 {
                v * 10.0
            } else {
                v
            }
        })
        .collect()
}

fn ref_matmul(w: &[f32], x: &[f32], m: usize, rows: usize, cols: usize) -> Vec<f32> {
    let mut y = vec![0f32; m * rows];
    for c in 0..m {
        for r in 0..rows {
            let (wr, xc) = (&w[r * cols..(r + 1) * cols], &x[c * cols..(c + 1) * cols]);
            y[c * rows + r] = wr
                .iter()
                .zip(xc)
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum::<f64>() as f32;
        }
    }
    y
}

/// Checks `|y - ref| <= Σ_i |w_i| · amax_block(x_i) / 254 + 1e-5 · Σ_i |w_i x_i|` per output.
#[allow(clippy::too_many_arguments)]
fn check_bound(
    y: &[f32],
    yref: &[f32],
    w: &[f32],
    x: &[f32],
    m: usize,
    rows: usize,
    cols: usize,
    what: &str,
) {
    for c in 0..m {
        let xc = &x[c * cols..(c + 1) * cols];
        let step: Vec<f64> = xc
            .chunks(32)
            .map(|b| b.iter().fold(0f32, |a, v| a.max(v.abs())) as f64 / 254.0)
            .collect();
        for r in 0..rows {
            let wr = &w[r * cols..(r + 1) * cols];
            let (mut bound, mut mag) = (0f64, 0f64);
            for i in 0..cols {
                bound += (wr[i] as f64).abs() * step[i / 32];
                mag += (wr[i] as f64 * xc[i] as f64).abs();
            }
            let (got, want) = (y[c * rows + r] as f64, yref[c * rows + r] as f64);
            let ok = (got - want).abs() <= bound * 1.0001 + 1e-5 * mag + 1e-30;
            assert!(
                ok,
                "{what}: out[{c}][{r}] = {got}, ref {want}, bound {bound}"
            );
        }
    }
}

/// ‖a − b‖ / ‖b‖ (NaN if anything is NaN, which then fails every `<` check).
fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let (mut num, mut den) = (0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        if x.is_nan() || y.is_nan() {
            return f64::NAN;
        }
        num += (x as f64 - y as f64).powi(2);
        den += (y as f64).powi(2);
    }
    (num / den.max(1e-30)).sqrt()
}

fn ggml_dtype(f: QuantFormat) -> GgmlDType {
    match f {
        QuantFormat::Q4_0 => GgmlDType::Q4_0,
        QuantFormat::Q4_1 => GgmlDType::Q4_1,
        QuantFormat::Q5_0 => GgmlDType::Q5_0,
        QuantFormat::Q5_1 => GgmlDType::Q5_1,
        QuantFormat::Q8_0 => GgmlDType::Q8_0,
        QuantFormat::Q2K => GgmlDType::Q2K,
        QuantFormat::Q3K => GgmlDType::Q3K,
        QuantFormat::Q4K => GgmlDType::Q4K,
        QuantFormat::Q5K => GgmlDType::Q5K,
        QuantFormat::Q6K => GgmlDType::Q6K,
        QuantFormat::F32 => GgmlDType::F32,
        QuantFormat::F16 => GgmlDType::F16,
        QuantFormat::BF16 => GgmlDType::BF16,
        QuantFormat::IQ4NL | QuantFormat::IQ4XS => panic!("candle has no {f:?}"),
    }
}

fn qtensor(f: QuantFormat, rows: usize, cols: usize, data: &[u8]) -> QTensor {
    let storage = QStorage::from_data(Cow::Borrowed(data), &Device::Cpu, ggml_dtype(f)).unwrap();
    QTensor::new(storage, (rows, cols)).unwrap()
}

/// Runs one (format, rows, cols) case over several m on every path; returns checks made.
fn check_case(f: QuantFormat, rows: usize, cols: usize, ms: &[usize], seed: u64) -> usize {
    let data = random_matrix(f, rows, cols, seed);
    let w = QuantMatrix::from_gguf_blocks(f, rows, cols, &data).unwrap();
    let wref = dequantize_gguf(f, rows, cols, &data).unwrap();
    assert!(
        w.dequantize() == wref,
        "{f:?} {rows}x{cols}: packed dequantize differs from ggml"
    );
    assert!(
        wref.iter().all(|v| v.is_finite()),
        "{f:?}: non-finite weights"
    );
    let mut checks = 1;
    for &m in ms {
        let x = random_x(m, cols, seed + m as u64);
        let yref = ref_matmul(&wref, &x, m, rows, cols);
        let mut scalar = vec![f32::NAN; m * rows];
        w.matmul_with(Isa::Scalar, &x, m, &mut scalar);
        assert!(
            scalar.iter().all(|v| v.is_finite()),
            "{f:?}: non-finite output"
        );
        let what = format!("{f:?} {rows}x{cols} m={m} scalar vs ref");
        check_bound(&scalar, &yref, &wref, &x, m, rows, cols, &what);
        let e = rel_err(&scalar, &yref);
        // The aggregate error is a statistic: meaningful over many outputs of multi-block rows
        // (a one-block row carries one activation scale's rounding); `check_bound` holds always.
        assert!(e < TOL_REF || m * rows < 49 || cols < 64, "{what}: {e}");
        for isa in Isa::available() {
            let mut y = vec![f32::NAN; m * rows];
            w.matmul_with(isa, &x, m, &mut y);
            assert!(y.iter().all(|v| v.is_finite()), "{f:?} {isa:?}: non-finite");
            let e = rel_err(&y, &scalar);
            assert!(
                e < TOL_PATH,
                "{f:?} {rows}x{cols} m={m} {isa:?} vs scalar: {e}"
            );
            checks += 1;
        }
    }
    checks
}

#[test]
fn legacy_formats_all_paths_all_shapes() {
    let mut n = 0;
    for f in LEGACY {
        for cols in [32, 64, 576, 1536, 4096] {
            for rows in [1, 7, 49] {
                n += check_case(f, rows, cols, &[1, 2, 5, 16, 64], (rows * 31 + cols) as u64);
            }
        }
    }
    eprintln!("{n} legacy checks on {:?}", Isa::available());
}

#[test]
fn k_quants_all_paths_all_shapes() {
    let mut n = 0;
    for f in KQUANT {
        for cols in [256, 512, 1536, 4096] {
            for rows in [1, 7, 49] {
                n += check_case(f, rows, cols, &[1, 2, 5, 16, 64], (rows * 17 + cols) as u64);
            }
        }
    }
    eprintln!("{n} k-quant checks on {:?}", Isa::available());
}

#[test]
fn smollm2_shapes_multithreaded() {
    for (f, rows, cols) in [
        (QuantFormat::Q4_1, 576, 576),
        (QuantFormat::Q4_1, 1536, 576),
        (QuantFormat::Q4_1, 576, 1536),
        (QuantFormat::Q8_0, 192, 576),
    ] {
        check_case(f, rows, cols, &[1, 3, 37], rows as u64);
    }
}

#[test]
fn thread_count_does_not_change_results() {
    let (rows, cols, m) = (200, 576, 19);
    let data = random_matrix(QuantFormat::Q4_1, rows, cols, 3);
    let w = QuantMatrix::from_gguf_blocks(QuantFormat::Q4_1, rows, cols, &data).unwrap();
    let x = random_x(m, cols, 4);
    let mut base = vec![0f32; m * rows];
    cpu::set_num_threads(1);
    w.matmul(&x, m, &mut base);
    for t in [2, 3, 4] {
        cpu::set_num_threads(t);
        let mut y = vec![0f32; m * rows];
        w.matmul(&x, m, &mut y);
        assert!(y == base, "{t} threads changed the result");
    }
    cpu::set_num_threads(0);
    assert!(cpu::num_threads() >= 1);
}

/// Stacked matrices (fused q/k/v, gate/up) give the parts' outputs side by side, bit for bit.
#[test]
fn concat_rows_equals_the_parts() {
    for f in LEGACY.iter().chain(&KQUANT).copied() {
        let cols = if KQUANT.contains(&f) { 512 } else { 576 };
        let sizes = [64, 32, 19];
        let parts: Vec<QuantMatrix> = sizes
            .iter()
            .enumerate()
            .map(|(i, &rows)| {
                let data = random_matrix(f, rows, cols, 40 + i as u64);
                QuantMatrix::from_gguf_blocks(f, rows, cols, &data).unwrap()
            })
            .collect();
        let refs: Vec<&QuantMatrix> = parts.iter().collect();
        let all = QuantMatrix::concat_rows(&refs).unwrap();
        assert_eq!((all.rows(), all.cols()), (115, cols));
        let m = 5;
        let x = random_x(m, cols, 9);
        let mut y = vec![0f32; m * 115];
        all.matmul(&x, m, &mut y);
        let mut at = 0;
        for p in &parts {
            let mut yp = vec![0f32; m * p.rows()];
            p.matmul(&x, m, &mut yp);
            for r in 0..m {
                assert!(
                    yp[r * p.rows()..(r + 1) * p.rows()]
                        == y[r * 115 + at..r * 115 + at + p.rows()],
                    "{f:?}"
                );
            }
            at += p.rows();
        }
        // A part that does not fill its tiles may only come last; formats must agree.
        assert!(QuantMatrix::concat_rows(&[&parts[2], &parts[0]]).is_none());
    }
    let a = QuantMatrix::from_gguf_blocks(
        QuantFormat::Q4_0,
        16,
        64,
        &random_matrix(QuantFormat::Q4_0, 16, 64, 1),
    )
    .unwrap();
    let b = QuantMatrix::from_gguf_blocks(
        QuantFormat::Q8_0,
        16,
        64,
        &random_matrix(QuantFormat::Q8_0, 16, 64, 2),
    )
    .unwrap();
    assert!(QuantMatrix::concat_rows(&[&a, &b]).is_none());
}

#[test]
fn matches_candle_qmatmul() {
    let cases = [
        (QuantFormat::Q4_0, 49, 576),
        (QuantFormat::Q4_1, 49, 576),
        (QuantFormat::Q4_1, 7, 1536),
        (QuantFormat::Q8_0, 49, 576),
        (QuantFormat::Q5_0, 49, 896),
        (QuantFormat::Q5_1, 7, 576),
        (QuantFormat::Q4K, 7, 512),
        (QuantFormat::Q6K, 49, 256),
        (QuantFormat::Q2K, 49, 512),
        (QuantFormat::Q3K, 17, 768),
        (QuantFormat::Q5K, 7, 1024),
    ];
    for (f, rows, cols) in cases {
        let data = random_matrix(f, rows, cols, 11);
        let qt = qtensor(f, rows, cols, &data);
        let deq = qt
            .dequantize(&Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let wref = dequantize_gguf(f, rows, cols, &data).unwrap();
        assert!(
            deq == wref,
            "{f:?}: candle dequantizes differently from our reference"
        );
        let ours = QuantMatrix::from_qtensor(&qt)
            .unwrap()
            .expect("supported dtype");
        assert!(ours.dequantize() == wref);
        let candle = QMatMul::from_qtensor(qt).unwrap();
        for m in [1, 5, 16] {
            let x = random_x(m, cols, 5);
            let xt = Tensor::from_vec(x.clone(), (m, cols), &Device::Cpu).unwrap();
            let yc = candle
                .forward(&xt)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let mut y = vec![0f32; m * rows];
            ours.matmul(&x, m, &mut y);
            let yref = ref_matmul(&wref, &x, m, rows, cols);
            let (e_ours, e_candle) = (rel_err(&y, &yref), rel_err(&yc, &yref));
            assert!(e_ours < TOL_REF, "{f:?} m={m}: ours {e_ours}");
            assert!(
                rel_err(&y, &yc) < 2.0 * TOL_REF,
                "{f:?} m={m}: ours vs candle {}",
                rel_err(&y, &yc)
            );
            eprintln!(
                "{f:?} {rows}x{cols} m={m}: rel err ours {e_ours:.2e}, candle {e_candle:.2e}"
            );
        }
    }
}

#[test]
fn custom_op_shapes_dtypes_and_layouts() {
    let (rows, cols) = (49, 576);
    let data = random_matrix(QuantFormat::Q4_1, rows, cols, 21);
    let w = Arc::new(QuantMatrix::from_gguf_blocks(QuantFormat::Q4_1, rows, cols, &data).unwrap());
    let x = random_x(6, cols, 22);
    let mut want = vec![0f32; 6 * rows];
    w.matmul(&x, 6, &mut want);
    let op = QuantMatMul(w.clone());
    let xt = Tensor::from_vec(x.clone(), (2, 3, cols), &Device::Cpu).unwrap();
    let y = xt.apply_op1_no_bwd(&op).unwrap();
    assert_eq!(y.dims(), &[2, 3, rows]);
    assert!(y.flatten_all().unwrap().to_vec1::<f32>().unwrap() == want);
    // Non-contiguous input: the transpose of a [cols, 6] tensor.
    let xt_t = Tensor::from_vec(x.clone(), (6, cols), &Device::Cpu)
        .unwrap()
        .t()
        .unwrap()
        .contiguous()
        .unwrap()
        .t()
        .unwrap();
    assert!(!xt_t.is_contiguous());
    let y = xt_t
        .apply_op1_no_bwd(&op)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!(y == want);
    let yb = xt
        .to_dtype(candle_core::DType::BF16)
        .unwrap()
        .apply_op1_no_bwd(&op)
        .unwrap();
    assert_eq!(yb.dtype(), candle_core::DType::BF16);
    let yb = yb
        .to_dtype(candle_core::DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!(rel_err(&yb, &want) < 2e-2);
    let bad = Tensor::zeros((2, cols + 32), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(bad.apply_op1_no_bwd(&op).is_err());
}

#[test]
fn non_finite_input_gives_nan_not_garbage() {
    let (rows, cols, m) = (7, 64, 3);
    for f in LEGACY.into_iter().chain([QuantFormat::IQ4NL]) {
        let data = random_matrix(f, rows, cols, 9);
        let w = QuantMatrix::from_gguf_blocks(f, rows, cols, &data).unwrap();
        for bad in [f32::NAN, f32::INFINITY] {
            let mut x = random_x(m, cols, 10);
            x[cols + 40] = bad;
            for isa in Isa::available() {
                let mut y = vec![0f32; m * rows];
                w.matmul_with(isa, &x, m, &mut y);
                assert!(
                    y[rows..2 * rows].iter().all(|v| v.is_nan()),
                    "{f:?} {isa:?}: row with {bad} not NaN"
                );
                assert!(y[..rows]
                    .iter()
                    .chain(&y[2 * rows..])
                    .all(|v| v.is_finite()));
            }
        }
    }
}

/// Dense weights: a NaN input makes its row NaN, an infinite one makes it non-finite (inf, or
/// NaN where it meets a zero weight or both signs); other rows stay finite.
#[test]
fn dense_non_finite_input() {
    let (rows, cols, m) = (7, 40, 3);
    for f in DENSE {
        let w =
            QuantMatrix::from_gguf_blocks(f, rows, cols, &random_matrix(f, rows, cols, 2)).unwrap();
        for (bad, at) in [(f32::NAN, 3), (f32::INFINITY, 39)] {
            let mut x = random_x(m, cols, 10);
            x[cols + at] = bad;
            for isa in Isa::available() {
                let mut y = vec![0f32; m * rows];
                w.matmul_with(isa, &x, m, &mut y);
                let row = &y[rows..2 * rows];
                assert!(row.iter().all(|v| !v.is_finite()), "{f:?} {isa:?} {bad}");
                if bad.is_nan() {
                    assert!(row.iter().all(|v| v.is_nan()));
                }
                assert!(y[..rows]
                    .iter()
                    .chain(&y[2 * rows..])
                    .all(|v| v.is_finite()));
            }
        }
    }
}

#[test]
fn zero_input_and_bad_shapes() {
    let data = random_matrix(QuantFormat::Q8_0, 3, 32, 1);
    let w = QuantMatrix::from_gguf_blocks(QuantFormat::Q8_0, 3, 32, &data).unwrap();
    let mut y = vec![f32::NAN; 6];
    w.matmul(&[0.0; 64], 2, &mut y);
    assert!(y.iter().all(|&v| v == 0.0));
    w.matmul(&[], 0, &mut []);
    assert!(QuantMatrix::from_gguf_blocks(QuantFormat::Q8_0, 3, 33, &data).is_err());
    assert!(QuantMatrix::from_gguf_blocks(QuantFormat::Q8_0, 4, 32, &data).is_err());
    assert!(QuantMatrix::from_gguf_blocks(QuantFormat::Q4K, 1, 576, &[0; 3 * 144]).is_err());
    let f32t = QTensor::quantize(
        &Tensor::zeros((4, 32), candle_core::DType::F32, &Device::Cpu).unwrap(),
        GgmlDType::F32,
    )
    .unwrap();
    assert!(QuantMatrix::from_qtensor(&f32t).unwrap().is_none());
}

#[test]
fn force_isa_selects_the_path() {
    let data = random_matrix(QuantFormat::Q4_0, 16, 64, 2);
    let w = QuantMatrix::from_gguf_blocks(QuantFormat::Q4_0, 16, 64, &data).unwrap();
    let x = random_x(2, 64, 3);
    let mut a = vec![0f32; 32];
    let mut b = vec![0f32; 32];
    cpu::force_isa(Some(Isa::Scalar));
    assert_eq!(Isa::best(), Isa::Scalar);
    w.matmul(&x, 2, &mut a);
    cpu::force_isa(None);
    w.matmul_with(Isa::Scalar, &x, 2, &mut b);
    assert!(a == b);
    assert_eq!(Isa::best(), *Isa::available().last().unwrap());
}

/// Real weights: every quantized tensor of a GGUF file named by `LATHE_TEST_GGUF` (e.g. the
/// SmolLM2-135M Q4_1 file) must dequantize exactly like candle and multiply within the bound.
/// Skipped when the variable is unset.
#[test]
fn real_gguf_weights_if_present() {
    use candle_core::quantized::gguf_file;
    let Ok(path) = std::env::var("LATHE_TEST_GGUF") else {
        eprintln!("LATHE_TEST_GGUF unset: skipped");
        return;
    };
    let mut file = std::fs::File::open(&path).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let mut names: Vec<_> = content.tensor_infos.keys().cloned().collect();
    names.sort();
    let mut checked = 0;
    let mut first_layer = Vec::new();
    for name in names {
        let qt = content.tensor(&mut file, &name, &Device::Cpu).unwrap();
        let Some(w) = QuantMatrix::from_qtensor(&qt).unwrap() else {
            continue;
        };
        let wref = qt
            .dequantize(&Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!(
            w.dequantize() == wref,
            "{name}: dequantize differs from candle"
        );
        let (rows, cols, m) = (w.rows(), w.cols(), 3);
        let x = random_x(m, cols, checked as u64);
        let mut y = vec![f32::NAN; m * rows];
        w.matmul(&x, m, &mut y);
        let yref = ref_matmul(&wref, &x, m, rows, cols);
        check_bound(&y, &yref, &wref, &x, m, rows, cols, &name);
        assert!(
            rel_err(&y, &yref) < TOL_REF,
            "{name}: {}",
            rel_err(&y, &yref)
        );
        checked += 1;
        if name.starts_with("blk.0.") {
            first_layer.push((name, w));
        }
    }
    eprintln!("{checked} real tensors checked");
    assert!(checked > 0);
    // The first layer's matrices over the hidden size, as one group (formats may differ,
    // as in Qwen2.5-Coder-0.5B's Q4_K_M file): equal to the separate matmuls.
    let Some(hidden) = first_layer.iter().map(|(_, w)| w.cols()).min() else {
        return;
    };
    let parts: Vec<&QuantMatrix> = first_layer
        .iter()
        .filter(|(_, w)| w.cols() == hidden)
        .map(|(_, w)| w)
        .collect();
    let formats: Vec<QuantFormat> = parts.iter().map(|p| p.format()).collect();
    let (m, total) = (3, parts.iter().map(|p| p.rows()).sum::<usize>());
    let x = random_x(m, hidden, 1);
    let mut y = vec![f32::NAN; m * total];
    QuantMatrix::matmul_group(&parts, &x, m, &mut y);
    let mut at = 0;
    for p in &parts {
        let mut yp = vec![f32::NAN; m * p.rows()];
        p.matmul(&x, m, &mut yp);
        for r in 0..m {
            assert!(yp[r * p.rows()..(r + 1) * p.rows()] == y[r * total + at..][..p.rows()]);
        }
        at += p.rows();
    }
    eprintln!("first layer as one group: {formats:?}");
}

/// Q2_K, Q3_K, Q5_K, IQ4_XS (one and several super-blocks) and IQ4_NL, over row counts that
/// are and are not multiples of 16: dequantization bit-identical to ggml's, every path within
/// the bound of the reference and agreeing with the scalar path.
#[test]
fn new_formats_all_paths_all_shapes() {
    let mut n = 0;
    for f in NEW_SUPER {
        for cols in [256, 512, 1536, 4096] {
            for rows in [1, 7, 16, 17, 49] {
                n += check_case(f, rows, cols, &[1, 2, 5, 16, 37], (rows * 13 + cols) as u64);
            }
        }
    }
    for cols in [32, 64, 576, 1536, 4096] {
        for rows in [1, 7, 16, 17, 49] {
            let seed = (rows * 7 + cols) as u64;
            n += check_case(QuantFormat::IQ4NL, rows, cols, &[1, 2, 5, 16, 37], seed);
        }
    }
    eprintln!("{n} new-format checks on {:?}", Isa::available());
}

/// Multithreaded shapes of Qwen2.5-0.5B (hidden 896, intermediate 4864) in the new formats.
#[test]
fn new_formats_model_shapes_multithreaded() {
    for (f, rows, cols) in [
        (QuantFormat::Q2K, 896, 4864usize),
        (QuantFormat::Q3K, 4864, 896),
        (QuantFormat::Q5K, 128, 896),
        (QuantFormat::IQ4XS, 896, 896),
        (QuantFormat::IQ4NL, 4864, 896),
    ] {
        // Q2_K / Q3_K / Q5_K / IQ4_XS need cols % 256 == 0: 896 and 4864 are not, so widen.
        let cols = cols.div_ceil(f.block_elems()) * f.block_elems();
        check_case(f, rows, cols, &[1, 3, 37], rows as u64);
    }
}

/// Known-answer blocks built by hand: catches a swapped nibble order, a wrong table or a
/// misplaced scale in both the reference and the packed decoding (the random tests compare
/// the two, so a mistake made identically in both would pass there).
#[test]
fn iq4_known_answers() {
    use lathe_kernels::cpu::KVALUES_IQ4NL as T;
    // IQ4_NL: d = 0.5, byte j = j (low) | (15 - j) << 4 (high).
    let mut b = f16b(0.5).to_vec();
    b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    let want: Vec<f32> = (0..32)
        .map(|i| 0.5 * if i < 16 { T[i] } else { T[31 - i] } as f32)
        .collect();
    assert_eq!(
        dequantize_gguf(QuantFormat::IQ4NL, 1, 32, &b).unwrap(),
        want
    );
    let w = QuantMatrix::from_gguf_blocks(QuantFormat::IQ4NL, 1, 32, &b).unwrap();
    assert_eq!(w.dequantize(), want);
    // IQ4_XS: d = 0.25, sub-block ib has ls = 33 + ib (scales_l nibbles, scales_h top bits);
    // its bytes j hold (j + ib) % 16 (low) and (15 - j) (high).
    let ls: Vec<u16> = (0..8).map(|ib| 33 + ib).collect();
    let mut b = f16b(0.25).to_vec();
    let sh: u16 = (0..8).map(|ib| (ls[ib] >> 4) << (2 * ib)).sum();
    b.extend(sh.to_le_bytes());
    b.extend((0..4).map(|k| ((ls[2 * k] & 0xF) | ((ls[2 * k + 1] & 0xF) << 4)) as u8));
    for ib in 0..8u8 {
        b.extend((0..16u8).map(|j| ((j + ib) % 16) | ((15 - j) << 4)));
    }
    assert_eq!(b.len(), QuantFormat::IQ4XS.block_bytes());
    let want: Vec<f32> = (0..256)
        .map(|i| {
            let (ib, e) = (i / 32, i % 32);
            let dl = 0.25 * (ls[ib] as i32 - 32) as f32;
            let q = if e < 16 { (e + ib) % 16 } else { 31 - e };
            dl * T[q] as f32
        })
        .collect();
    assert_eq!(
        dequantize_gguf(QuantFormat::IQ4XS, 1, 256, &b).unwrap(),
        want
    );
    let w = QuantMatrix::from_gguf_blocks(QuantFormat::IQ4XS, 1, 256, &b).unwrap();
    assert_eq!(w.dequantize(), want);
    // And the products on every path (x = e_k picks weight k, up to activation rounding: a
    // one-hot row quantizes exactly).
    for isa in Isa::available() {
        for k in [0, 5, 16, 31, 100, 255] {
            let mut x = vec![0f32; 256];
            x[k] = 1.0;
            let mut y = [f32::NAN];
            w.matmul_with(isa, &x, 1, &mut y);
            assert_eq!(y[0], want[k], "{isa:?} k={k}");
        }
    }
}

/// Q2_K, Q3_K and Q5_K known answers: one element set at a time, the rest zero.
#[test]
fn k_quant_known_answers() {
    // Q5_K: d = 1, dmin = 0.5, sub-block j: scale j + 1, min 1 (6-bit pairs in the 12 bytes:
    // j < 4 directly, j >= 4 split into low nibbles + top bits), element e of sub-block j =
    // low nibble (j even) / high nibble (j odd) of qs[32 (j / 2) + e], fifth bit = bit j of qh[e].
    let mut b = vec![0u8; 176];
    b[..2].copy_from_slice(&f16b(1.0));
    b[2..4].copy_from_slice(&f16b(0.5));
    for j in 0..8usize {
        let (sc, m) = (j as u8 + 1, 1u8);
        if j < 4 {
            b[4 + j] = sc;
            b[4 + j + 4] = m;
        } else {
            b[4 + j + 4] = (sc & 0xF) | ((m & 0xF) << 4);
            b[4 + j - 4] |= (sc >> 4) << 6;
            b[4 + j] |= (m >> 4) << 6;
        }
    }
    // Sub-block 3 (odd: high nibbles of qs[32..64]), element 2: q = 7 + 16.
    b[48 + 32 + 2] = 7 << 4;
    b[16 + 2] = 1 << 3;
    let y = dequantize_gguf(QuantFormat::Q5K, 1, 256, &b).unwrap();
    for (i, &v) in y.iter().enumerate() {
        let want = if i == 3 * 32 + 2 {
            4.0 * 23.0 - 0.5
        } else {
            -0.5
        };
        assert_eq!(v, want, "Q5_K element {i}");
    }
    let w = QuantMatrix::from_gguf_blocks(QuantFormat::Q5K, 1, 256, &b).unwrap();
    assert_eq!(w.dequantize(), y);
    // Q2_K: d = 1, dmin = 0, sub-block s scale s % 16 (+ min 0); element l of sub-block 11
    // (n = 1, shift 2 * ((11 % 8) / 2) = 2, second half) is bits 2..4 of qs[32 + 16 + l].
    let mut b = vec![0u8; 84];
    for (s, v) in b[..16].iter_mut().enumerate() {
        *v = s as u8;
    }
    b[16 + 32 + 16 + 5] = 3 << 2;
    b[80..82].copy_from_slice(&f16b(1.0));
    let y = dequantize_gguf(QuantFormat::Q2K, 1, 256, &b).unwrap();
    for (i, &v) in y.iter().enumerate() {
        let want = if i == 11 * 16 + 5 { 11.0 * 3.0 } else { 0.0 };
        assert_eq!(v, want, "Q2_K element {i}");
    }
    let w = QuantMatrix::from_gguf_blocks(QuantFormat::Q2K, 1, 256, &b).unwrap();
    assert_eq!(w.dequantize(), y);
    // Q3_K: all hmask bits set (no -4), scales all 33 (6-bit 33 = low nibble 1, top bits 2),
    // element l of sub-block 13 (n = 1, j = 2, second half) = bits 4..6 of qs[32 + 16 + l];
    // clearing its hmask bit (bit 4 n + j = 6 of hmask[16 + l]) subtracts 4.
    let mut b = vec![0u8; 110];
    b[..32].fill(0xFF);
    b[96..104].fill(0x11);
    b[104..108].fill(0b1010_1010);
    b[32 + 32 + 16 + 9] = 2 << 4;
    b[16 + 9] &= !(1 << 6);
    b[108..110].copy_from_slice(&f16b(0.5));
    let y = dequantize_gguf(QuantFormat::Q3K, 1, 256, &b).unwrap();
    for (i, &v) in y.iter().enumerate() {
        let want = if i == 13 * 16 + 9 {
            0.5 * (2.0 - 4.0)
        } else {
            0.0
        };
        assert_eq!(v, want, "Q3_K element {i}");
    }
    let w = QuantMatrix::from_gguf_blocks(QuantFormat::Q3K, 1, 256, &b).unwrap();
    assert_eq!(w.dequantize(), y);
}

#[test]
fn ggml_type_ids_and_names() {
    let names = [
        (0, "F32"),
        (1, "F16"),
        (2, "Q4_0"),
        (3, "Q4_1"),
        (6, "Q5_0"),
        (7, "Q5_1"),
        (8, "Q8_0"),
        (10, "Q2_K"),
        (11, "Q3_K"),
        (12, "Q4_K"),
        (13, "Q5_K"),
        (14, "Q6_K"),
        (20, "IQ4_NL"),
        (23, "IQ4_XS"),
        (30, "BF16"),
    ];
    for (id, name) in names {
        let f = QuantFormat::from_ggml_type(id).unwrap();
        assert_eq!((f.name(), f.ggml_type()), (name, id));
        assert_eq!(f.to_string(), name);
    }
    assert_eq!(QuantFormat::ALL.len(), names.len());
    for f in QuantFormat::ALL {
        assert_eq!(QuantFormat::from_ggml_type(f.ggml_type()), Some(f));
    }
    // Q8_1, Q8_K, the IQ2/IQ3/IQ1 family, TQ*, MXFP4 and unknown ids: no kernel.
    for id in [
        4, 5, 9, 15, 16, 17, 18, 19, 21, 22, 24, 29, 31, 34, 39, 1000,
    ] {
        assert_eq!(QuantFormat::from_ggml_type(id), None, "id {id}");
    }
    // Block sizes agree with candle's for every format candle has.
    for f in QuantFormat::ALL {
        if matches!(f, QuantFormat::IQ4NL | QuantFormat::IQ4XS) {
            continue;
        }
        let d = ggml_dtype(f);
        assert_eq!(
            (d.block_size(), d.type_size()),
            (f.block_elems(), f.block_bytes())
        );
    }
}

/// Matrices of one width in different formats (as Qwen2.5-Coder-0.5B mixes them) run as one
/// call, bit-identical to the separate matmuls, on every path.
#[test]
fn matmul_group_mixed_formats_equals_the_parts() {
    let cols = 512;
    let members = [
        (QuantFormat::Q5_0, 64),
        (QuantFormat::Q8_0, 32),
        (QuantFormat::Q4K, 19),
        (QuantFormat::Q2K, 16),
        (QuantFormat::IQ4NL, 7),
        (QuantFormat::F16, 21),
        (QuantFormat::Q6K, 33),
        (QuantFormat::BF16, 3),
    ];
    let parts: Vec<QuantMatrix> = members
        .iter()
        .enumerate()
        .map(|(i, &(f, rows))| {
            let data = random_matrix(f, rows, cols, 70 + i as u64);
            QuantMatrix::from_gguf_blocks(f, rows, cols, &data).unwrap()
        })
        .collect();
    let refs: Vec<&QuantMatrix> = parts.iter().collect();
    let total: usize = members.iter().map(|m| m.1).sum();
    for threads in [1, 3] {
        cpu::set_num_threads(threads);
        for isa in Isa::available() {
            for m in [1, 5, 37] {
                let x = random_x(m, cols, m as u64);
                let mut y = vec![f32::NAN; m * total];
                QuantMatrix::matmul_group_with(isa, &refs, &x, m, &mut y);
                let mut at = 0;
                for p in &parts {
                    let mut yp = vec![f32::NAN; m * p.rows()];
                    p.matmul_with(isa, &x, m, &mut yp);
                    for r in 0..m {
                        assert!(
                            yp[r * p.rows()..(r + 1) * p.rows()]
                                == y[r * total + at..r * total + at + p.rows()],
                            "{:?} {isa:?} m={m}",
                            p.format()
                        );
                    }
                    at += p.rows();
                }
                assert!(y.iter().all(|v| v.is_finite()));
            }
        }
    }
    cpu::set_num_threads(0);
    // The candle op computes the same.
    let op = QuantGroupMatMul::new(parts.into_iter().map(Arc::new).collect()).unwrap();
    assert_eq!(op.rows(), total);
    let x = random_x(6, cols, 6);
    let mut want = vec![0f32; 6 * total];
    let refs: Vec<&QuantMatrix> = op.0.iter().map(|p| p.as_ref()).collect();
    QuantMatrix::matmul_group(&refs, &x, 6, &mut want);
    let xt = Tensor::from_vec(x, (2, 3, cols), &Device::Cpu).unwrap();
    let y = xt.apply_op1_no_bwd(&op).unwrap();
    assert_eq!(y.dims(), &[2, 3, total]);
    assert!(y.flatten_all().unwrap().to_vec1::<f32>().unwrap() == want);
    // Parts of different widths are refused.
    let a = Arc::new(
        QuantMatrix::from_gguf_blocks(
            QuantFormat::Q8_0,
            2,
            64,
            &random_matrix(QuantFormat::Q8_0, 2, 64, 1),
        )
        .unwrap(),
    );
    let b = Arc::new(
        QuantMatrix::from_gguf_blocks(
            QuantFormat::Q8_0,
            2,
            32,
            &random_matrix(QuantFormat::Q8_0, 2, 32, 1),
        )
        .unwrap(),
    );
    assert!(QuantGroupMatMul::new(vec![a, b]).is_none());
    assert!(QuantGroupMatMul::new(vec![]).is_none());
}

/// Dense F32 / F16 / BF16 weights: exact dequantization, and every path within the f32
/// accumulation bound of an f64 product: per output
/// `|y − ref| ≤ (⌈cols/16⌉ + 8) · 2⁻²³ · Σ|w x|` (each output is 16 lane sums of `cols/16`
/// terms, a 4-level tree and the tail; 2⁻²³ is twice the unit roundoff), and
/// ‖y − ref‖ / ‖ref‖ < 1e-5 overall.
#[test]
fn dense_formats_all_paths_all_shapes() {
    let mut n = 0;
    for f in DENSE {
        for cols in [1, 3, 16, 17, 64, 100, 576, 896, 4099] {
            for rows in [1, 5, 16, 17, 49] {
                let data = random_matrix(f, rows, cols, (rows * 3 + cols) as u64);
                let w = QuantMatrix::from_gguf_blocks(f, rows, cols, &data).unwrap();
                let wref = dequantize_gguf(f, rows, cols, &data).unwrap();
                assert!(w.dequantize() == wref, "{f:?} {rows}x{cols}");
                for m in [1, 2, 3, 5, 8, 19] {
                    let x = random_x(m, cols, (m + cols) as u64);
                    let yref = ref_matmul(&wref, &x, m, rows, cols);
                    for isa in Isa::available() {
                        let mut y = vec![f32::NAN; m * rows];
                        w.matmul_with(isa, &x, m, &mut y);
                        let k = (cols.div_ceil(16) + 8) as f64 * 2f64.powi(-23);
                        for c in 0..m {
                            for r in 0..rows {
                                let mag: f64 = (0..cols)
                                    .map(|i| {
                                        (wref[r * cols + i] as f64 * x[c * cols + i] as f64).abs()
                                    })
                                    .sum();
                                let (got, want) =
                                    (y[c * rows + r] as f64, yref[c * rows + r] as f64);
                                assert!(
                                    got.is_finite() && (got - want).abs() <= k * mag + 1e-30,
                                    "{f:?} {rows}x{cols} m={m} {isa:?}: out[{c}][{r}] = {got}, ref {want}"
                                );
                            }
                        }
                        let e = rel_err(&y, &yref);
                        assert!(e < 1e-5, "{f:?} {rows}x{cols} m={m} {isa:?}: {e}");
                        n += 1;
                    }
                }
            }
        }
    }
    eprintln!("{n} dense checks on {:?}", Isa::available());
}

/// Dense weights at model sizes on the pool (GEMV and GEMM), and concat_rows for them.
#[test]
fn dense_model_shapes_multithreaded_and_concat() {
    for f in [QuantFormat::F16, QuantFormat::BF16] {
        let (rows, cols) = (1000, 896);
        let data = random_matrix(f, rows, cols, 5);
        let w = QuantMatrix::from_gguf_blocks(f, rows, cols, &data).unwrap();
        let wref = w.dequantize();
        for m in [1, 4, 33] {
            let x = random_x(m, cols, m as u64);
            let mut y = vec![f32::NAN; m * rows];
            w.matmul(&x, m, &mut y);
            let e = rel_err(&y, &ref_matmul(&wref, &x, m, rows, cols));
            assert!(e < 1e-5, "{f:?} m={m}: {e}");
        }
        let a = QuantMatrix::from_gguf_blocks(f, 7, 64, &random_matrix(f, 7, 64, 1)).unwrap();
        let b = QuantMatrix::from_gguf_blocks(f, 9, 64, &random_matrix(f, 9, 64, 2)).unwrap();
        let ab = QuantMatrix::concat_rows(&[&a, &b]).unwrap();
        assert_eq!((ab.rows(), ab.cols(), ab.format()), (16, 64, f));
        assert!(ab.dequantize() == [a.dequantize(), b.dequantize()].concat());
    }
    let a = QuantMatrix::from_gguf_blocks(
        QuantFormat::F16,
        2,
        32,
        &random_matrix(QuantFormat::F16, 2, 32, 1),
    )
    .unwrap();
    let b = QuantMatrix::from_gguf_blocks(
        QuantFormat::Q8_0,
        2,
        32,
        &random_matrix(QuantFormat::Q8_0, 2, 32, 1),
    )
    .unwrap();
    assert!(QuantMatrix::concat_rows(&[&a, &b]).is_none());
    assert!(QuantMatrix::from_gguf_blocks(QuantFormat::F16, 2, 32, &[0; 126]).is_err());
}

/// The embedding lookup: rows picked from the packed (or dense) weights are exactly those rows
/// of the ggml reference, for every format, repeated and unordered ids included.
#[test]
fn dequantize_rows_is_the_reference_rows_for_every_format() {
    for (i, &f) in QuantFormat::ALL.iter().enumerate() {
        let (rows, cols) = (37, 2 * 256);
        let data = random_matrix(f, rows, cols, 900 + i as u64);
        let w = QuantMatrix::from_gguf_blocks(f, rows, cols, &data).unwrap();
        let wref = dequantize_gguf(f, rows, cols, &data).unwrap();
        let ids = [36u32, 0, 17, 17, 5, 16, 31];
        let mut out = vec![f32::NAN; ids.len() * cols];
        w.dequantize_rows(&ids, &mut out);
        for (k, &id) in ids.iter().enumerate() {
            let want = &wref[id as usize * cols..][..cols];
            assert!(
                out[k * cols..][..cols] == *want,
                "{f:?}: row {id} differs from the reference"
            );
        }
    }
}

/// The AMX path computes 16-row blocks with tile instructions and the rest with the VNNI
/// kernel; the engine's batch invariance needs the two to agree bit for bit on every row (a
/// row's path depends on the batch it is in). Also a NaN input row stays NaN in a tile block.
#[test]
fn amx_blocks_are_bit_identical_to_vnni() {
    if !Isa::Amx.is_supported() {
        eprintln!("amx_blocks_are_bit_identical_to_vnni: this CPU (or OS) has no AMX; skipped");
        return;
    }
    let mut n = 0;
    for f in LEGACY
        .into_iter()
        .chain(KQUANT)
        .chain(NEW_SUPER)
        .chain([QuantFormat::IQ4NL])
    {
        for cols in [256, 1536] {
            for rows in [7, 49] {
                let seed = (rows * 7 + cols) as u64;
                let data = random_matrix(f, rows, cols, seed);
                let w = QuantMatrix::from_gguf_blocks(f, rows, cols, &data).unwrap();
                for m in [16, 37] {
                    let mut x = random_x(m, cols, seed + 1);
                    x[3 * cols + 5] = f32::NAN;
                    let (mut vnni, mut amx) = (vec![0f32; m * rows], vec![1f32; m * rows]);
                    w.matmul_with(Isa::Avx512Vnni, &x, m, &mut vnni);
                    w.matmul_with(Isa::Amx, &x, m, &mut amx);
                    for (i, (a, b)) in amx.iter().zip(&vnni).enumerate() {
                        let nan_row = i / rows == 3;
                        assert!(
                            if nan_row {
                                a.is_nan() && b.is_nan()
                            } else {
                                a.to_bits() == b.to_bits()
                            },
                            "{f:?} {rows}x{cols} m={m} output {i}: amx {a} vnni {b}"
                        );
                    }
                    n += 1;
                }
            }
        }
    }
    eprintln!("{n} AMX-vs-VNNI bit-exact checks");
}

/// A MoE-shaped grouped matmul (experts of one shape, each over its own rows; groups without
/// rows, of one row and of more rows than one work item) equals each expert's own matmul over
/// its rows, bit for bit, on every path and thread count. Fresh random weights per run (the
/// seed is printed on failure).
#[test]
fn matmul_grouped_equals_each_expert_over_its_rows() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let (rows, cols) = (48, 512);
    let formats = [
        QuantFormat::Q4K,
        QuantFormat::Q6K,
        QuantFormat::Q8_0,
        QuantFormat::F32,
    ];
    let experts: Vec<QuantMatrix> = (0..7)
        .map(|e| {
            let f = formats[e % formats.len()];
            let data = random_matrix(f, rows, cols, seed.wrapping_add(e as u64));
            QuantMatrix::from_gguf_blocks(f, rows, cols, &data).unwrap()
        })
        .collect();
    let refs: Vec<&QuantMatrix> = experts.iter().collect();
    let counts = [3usize, 0, 1, 70, 0, 2, 9];
    let mut starts = vec![0];
    for c in counts {
        starts.push(starts.last().unwrap() + c);
    }
    let m = *starts.last().unwrap();
    let x = random_x(m, cols, seed);
    for threads in [1, 3] {
        cpu::set_num_threads(threads);
        for isa in Isa::available() {
            let mut y = vec![f32::NAN; m * rows];
            QuantMatrix::matmul_grouped_with(isa, &refs, &starts, &x, &mut y);
            for (g, e) in experts.iter().enumerate() {
                let (r0, r1) = (starts[g], starts[g + 1]);
                let mut want = vec![f32::NAN; (r1 - r0) * rows];
                e.matmul_with(isa, &x[r0 * cols..r1 * cols], r1 - r0, &mut want);
                assert!(
                    want == y[r0 * rows..r1 * rows],
                    "expert {g} ({:?}) {isa:?} threads={threads} seed={seed}",
                    e.format()
                );
            }
            assert!(y.iter().all(|v| v.is_finite()), "seed={seed}");
        }
    }
    cpu::set_num_threads(0);
}
