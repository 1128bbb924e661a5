//! Test harness: a fake model with a real (fake) paged KV cache and an engine-like loop.
//!
//! The fake model writes every computed token into its slot (`block_table[pos / bs]`, offset
//! `pos % bs`) and samples `next_token(context)` where the context is *read back through the
//! block table* for positions `0..end_pos`. So a wrong block table, a prefix hit on the wrong
//! block, or a block reused while still shared changes the generated tokens, and the test
//! comparing them to [`reference`] fails.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};

use lathe_core::{BlockId, KvCacheConfig, RequestId, Scheduler, SchedulerConfig, SchedulerOutput};

/// The fake model's "logits": a deterministic function of the whole context.
pub fn next_token(context: &[u32]) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &t in context {
        h = (h ^ t as u64).wrapping_mul(0x0100_0000_01b3);
    }
    (h % 1000) as u32
}

/// What a request generates when nothing else is going on.
pub fn reference(prompt: &[u32], max_tokens: usize) -> Vec<u32> {
    let mut ctx = prompt.to_vec();
    for _ in 0..max_tokens {
        ctx.push(next_token(&ctx));
    }
    ctx.split_off(prompt.len())
}

pub struct FakeModel {
    bs: usize,
    /// (token, position) per KV slot.
    kv: Vec<Option<(u32, usize)>>,
}

impl FakeModel {
    pub fn new(num_blocks: usize, bs: usize) -> Self {
        Self {
            bs,
            kv: vec![None; num_blocks * bs],
        }
    }

    fn slot(&self, table: &[BlockId], pos: usize) -> usize {
        table[pos / self.bs] as usize * self.bs + pos % self.bs
    }

    /// Run one step: write KV for every scheduled token, then sample where asked — at every
    /// proposal too, keeping (like the engine) the proposals the model agrees with and its
    /// own next token.
    pub fn run(&mut self, sched: &Scheduler, out: &SchedulerOutput) -> Vec<(RequestId, Vec<u32>)> {
        for seq in &out.seqs {
            for (k, &t) in seq.token_ids.iter().enumerate() {
                let pos = seq.start_pos + k;
                let block = seq.block_table[pos / self.bs];
                // A block in the prefix cache is immutable: others may be reading it.
                assert!(
                    sched.pool().block_hash(block).is_none(),
                    "request {} writes cached block {block}",
                    seq.id
                );
                let s = self.slot(&seq.block_table, pos);
                self.kv[s] = Some((t, pos));
            }
        }
        let mut sampled = Vec::new();
        for seq in out.seqs.iter().filter(|q| q.sample) {
            let first = seq.end_pos() - seq.num_spec_tokens;
            let proposals = seq.spec_token_ids();
            let mut tokens = Vec::new();
            for end in first..=seq.end_pos() {
                let ctx: Vec<u32> = (0..end)
                    .map(|pos| match self.kv[self.slot(&seq.block_table, pos)] {
                        Some((t, p)) if p == pos => t,
                        other => panic!("request {}: slot for pos {pos} holds {other:?}", seq.id),
                    })
                    .collect();
                let t = next_token(&ctx);
                tokens.push(t);
                if proposals.get(end - first) != Some(&t) {
                    break;
                }
            }
            sampled.push((seq.id, tokens));
        }
        sampled
    }
}

/// Speculative proposals for a request, given its tokens.
pub type Proposer = Box<dyn FnMut(&[u32]) -> Vec<u32>>;

/// An engine-like driver: schedule → fake model → update → finish at max_tokens, checking
/// every invariant (its own, from the public API, and the scheduler's) at every step.
pub struct Harness {
    pub sched: Scheduler,
    pub model: FakeModel,
    pub live: BTreeMap<RequestId, (usize, Vec<u32>)>, // max_tokens, outputs so far
    pub finished: HashMap<RequestId, Vec<u32>>,
    pub preemptions: usize,
    pub steps: usize,
    /// Speculative decoding: proposes tokens for a decoding request given its tokens.
    pub proposer: Option<Proposer>,
    /// Proposals scheduled and accepted so far.
    pub proposed: usize,
    pub accepted: usize,
}

impl Harness {
    pub fn new(sched: SchedulerConfig, kv: KvCacheConfig) -> Self {
        let model = FakeModel::new(kv.num_blocks, kv.block_size);
        Self {
            sched: Scheduler::new(sched, kv),
            model,
            live: BTreeMap::new(),
            finished: HashMap::new(),
            preemptions: 0,
            steps: 0,
            proposer: None,
            proposed: 0,
            accepted: 0,
        }
    }

    pub fn add(&mut self, id: RequestId, prompt: Vec<u32>, max_tokens: usize) {
        self.sched.add_request(id, prompt, max_tokens).unwrap();
        self.live.insert(id, (max_tokens, Vec::new()));
    }

    pub fn cancel(&mut self, id: RequestId) {
        assert!(self.sched.finish_request(id));
        self.live.remove(&id);
        check_pool_accounting(&self.sched, self.live.keys().copied());
    }

    pub fn step(&mut self) -> SchedulerOutput {
        let out = self.sched.schedule();
        check_output(&self.sched, &out);
        check_pool_accounting(&self.sched, self.live.keys().copied());
        let sampled = self.model.run(&self.sched, &out);
        self.sched.update_accepted(&out, &sampled);
        for (id, tokens) in sampled {
            let seq = out.seqs.iter().find(|q| q.id == id).unwrap();
            self.proposed += seq.num_spec_tokens;
            self.accepted += tokens.len() - 1;
            let (max, toks) = self.live.get_mut(&id).unwrap();
            toks.extend(&tokens);
            assert!(toks.len() <= *max, "request {id} got past max_tokens");
            if toks.len() == *max {
                assert!(self.sched.finish_request(id));
                let (_, toks) = self.live.remove(&id).unwrap();
                self.finished.insert(id, toks);
            }
        }
        self.sched.check_invariants().unwrap();
        check_pool_accounting(&self.sched, self.live.keys().copied());
        if let Some(propose) = self.proposer.as_mut() {
            let ids: Vec<_> = self.sched.running_ids().to_vec();
            for id in ids {
                let req = self.sched.request(id).unwrap();
                if req.num_uncomputed_tokens() == 1 {
                    let tokens = propose(req.token_ids());
                    self.sched.set_spec_tokens(id, tokens);
                }
            }
        }
        self.preemptions += out.preempted.len();
        self.steps += 1;
        out
    }

    pub fn run_to_completion(&mut self, max_steps: usize) {
        while self.sched.has_unfinished() {
            assert!(
                self.steps < max_steps,
                "no completion after {max_steps} steps"
            );
            self.step();
        }
        assert!(self.live.is_empty());
        assert_eq!(
            self.sched.num_free_blocks(),
            self.sched.num_total_blocks(),
            "leak"
        );
    }
}

/// Per-step output checks: budget, limits, coverage of block tables, token slices, order.
pub fn check_output(sched: &Scheduler, out: &SchedulerOutput) {
    let cfg = sched.config();
    let bs = sched.block_size();
    let total: usize = out.seqs.iter().map(|q| q.token_ids.len()).sum();
    assert_eq!(out.num_batched_tokens, total);
    assert!(
        total <= cfg.max_num_batched_tokens,
        "budget exceeded: {total}"
    );
    assert!(out.seqs.len() <= cfg.max_num_seqs);
    if sched.has_unfinished() {
        assert!(!out.seqs.is_empty(), "stalled with unfinished requests");
    }
    let mut ids: Vec<_> = out.seqs.iter().map(|q| q.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), out.seqs.len(), "a request scheduled twice");
    for q in &out.seqs {
        assert!(!q.token_ids.is_empty());
        if cfg.long_prefill_token_threshold > 0 {
            assert!(q.token_ids.len() <= cfg.long_prefill_token_threshold);
        }
        assert!(q.block_table.len() * bs >= q.end_pos(), "table too short");
        assert!(
            q.block_table.len() <= q.end_pos().div_ceil(bs),
            "table too long"
        );
        let req = sched.request(q.id).expect("scheduled request is live");
        let real_end = q.end_pos() - q.num_spec_tokens;
        let real = &q.token_ids[..q.token_ids.len() - q.num_spec_tokens];
        assert_eq!(&req.token_ids()[q.start_pos..real_end], real);
        assert_eq!(req.block_table(), &q.block_table[..]);
        assert_eq!(q.sample, real_end == req.num_tokens());
        assert!(
            q.sample || q.num_spec_tokens == 0,
            "proposals behind a prefill chunk"
        );
        assert!(req.spec_token_ids().is_empty(), "proposals scheduled twice");
        assert!(!out.preempted.contains(&q.id), "scheduled and preempted");
    }
    for id in &out.preempted {
        let req = sched.request(*id).unwrap();
        assert!(req.block_table().is_empty() && req.num_computed_tokens() == 0);
    }
}

/// Pool accounting from the public API only: refcount == number of tables holding the block,
/// no table holds a block twice, used + free == total.
pub fn check_pool_accounting(sched: &Scheduler, live: impl Iterator<Item = RequestId>) {
    let pool = sched.pool();
    let mut holders = vec![0u32; pool.num_total()];
    for id in live {
        let table = sched.request(id).unwrap().block_table();
        let mut sorted = table.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), table.len(), "request {id} owns a block twice");
        for &b in table {
            holders[b as usize] += 1;
        }
    }
    let mut used = 0;
    for (b, &n) in holders.iter().enumerate() {
        assert_eq!(pool.refcount(b as BlockId), n, "block {b} refcount");
        used += (n > 0) as usize;
    }
    assert_eq!(used + sched.num_free_blocks(), sched.num_total_blocks());
}

pub fn kv(block_size: usize, num_blocks: usize, prefix: bool) -> KvCacheConfig {
    KvCacheConfig {
        block_size,
        num_blocks,
        enable_prefix_caching: prefix,
    }
}

pub fn sched_cfg(budget: usize, max_seqs: usize, threshold: usize) -> SchedulerConfig {
    SchedulerConfig {
        max_num_batched_tokens: budget,
        max_num_seqs: max_seqs,
        max_model_len: 1 << 20,
        long_prefill_token_threshold: threshold,
    }
}
