//! # lathe
//!
//! A local inference engine for open-weight code models: paged KV cache, continuous batching,
//! our own attention and KV-cache kernels (CUDA, with CPU twins), an OpenAI-compatible server
//! and a benchmarking harness. This crate is the CLI and the embeddable facade.
//!
//! ## Embedding the engine
//!
//! ```no_run
//! use lathe::{Engine, SamplingParams, StreamEvent};
//!
//! # async fn demo() -> anyhow::Result<()> {
//! // Loads the default model (fetched and verified on first use) on the CPU.
//! let engine = Engine::builder().model("smollm2-135m-instruct").build()?;
//! let prompt = engine.info().encode_chat(
//!     &[serde_json::json!({"role": "user", "content": "Write a haiku about Rust."})],
//!     None,
//! )?;
//! let params = SamplingParams { max_tokens: 64, temperature: 0.0, ..Default::default() };
//! let mut stream = engine.submit(lathe::GenerateRequest::new(prompt, params))?;
//! while let Some(event) = stream.next().await {
//!     match event {
//!         StreamEvent::Token(t) => print!("{}", t.text),
//!         StreamEvent::Finished(f) => println!("\n[{} tokens, {}]", f.completion_tokens, f.reason.as_openai()),
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Dropping a stream cancels its request and returns its KV blocks to the pool.

pub use lathe_core::SamplingParams;
pub use lathe_engine::{
    DeviceChoice, EngineConfig, EngineHandle, FinishReason, Finished, GenerateRequest, Generated,
    ModelInfo, RequestStream, StreamEvent, TokenDelta,
};
pub use lathe_models::{Registry, DEFAULT_MODEL_ID};

/// Entry point of the embeddable engine.
pub struct Engine;

impl Engine {
    pub fn builder() -> EngineBuilder {
        EngineBuilder {
            cfg: EngineConfig::default(),
        }
    }
}

/// Configures and starts an engine; see [`EngineConfig`] for every knob.
#[derive(Debug, Clone)]
pub struct EngineBuilder {
    cfg: EngineConfig,
}

impl EngineBuilder {
    /// Registry id, Hugging Face repo, model directory or `.gguf` file.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.cfg.model = model.into();
        self
    }

    pub fn device(mut self, device: DeviceChoice) -> Self {
        self.cfg.device = device;
        self
    }

    /// Exact KV-cache size in blocks (of `block_size` tokens).
    pub fn num_blocks(mut self, n: usize) -> Self {
        self.cfg.num_blocks = Some(n);
        self
    }

    pub fn max_num_seqs(mut self, n: usize) -> Self {
        self.cfg.max_num_seqs = n;
        self
    }

    pub fn max_num_batched_tokens(mut self, n: usize) -> Self {
        self.cfg.max_num_batched_tokens = n;
        self
    }

    pub fn max_model_len(mut self, n: usize) -> Self {
        self.cfg.max_model_len = Some(n);
        self
    }

    pub fn prefix_caching(mut self, on: bool) -> Self {
        self.cfg.enable_prefix_caching = on;
        self
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, cfg: EngineConfig) -> Self {
        self.cfg = cfg;
        self
    }

    /// Loads the model and starts the engine thread.
    pub fn build(self) -> anyhow::Result<EngineHandle> {
        lathe_engine::start(self.cfg)
    }
}
