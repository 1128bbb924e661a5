//! Prometheus metrics. One registry per `AppState` (no global state), rendered by `GET /metrics`.
//! Request counts and latencies are recorded by the server as requests finish; engine gauges
//! (queue, running, KV blocks) are read from `EngineHandle::stats()` at scrape time. The same
//! numbers are also exported under vLLM's names (`vllm.rs`) for the routers.

pub mod vllm;

use std::sync::atomic::Ordering;

use lathe_engine::EngineStats;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub in_flight: IntGauge,
    pub waiting: IntGauge,
    pub running: IntGauge,
    pub kv_blocks_used: IntGauge,
    pub kv_blocks_free: IntGauge,
    pub kv_blocks_total: IntGauge,
    pub preemptions: IntCounter,
    pub prefix_queries: IntCounter,
    pub prefix_hits: IntCounter,
    pub spec_drafts: IntCounter,
    pub spec_draft_tokens: IntCounter,
    pub spec_accepted_tokens: IntCounter,
    pub spec_acceptance_rate: prometheus::Gauge,
    pub spec_mean_accepted_length: prometheus::Gauge,
    pub prompt_tokens: IntCounter,
    pub generation_tokens: IntCounter,
    pub ttft: Histogram,
    pub itl: Histogram,
    pub e2e: Histogram,
    pub vllm: vllm::VllmMetrics,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0,
];

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "lathe_requests_total",
                "HTTP requests by route and status code",
            ),
            &["route", "status"],
        )
        .expect("valid metric");
        let gauge = |name: &str, help: &str| IntGauge::new(name, help).expect("valid metric");
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric");
        let hist = |name: &str, help: &str| {
            Histogram::with_opts(HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()))
                .expect("valid metric")
        };
        let m = Self {
            requests,
            in_flight: gauge(
                "lathe_server_in_flight_requests",
                "Generations admitted by the server and not finished",
            ),
            waiting: gauge(
                "lathe_num_requests_waiting",
                "Requests queued in the engine (queue length)",
            ),
            running: gauge(
                "lathe_num_requests_running",
                "Requests the engine is running",
            ),
            kv_blocks_used: gauge("lathe_kv_blocks_used", "KV-cache blocks in use"),
            kv_blocks_free: gauge("lathe_kv_blocks_free", "KV-cache blocks free"),
            kv_blocks_total: gauge("lathe_kv_blocks_total", "KV-cache blocks in the pool"),
            preemptions: counter(
                "lathe_preemptions_total",
                "Requests preempted (KV blocks taken back, recomputed later) since start",
            ),
            prefix_queries: counter(
                "lathe_prefix_cache_queries_tokens_total",
                "Prompt tokens of admitted requests looked up in the prefix cache",
            ),
            prefix_hits: counter(
                "lathe_prefix_cache_hits_tokens_total",
                "Of those, tokens served from the prefix cache",
            ),
            spec_drafts: counter(
                "lathe_spec_decode_num_drafts_total",
                "Speculative decoding: verification steps of a request with proposals",
            ),
            spec_draft_tokens: counter(
                "lathe_spec_decode_num_draft_tokens_total",
                "Speculative decoding: tokens proposed",
            ),
            spec_accepted_tokens: counter(
                "lathe_spec_decode_num_accepted_tokens_total",
                "Speculative decoding: proposed tokens the model accepted",
            ),
            spec_acceptance_rate: prometheus::Gauge::new(
                "lathe_spec_decode_acceptance_rate",
                "Accepted / proposed tokens since start (0 before any proposal)",
            )
            .expect("valid metric"),
            spec_mean_accepted_length: prometheus::Gauge::new(
                "lathe_spec_decode_mean_accepted_length",
                "Tokens emitted per verification step: 1 + accepted / drafts (0 before any)",
            )
            .expect("valid metric"),
            prompt_tokens: counter(
                "lathe_prompt_tokens_total",
                "Prompt tokens of finished requests",
            ),
            generation_tokens: counter(
                "lathe_generation_tokens_total",
                "Generated tokens of finished requests",
            ),
            ttft: hist(
                "lathe_time_to_first_token_seconds",
                "Time from request arrival to the first token",
            ),
            itl: hist(
                "lathe_inter_token_latency_seconds",
                "Time between consecutive tokens of a request",
            ),
            e2e: hist(
                "lathe_e2e_request_latency_seconds",
                "Time from request arrival to its last token",
            ),
            vllm: vllm::VllmMetrics::new(),
            registry,
        };
        m.register_all();
        m
    }

    fn register_all(&self) {
        let r = &self.registry;
        let boxed: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(self.requests.clone()),
            Box::new(self.in_flight.clone()),
            Box::new(self.waiting.clone()),
            Box::new(self.running.clone()),
            Box::new(self.kv_blocks_used.clone()),
            Box::new(self.kv_blocks_free.clone()),
            Box::new(self.kv_blocks_total.clone()),
            Box::new(self.preemptions.clone()),
            Box::new(self.prefix_queries.clone()),
            Box::new(self.prefix_hits.clone()),
            Box::new(self.spec_drafts.clone()),
            Box::new(self.spec_draft_tokens.clone()),
            Box::new(self.spec_accepted_tokens.clone()),
            Box::new(self.spec_acceptance_rate.clone()),
            Box::new(self.spec_mean_accepted_length.clone()),
            Box::new(self.prompt_tokens.clone()),
            Box::new(self.generation_tokens.clone()),
            Box::new(self.ttft.clone()),
            Box::new(self.itl.clone()),
            Box::new(self.e2e.clone()),
        ];
        for c in boxed {
            r.register(c).expect("metric names are unique");
        }
        vllm::register(&self.vllm, r);
    }

    /// Time to the first token of a request.
    pub fn observe_ttft(&self, secs: f64) {
        self.ttft.observe(secs);
        self.vllm.observe_ttft(secs);
    }

    /// Time between two tokens of a request.
    pub fn observe_itl(&self, secs: f64) {
        self.itl.observe(secs);
        self.vllm.observe_itl(secs);
    }

    /// A finished request: its latency and token counts.
    pub fn observe_finished(&self, secs: f64, prompt_tokens: u64, generation_tokens: u64) {
        self.e2e.observe(secs);
        self.prompt_tokens.inc_by(prompt_tokens);
        self.generation_tokens.inc_by(generation_tokens);
        self.vllm
            .observe_finished(secs, prompt_tokens, generation_tokens);
    }

    /// Counts one answered request.
    pub fn record_request(&self, route: &str, status: u16) {
        self.requests
            .with_label_values(&[route, &status.to_string()])
            .inc();
    }

    /// The text exposition format, with the engine gauges refreshed from `stats`.
    pub fn render(&self, stats: Option<&EngineStats>) -> String {
        if let Some(s) = stats {
            let free = s.free_blocks.load(Ordering::Relaxed);
            let total = s.total_blocks.load(Ordering::Relaxed);
            self.waiting.set(s.waiting.load(Ordering::Relaxed) as i64);
            self.running.set(s.running.load(Ordering::Relaxed) as i64);
            self.kv_blocks_free.set(free as i64);
            self.kv_blocks_total.set(total as i64);
            self.kv_blocks_used.set(total.saturating_sub(free) as i64);
            let [preemptions, queries, hits, drafts, proposed, accepted] = engine_totals(s);
            advance(&self.preemptions, preemptions);
            advance(&self.prefix_queries, queries);
            advance(&self.prefix_hits, hits);
            advance(&self.spec_drafts, drafts);
            advance(&self.spec_draft_tokens, proposed);
            advance(&self.spec_accepted_tokens, accepted);
            if drafts > 0 {
                self.spec_acceptance_rate
                    .set(accepted as f64 / proposed.max(1) as f64);
                self.spec_mean_accepted_length
                    .set(1.0 + accepted as f64 / drafts as f64);
            }
            self.vllm.refresh(s);
        }
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// The engine's cumulative counts that counters mirror: preemptions, prefix-cache query and
/// hit tokens.
/// Engine counters mirrored by both metric families: preemptions, prefix-cache queries and
/// hits, speculative drafts, proposed and accepted tokens.
pub(crate) fn engine_totals(s: &EngineStats) -> [u64; 6] {
    [
        &s.preemptions_total,
        &s.prefix_cache_queries_total,
        &s.prefix_cache_hits_total,
        &s.spec_drafts_total,
        &s.spec_draft_tokens_total,
        &s.spec_accepted_tokens_total,
    ]
    .map(|c| c.load(Ordering::Relaxed))
}

/// Moves a counter forward to the engine's running `total` (counters never go back).
pub(crate) fn advance(c: &IntCounter, total: u64) {
    c.inc_by(total.saturating_sub(c.get()));
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
