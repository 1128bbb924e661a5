//! The stdout table: one column per run (target × sweep point), vLLM's row names.
//!
//! With a single run it reads like `vllm bench serve`'s summary; with several (servers
//! compared, a sweep) the columns sit side by side so numbers compare along a row.

use std::collections::BTreeSet;
use std::fmt::Write;

use clap::ValueEnum;

use super::{BenchReport, RunReport};
use crate::stats::Summary;

enum Row {
    Section(&'static str),
    Values(String, Vec<String>),
}

fn name_of<T: ValueEnum>(v: &T) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default()
}

/// A row of a latency section: its name and the statistic it shows.
type Stat = (&'static str, fn(&Summary) -> f64);

fn count(v: usize) -> String {
    v.to_string()
}

fn num(v: f64) -> String {
    format!("{v:.2}")
}

fn values(runs: &[RunReport], f: impl Fn(&RunReport) -> String) -> Vec<String> {
    runs.iter().map(f).collect()
}

fn latency_rows(
    rows: &mut Vec<Row>,
    runs: &[RunReport],
    title: &'static str,
    unit: &str,
    get: impl Fn(&RunReport) -> Option<Summary>,
) {
    rows.push(Row::Section(title));
    let stats: [Stat; 4] = [
        ("Mean", |s| s.mean),
        ("Median", |s| s.median),
        ("P90", |s| s.p90),
        ("P99", |s| s.p99),
    ];
    for (name, pick) in stats {
        let label = format!("{name} {unit} (ms)");
        rows.push(Row::Values(
            label,
            values(runs, |r| get(r).map_or("-".into(), |s| num(pick(&s)))),
        ));
    }
}

fn rows(report: &BenchReport) -> Vec<Row> {
    let runs = &report.runs;
    let mut rows = vec![
        Row::Values(
            "Successful requests".into(),
            values(runs, |r| count(r.metrics.completed)),
        ),
        Row::Values(
            "Failed requests".into(),
            values(runs, |r| count(r.metrics.failed)),
        ),
    ];
    if runs.iter().any(|r| r.metrics.cancelled > 0) {
        rows.push(Row::Values(
            "Cancelled (Ctrl-C)".into(),
            values(runs, |r| count(r.metrics.cancelled)),
        ));
    }
    rows.extend([
        Row::Values(
            "Benchmark duration (s)".into(),
            values(runs, |r| num(r.metrics.duration_s)),
        ),
        Row::Values(
            "Total input tokens".into(),
            values(runs, |r| count(r.metrics.total_input_tokens)),
        ),
        Row::Values(
            "Total generated tokens".into(),
            values(runs, |r| count(r.metrics.total_output_tokens)),
        ),
        Row::Values(
            "Token counts from usage".into(),
            values(runs, |r| {
                format!("{}/{}", r.metrics.requests_with_usage, r.metrics.completed)
            }),
        ),
        Row::Values(
            "Request throughput (req/s)".into(),
            values(runs, |r| num(r.metrics.request_throughput)),
        ),
    ]);
    if runs.iter().any(|r| r.metrics.request_goodput.is_some()) {
        rows.push(Row::Values(
            "Request goodput (req/s)".into(),
            values(runs, |r| r.metrics.request_goodput.map_or("-".into(), num)),
        ));
    }
    rows.extend([
        Row::Values(
            "Output token throughput (tok/s)".into(),
            values(runs, |r| num(r.metrics.output_throughput)),
        ),
        Row::Values(
            "Total token throughput (tok/s)".into(),
            values(runs, |r| num(r.metrics.total_token_throughput)),
        ),
    ]);
    latency_rows(&mut rows, runs, "Time to First Token", "TTFT", |r| {
        r.metrics.ttft_ms
    });
    latency_rows(
        &mut rows,
        runs,
        "Time per Output Token (excl. 1st token)",
        "TPOT",
        |r| r.metrics.tpot_ms,
    );
    latency_rows(&mut rows, runs, "Inter-token Latency", "ITL", |r| {
        r.metrics.itl_ms
    });
    latency_rows(&mut rows, runs, "End-to-end Latency", "E2E", |r| {
        r.metrics.e2e_ms
    });
    if runs.iter().any(|r| r.spec_decode.is_some()) {
        rows.push(Row::Section("Speculative decoding (server /metrics)"));
        let spec = |f: fn(&crate::serve::spec_metrics::SpecDecodeStats) -> String| {
            values(runs, move |r| r.spec_decode.as_ref().map_or("-".into(), f))
        };
        rows.extend([
            Row::Values(
                "Drafts (verification steps)".into(),
                spec(|s| count(s.drafts as usize)),
            ),
            Row::Values(
                "Draft tokens".into(),
                spec(|s| count(s.draft_tokens as usize)),
            ),
            Row::Values(
                "Accepted tokens".into(),
                spec(|s| count(s.accepted_tokens as usize)),
            ),
            Row::Values(
                "Acceptance rate".into(),
                spec(|s| s.acceptance_rate.map_or("-".into(), num)),
            ),
            Row::Values(
                "Mean accepted length".into(),
                spec(|s| s.mean_accepted_length.map_or("-".into(), num)),
            ),
        ]);
    }
    let kinds: BTreeSet<&String> = runs.iter().flat_map(|r| r.metrics.errors.keys()).collect();
    if !kinds.is_empty() {
        rows.push(Row::Section("Errors"));
        for k in kinds {
            rows.push(Row::Values(
                k.clone(),
                values(runs, |r| {
                    count(r.metrics.errors.get(k).copied().unwrap_or(0))
                }),
            ));
        }
    }
    rows
}

/// The table as text.
pub fn render(report: &BenchReport) -> String {
    let names: Vec<String> = report.runs.iter().map(RunReport::name).collect();
    let rows = rows(report);
    let label_w = rows
        .iter()
        .filter_map(|r| match r {
            Row::Values(l, _) => Some(l.chars().count()),
            Row::Section(_) => None,
        })
        .max()
        .unwrap_or(10)
        + 2;
    let mut col_w = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(8)
        .max(10)
        + 2;
    for r in &rows {
        if let Row::Values(_, vs) = r {
            col_w = col_w.max(vs.iter().map(|v| v.len() + 2).max().unwrap_or(0));
        }
    }
    let width = label_w + col_w * names.len().max(1);
    let mut out = String::new();
    let title = " Serving Benchmark Result ";
    let pad = width.saturating_sub(title.len());
    let _ = writeln!(
        out,
        "{}{title}{}",
        "=".repeat(pad / 2),
        "=".repeat(pad - pad / 2)
    );
    let c = &report.config;
    let _ = writeln!(
        out,
        "workload {} · endpoint {} · seed {} · token counter {}{}",
        name_of(&c.workload),
        name_of(&c.endpoint),
        c.seed,
        report.harness.token_counter,
        if report.interrupted {
            " · INTERRUPTED"
        } else {
            ""
        }
    );
    let _ = write!(out, "{:label_w$}", "");
    for n in &names {
        let _ = write!(out, "{n:>col_w$}");
    }
    out.push('\n');
    for r in rows {
        match r {
            Row::Section(t) => {
                let t = format!(" {t} ");
                let pad = width.saturating_sub(t.chars().count());
                let _ = writeln!(
                    out,
                    "{}{t}{}",
                    "-".repeat(pad / 2),
                    "-".repeat(pad - pad / 2)
                );
            }
            Row::Values(label, vs) => {
                let _ = write!(out, "{label:label_w$}");
                for v in vs {
                    let _ = write!(out, "{v:>col_w$}");
                }
                out.push('\n');
            }
        }
    }
    let _ = write!(out, "{}", "=".repeat(width));
    for run in &report.runs {
        for e in &run.error_samples {
            let _ = write!(
                out,
                "\n{}: {} e.g. {}",
                run.name(),
                e.key(),
                e.message.replace('\n', " ")
            );
        }
    }
    out
}
