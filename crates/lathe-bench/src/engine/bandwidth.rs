//! Memory bandwidth measured on the spot: the roofline's denominator.
//!
//! Decode reads the weights and never writes them, so the limit is **read** bandwidth with all
//! the kernel threads streaming at once — not a one-thread copy, which counts the writes and
//! leaves cores idle (llama.cpp decodes above a copy figure). Both are reported.

use std::time::Instant;

/// 256 MiB: far beyond any cache.
const BYTES: usize = 256 << 20;

/// Bytes per second (read + written) of a large single-threaded buffer copy, best of 5.
pub fn measure_copy_bandwidth() -> f64 {
    let n = BYTES / 4;
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

/// Bytes per second read by `threads` threads each summing its share of one large buffer,
/// best of 5.
pub fn measure_read_bandwidth(threads: usize) -> f64 {
    let threads = threads.max(1);
    let n = BYTES / 8;
    let buf: Vec<u64> = (0..n as u64).collect();
    let chunk = n.div_ceil(threads);
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let total: u64 = std::thread::scope(|s| {
            let parts: Vec<_> = buf
                .chunks(chunk)
                .map(|c| s.spawn(move || sum_lanes(c)))
                .collect();
            parts.into_iter().map(|h| h.join().unwrap_or(0)).sum()
        });
        std::hint::black_box(total);
        best = best.min(t.elapsed().as_secs_f64());
    }
    (n * 8) as f64 / best
}

/// A sum with eight independent accumulators (vectorized; not bound by one add chain).
fn sum_lanes(c: &[u64]) -> u64 {
    let mut acc = [0u64; 8];
    let mut it = c.chunks_exact(8);
    for block in &mut it {
        for (a, &v) in acc.iter_mut().zip(block) {
            *a = a.wrapping_add(v);
        }
    }
    let tail: u64 = it.remainder().iter().fold(0, |a, &v| a.wrapping_add(v));
    acc.iter().fold(tail, |a, &v| a.wrapping_add(v))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_lane_sum_is_the_sum() {
        let v: Vec<u64> = (0..1003).collect();
        assert_eq!(super::sum_lanes(&v), 1003 * 1002 / 2);
    }
}
