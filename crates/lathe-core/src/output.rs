//! What one scheduling step decided, and the errors of admission.

use crate::{BlockId, RequestId};

/// One sequence's share of a step: compute `token_ids` at positions `start_pos..`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduledSeq {
    pub id: RequestId,
    /// The tokens to compute this step (a slice of the sequence).
    pub token_ids: Vec<u32>,
    /// Position of `token_ids[0]`, i.e. `num_computed_tokens` before this step. Tokens below it
    /// are already in the KV cache (computed earlier or served by the prefix cache).
    pub start_pos: usize,
    /// The sequence's whole block table; covers `start_pos + token_ids.len()` tokens.
    pub block_table: Vec<BlockId>,
    /// After this step every token is computed: the engine samples the next one.
    pub sample: bool,
    /// The last `num_spec_tokens` of `token_ids` are proposals (speculative decoding): the
    /// engine samples at every one of the last `num_spec_tokens + 1` positions and keeps the
    /// longest prefix the model agrees with.
    pub num_spec_tokens: usize,
}

impl ScheduledSeq {
    /// Tokens in the KV cache once this step ran (`seq_len` for attention).
    pub fn end_pos(&self) -> usize {
        self.start_pos + self.token_ids.len()
    }

    /// The proposed tokens at the end of `token_ids`.
    pub fn spec_token_ids(&self) -> &[u32] {
        &self.token_ids[self.token_ids.len() - self.num_spec_tokens..]
    }

    /// Logits rows this sequence needs: one per proposal plus one, or none.
    pub fn num_sample_rows(&self) -> usize {
        if self.sample {
            self.num_spec_tokens + 1
        } else {
            0
        }
    }
}

/// The typed result of [`crate::Scheduler::schedule`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchedulerOutput {
    /// Running (already admitted) sequences first, then the ones admitted this step.
    pub seqs: Vec<ScheduledSeq>,
    /// Requests preempted this step: their blocks were freed and they wait to be recomputed.
    pub preempted: Vec<RequestId>,
    /// Sum of `token_ids.len()` over `seqs`; never above `max_num_batched_tokens`.
    pub num_batched_tokens: usize,
}

impl SchedulerOutput {
    pub fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }
}

/// Why [`crate::Scheduler::add_request`] refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedulerError {
    #[error("prompt has {prompt_len} tokens, the model's context is {max_model_len} (prompt must leave room for output)")]
    PromptTooLong {
        prompt_len: usize,
        max_model_len: usize,
    },
    #[error("request needs {needed_blocks} KV blocks but the pool has only {num_blocks}")]
    TooLargeForPool {
        needed_blocks: usize,
        num_blocks: usize,
    },
    #[error("request id {0} is already in use")]
    DuplicateId(RequestId),
    #[error("prompt is empty")]
    EmptyPrompt,
}
