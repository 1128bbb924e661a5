//! The model runner: flattens one scheduler step into the tensors of DESIGN.md
//! (`input_ids`, `positions`, `slot_mapping`, `block_tables`, `seq_lens`, `query_start`) and runs
//! the model once over the whole batch.

use candle_core::{Device, Result, Tensor};
use lathe_core::{RequestId, SchedulerOutput};
use lathe_kernels::ops::PagedBatchTensors;
use lathe_models::{BatchMetadata, CausalLm, KvCache};

/// Host-side arrays of one flattened batch, before they become device tensors.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct HostBatch {
    pub input_ids: Vec<u32>,
    pub positions: Vec<u32>,
    pub slot_mapping: Vec<i64>,
    /// `[S, max_blocks]`, padded with block 0 (never read past seq_lens).
    pub block_tables: Vec<u32>,
    pub max_blocks: usize,
    pub seq_lens: Vec<u32>,
    pub query_start: Vec<u32>,
    pub logits_indices: Vec<u32>,
    /// The requests whose logits rows come back, in row order, with their number of rows
    /// (1, or 1 + the proposals they verify).
    pub sampled: Vec<(RequestId, usize)>,
    pub max_query_len: usize,
    pub max_seq_len: usize,
}

impl HostBatch {
    pub fn build(out: &SchedulerOutput, block_size: usize) -> Self {
        let mut b = HostBatch {
            query_start: vec![0],
            ..Default::default()
        };
        b.max_blocks = out
            .seqs
            .iter()
            .map(|s| s.block_table.len())
            .max()
            .unwrap_or(0)
            .max(1);
        for seq in &out.seqs {
            let n = seq.token_ids.len();
            for (i, &tok) in seq.token_ids.iter().enumerate() {
                let pos = seq.start_pos + i;
                b.input_ids.push(tok);
                b.positions.push(pos as u32);
                let block = seq.block_table[pos / block_size] as i64;
                b.slot_mapping
                    .push(block * block_size as i64 + (pos % block_size) as i64);
            }
            let mut table = seq.block_table.clone();
            table.resize(b.max_blocks, 0);
            b.block_tables.extend(table);
            let seq_len = seq.start_pos + n;
            b.seq_lens.push(seq_len as u32);
            b.query_start.push(b.input_ids.len() as u32);
            b.max_query_len = b.max_query_len.max(n);
            b.max_seq_len = b.max_seq_len.max(seq_len);
            let rows = seq.num_sample_rows();
            if rows > 0 {
                let end = b.input_ids.len() as u32;
                b.logits_indices.extend(end - rows as u32..end);
                b.sampled.push((seq.id, rows));
            }
        }
        b
    }

    fn to_device(&self, device: &Device) -> Result<(Tensor, BatchMetadata)> {
        let s = self.seq_lens.len();
        let input_ids = Tensor::new(self.input_ids.as_slice(), device)?;
        let meta = BatchMetadata {
            positions: Tensor::new(self.positions.as_slice(), device)?,
            slot_mapping: Tensor::new(self.slot_mapping.as_slice(), device)?,
            paged: PagedBatchTensors {
                block_tables: Tensor::from_slice(&self.block_tables, (s, self.max_blocks), device)?,
                seq_lens: Tensor::new(self.seq_lens.as_slice(), device)?,
                query_start: Tensor::new(self.query_start.as_slice(), device)?,
                max_query_len: self.max_query_len,
                max_seq_len: self.max_seq_len,
            },
            logits_indices: Tensor::new(self.logits_indices.as_slice(), device)?,
        };
        Ok((input_ids, meta))
    }
}

/// Runs one step; returns the f32 logits rows of `batch.logits_indices`, in order.
pub fn execute(model: &dyn CausalLm, kv: &KvCache, batch: &HostBatch) -> Result<Vec<Vec<f32>>> {
    if batch.input_ids.is_empty() {
        return Ok(Vec::new());
    }
    let (ids, meta) = batch.to_device(&model.spec().device)?;
    let logits = model.forward(&ids, &meta, kv)?;
    if batch.sampled.is_empty() {
        return Ok(Vec::new());
    }
    logits.to_vec2::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lathe_core::ScheduledSeq;

    #[test]
    fn flattens_mixed_prefill_and_decode() {
        let out = SchedulerOutput {
            seqs: vec![
                ScheduledSeq {
                    id: 1,
                    token_ids: vec![7],
                    start_pos: 17,
                    block_table: vec![4, 9],
                    sample: true,
                    num_spec_tokens: 0,
                },
                ScheduledSeq {
                    id: 2,
                    token_ids: vec![1, 2, 3],
                    start_pos: 0,
                    block_table: vec![5],
                    sample: false,
                    num_spec_tokens: 0,
                },
            ],
            preempted: vec![],
            num_batched_tokens: 4,
        };
        let b = HostBatch::build(&out, 16);
        assert_eq!(b.input_ids, vec![7, 1, 2, 3]);
        assert_eq!(b.positions, vec![17, 0, 1, 2]);
        assert_eq!(b.slot_mapping, vec![9 * 16 + 1, 80, 81, 82]);
        assert_eq!(b.block_tables, vec![4, 9, 5, 0]);
        assert_eq!(b.seq_lens, vec![18, 3]);
        assert_eq!(b.query_start, vec![0, 1, 4]);
        assert_eq!(b.logits_indices, vec![0]);
        assert_eq!(b.sampled, vec![(1, 1)]);
        assert_eq!((b.max_query_len, b.max_seq_len), (3, 18));
    }
}
