//! Scheduler and KV-cache configuration.

/// Shape of the paged KV cache as the scheduler sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvCacheConfig {
    /// Tokens per block (16 by default). Must be > 0.
    pub block_size: usize,
    /// Blocks in the pool; the engine derives it from profiling free device memory.
    pub num_blocks: usize,
    /// Reuse full blocks across requests with identical prefixes.
    pub enable_prefix_caching: bool,
}

impl Default for KvCacheConfig {
    /// `num_blocks` is 0 on purpose: there is no meaningful default, it must come from profiling.
    fn default() -> Self {
        Self {
            block_size: 16,
            num_blocks: 0,
            enable_prefix_caching: true,
        }
    }
}

/// Limits of one scheduling step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Token budget per step (sum of all scheduled chunks). Default 2048; 0 is treated as 1.
    pub max_num_batched_tokens: usize,
    /// Maximum number of running sequences. Default 64; 0 is treated as 1.
    pub max_num_seqs: usize,
    /// Context length: prompt + output may not exceed it.
    pub max_model_len: usize,
    /// Cap on one request's chunk per step, so a long prefill cannot starve decodes
    /// (0 => only the step budget limits it).
    pub long_prefill_token_threshold: usize,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            max_num_batched_tokens: 2048,
            max_num_seqs: 64,
            max_model_len: 4096,
            long_prefill_token_threshold: 0,
        }
    }
}
