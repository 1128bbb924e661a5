//! Paged attention as a candle op over q `[T, num_heads, head_dim]`.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

use super::{as_f32, as_f32_mut, cpu_slice, dispatch_float, with_cpu_slice};
use crate::reference::{self, AttentionOptions, AttentionShape, PagedBatch};

/// The batch layout tensors shared by every layer of one step.
#[derive(Debug, Clone)]
pub struct PagedBatchTensors {
    /// u32 `[S, max_blocks]`.
    pub block_tables: Tensor,
    /// u32 `[S]`: context length including this step's tokens.
    pub seq_lens: Tensor,
    /// u32 `[S + 1]`.
    pub query_start: Tensor,
    /// Longest query run of one sequence in this batch (1 for a pure decode batch).
    pub max_query_len: usize,
    pub max_seq_len: usize,
}

pub struct PagedAttention {
    pub(crate) k_cache: Tensor,
    pub(crate) v_cache: Tensor,
    pub(crate) block_tables: Tensor,
    pub(crate) seq_lens: Tensor,
    pub(crate) query_start: Tensor,
    pub(crate) sinks: Option<Tensor>,
    pub(crate) num_heads: usize,
    pub(crate) num_kv_heads: usize,
    pub(crate) head_dim: usize,
    pub(crate) block_size: usize,
    pub(crate) scale: f32,
    pub(crate) sliding_window: Option<usize>,
    pub(crate) softcap: Option<f32>,
    // Grid sizes for the CUDA launch; upper bounds, unused by the CPU twin.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) max_query_len: usize,
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) max_seq_len: usize,
}

impl PagedAttention {
    fn shape(&self) -> AttentionShape {
        AttentionShape {
            num_heads: self.num_heads,
            num_kv_heads: self.num_kv_heads,
            head_dim: self.head_dim,
            block_size: self.block_size,
        }
    }

    fn options(&self) -> AttentionOptions {
        AttentionOptions {
            scale: self.scale,
            sliding_window: self.sliding_window,
            softcap: self.softcap,
        }
    }
}

impl CustomOp1 for PagedAttention {
    fn name(&self) -> &'static str {
        "lathe-paged-attention"
    }

    fn cpu_fwd(&self, q: &CpuStorage, q_l: &Layout) -> Result<(CpuStorage, Shape)> {
        let max_blocks = self.block_tables.dims2()?.1;
        let sinks: Option<Vec<f32>> = match &self.sinks {
            Some(s) => Some(s.to_dtype(candle_core::DType::F32)?.to_vec1()?),
            None => None,
        };
        with_cpu_slice::<u32, _>(&self.block_tables, |block_tables| {
            with_cpu_slice::<u32, _>(&self.seq_lens, |seq_lens| {
                with_cpu_slice::<u32, _>(&self.query_start, |query_start| {
                    let batch = PagedBatch {
                        block_tables,
                        max_blocks,
                        seq_lens,
                        query_start,
                    };
                    dispatch_float!(q.dtype(), T => {
                        let qs = cpu_slice::<T>(q, q_l)?;
                        let mut out = vec![<T as reference::Element>::from_f32(0.0); qs.len()];
                        with_cpu_slice::<T, _>(&self.k_cache, |k| {
                            with_cpu_slice::<T, _>(&self.v_cache, |v| {
                                let (sh, op) = (self.shape(), self.options());
                                match (as_f32(qs), as_f32(k), as_f32(v), as_f32_mut(&mut out)) {
                                    (Some(qs), Some(k), Some(v), Some(o)) => crate::cpu::attention::paged_attention(
                                        qs, k, v, &batch, sinks.as_deref(), &sh, &op, o,
                                    ),
                                    _ => reference::paged_attention(
                                        qs, k, v, &batch, sinks.as_deref(), &sh, &op, &mut out,
                                    ),
                                }
                                Ok(())
                            })
                        })?;
                        Ok((candle_core::WithDType::to_cpu_storage_owned(out), q_l.shape().clone()))
                    })
                })
            })
        })
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        q: &candle_core::CudaStorage,
        q_l: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        crate::cuda::paged_attention(self, q, q_l)
    }
}

/// Attention of `q` `[T, num_heads, head_dim]` over the paged caches
/// `[num_blocks, block_size, num_kv_heads, head_dim]`; see `reference::paged_attention`.
pub fn paged_attention(
    q: &Tensor,
    k_cache: &Tensor,
    v_cache: &Tensor,
    batch: &PagedBatchTensors,
    opts: &AttentionOptions,
    sinks: Option<&Tensor>,
) -> Result<Tensor> {
    let (_, num_heads, head_dim) = q.dims3()?;
    let (_, block_size, num_kv_heads, kd) = k_cache.dims4()?;
    if kd != head_dim || num_heads % num_kv_heads != 0 || k_cache.dims() != v_cache.dims() {
        candle_core::bail!(
            "paged_attention: q {:?} incompatible with caches {:?} / {:?}",
            q.dims(),
            k_cache.dims(),
            v_cache.dims()
        );
    }
    let op = PagedAttention {
        k_cache: k_cache.clone(),
        v_cache: v_cache.clone(),
        block_tables: batch.block_tables.contiguous()?,
        seq_lens: batch.seq_lens.contiguous()?,
        query_start: batch.query_start.contiguous()?,
        sinks: sinks.cloned(),
        num_heads,
        num_kv_heads,
        head_dim,
        block_size,
        scale: opts.scale,
        sliding_window: opts.sliding_window,
        softcap: opts.softcap,
        max_query_len: batch.max_query_len,
        max_seq_len: batch.max_seq_len,
    };
    q.contiguous()?.apply_op1_no_bwd(&op)
}
