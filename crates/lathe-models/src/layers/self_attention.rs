//! The attention half of a decoder block: q/k/v projections (fused where the kernels allow,
//! with or without bias), optional per-head q/k RMSNorm (Qwen3), rotary embedding, paged
//! attention (optionally windowed) and the output projection.

use candle_core::{Result, Tensor};

use super::{Linear, LinearGroup, PagedAttentionLayer, RmsNorm, RotaryEmbedding};
use crate::batch::BatchMetadata;
use crate::kv_cache::LayerKvCache;

#[derive(Debug, Clone)]
pub struct SelfAttention {
    /// q, k and v projections, fused into one matmul where possible.
    pub qkv: LinearGroup,
    pub o: Linear,
    /// Per-head RMSNorm of q and of k, before the rotation (Qwen3).
    pub qk_norm: Option<(RmsNorm, RmsNorm)>,
    pub attn: PagedAttentionLayer,
}

impl SelfAttention {
    pub fn new(
        q: Linear,
        k: Linear,
        v: Linear,
        o: Linear,
        attn: PagedAttentionLayer,
    ) -> Result<Self> {
        Ok(Self {
            qkv: LinearGroup::new(vec![q, k, v])?,
            o,
            qk_norm: None,
            attn,
        })
    }

    pub fn with_qk_norm(mut self, q_norm: RmsNorm, k_norm: RmsNorm) -> Self {
        self.qk_norm = Some((q_norm, k_norm));
        self
    }

    /// `x [T, H] -> [T, H]`; this step's K/V land in `cache`.
    pub fn forward(
        &self,
        x: &Tensor,
        rotary: &RotaryEmbedding,
        batch: &BatchMetadata,
        cache: &LayerKvCache,
    ) -> Result<Tensor> {
        let t = x.dim(0)?;
        let (h, kvh, d) = (
            self.attn.num_heads,
            self.attn.num_kv_heads,
            self.attn.head_dim,
        );
        let qkv = self.qkv.forward(x)?;
        // rope rotates in place: q and k need storage of their own (copied out of a fused qkv).
        let mut q = qkv[0].contiguous()?.reshape((t, h, d))?;
        let mut k = qkv[1].contiguous()?.reshape((t, kvh, d))?;
        let v = qkv[2].reshape((t, kvh, d))?;
        if let Some((q_norm, k_norm)) = &self.qk_norm {
            q = q_norm.forward_heads(&q)?;
            k = k_norm.forward_heads(&k)?;
        }
        rotary.apply(&q, &k, &batch.positions)?;
        let y = self.attn.forward(&q, &k, &v, cache, batch)?;
        self.o.forward(&y)
    }
}
