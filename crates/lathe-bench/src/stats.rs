//! Descriptive statistics, numpy-compatible.
//!
//! [`percentile`] is numpy's default (`method="linear"`): the `p`-th percentile of `n` sorted
//! values sits at rank `p/100 · (n − 1)` and interpolates linearly between its neighbours.
//! [`Summary::std`] is the population standard deviation (`np.std`, `ddof=0`), as vLLM reports.

use serde::{Deserialize, Serialize};

/// `p`-th percentile (0–100) of `sorted` (ascending, non-empty), numpy's linear method.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    assert!(!sorted.is_empty(), "percentile of an empty set");
    let rank = (p.clamp(0.0, 100.0) / 100.0) * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let frac = rank - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

/// Mean, spread and percentiles of one metric, in the unit of the values given.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub count: usize,
    pub mean: f64,
    pub std: f64,
    pub median: f64,
    pub p90: f64,
    pub p99: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    /// Summary of `values` (any order); `None` for an empty set.
    pub fn of(values: &[f64]) -> Option<Summary> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        let mean = sorted.iter().sum::<f64>() / n;
        let var = sorted.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        Some(Summary {
            count: sorted.len(),
            mean,
            std: var.sqrt(),
            median: percentile(&sorted, 50.0),
            p90: percentile(&sorted, 90.0),
            p99: percentile(&sorted, 99.0),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        })
    }

    /// The same summary with every value multiplied by `k` (seconds → milliseconds: 1000).
    pub fn scaled(self, k: f64) -> Summary {
        Summary {
            count: self.count,
            mean: self.mean * k,
            std: self.std * k,
            median: self.median * k,
            p90: self.p90 * k,
            p99: self.p99 * k,
            min: self.min * k,
            max: self.max * k,
        }
    }
}

/// Empirical CDF of `values`: sorted `(value, fraction ≤ value)` points, thinned to at most
/// `max_points` (the last point, fraction 1, is always kept).
pub fn cdf_points(values: &[f64], max_points: usize) -> Vec<(f64, f64)> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return Vec::new();
    }
    let step = n.div_ceil(max_points.max(1)).max(1);
    let mut pts: Vec<(f64, f64)> = (0..n)
        .step_by(step)
        .map(|i| (sorted[i], (i + 1) as f64 / n as f64))
        .collect();
    if pts.last().map(|p| p.1) != Some(1.0) {
        pts.push((sorted[n - 1], 1.0));
    }
    pts
}
