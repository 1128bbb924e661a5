//! lathe-models: layers shared by every architecture, the architectures, weight loading (GGUF,
//! safetensors, hf-hub, PyPI-packaged files) and the model registry (models.toml).
//!
//! Only `layers::PagedAttentionLayer` knows the KV cache is paged; architectures compose layers
//! and run one flattened batch (all sequences' tokens together) per forward pass.

pub mod arch;
pub mod batch;
pub mod default_model;
pub mod detect;
pub mod kv_cache;
pub mod layers;
pub mod loader;
pub mod model;
pub mod pypi;
pub mod registry;

pub use arch::Arch;
pub use batch::BatchMetadata;
pub use detect::Capabilities;
pub use kv_cache::{KvCache, KvCacheSpec};
pub use model::{CausalLm, ModelSpec};
pub use registry::{ModelEntry, Registry, DEFAULT_MODEL_ID, TEST_MODEL_ID};
