//! Starting the engine: resolve and load the model, build its tokenizer and chat template,
//! size the KV cache, and spawn the engine thread.

mod events;
mod handle;
mod output;
mod worker;

pub use events::{FinishReason, Finished, StreamEvent, TokenDelta};
pub use handle::{
    EngineHandle, EngineStats, GenerateRequest, Generated, RequestStopper, RequestStream,
    SubmitError,
};

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use anyhow::{Context, Result};
use candle_core::{DType, Device};
use lathe_core::{KvCacheConfig, Scheduler, SchedulerConfig};
use lathe_models::loader::{self, ModelFiles};
use lathe_models::registry::{FimTokens, ModelEntry, ReasoningFormat, ToolCallFormat};
use lathe_models::{Capabilities, KvCache, Registry};

use crate::chat_template::ChatTemplate;
use crate::tokenizer::TextTokenizer;

/// Which device runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    #[default]
    Cpu,
    Cuda(usize),
}

impl DeviceChoice {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            _ => match s.strip_prefix("cuda:") {
                Some(n) => Ok(Self::Cuda(n.parse().context("cuda:<ordinal>")?)),
                None => anyhow::bail!("unknown device `{s}` (cpu, cuda, cuda:N)"),
            },
        }
    }

    fn device(self) -> Result<Device> {
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda(n) => Device::new_cuda(n)
                .context("opening the CUDA device (was lathe built with --features cuda?)"),
        }
    }
}

/// Everything that configures an engine. `Default` serves the default model on the CPU.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Registry id, Hugging Face repo, model directory or `.gguf` path.
    pub model: String,
    pub device: DeviceChoice,
    /// Activation dtype for safetensors models (default: f32 on CPU, bf16 on CUDA).
    pub dtype: Option<DType>,
    pub block_size: usize,
    /// Exact number of KV blocks (overrides the memory-based sizing).
    pub num_blocks: Option<usize>,
    /// KV cache budget on the CPU.
    pub cpu_kv_cache_bytes: usize,
    /// Fraction of free device memory the KV cache may take after loading (CUDA).
    pub gpu_memory_utilization: f32,
    pub max_num_seqs: usize,
    pub max_num_batched_tokens: usize,
    /// Context window; default: the model's (registry, then config).
    pub max_model_len: Option<usize>,
    pub enable_prefix_caching: bool,
    /// Publish prefix-cache events for routers (off by default).
    pub kv_events: Option<crate::KvEventsConfig>,
    /// Speculative decoding (off by default).
    pub speculative: crate::SpeculativeConfig,
    /// Tool-call format to use instead of the registry's or the detected one (vLLM's
    /// `--tool-call-parser`).
    pub tool_call_parser: Option<ToolCallFormat>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            model: lathe_models::DEFAULT_MODEL_ID.to_string(),
            device: DeviceChoice::Cpu,
            dtype: None,
            block_size: 16,
            num_blocks: None,
            cpu_kv_cache_bytes: 2 << 30,
            gpu_memory_utilization: 0.9,
            max_num_seqs: 64,
            max_num_batched_tokens: 2048,
            max_model_len: None,
            enable_prefix_caching: true,
            kv_events: None,
            speculative: crate::SpeculativeConfig::default(),
            tool_call_parser: None,
        }
    }
}

/// What clients of the engine need to know about the model it serves.
pub struct ModelInfo {
    pub id: String,
    pub entry: Option<ModelEntry>,
    pub tokenizer: Arc<TextTokenizer>,
    pub chat_template: Option<ChatTemplate>,
    /// FIM tokens: detected from the vocabulary unless the registry entry sets them.
    pub fim: Option<FimTokens>,
    /// Tool-call format: detected from the chat template unless the registry entry sets it.
    pub tool_format: ToolCallFormat,
    /// Reasoning style: detected from the chat template unless the registry entry sets it.
    pub reasoning: ReasoningFormat,
    pub max_model_len: usize,
    pub spec: lathe_models::ModelSpec,
    pub block_size: usize,
    pub num_blocks: usize,
    /// The draft model of speculative decoding, if one is loaded.
    pub draft_model: Option<String>,
}

/// Loads the model and starts the engine thread.
pub fn start(cfg: EngineConfig) -> Result<EngineHandle> {
    let registry = Registry::builtin();
    let resolved = loader::resolve(&cfg.model, &registry)?;
    let device = cfg.device.device()?;
    let dtype = cfg.dtype.unwrap_or(if device.is_cpu() {
        DType::F32
    } else {
        DType::BF16
    });
    tracing::info!(model = %resolved.id, ?device, "loading model");
    let model = loader::load_model(&resolved.files, &device, dtype)?;
    let tokenizer = Arc::new(load_tokenizer(&resolved.files)?);
    let chat_template = match tokenizer.chat_template() {
        Some(src) => Some(ChatTemplate::new(
            src,
            tokenizer.bos_token().map(String::from),
            tokenizer.eos_token().map(String::from),
        )?),
        None => None,
    };
    let spec = model.spec().clone();
    let max_model_len = cfg
        .max_model_len
        .or(resolved.entry.as_ref().map(|e| e.context_length))
        .unwrap_or(spec.max_position_embeddings)
        .min(spec.max_position_embeddings);
    let num_blocks = match cfg.num_blocks {
        Some(n) => n,
        None => kv_blocks_for_memory(&cfg, &spec, &device)?,
    };
    let kv = KvCache::new(&spec.kv, num_blocks, cfg.block_size, &device)?;
    let draft = match &cfg.speculative.draft_model {
        Some(m) => Some(load_draft(
            m, &cfg, &device, dtype, &tokenizer, &spec, num_blocks,
        )?),
        None => None,
    };
    anyhow::ensure!(
        cfg.speculative.method != lathe_core::SpecMode::Draft || draft.is_some(),
        "speculative decoding with a draft model needs the draft model (--speculative-model)"
    );
    let mut scheduler = Scheduler::new(
        SchedulerConfig {
            max_num_batched_tokens: cfg.max_num_batched_tokens,
            max_num_seqs: cfg.max_num_seqs,
            max_model_len,
            long_prefill_token_threshold: 0,
        },
        KvCacheConfig {
            block_size: cfg.block_size,
            num_blocks,
            enable_prefix_caching: cfg.enable_prefix_caching,
        },
    );
    let kv_events = match &cfg.kv_events {
        Some(c) => {
            scheduler.enable_kv_events();
            let medium = if device.is_cpu() { "CPU" } else { "GPU" };
            Some(crate::kv_publisher::KvPublisher::start(
                c,
                cfg.block_size,
                medium,
            )?)
        }
        None => None,
    };
    let caps = Capabilities::detect(
        &|t: &str| tokenizer.token_to_id(t).is_some(),
        tokenizer.chat_template(),
    )
    .with_overrides(resolved.entry.as_ref());
    let caps = Capabilities {
        tool_format: cfg.tool_call_parser.unwrap_or(caps.tool_format),
        ..caps
    };
    tracing::info!(
        fim = caps.fim.is_some(),
        tool_format = caps.tool_format.as_str(),
        reasoning = caps.reasoning.as_str(),
        "model capabilities"
    );
    let info = Arc::new(ModelInfo {
        id: resolved.id.clone(),
        fim: caps.fim,
        tool_format: caps.tool_format,
        reasoning: caps.reasoning,
        entry: resolved.entry.clone(),
        tokenizer: tokenizer.clone(),
        chat_template,
        max_model_len,
        spec,
        block_size: cfg.block_size,
        num_blocks,
        draft_model: draft
            .as_ref()
            .map(|_| cfg.speculative.draft_model.clone().unwrap_or_default()),
    });
    let stats = Arc::new(EngineStats::default());
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = worker::Worker {
        model,
        kv,
        scheduler,
        tokenizer,
        stats: stats.clone(),
        max_model_len,
        active: HashMap::new(),
        kv_events,
        spec: crate::spec::Speculator {
            cfg: cfg.speculative.clone(),
            draft,
        },
    };
    std::thread::Builder::new()
        .name("lathe-engine".into())
        .spawn(move || worker.run(rx))
        .context("spawning the engine thread")?;
    let handle = EngineHandle {
        tx,
        info,
        stats,
        next_id: Arc::new(AtomicU64::new(1)),
    };
    handle
        .stats
        .total_blocks
        .store(num_blocks, std::sync::atomic::Ordering::Relaxed);
    handle
        .stats
        .free_blocks
        .store(num_blocks, std::sync::atomic::Ordering::Relaxed);
    Ok(handle)
}

/// The draft model of speculative decoding, with a KV pool of as many blocks as the target's
/// (it never holds more tokens per request). Its tokenizer must be the target's: proposals are
/// token ids.
fn load_draft(
    model: &str,
    cfg: &EngineConfig,
    device: &Device,
    dtype: DType,
    target_tokenizer: &TextTokenizer,
    target: &lathe_models::ModelSpec,
    num_blocks: usize,
) -> Result<crate::spec::draft::DraftModel> {
    let resolved = loader::resolve(model, &Registry::builtin())?;
    tracing::info!(model = %resolved.id, "loading the draft model");
    let draft = loader::load_model(&resolved.files, device, dtype)?;
    let tokenizer = load_tokenizer(&resolved.files)?;
    let same_vocab = tokenizer.vocab_size() == target_tokenizer.vocab_size()
        && tokenizer.eos_token_ids() == target_tokenizer.eos_token_ids()
        && (0..tokenizer.vocab_size() as u32)
            .step_by(97)
            .all(|id| tokenizer.id_to_token(id) == target_tokenizer.id_to_token(id));
    anyhow::ensure!(
        same_vocab,
        "draft model {} does not share the target's tokenizer",
        resolved.id
    );
    let kv = KvCache::new(&draft.spec().kv, num_blocks, cfg.block_size, device)?;
    Ok(crate::spec::draft::DraftModel::new(
        draft,
        kv,
        cfg.max_num_batched_tokens,
        target.vocab_size,
        cfg.speculative.draft_p_min,
    ))
}

fn load_tokenizer(files: &ModelFiles) -> Result<TextTokenizer> {
    match files {
        ModelFiles::Gguf(path) => {
            let content = lathe_models::loader::gguf::read_content(path)?;
            TextTokenizer::from_gguf(&content)
        }
        ModelFiles::Safetensors {
            tokenizer,
            tokenizer_config,
            ..
        } => TextTokenizer::from_files(tokenizer, tokenizer_config.as_deref()),
    }
}

/// KV blocks that fit the memory budget: a fixed budget on the CPU; on CUDA, a fraction of the
/// device memory still free after the weights loaded.
fn kv_blocks_for_memory(
    cfg: &EngineConfig,
    spec: &lathe_models::ModelSpec,
    device: &Device,
) -> Result<usize> {
    let per_block = spec.kv.bytes_per_block(cfg.block_size);
    let budget = match device {
        Device::Cpu => cfg.cpu_kv_cache_bytes,
        _ => {
            gpu_free_bytes(device)? as f64 as usize
                * (cfg.gpu_memory_utilization.clamp(0.05, 0.98) * 100.0) as usize
                / 100
        }
    };
    let blocks = budget / per_block;
    anyhow::ensure!(
        blocks >= 2,
        "KV cache budget {budget} B holds fewer than 2 blocks of {per_block} B"
    );
    Ok(blocks)
}

#[cfg(feature = "cuda")]
fn gpu_free_bytes(_device: &Device) -> Result<usize> {
    let (free, _total) = candle_core::cuda_backend::cudarc::driver::result::mem_get_info()?;
    Ok(free)
}

#[cfg(not(feature = "cuda"))]
fn gpu_free_bytes(_device: &Device) -> Result<usize> {
    anyhow::bail!("CUDA support is not compiled in (build with --features cuda)")
}
