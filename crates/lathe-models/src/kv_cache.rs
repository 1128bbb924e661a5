//! The paged KV cache: per layer, K and V as `[num_blocks, block_size, num_kv_heads, head_dim]`.
//! The engine owns it; block ids come from lathe-core's pool.

use candle_core::{DType, Device, Result, Tensor};

#[derive(Debug)]
pub struct LayerKvCache {
    pub k: Tensor,
    pub v: Tensor,
}

/// Shape of the cache a model needs (per layer, per token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvCacheSpec {
    pub num_layers: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub dtype: DType,
}

impl KvCacheSpec {
    /// Bytes one block of `block_size` tokens takes across all layers, K and V.
    pub fn bytes_per_block(&self, block_size: usize) -> usize {
        2 * self.num_layers
            * block_size
            * self.num_kv_heads
            * self.head_dim
            * self.dtype.size_in_bytes()
    }
}

#[derive(Debug)]
pub struct KvCache {
    pub layers: Vec<LayerKvCache>,
    pub block_size: usize,
    pub num_blocks: usize,
}

impl KvCache {
    pub fn new(
        spec: &KvCacheSpec,
        num_blocks: usize,
        block_size: usize,
        device: &Device,
    ) -> Result<Self> {
        let shape = (num_blocks, block_size, spec.num_kv_heads, spec.head_dim);
        let layers = (0..spec.num_layers)
            .map(|_| {
                Ok(LayerKvCache {
                    k: Tensor::zeros(shape, spec.dtype, device)?,
                    v: Tensor::zeros(shape, spec.dtype, device)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            layers,
            block_size,
            num_blocks,
        })
    }
}
