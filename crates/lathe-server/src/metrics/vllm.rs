//! The same numbers under vLLM's metric names and meaning, so that the routers users already
//! run in front of vLLM (the Gateway API Inference Extension's endpoint picker, llm-d, the
//! SGLang model gateway, KServe autoscalers) can pick a lathe pod by load and cache. Every
//! series carries vLLM's `model_name` label.

use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use lathe_engine::EngineStats;
use prometheus::core::Collector;
use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
};

/// vLLM's request-latency buckets (seconds), long tail included for CPU prefill.
const BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];

#[derive(Clone)]
pub struct VllmMetrics {
    /// The served model name (set once the model is loaded).
    model: std::sync::Arc<OnceLock<String>>,
    waiting: IntGaugeVec,
    running: IntGaugeVec,
    kv_usage: GaugeVec,
    cache_config: IntGaugeVec,
    prefix_queries: IntCounterVec,
    prefix_hits: IntCounterVec,
    preemptions: IntCounterVec,
    spec_drafts: IntCounterVec,
    spec_draft_tokens: IntCounterVec,
    spec_accepted_tokens: IntCounterVec,
    prompt_tokens: IntCounterVec,
    generation_tokens: IntCounterVec,
    ttft: HistogramVec,
    itl: HistogramVec,
    e2e: HistogramVec,
}

impl VllmMetrics {
    pub fn new() -> Self {
        let labels = &["model_name"];
        let gauge = |name: &str, help: &str| {
            IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        let counter = |name: &str, help: &str| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        let hist = |name: &str, help: &str| {
            HistogramVec::new(
                HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()),
                labels,
            )
            .expect("valid metric")
        };
        Self {
            model: Default::default(),
            waiting: gauge(
                "vllm:num_requests_waiting",
                "Number of requests waiting to be processed.",
            ),
            running: gauge(
                "vllm:num_requests_running",
                "Number of requests in model execution batches.",
            ),
            kv_usage: GaugeVec::new(
                Opts::new(
                    "vllm:kv_cache_usage_perc",
                    "KV-cache usage. 1 means 100 percent usage.",
                ),
                labels,
            )
            .expect("valid metric"),
            cache_config: IntGaugeVec::new(
                Opts::new(
                    "vllm:cache_config_info",
                    "Information of the LLMEngine CacheConfig",
                ),
                &["model_name", "block_size", "num_gpu_blocks"],
            )
            .expect("valid metric"),
            prefix_queries: counter(
                "vllm:prefix_cache_queries_total",
                "Prefix cache queries, in terms of number of queried tokens.",
            ),
            prefix_hits: counter(
                "vllm:prefix_cache_hits_total",
                "Prefix cache hits, in terms of number of cached tokens.",
            ),
            preemptions: counter(
                "vllm:num_preemptions_total",
                "Cumulative number of preemption from the engine.",
            ),
            spec_drafts: counter(
                "vllm:spec_decode_num_drafts_total",
                "Number of spec decoding drafts.",
            ),
            spec_draft_tokens: counter(
                "vllm:spec_decode_num_draft_tokens_total",
                "Number of draft tokens.",
            ),
            spec_accepted_tokens: counter(
                "vllm:spec_decode_num_accepted_tokens_total",
                "Number of accepted tokens.",
            ),
            prompt_tokens: counter(
                "vllm:prompt_tokens_total",
                "Number of prefill tokens processed.",
            ),
            generation_tokens: counter(
                "vllm:generation_tokens_total",
                "Number of generation tokens processed.",
            ),
            ttft: hist(
                "vllm:time_to_first_token_seconds",
                "Histogram of time to first token in seconds.",
            ),
            itl: hist(
                "vllm:inter_token_latency_seconds",
                "Histogram of inter-token latency in seconds.",
            ),
            e2e: hist(
                "vllm:e2e_request_latency_seconds",
                "Histogram of e2e request latency in seconds.",
            ),
        }
    }

    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.waiting.clone()),
            Box::new(self.running.clone()),
            Box::new(self.kv_usage.clone()),
            Box::new(self.cache_config.clone()),
            Box::new(self.prefix_queries.clone()),
            Box::new(self.prefix_hits.clone()),
            Box::new(self.preemptions.clone()),
            Box::new(self.spec_drafts.clone()),
            Box::new(self.spec_draft_tokens.clone()),
            Box::new(self.spec_accepted_tokens.clone()),
            Box::new(self.prompt_tokens.clone()),
            Box::new(self.generation_tokens.clone()),
            Box::new(self.ttft.clone()),
            Box::new(self.itl.clone()),
            Box::new(self.e2e.clone()),
        ]
    }

    /// Names the model (once) and publishes the cache layout.
    pub fn set_model(&self, name: &str, block_size: usize, num_blocks: usize) {
        if self.model.set(name.to_string()).is_ok() {
            self.cache_config
                .with_label_values(&[name, &block_size.to_string(), &num_blocks.to_string()])
                .set(1);
        }
    }

    fn model(&self) -> Option<&str> {
        self.model.get().map(String::as_str)
    }

    pub fn observe_ttft(&self, secs: f64) {
        if let Some(m) = self.model() {
            self.ttft.with_label_values(&[m]).observe(secs);
        }
    }

    pub fn observe_itl(&self, secs: f64) {
        if let Some(m) = self.model() {
            self.itl.with_label_values(&[m]).observe(secs);
        }
    }

    pub fn observe_finished(&self, secs: f64, prompt_tokens: u64, generation_tokens: u64) {
        if let Some(m) = self.model() {
            self.e2e.with_label_values(&[m]).observe(secs);
            self.prompt_tokens
                .with_label_values(&[m])
                .inc_by(prompt_tokens);
            self.generation_tokens
                .with_label_values(&[m])
                .inc_by(generation_tokens);
        }
    }

    /// Refreshes the engine-side series from `stats` (at scrape time).
    pub fn refresh(&self, s: &EngineStats) {
        let Some(m) = self.model() else { return };
        let load = |a: &std::sync::atomic::AtomicUsize| a.load(Ordering::Relaxed);
        let (free, total) = (load(&s.free_blocks), load(&s.total_blocks));
        self.waiting
            .with_label_values(&[m])
            .set(load(&s.waiting) as i64);
        self.running
            .with_label_values(&[m])
            .set(load(&s.running) as i64);
        let used = total.saturating_sub(free) as f64;
        self.kv_usage.with_label_values(&[m]).set(if total == 0 {
            0.0
        } else {
            used / total as f64
        });
        let [preemptions, queries, hits, drafts, proposed, accepted] = super::engine_totals(s);
        for (counter, total) in [
            (&self.preemptions, preemptions),
            (&self.prefix_queries, queries),
            (&self.prefix_hits, hits),
            (&self.spec_drafts, drafts),
            (&self.spec_draft_tokens, proposed),
            (&self.spec_accepted_tokens, accepted),
        ] {
            super::advance(&counter.with_label_values(&[m]), total);
        }
    }
}

impl Default for VllmMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Registers every vLLM series in `registry`.
pub fn register(v: &VllmMetrics, registry: &Registry) {
    for c in v.collectors() {
        registry.register(c).expect("metric names are unique");
    }
}
