//! What one engine step hands the model besides the token ids: where each token sits, where
//! its K/V go, and the paged layout of every sequence. Built by lathe-engine's runner.

use candle_core::Tensor;
use lathe_kernels::ops::PagedBatchTensors;

#[derive(Debug, Clone)]
pub struct BatchMetadata {
    /// u32 `[T]`: absolute position of each token in its sequence.
    pub positions: Tensor,
    /// i64 `[T]`: flat cache slot each token's K/V are written to.
    pub slot_mapping: Tensor,
    /// Block tables, context lengths and query offsets of the sequences.
    pub paged: PagedBatchTensors,
    /// u32 `[N]`: rows of the flattened batch whose logits are wanted (the last token of each
    /// sequence that samples this step). Empty: the model skips the LM head.
    pub logits_indices: Tensor,
}
