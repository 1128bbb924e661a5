//! Memory bandwidth measured on the spot: the roofline's denominator.

use std::time::Instant;

/// Bytes per second (read + written) of a large buffer copy, best of several runs.
pub fn measure_copy_bandwidth() -> f64 {
    let n = 64 << 20; // 256 MiB of f32 each way: far beyond any cache.
    let src = vec![1.0f32; n];
    let mut dst = vec![0.0f32; n];
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        dst.copy_from_slice(&src);
        std::hint::black_box(&mut dst);
        best = best.min(t.elapsed().as_secs_f64());
    }
    (2 * n * 4) as f64 / best
}
