//! Request arrival times for `--request-rate`: a Poisson process.
//!
//! Inter-arrival gaps are exponential with mean `1/rate`, drawn by inversion
//! (`−ln(1 − U) / rate`) from a generator seeded by `--seed`, so a run's arrival schedule is
//! reproducible. This is vLLM's default (`--burstiness 1`, a gamma of shape 1).

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Seeded exponential inter-arrival gaps.
pub struct PoissonArrivals {
    rate: f64,
    rng: StdRng,
}

impl PoissonArrivals {
    /// `rate` in requests per second (> 0 and finite).
    pub fn new(rate: f64, seed: u64) -> Self {
        assert!(
            rate > 0.0 && rate.is_finite(),
            "request rate must be positive"
        );
        PoissonArrivals {
            rate,
            rng: StdRng::seed_from_u64(seed ^ 0xA881_7A15),
        }
    }

    /// The gap before the next arrival, in seconds.
    pub fn next_gap_s(&mut self) -> f64 {
        let u: f64 = self.rng.random();
        -(1.0 - u).ln() / self.rate
    }

    pub fn next_gap(&mut self) -> Duration {
        Duration::from_secs_f64(self.next_gap_s())
    }
}

impl Iterator for PoissonArrivals {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(self.next_gap())
    }
}
