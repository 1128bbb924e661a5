//! `lathe bench serve` command line: [`ServeArgs`] and the parsers of its compound values.
//!
//! The struct is also the "configuration" section of the JSON report (the API key excepted).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

use crate::metrics::{opt_secs, Slo};
use crate::workload::{CodeMix, Endpoint, WorkloadKind};

/// Load-test an OpenAI-compatible server (lathe, vLLM, llama-server, Ollama, ...).
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct ServeArgs {
    /// Server base URL, with or without /v1. Repeat to compare servers in one run, optionally
    /// labelled: --base-url lathe=http://127.0.0.1:8000 --base-url vllm=http://127.0.0.1:8001
    #[arg(long = "base-url", required = true)]
    pub base_url: Vec<String>,
    /// Model name sent in requests; once for all servers, or once per --base-url in order.
    #[arg(long, required = true)]
    pub model: Vec<String>,
    /// Route for prompts: chat (/v1/chat/completions) or completions (/v1/completions). Code
    /// completion and FIM requests always use /v1/completions.
    #[arg(long, value_enum, default_value = "chat")]
    pub endpoint: Endpoint,
    /// What to send.
    #[arg(long, value_enum, default_value = "random")]
    pub workload: WorkloadKind,
    /// Requests in flight (without --request-rate), or their cap (with it). Default 1; for the
    /// agent workload, --sessions.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Poisson arrivals per second (exponential gaps drawn from --seed).
    #[arg(long)]
    pub request_rate: Option<f64>,
    /// Requests to measure (default 100; agent: --sessions sessions of --turns turns). With
    /// --duration, a cap.
    #[arg(long)]
    pub num_requests: Option<usize>,
    /// Measure for this long instead (60s, 2m, 500ms); requests in flight at the end finish.
    #[arg(long, value_parser = parse_duration)]
    #[serde(with = "opt_secs")]
    pub duration: Option<Duration>,
    /// Requests sent first and not measured (model load, CUDA graphs, connection set-up).
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Seed of prompts, lengths and arrivals: the same seed sends the same requests.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Bearer token (default: $OPENAI_API_KEY). Never written to reports.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    #[serde(skip)]
    pub api_key: Option<String>,
    /// max_tokens for every request, overriding the workload's own reply lengths.
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// Prompt tokens (random, code complete/fim; agent: tokens added per turn).
    #[arg(long, default_value_t = 1024)]
    pub input_len: usize,
    /// Reply tokens (max_tokens) for random, code complete/fim and agent requests.
    #[arg(long, default_value_t = 128)]
    pub output_len: usize,
    /// Lengths are drawn uniformly from len × [1 − r, 1 + r].
    #[arg(long, default_value_t = 0.0)]
    pub range_ratio: f64,
    /// ShareGPT JSON file for --workload sharegpt.
    #[arg(long)]
    pub dataset: Option<PathBuf>,
    /// Agent: turns per session.
    #[arg(long, default_value_t = 4)]
    pub turns: usize,
    /// Agent: sessions (the default request count is sessions × turns, the default
    /// concurrency is sessions).
    #[arg(long, default_value_t = 8)]
    pub sessions: usize,
    /// Code: weights of the request kinds, e.g. complete=1,fim=1,edit=1 (FIM needs `suffix`
    /// support in /v1/completions; vLLM has none: use complete=1,edit=1 there).
    #[arg(long, default_value = "complete=1,fim=1,edit=1")]
    pub code_mix: CodeMix,
    /// Add "ignore_eos": true to every body (vLLM, llama-server), so replies run to max_tokens.
    #[arg(long)]
    pub ignore_eos: bool,
    /// JSON object merged into every request body (its keys win; null removes a key), e.g.
    /// '{"temperature":0.7,"top_p":0.95}'.
    #[arg(long, value_parser = parse_extra_body)]
    pub extra_body: Option<serde_json::Map<String, serde_json::Value>>,
    /// Goodput objectives, e.g. ttft=500ms,tpot=50ms,e2e=10s.
    #[arg(long, value_parser = parse_slo)]
    pub slo: Option<Slo>,
    /// Run a series: concurrency=1,4,16,64 or request-rate=1,2,4,8.
    #[arg(long)]
    pub sweep: Option<Sweep>,
    /// Write the JSON report here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write SVG plots (latency CDFs; sweep curves) into this directory.
    #[arg(long)]
    pub plot_dir: Option<PathBuf>,
    /// Include every request's timings (all ITL gaps) in the JSON report.
    #[arg(long)]
    pub detailed: bool,
    /// Per-request limit, from send to the end of the stream.
    #[arg(long, value_parser = parse_duration, default_value = "600s")]
    #[serde(serialize_with = "secs")]
    pub timeout: Duration,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// The parameter a sweep varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepParam {
    Concurrency,
    RequestRate,
}

impl SweepParam {
    pub fn label(self) -> &'static str {
        match self {
            SweepParam::Concurrency => "concurrency",
            SweepParam::RequestRate => "request rate (req/s)",
        }
    }
}

/// `--sweep concurrency=1,4,16` or `--sweep request-rate=1,2,4`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sweep {
    pub param: SweepParam,
    pub values: Vec<f64>,
}

impl FromStr for Sweep {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (k, vs) = s
            .split_once('=')
            .ok_or("expected concurrency=1,4,16 or request-rate=1,2")?;
        let param = match k.trim() {
            "concurrency" => SweepParam::Concurrency,
            "request-rate" | "request_rate" | "rate" => SweepParam::RequestRate,
            other => {
                return Err(format!(
                    "cannot sweep {other:?}: use concurrency or request-rate"
                ))
            }
        };
        let values = vs
            .split(',')
            .map(|v| {
                v.trim()
                    .parse::<f64>()
                    .map_err(|_| format!("bad sweep value {v:?}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if values.is_empty() || values.iter().any(|v| !(*v > 0.0 && v.is_finite())) {
            return Err("sweep values must be positive numbers".into());
        }
        if param == SweepParam::Concurrency && values.iter().any(|v| v.fract() != 0.0) {
            return Err("concurrency values must be whole numbers".into());
        }
        Ok(Sweep { param, values })
    }
}

/// `60s`, `500ms`, `2m`, `1h`, `250us`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let scale = match unit.trim() {
        "" | "s" | "sec" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        u => return Err(format!("bad duration unit {u:?} in {s:?}")),
    };
    Ok(Duration::from_secs_f64(n * scale))
}

/// `ttft=500ms,tpot=50ms,e2e=10s` (`e2el` accepted for vLLM users; bare numbers are ms).
pub fn parse_slo(s: &str) -> Result<Slo, String> {
    let mut slo = Slo::default();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once(['=', ':'])
            .ok_or(format!("expected metric=limit: {part}"))?;
        let v = v.trim();
        let d = if v.chars().all(|c| c.is_ascii_digit() || c == '.') {
            parse_duration(&format!("{v}ms"))?
        } else {
            parse_duration(v)?
        };
        match k.trim() {
            "ttft" => slo.ttft = Some(d),
            "tpot" => slo.tpot = Some(d),
            "e2e" | "e2el" => slo.e2e = Some(d),
            other => return Err(format!("unknown SLO metric {other:?} (ttft, tpot, e2e)")),
        }
    }
    if slo.is_empty() {
        return Err("empty SLO".into());
    }
    Ok(slo)
}

pub fn parse_extra_body(s: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    match serde_json::from_str(s) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(_) => Err("--extra-body must be a JSON object".into()),
        Err(e) => Err(format!("--extra-body is not JSON: {e}")),
    }
}
