//! lathe-bench: the harness behind `lathe bench`.
//!
//! `lathe bench serve` ([`serve`]) is a load generator for any OpenAI-compatible endpoint —
//! lathe, vLLM, llama-server, Ollama — whose numbers people compare across servers, so every
//! metric is defined exactly as in vLLM's `benchmarks/benchmark_serving.py` (`vllm bench serve`):
//!
//! - **TTFT**: arrival of the first SSE chunk that carries content − the request's send time.
//!   (Role-only or empty chunks do not count: a server that flushes headers early gains nothing.)
//! - **ITL**: every gap between two consecutive content chunks, pooled over all requests.
//! - **TPOT**: per request, `(e2e − ttft) / (output_tokens − 1)`, only for requests with more
//!   than one output token.
//! - **E2E**: end of the response stream − send time.
//! - **goodput**: requests meeting every SLO given / benchmark duration.
//! - percentiles interpolate linearly between order statistics (numpy's default), std is the
//!   population std (`np.std`).
//!
//! `lathe bench engine` ([`engine`]) measures the engine itself without HTTP: prompt and decode
//! throughput at several batch sizes, side by side with candle-transformers' own implementation,
//! and a roofline line against memory bandwidth measured on the spot.
//!
//! The crate is split by concern: [`stats`] (pure arithmetic on timings), [`record`] (what one
//! request measured), [`tokens`] (the tokenizer hook), [`workload`] (what is sent), [`serve`]
//! (HTTP, SSE, scheduling, CLI) and [`report`] (table, JSON, SVG).

pub mod engine;
pub mod metrics;
pub mod record;
pub mod report;
pub mod serve;
pub mod stats;
pub mod tokens;
pub mod workload;

/// Version of the harness (the lathe workspace version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Git commit the harness was built from (`git rev-parse HEAD` at build time), or "unknown".
pub const GIT_COMMIT: &str = env!("LATHE_BENCH_GIT_COMMIT");
