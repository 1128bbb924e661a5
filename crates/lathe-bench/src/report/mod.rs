//! Reports: the JSON document ([`BenchReport`]), the stdout table ([`table`]) and SVG plots
//! ([`plots`], drawn by the dependency-free [`svg`]).
//!
//! The JSON holds the harness identity (version, git commit, token counter), the date
//! (RFC 3339, UTC), the full configuration (API key excepted), the targets, and one entry per
//! run (target × sweep point) with all its metrics, error counts and a few error samples; with
//! `--detailed`, every request's timings too.

pub mod plots;
pub mod svg;
pub mod table;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::Serialize;

use crate::metrics::Metrics;
use crate::record::{RequestError, RequestRecord};
use crate::serve::{LoadPlan, ServeArgs, Sweep, Target};
use crate::workload::WorkloadKind;

/// Who produced a report.
#[derive(Debug, Clone, Serialize)]
pub struct Harness {
    pub name: &'static str,
    pub version: &'static str,
    pub git_commit: &'static str,
    /// How tokens were counted when servers reported no usage ("chunks" by default).
    pub token_counter: String,
}

/// The whole JSON report.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub harness: Harness,
    /// When the report was made, RFC 3339 UTC.
    pub date: String,
    pub config: ServeArgs,
    pub targets: Vec<Target>,
    pub sweep: Option<Sweep>,
    /// True when Ctrl-C cut the series short: runs hold what was measured until then.
    pub interrupted: bool,
    pub runs: Vec<RunReport>,
}

impl BenchReport {
    pub fn new(
        config: ServeArgs,
        targets: Vec<Target>,
        token_counter: &str,
        interrupted: bool,
        runs: Vec<RunReport>,
    ) -> Self {
        BenchReport {
            harness: Harness {
                name: "lathe bench serve",
                version: crate::VERSION,
                git_commit: crate::GIT_COMMIT,
                token_counter: token_counter.to_string(),
            },
            date: rfc3339(SystemTime::now()),
            sweep: config.sweep.clone(),
            config,
            targets,
            interrupted,
            runs,
        }
    }
}

/// One target × point.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The target's label, URL and model.
    pub target: String,
    pub base_url: String,
    pub model: String,
    pub workload: WorkloadKind,
    /// In-flight requests (concurrency mode) or their cap (rate mode); `None`: no cap.
    pub concurrency: Option<usize>,
    /// Poisson arrival rate; `None` in concurrency mode.
    pub request_rate: Option<f64>,
    pub metrics: Metrics,
    /// The server's speculative-decoding counters over the run (`/metrics`, vLLM's names);
    /// absent when it exports none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec_decode: Option<crate::serve::spec_metrics::SpecDecodeStats>,
    /// The first failure of each kind.
    pub error_samples: Vec<RequestError>,
    /// Every request (with `--detailed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<Vec<RequestRecord>>,
    /// Every request, for plots (never serialised).
    #[serde(skip)]
    pub records: Vec<RequestRecord>,
}

impl RunReport {
    pub fn new(
        target: &Target,
        plan: &LoadPlan,
        workload: WorkloadKind,
        metrics: Metrics,
        records: Vec<RequestRecord>,
        detailed: bool,
    ) -> Self {
        let mut error_samples: Vec<RequestError> = Vec::new();
        for e in records.iter().filter_map(|r| r.error.as_ref()) {
            if !error_samples.iter().any(|s| s.key() == e.key()) {
                error_samples.push(e.clone());
            }
        }
        RunReport {
            target: target.label.clone(),
            base_url: target.base_url.clone(),
            model: target.model.clone(),
            workload,
            concurrency: plan.concurrency,
            request_rate: plan.request_rate,
            metrics,
            spec_decode: None,
            error_samples,
            requests: detailed.then(|| records.clone()),
            records,
        }
    }

    /// Column name in tables and legend in plots: `lathe c=16`, `vllm r=4`.
    pub fn name(&self) -> String {
        match (self.request_rate, self.concurrency) {
            (Some(r), Some(c)) => format!("{} r={r} c≤{c}", self.target),
            (Some(r), None) => format!("{} r={r}", self.target),
            (None, c) => format!("{} c={}", self.target, c.unwrap_or(1)),
        }
    }
}

/// Prints the table and writes the JSON and plots where asked.
pub fn write_outputs(
    report: &BenchReport,
    out: Option<&Path>,
    plot_dir: Option<&Path>,
) -> anyhow::Result<()> {
    println!("{}", table::render(report));
    if let Some(path) = out {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let json = serde_json::to_string_pretty(report)?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
        println!("JSON report: {}", path.display());
    }
    if let Some(dir) = plot_dir {
        for p in plots::write_all(report, dir)? {
            println!("plot: {}", p.display());
        }
    }
    Ok(())
}

/// `t` as RFC 3339 in UTC, to the second: `2025-06-01T12:34:56Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661); // 2000-02-29
        assert_eq!(rfc3339(t), "2000-02-29T01:01:01Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_735_689_599); // last second of 2024
        assert_eq!(rfc3339(t), "2024-12-31T23:59:59Z");
    }
}
