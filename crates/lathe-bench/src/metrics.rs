//! Run-level metrics from per-request records, as vLLM's `calculate_metrics` computes them.
//!
//! Only successful requests count towards tokens, latencies and throughput; failures are
//! counted by kind. Throughputs divide by the benchmark duration (first dispatch after warmup
//! to the last completion). Goodput counts successful requests that meet *every* SLO given
//! (`metric ≤ slo`); a request with one output token has TPOT 0 for that check, like vLLM.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::record::{RequestRecord, TokenSource};
use crate::stats::Summary;

/// Service-level objectives for goodput; absent fields are not checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    #[serde(with = "opt_secs")]
    pub ttft: Option<Duration>,
    #[serde(with = "opt_secs")]
    pub tpot: Option<Duration>,
    #[serde(with = "opt_secs")]
    pub e2e: Option<Duration>,
}

impl Slo {
    pub fn is_empty(&self) -> bool {
        self.ttft.is_none() && self.tpot.is_none() && self.e2e.is_none()
    }

    /// Whether a successful request meets every objective.
    pub fn met_by(&self, r: &RequestRecord) -> bool {
        let within = |slo: Option<Duration>, v: f64| slo.is_none_or(|s| v <= s.as_secs_f64());
        r.ok()
            && within(self.ttft, r.ttft_s.unwrap_or(f64::INFINITY))
            && within(self.tpot, r.tpot_s().unwrap_or(0.0))
            && within(self.e2e, r.e2e_s)
    }
}

/// Aggregate metrics of one run. Latency summaries are in milliseconds; `None` when the run
/// produced no sample of that metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub duration_s: f64,
    pub completed: usize,
    pub failed: usize,
    /// Requests still in flight when the run was interrupted (not counted anywhere else).
    pub cancelled: usize,
    pub total_input_tokens: usize,
    pub total_output_tokens: usize,
    pub request_throughput: f64,
    pub output_throughput: f64,
    pub total_token_throughput: f64,
    /// Requests/s meeting all SLOs; `None` when no SLO was given.
    pub request_goodput: Option<f64>,
    pub good_requests: Option<usize>,
    pub ttft_ms: Option<Summary>,
    pub tpot_ms: Option<Summary>,
    pub itl_ms: Option<Summary>,
    pub e2e_ms: Option<Summary>,
    /// Successful requests whose token counts came from the server's `usage`.
    pub requests_with_usage: usize,
    /// Failures by kind (`http_500`, `transport`, `timeout`, `stream`, `no_content`).
    pub errors: BTreeMap<String, usize>,
}

impl Metrics {
    pub fn compute(
        records: &[RequestRecord],
        duration_s: f64,
        cancelled: usize,
        slo: &Slo,
    ) -> Metrics {
        let ok: Vec<&RequestRecord> = records.iter().filter(|r| r.ok()).collect();
        let mut errors = BTreeMap::new();
        for e in records.iter().filter_map(|r| r.error.as_ref()) {
            *errors.entry(e.key()).or_insert(0) += 1;
        }
        let total_in: usize = ok.iter().map(|r| r.prompt_tokens).sum();
        let total_out: usize = ok.iter().map(|r| r.output_tokens).sum();
        let per_s = |x: f64| {
            if duration_s > 0.0 {
                x / duration_s
            } else {
                0.0
            }
        };
        let ms = |v: Vec<f64>| Summary::of(&v).map(|s| s.scaled(1000.0));
        let good = (!slo.is_empty()).then(|| ok.iter().filter(|r| slo.met_by(r)).count());
        Metrics {
            duration_s,
            completed: ok.len(),
            failed: records.len() - ok.len(),
            cancelled,
            total_input_tokens: total_in,
            total_output_tokens: total_out,
            request_throughput: per_s(ok.len() as f64),
            output_throughput: per_s(total_out as f64),
            total_token_throughput: per_s((total_in + total_out) as f64),
            request_goodput: good.map(|g| per_s(g as f64)),
            good_requests: good,
            ttft_ms: ms(ok.iter().filter_map(|r| r.ttft_s).collect()),
            tpot_ms: ms(ok.iter().filter_map(|r| r.tpot_s()).collect()),
            itl_ms: ms(ok.iter().flat_map(|r| r.itl_s.iter().copied()).collect()),
            e2e_ms: ms(ok.iter().map(|r| r.e2e_s).collect()),
            requests_with_usage: ok
                .iter()
                .filter(|r| r.token_source == TokenSource::Usage)
                .count(),
            errors,
        }
    }
}

/// Serialises an optional duration as seconds (a float), `null` when absent.
pub mod opt_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.map(Duration::from_secs_f64))
    }
}
