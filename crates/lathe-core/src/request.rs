//! Per-request bookkeeping: tokens, progress, block table and prefix-cache keys.

use crate::hash::{extend_block_hashes, BlockHash};
use crate::{BlockId, RequestId};

/// Where a request is in the scheduler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestStatus {
    /// Queued (new or preempted); holds no blocks.
    Waiting,
    /// Admitted; holds blocks for its computed (and scheduled) tokens.
    Running,
}

/// One request as the scheduler tracks it. Read-only outside the crate.
#[derive(Clone, Debug)]
pub struct Request {
    pub(crate) id: RequestId,
    /// Prompt followed by generated tokens; survives preemption.
    pub(crate) token_ids: Vec<u32>,
    pub(crate) num_prompt_tokens: usize,
    pub(crate) max_tokens: usize,
    pub(crate) num_computed_tokens: usize,
    pub(crate) status: RequestStatus,
    pub(crate) block_table: Vec<BlockId>,
    /// Keys of every full block of `token_ids` (only maintained with prefix caching on).
    pub(crate) block_hashes: Vec<BlockHash>,
    /// Leading blocks of `block_table` already registered in (or served by) the prefix cache.
    pub(crate) num_registered_blocks: usize,
    pub(crate) num_cached_tokens: usize,
    pub(crate) num_preemptions: usize,
    /// Proposed continuation (speculative decoding) to verify in the next step; not part of
    /// `token_ids` until the model accepts it.
    pub(crate) spec_token_ids: Vec<u32>,
}

impl Request {
    pub(crate) fn new(id: RequestId, prompt: Vec<u32>, max_tokens: usize) -> Self {
        Self {
            id,
            num_prompt_tokens: prompt.len(),
            token_ids: prompt,
            max_tokens,
            num_computed_tokens: 0,
            status: RequestStatus::Waiting,
            block_table: Vec::new(),
            block_hashes: Vec::new(),
            num_registered_blocks: 0,
            num_cached_tokens: 0,
            num_preemptions: 0,
            spec_token_ids: Vec::new(),
        }
    }

    pub fn id(&self) -> RequestId {
        self.id
    }

    /// Prompt followed by the tokens generated so far.
    pub fn token_ids(&self) -> &[u32] {
        &self.token_ids
    }

    pub fn prompt(&self) -> &[u32] {
        &self.token_ids[..self.num_prompt_tokens]
    }

    pub fn output_token_ids(&self) -> &[u32] {
        &self.token_ids[self.num_prompt_tokens..]
    }

    pub fn num_tokens(&self) -> usize {
        self.token_ids.len()
    }

    pub fn num_prompt_tokens(&self) -> usize {
        self.num_prompt_tokens
    }

    pub fn num_output_tokens(&self) -> usize {
        self.token_ids.len() - self.num_prompt_tokens
    }

    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Tokens whose KV is in the cache.
    pub fn num_computed_tokens(&self) -> usize {
        self.num_computed_tokens
    }

    /// Tokens still to compute before the next sample.
    pub fn num_uncomputed_tokens(&self) -> usize {
        self.num_tokens().saturating_sub(self.num_computed_tokens)
    }

    pub fn status(&self) -> RequestStatus {
        self.status
    }

    pub fn block_table(&self) -> &[BlockId] {
        &self.block_table
    }

    /// Tokens served from the prefix cache at the last admission.
    pub fn num_cached_tokens(&self) -> usize {
        self.num_cached_tokens
    }

    /// How many times this request has been preempted.
    pub fn num_preemptions(&self) -> usize {
        self.num_preemptions
    }

    /// Proposed tokens waiting to be verified.
    pub fn spec_token_ids(&self) -> &[u32] {
        &self.spec_token_ids
    }

    pub(crate) fn update_hashes(&mut self, block_size: usize) {
        extend_block_hashes(&self.token_ids, block_size, &mut self.block_hashes);
    }
}
