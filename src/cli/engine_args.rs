//! Engine flags shared by every command that loads a model.

use clap::Args;
use lathe_engine::{DeviceChoice, EngineConfig};

#[derive(Args, Debug, Clone)]
pub struct EngineArgs {
    /// Registry id, Hugging Face repo (org/name), model directory or .gguf file.
    #[arg(long, short = 'm', default_value = lathe_models::DEFAULT_MODEL_ID, env = "LATHE_MODEL")]
    pub model: String,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", env = "LATHE_DEVICE")]
    pub device: String,
    /// Fraction of free GPU memory the KV cache may take after the weights load.
    #[arg(long, default_value_t = 0.9)]
    pub gpu_memory_utilization: f32,
    /// KV-cache size in GiB on the CPU.
    #[arg(long, default_value_t = 2.0)]
    pub kv_cache_gib: f64,
    /// Exact number of KV blocks (overrides the memory-based sizing).
    #[arg(long)]
    pub num_blocks: Option<usize>,
    /// Tokens per KV block.
    #[arg(long, default_value_t = 16)]
    pub block_size: usize,
    /// Most sequences in one batch.
    #[arg(long, default_value_t = 64)]
    pub max_num_seqs: usize,
    /// Token budget of one engine step (chunked prefill splits longer prompts).
    #[arg(long, default_value_t = 2048)]
    pub max_num_batched_tokens: usize,
    /// Context window (default: the model's).
    #[arg(long)]
    pub max_model_len: Option<usize>,
    /// Turn off prefix caching.
    #[arg(long)]
    pub no_prefix_caching: bool,
    /// Threads of lathe's CPU kernels (default: every core).
    #[arg(long, env = "LATHE_NUM_THREADS")]
    pub threads: Option<usize>,
    /// Publish prefix-cache events (vLLM's ZMQ format) on this endpoint, e.g. tcp://*:5557,
    /// for llm-d's precise prefix scorer or NVIDIA Dynamo. Off by default.
    #[arg(long)]
    pub kv_events_endpoint: Option<String>,
    /// Topic of the KV events (default: kv@<host name>@<model>, llm-d's convention).
    #[arg(long)]
    pub kv_events_topic: Option<String>,
    /// Speculative decoding for requests that do not choose (their `speculative` field):
    /// `ngram` (prompt lookup) or `draft` (needs --speculative-model). Off by default.
    #[arg(long, value_enum, default_value = "off")]
    pub speculative: SpecArg,
    /// Draft model for speculative decoding (same tokenizer as --model), e.g.
    /// qwen2.5-coder-0.5b-instruct for qwen2.5-coder-1.5b-instruct. Implies
    /// `--speculative draft` unless --speculative says otherwise.
    #[arg(long)]
    pub speculative_model: Option<String>,
    /// Tokens proposed per request and step.
    #[arg(long, default_value_t = 5)]
    pub num_speculative_tokens: usize,
    /// Prompt lookup tries n-grams of at most this many tokens first ...
    #[arg(long, default_value_t = 4)]
    pub prompt_lookup_max: usize,
    /// ... and of at least this many.
    #[arg(long, default_value_t = 2)]
    pub prompt_lookup_min: usize,
    /// The draft model stops a proposal at a token it gives less than this probability.
    #[arg(long, default_value_t = 0.75)]
    pub draft_p_min: f32,
    /// Tool-call format instead of the registry's or the one detected from the chat
    /// template: hermes, llama3_json, mistral, qwen3_coder, none (vLLM's names).
    #[arg(long)]
    pub tool_call_parser: Option<String>,
}

/// `--speculative`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecArg {
    Off,
    Ngram,
    Draft,
}

impl EngineArgs {
    pub fn to_config(&self) -> anyhow::Result<EngineConfig> {
        Ok(EngineConfig {
            model: self.model.clone(),
            device: DeviceChoice::parse(&self.device)?,
            dtype: None,
            block_size: self.block_size,
            num_blocks: self.num_blocks,
            cpu_kv_cache_bytes: (self.kv_cache_gib * (1u64 << 30) as f64) as usize,
            gpu_memory_utilization: self.gpu_memory_utilization,
            max_num_seqs: self.max_num_seqs,
            max_num_batched_tokens: self.max_num_batched_tokens,
            max_model_len: self.max_model_len,
            enable_prefix_caching: !self.no_prefix_caching,
            kv_events: self.kv_events_endpoint.as_ref().map(|endpoint| {
                lathe_engine::KvEventsConfig {
                    endpoint: endpoint.clone(),
                    topic: self
                        .kv_events_topic
                        .clone()
                        .unwrap_or_else(|| format!("kv@{}@{}", host_name(), self.model)),
                }
            }),
            speculative: self.speculative_config()?,
            tool_call_parser: match &self.tool_call_parser {
                None => None,
                Some(name) => Some(
                    lathe_models::registry::ToolCallFormat::from_name(name).ok_or_else(|| {
                        let known: Vec<&str> = lathe_models::registry::ToolCallFormat::ALL
                            .iter()
                            .map(|f| f.as_str())
                            .collect();
                        anyhow::anyhow!(
                            "--tool-call-parser {name}: not a tool-call format ({})",
                            known.join(", ")
                        )
                    })?,
                ),
            },
        })
    }

    fn speculative_config(&self) -> anyhow::Result<lathe_engine::SpeculativeConfig> {
        use lathe_engine::SpecMode;
        let explicit = self.speculative != SpecArg::Off;
        let method = match self.speculative {
            SpecArg::Off if self.speculative_model.is_some() => SpecMode::Draft,
            SpecArg::Off => SpecMode::Off,
            SpecArg::Ngram => SpecMode::Ngram,
            SpecArg::Draft => SpecMode::Draft,
        };
        anyhow::ensure!(
            !(explicit && method == SpecMode::Draft && self.speculative_model.is_none()),
            "--speculative draft needs --speculative-model"
        );
        anyhow::ensure!(
            self.prompt_lookup_min >= 1 && self.prompt_lookup_min <= self.prompt_lookup_max,
            "--prompt-lookup-min must be in 1..=--prompt-lookup-max"
        );
        Ok(lathe_engine::SpeculativeConfig {
            method,
            num_speculative_tokens: self.num_speculative_tokens,
            ngram_min: self.prompt_lookup_min,
            ngram_max: self.prompt_lookup_max,
            draft_model: self.speculative_model.clone(),
            draft_p_min: self.draft_p_min,
        })
    }

    pub fn start(&self) -> anyhow::Result<lathe_engine::EngineHandle> {
        if let Some(n) = self.threads.filter(|&n| n > 0) {
            lathe_kernels::cpu::set_num_threads(n);
        }
        lathe_engine::start(self.to_config()?)
    }
}

/// The pod's name in Kubernetes (HOSTNAME), else the kernel's host name.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|| "localhost".into())
}
