//! The one attention layer: writes this step's K/V into the paged cache and attends over it.
//! Nothing else in lathe-models knows the cache is paged.

use candle_core::{Result, Tensor};
use lathe_kernels::AttentionOptions;

use crate::batch::BatchMetadata;
use crate::kv_cache::LayerKvCache;

#[derive(Debug, Clone)]
pub struct PagedAttentionLayer {
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub options: AttentionOptions,
    /// Per-head attention sinks (gpt-oss), f32 `[num_heads]`.
    pub sinks: Option<Tensor>,
}

impl PagedAttentionLayer {
    pub fn new(num_heads: usize, num_kv_heads: usize, head_dim: usize) -> Self {
        Self {
            num_heads,
            num_kv_heads,
            head_dim,
            options: AttentionOptions {
                scale: 1.0 / (head_dim as f32).sqrt(),
                sliding_window: None,
                softcap: None,
            },
            sinks: None,
        }
    }

    /// q `[T, heads, d]`, k and v `[T, kv_heads, d]` (already rotated) -> `[T, heads · d]`.
    pub fn forward(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        cache: &LayerKvCache,
        batch: &BatchMetadata,
    ) -> Result<Tensor> {
        lathe_kernels::ops::write_kv(&cache.k, k, &batch.slot_mapping)?;
        lathe_kernels::ops::write_kv(&cache.v, v, &batch.slot_mapping)?;
        let out = lathe_kernels::ops::paged_attention(
            q,
            &cache.k,
            &cache.v,
            &batch.paged,
            &self.options,
            self.sinks.as_ref(),
        )?;
        let t = out.dim(0)?;
        out.reshape((t, self.num_heads * self.head_dim))
    }
}
