//! A draft model proposing for the target: a smaller model of the same tokenizer, with its own
//! paged KV cache and block pool, run on the engine thread between the target's steps.
//!
//! Each request keeps the tokens the draft has computed. Before proposing, the draft rolls its
//! cache back to the longest prefix it shares with the request's real tokens (rejected
//! proposals fall out there), catches up on what it has not seen (the prompt first, at most
//! `max_catch_up` tokens a step across requests, so a long prompt does not stall the target),
//! then decodes greedily, one batched forward per proposed token, stopping a request's
//! proposal at the first token the draft itself is unsure of (probability below `p_min`, as
//! llama.cpp's `--draft-p-min`): a doubtful proposal costs a draft forward and is likely
//! rejected. Requests still prefilling in the target catch up in the same steps (k = 0), so
//! the draft's own prompt pass lands in the time to first token, not between tokens.

use std::collections::HashMap;

use candle_core::Result;
use lathe_core::{BlockId, BlockPool, RequestId, ScheduledSeq, SchedulerOutput};
use lathe_models::{CausalLm, KvCache};

use crate::runner::{execute, HostBatch};
use crate::sampler::argmax;

pub(crate) struct DraftModel {
    model: Box<dyn CausalLm>,
    kv: KvCache,
    pool: BlockPool,
    block_size: usize,
    max_catch_up: usize,
    /// Proposals at or above this id would not embed in the target: cut there.
    target_vocab: u32,
    /// A proposal stops before a token the draft gives less than this probability.
    p_min: f32,
    seqs: HashMap<RequestId, DraftSeq>,
}

#[derive(Default)]
struct DraftSeq {
    /// Tokens whose KV is in the draft's cache.
    computed: Vec<u32>,
    blocks: Vec<BlockId>,
}

/// One request's ask: its real tokens and how many to propose.
pub(crate) struct DraftWant<'a> {
    pub id: RequestId,
    pub tokens: &'a [u32],
    pub k: usize,
}

impl DraftModel {
    pub fn new(
        model: Box<dyn CausalLm>,
        kv: KvCache,
        max_catch_up: usize,
        target_vocab: usize,
        p_min: f32,
    ) -> Self {
        Self {
            pool: BlockPool::new(kv.num_blocks),
            block_size: kv.block_size,
            model,
            kv,
            max_catch_up: max_catch_up.max(1),
            target_vocab: target_vocab as u32,
            p_min,
            seqs: HashMap::new(),
        }
    }

    /// Forget a finished request and free its blocks.
    pub fn release(&mut self, id: RequestId) {
        if let Some(seq) = self.seqs.remove(&id) {
            for b in seq.blocks.into_iter().rev() {
                self.pool.free(b);
            }
        }
    }

    /// Blocks in use (tests: nothing leaks).
    pub fn num_used_blocks(&self) -> usize {
        self.pool.num_used()
    }

    /// Proposals for every request that is caught up and asks for some (`k > 0`); requests
    /// still catching up (or whose blocks do not fit) get none this step.
    pub fn propose(&mut self, wants: &[DraftWant]) -> Result<Vec<(RequestId, Vec<u32>)>> {
        let mut catch_up = self.max_catch_up;
        // (id, k) of the requests that propose this step.
        let mut proposing = Vec::new();
        let mut first = SchedulerOutput::default();
        for w in wants.iter().filter(|w| !w.tokens.is_empty()) {
            let start = self.rewind(w.id, w.tokens);
            let missing = w.tokens.len() - start;
            let n = missing.min(catch_up);
            if n == 0 {
                continue;
            }
            let done = n == missing && w.k > 0;
            // Room for the chunk and, when proposing, the k - 1 proposals fed back.
            let end = start + n + if done { w.k - 1 } else { 0 };
            if end > self.model.spec().max_position_embeddings || !self.reserve(w.id, end) {
                self.release(w.id);
                continue;
            }
            catch_up -= n;
            let seq = &self.seqs[&w.id];
            first.seqs.push(ScheduledSeq {
                id: w.id,
                token_ids: w.tokens[start..start + n].to_vec(),
                start_pos: start,
                block_table: seq.blocks.clone(),
                sample: done,
                num_spec_tokens: 0,
            });
            if done {
                proposing.push((w.id, w.k));
            }
        }
        if first.seqs.is_empty() {
            return Ok(Vec::new());
        }
        let mut proposals: HashMap<RequestId, Vec<u32>> = HashMap::new();
        let mut round = first;
        loop {
            let rows = execute(
                self.model.as_ref(),
                &self.kv,
                &HostBatch::build(&round, self.block_size),
            )?;
            for seq in &round.seqs {
                self.seqs
                    .get_mut(&seq.id)
                    .expect("reserved above")
                    .computed
                    .extend_from_slice(&seq.token_ids);
            }
            let sampled = round.seqs.iter().filter(|s| s.sample).map(|s| s.id);
            let mut next = SchedulerOutput::default();
            for (id, row) in sampled.zip(&rows) {
                let token = argmax(row);
                let k = proposing.iter().find(|p| p.0 == id).map_or(0, |p| p.1);
                let out = proposals.entry(id).or_default();
                if token >= self.target_vocab || top_probability(row, token) < self.p_min {
                    continue;
                }
                out.push(token);
                if out.len() < k {
                    let seq = &self.seqs[&id];
                    next.seqs.push(ScheduledSeq {
                        id,
                        token_ids: vec![token],
                        start_pos: seq.computed.len(),
                        block_table: seq.blocks.clone(),
                        sample: true,
                        num_spec_tokens: 0,
                    });
                }
            }
            if next.seqs.is_empty() {
                break;
            }
            round = next;
        }
        Ok(proposals
            .into_iter()
            .filter(|(_, p)| !p.is_empty())
            .collect())
    }

    /// Roll `id`'s draft cache back to the prefix it shares with `tokens` (never all of them:
    /// the last token must be fed to get logits). Returns that prefix's length.
    fn rewind(&mut self, id: RequestId, tokens: &[u32]) -> usize {
        let seq = self.seqs.entry(id).or_default();
        let shared = seq
            .computed
            .iter()
            .zip(tokens)
            .take_while(|(a, b)| a == b)
            .count()
            .min(tokens.len() - 1);
        seq.computed.truncate(shared);
        let keep = shared.div_ceil(self.block_size);
        while seq.blocks.len() > keep {
            self.pool.free(seq.blocks.pop().expect("len > keep"));
        }
        shared
    }

    /// Blocks for `num_tokens` tokens of `id`; false if the pool cannot hold them.
    fn reserve(&mut self, id: RequestId, num_tokens: usize) -> bool {
        let seq = self.seqs.get_mut(&id).expect("rewound first");
        let need = num_tokens
            .div_ceil(self.block_size)
            .saturating_sub(seq.blocks.len());
        match self.pool.allocate_n(need) {
            Some(blocks) => {
                seq.blocks.extend(blocks);
                true
            }
            None => false,
        }
    }
}

/// Softmax probability of `token` in a logits row.
fn top_probability(row: &[f32], token: u32) -> f32 {
    let top = row[token as usize];
    1.0 / row.iter().map(|&x| (x - top).exp()).sum::<f32>()
}
