//! lathe-engine: everything between a request and the model — the model runner (batch
//! building), the sampler, tokenizer + chat template + incremental detokenizer + stop strings,
//! the engine thread, and the async `EngineHandle`. See docs/ARCHITECTURE.md.

pub mod chat_template;
pub mod constraint;
pub mod detokenizer;
pub mod engine;
pub mod kv_publisher;
pub mod prompt;
pub mod runner;
pub mod sampler;
pub mod spec;
pub mod stop;
pub mod tokenizer;

pub use engine::{
    start, DeviceChoice, EngineConfig, EngineHandle, EngineStats, FinishReason, Finished,
    GenerateRequest, Generated, ModelInfo, RequestStopper, RequestStream, StreamEvent, SubmitError,
    TokenDelta,
};
pub use kv_publisher::KvEventsConfig;
pub use lathe_core::{SamplingParams, SpecMode};
pub use spec::SpeculativeConfig;
