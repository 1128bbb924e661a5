//! The interface between an architecture and the engine.

use candle_core::{DType, Device, Result, Tensor};

use crate::arch::Arch;
use crate::batch::BatchMetadata;
use crate::kv_cache::{KvCache, KvCacheSpec};

/// What the engine needs to know about a loaded model.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub arch: Arch,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    pub kv: KvCacheSpec,
    /// Activation dtype.
    pub dtype: DType,
    pub device: Device,
    /// Bytes of weights one token reads per forward pass (for roofline estimates): all of
    /// them for a dense model, the routed experts only for a MoE one.
    pub weight_bytes: usize,
}

/// A causal LM running on the paged KV cache over one flattened batch.
pub trait CausalLm: Send + Sync {
    /// `input_ids` u32 `[T]` → f32 logits `[N, vocab]` for the rows in `batch.logits_indices`.
    fn forward(&self, input_ids: &Tensor, batch: &BatchMetadata, kv: &KvCache) -> Result<Tensor>;
    fn spec(&self) -> &ModelSpec;
}
