//! `lathe bench serve`: load-test one or more OpenAI-compatible servers and report.
//!
//! [`run_serve`] is the whole command: every target × sweep point is one run (warmup first,
//! then measurement, same seed hence same prompts everywhere), then a table on stdout, the JSON
//! report (`--out`) and SVG plots (`--plot-dir`). Ctrl-C stops the run in progress and still
//! reports what was measured. [`run_bench`] is the same without the outputs and the signal
//! handler, for tests and embedding; [`run_serve_with`] plugs a real tokenizer in.

pub mod args;
pub mod arrivals;
pub mod client;
pub mod loadgen;
pub mod spec_metrics;
pub mod sse;

use std::sync::Arc;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

pub use args::{ServeArgs, Sweep, SweepParam};
pub use client::{BenchClient, ClientOptions, Target};
pub use loadgen::{run_load, LoadPlan, RunOutput, StopSignal};

use crate::metrics::Metrics;
use crate::report::{self, BenchReport, RunReport};
use crate::tokens::{ChunkCounter, TokenCounter};
use crate::workload::{self, load_sharegpt, Lengths, WorkloadConfig, WorkloadKind};

/// Runs `lathe bench serve` with chunk-counting for servers that report no `usage`.
pub async fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    run_serve_with(args, Arc::new(ChunkCounter))
        .await
        .map(|_| ())
}

/// Runs `lathe bench serve` with `counter` as the tokenizer hook; returns the report written.
pub async fn run_serve_with(
    args: ServeArgs,
    counter: Arc<dyn TokenCounter>,
) -> anyhow::Result<BenchReport> {
    let stop = StopSignal::default();
    let on_ctrl_c = stop.clone();
    let signal = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ninterrupted: reporting what was measured (Ctrl-C again to abort)");
            on_ctrl_c.stop();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    let result = run_bench(&args, counter, stop).await;
    signal.abort();
    let report = result?;
    report::write_outputs(&report, args.out.as_deref(), args.plot_dir.as_deref())?;
    Ok(report)
}

/// The targets `--base-url`/`--model` name: `label=url` or a bare URL labelled by host:port.
pub fn targets(args: &ServeArgs) -> anyhow::Result<Vec<Target>> {
    let n = args.base_url.len();
    anyhow::ensure!(n > 0, "give at least one --base-url");
    anyhow::ensure!(
        args.model.len() == 1 || args.model.len() == n,
        "give one --model for all servers or one per --base-url ({n})"
    );
    let mut out: Vec<Target> = Vec::with_capacity(n);
    for (i, spec) in args.base_url.iter().enumerate() {
        let (label, url) = match spec.split_once('=') {
            Some((l, u)) if !l.is_empty() && !l.contains([':', '/']) => (l.to_string(), u),
            _ => {
                let host = spec.split("://").last().unwrap_or(spec);
                (
                    host.split('/').next().unwrap_or(host).to_string(),
                    spec.as_str(),
                )
            }
        };
        anyhow::ensure!(
            url.starts_with("http://") || url.starts_with("https://"),
            "not an http(s) URL: {url}"
        );
        let label = if out.iter().any(|t| t.label == label) {
            format!("{label}#{}", i + 1)
        } else {
            label
        };
        let model = args.model[if args.model.len() == 1 { 0 } else { i }].clone();
        out.push(Target {
            label,
            base_url: url.to_string(),
            model,
        });
    }
    Ok(out)
}

/// One point of the series: the concurrency and rate a run uses.
fn points(args: &ServeArgs) -> Vec<(Option<usize>, Option<f64>)> {
    let default_c = match args.workload {
        WorkloadKind::Agent => Some(args.sessions.max(1)),
        _ if args.request_rate.is_some() => None,
        _ => Some(1),
    };
    let c = args.concurrency.or(default_c);
    match &args.sweep {
        None => vec![(c, args.request_rate)],
        Some(s) => s
            .values
            .iter()
            .map(|&v| match s.param {
                SweepParam::Concurrency => (Some(v as usize), args.request_rate),
                SweepParam::RequestRate => (args.concurrency, Some(v)),
            })
            .collect(),
    }
}

fn workload_config(args: &ServeArgs, counter: &dyn TokenCounter) -> anyhow::Result<WorkloadConfig> {
    anyhow::ensure!(
        (0.0..1.0).contains(&args.range_ratio),
        "--range-ratio must be in [0, 1)"
    );
    let dataset = match (args.workload, &args.dataset) {
        (WorkloadKind::Sharegpt, Some(p)) => Some(Arc::new(load_sharegpt(p, counter)?)),
        (WorkloadKind::Sharegpt, None) => anyhow::bail!("--workload sharegpt needs --dataset PATH"),
        _ => None,
    };
    Ok(WorkloadConfig {
        kind: args.workload,
        endpoint: args.endpoint,
        seed: args.seed,
        lengths: Lengths {
            input_len: args.input_len.max(1),
            output_len: args.output_len.max(1),
            range_ratio: args.range_ratio,
            max_tokens: args.max_tokens,
        },
        code_mix: args.code_mix,
        dataset,
        turns: args.turns,
    })
}

fn progress_bar(args: &ServeArgs, total: Option<usize>, prefix: String) -> ProgressBar {
    if args.no_progress {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(n) => ProgressBar::new(n as u64).with_style(
            ProgressStyle::with_template(
                "{prefix:>16} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}",
            )
            .expect("template"),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template(
                "{prefix:>16} [{elapsed_precise}] {spinner} {pos} requests {msg}",
            )
            .expect("template"),
        ),
    };
    bar.set_prefix(prefix);
    bar
}

/// Runs every target × point and returns the report; no output, no signal handling.
pub async fn run_bench(
    args: &ServeArgs,
    counter: Arc<dyn TokenCounter>,
    stop: StopSignal,
) -> anyhow::Result<BenchReport> {
    let targets = targets(args)?;
    let wl = workload_config(args, counter.as_ref())?;
    let mut extra_body = args.extra_body.clone().unwrap_or_default();
    if args.ignore_eos {
        extra_body.entry("ignore_eos").or_insert(true.into());
    }
    let opts = ClientOptions {
        api_key: args.api_key.clone(),
        extra_body,
        timeout: args.timeout,
    };
    let client = Arc::new(BenchClient::new(opts, counter.clone())?);
    // Agent runs default to exactly --sessions conversations of --turns turns.
    let agent_default = args.workload == WorkloadKind::Agent
        && args.num_requests.is_none()
        && args.duration.is_none();
    let max_conversations = agent_default.then_some(args.sessions.max(1));
    let num_requests = match (args.num_requests, args.duration) {
        (None, None) if agent_default => None,
        (None, None) => Some(100),
        (n, _) => n,
    };
    let total = num_requests.or(max_conversations.map(|s| s * args.turns.max(1)));
    let mut runs = Vec::new();
    'targets: for target in &targets {
        for (concurrency, request_rate) in points(args) {
            if stop.is_stopped() {
                break 'targets;
            }
            let plan = LoadPlan {
                concurrency,
                request_rate,
                num_requests,
                max_conversations,
                duration: args.duration,
                seed: args.seed,
            };
            warmup(args, &client, target, &wl, &plan, counter.clone(), &stop).await?;
            let name = run_name(target, &plan);
            let bar = progress_bar(args, total, name);
            let load = workload::build(&wl, counter.clone())?;
            let spec_before = spec_metrics::scrape(client.http(), target).await;
            let out = run_load(
                client.clone(),
                target.clone(),
                load,
                &plan,
                stop.clone(),
                bar.clone(),
            )
            .await;
            bar.finish_and_clear();
            let metrics = Metrics::compute(
                &out.records,
                out.duration_s,
                out.cancelled,
                &args.slo.unwrap_or_default(),
            );
            let spec_after = spec_metrics::scrape(client.http(), target).await;
            let mut run = RunReport::new(
                target,
                &plan,
                args.workload,
                metrics,
                out.records,
                args.detailed,
            );
            run.spec_decode = spec_before
                .zip(spec_after)
                .and_then(|(b, a)| spec_metrics::SpecDecodeStats::between(b, a));
            runs.push(run);
        }
    }
    Ok(BenchReport::new(
        args.clone(),
        targets,
        counter.name(),
        stop.is_stopped(),
        runs,
    ))
}

fn run_name(target: &Target, plan: &LoadPlan) -> String {
    match (plan.request_rate, plan.concurrency) {
        (Some(r), _) => format!("{} r={r}", target.label),
        (None, c) => format!("{} c={}", target.label, c.unwrap_or(1)),
    }
}

/// Sends `--warmup` requests (a different seed's prompts) and fails if none succeeded.
async fn warmup(
    args: &ServeArgs,
    client: &Arc<BenchClient>,
    target: &Target,
    wl: &WorkloadConfig,
    plan: &LoadPlan,
    counter: Arc<dyn TokenCounter>,
    stop: &StopSignal,
) -> anyhow::Result<()> {
    if args.warmup == 0 {
        return Ok(());
    }
    let cfg = WorkloadConfig {
        seed: wl.seed ^ 0x5741_524D,
        ..wl.clone()
    };
    let load = workload::build(&cfg, counter).context("building the warmup workload")?;
    let c = plan
        .concurrency
        .unwrap_or(args.warmup)
        .clamp(1, args.warmup);
    let wplan = LoadPlan {
        concurrency: Some(c),
        num_requests: Some(args.warmup),
        ..LoadPlan::default()
    };
    let out = run_load(
        client.clone(),
        target.clone(),
        load,
        &wplan,
        stop.clone(),
        ProgressBar::hidden(),
    )
    .await;
    let failed: Vec<_> = out
        .records
        .iter()
        .filter_map(|r| r.error.as_ref())
        .collect();
    if !out.records.is_empty() && failed.len() == out.records.len() {
        let e = failed[0];
        anyhow::bail!(
            "warmup against {} ({}) failed: {}: {}",
            target.label,
            target.base_url,
            e.key(),
            e.message
        );
    }
    if !failed.is_empty() {
        eprintln!(
            "warning: {}/{} warmup requests to {} failed: {}",
            failed.len(),
            out.records.len(),
            target.label,
            failed[0].message
        );
    }
    Ok(())
}
