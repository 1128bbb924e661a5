//! Which plots a report gets (`--plot-dir`):
//!
//! - `ttft_cdf.svg`, `itl_cdf.svg`, `e2e_cdf.svg`: empirical CDFs of every run's latencies
//!   (one line per run; x clipped at the largest p99.5 so one outlier does not squash the rest).
//! - with `--sweep`: `sweep_throughput.svg` (output tokens/s per target), `sweep_tpot.svg` and
//!   `sweep_ttft.svg` (p50 solid, p99 dashed per target) against the swept parameter.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::svg::{render, Chart, Series};
use super::{BenchReport, RunReport};
use crate::record::RequestRecord;
use crate::serve::SweepParam;
use crate::stats::{cdf_points, percentile, Summary};

fn cdf_chart(
    report: &BenchReport,
    title: &str,
    metric: &str,
    get: fn(&RequestRecord) -> Vec<f64>,
) -> Chart {
    let samples: Vec<(String, Vec<f64>)> = report
        .runs
        .iter()
        .map(|run| {
            let ms = run
                .records
                .iter()
                .filter(|r| r.ok())
                .flat_map(get)
                .map(|s| s * 1000.0)
                .collect();
            (run.name(), ms)
        })
        .collect();
    let clip = samples
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(_, v)| {
            let mut v = v.clone();
            v.sort_by(f64::total_cmp);
            percentile(&v, 99.5)
        })
        .fold(0.0f64, f64::max);
    let series = samples
        .into_iter()
        .map(|(name, v)| Series {
            name,
            points: steps(cdf_points(&v, 400).into_iter().filter(|p| p.0 <= clip)),
            dashed: false,
        })
        .collect();
    Chart {
        title: format!("{title} CDF (x clipped at p99.5)"),
        x_label: format!("{metric} (ms)"),
        y_label: "fraction of samples".into(),
        log_x: false,
        markers: false,
        series,
    }
}

/// A CDF drawn as a staircase from fraction 0.
fn steps(points: impl Iterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (x, f) in points {
        let prev = out.last().map_or(0.0, |p| p.1);
        out.push((x, prev));
        out.push((x, f));
    }
    out
}

/// A sweep line: legend suffix, dashed, and the value it plots.
type Line = (&'static str, bool, fn(&RunReport) -> Option<f64>);

fn param_value(run: &RunReport, param: SweepParam) -> f64 {
    match param {
        SweepParam::Concurrency => run.concurrency.unwrap_or(1) as f64,
        SweepParam::RequestRate => run.request_rate.unwrap_or(0.0),
    }
}

/// One series per target (p50/p99 pairs for latencies) against the swept parameter.
fn sweep_chart(
    report: &BenchReport,
    param: SweepParam,
    title: &str,
    y_label: &str,
    lines: &[Line],
) -> Chart {
    let mut series = Vec::new();
    for t in &report.targets {
        for (suffix, dashed, get) in lines {
            let points = report
                .runs
                .iter()
                .filter(|r| r.target == t.label)
                .filter_map(|r| get(r).map(|y| (param_value(r, param), y)))
                .collect();
            series.push(Series {
                name: format!("{} {suffix}", t.label).trim().to_string(),
                points,
                dashed: *dashed,
            });
        }
    }
    let xs: Vec<f64> = report
        .runs
        .iter()
        .map(|r| param_value(r, param))
        .filter(|x| *x > 0.0)
        .collect();
    let (lo, hi) = xs
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
    Chart {
        title: title.into(),
        x_label: param.label().into(),
        y_label: y_label.into(),
        log_x: lo.is_finite() && hi / lo >= 8.0,
        markers: true,
        series,
    }
}

fn p(s: Option<Summary>, median: bool) -> Option<f64> {
    s.map(|s| if median { s.median } else { s.p99 })
}

/// Writes every plot for `report` into `dir`; returns the files written.
pub fn write_all(report: &BenchReport, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut charts = vec![
        (
            "ttft_cdf.svg",
            cdf_chart(report, "Time to first token", "TTFT", |r| {
                r.ttft_s.into_iter().collect()
            }),
        ),
        (
            "itl_cdf.svg",
            cdf_chart(report, "Inter-token latency", "ITL", |r| r.itl_s.clone()),
        ),
        (
            "e2e_cdf.svg",
            cdf_chart(report, "End-to-end latency", "E2E", |r| vec![r.e2e_s]),
        ),
    ];
    if let Some(sweep) = &report.sweep {
        let param = sweep.param;
        charts.push((
            "sweep_throughput.svg",
            sweep_chart(
                report,
                param,
                "Output token throughput",
                "tokens/s",
                &[("", false, |r| Some(r.metrics.output_throughput))],
            ),
        ));
        charts.push((
            "sweep_tpot.svg",
            sweep_chart(
                report,
                param,
                "Time per output token",
                "TPOT (ms)",
                &[
                    ("p50", false, |r| p(r.metrics.tpot_ms, true)),
                    ("p99", true, |r| p(r.metrics.tpot_ms, false)),
                ],
            ),
        ));
        charts.push((
            "sweep_ttft.svg",
            sweep_chart(
                report,
                param,
                "Time to first token",
                "TTFT (ms)",
                &[
                    ("p50", false, |r| p(r.metrics.ttft_ms, true)),
                    ("p99", true, |r| p(r.metrics.ttft_ms, false)),
                ],
            ),
        ));
    }
    let mut written = Vec::new();
    for (name, chart) in charts {
        let path = dir.join(name);
        std::fs::write(&path, render(&chart))
            .with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
