//! The vLLM-v1-style scheduler: one token budget per step, handed out so that every request's
//! computed tokens catch up with its total tokens. See the crate docs for the policy decisions.

use std::collections::{HashMap, VecDeque};

use crate::block_pool::BlockPool;
use crate::config::{KvCacheConfig, SchedulerConfig};
use crate::kv_events::KvEvent;
use crate::output::{ScheduledSeq, SchedulerError, SchedulerOutput};
use crate::request::{Request, RequestStatus};
use crate::{BlockId, RequestId};

/// Prefix-cache effectiveness counters (in tokens), accumulated over admissions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrefixCacheStats {
    /// Tokens of admitted requests that were looked up in the cache.
    pub queried_tokens: u64,
    /// Of those, tokens served from the cache.
    pub hit_tokens: u64,
}

/// Owns every request's bookkeeping and the KV block pool. Driven by the engine thread:
/// `schedule → (run the model) → update → finish_request` as requests stop.
#[derive(Debug)]
pub struct Scheduler {
    pub(crate) cfg: SchedulerConfig,
    pub(crate) kv: KvCacheConfig,
    pub(crate) pool: BlockPool,
    pub(crate) requests: HashMap<RequestId, Request>,
    pub(crate) waiting: VecDeque<RequestId>,
    /// In admission order: the last one is the first to be preempted.
    pub(crate) running: Vec<RequestId>,
    stats: PrefixCacheStats,
}

impl Scheduler {
    /// # Panics
    /// If `kv.block_size` is 0 (the KV layout would be meaningless).
    pub fn new(mut sched: SchedulerConfig, kv: KvCacheConfig) -> Self {
        assert!(kv.block_size > 0, "block_size must be > 0");
        // A zero budget or sequence cap would stall forever; treat them as 1.
        sched.max_num_batched_tokens = sched.max_num_batched_tokens.max(1);
        sched.max_num_seqs = sched.max_num_seqs.max(1);
        Self {
            pool: BlockPool::new(kv.num_blocks),
            cfg: sched,
            kv,
            requests: HashMap::new(),
            waiting: VecDeque::new(),
            running: Vec::new(),
            stats: PrefixCacheStats::default(),
        }
    }

    /// Queue a request (FIFO). Refuses an empty prompt, a reused id, a prompt that leaves no
    /// room for output in `max_model_len`, and a request whose KV (prompt + max_tokens - 1
    /// tokens, capped by the context) could never fit in the whole pool.
    pub fn add_request(
        &mut self,
        id: RequestId,
        prompt: Vec<u32>,
        max_tokens: usize,
    ) -> Result<(), SchedulerError> {
        if prompt.is_empty() {
            return Err(SchedulerError::EmptyPrompt);
        }
        if self.requests.contains_key(&id) {
            return Err(SchedulerError::DuplicateId(id));
        }
        let max_model_len = self.cfg.max_model_len;
        if prompt.len() >= max_model_len {
            return Err(SchedulerError::PromptTooLong {
                prompt_len: prompt.len(),
                max_model_len,
            });
        }
        // The last sampled token is never computed, hence the -1.
        let max_kv_tokens = (prompt.len() + max_tokens.max(1)).min(max_model_len) - 1;
        let needed_blocks = max_kv_tokens.div_ceil(self.kv.block_size);
        if needed_blocks > self.kv.num_blocks {
            return Err(SchedulerError::TooLargeForPool {
                needed_blocks,
                num_blocks: self.kv.num_blocks,
            });
        }
        let mut req = Request::new(id, prompt, max_tokens);
        if self.kv.enable_prefix_caching {
            req.update_hashes(self.kv.block_size);
        }
        self.requests.insert(id, req);
        self.waiting.push_back(id);
        Ok(())
    }

    /// One step: running requests first (in admission order), then waiting ones FIFO, each
    /// getting `min(uncomputed, budget left, long_prefill_token_threshold)` tokens.
    pub fn schedule(&mut self) -> SchedulerOutput {
        let mut out = SchedulerOutput::default();
        let mut budget = self.cfg.max_num_batched_tokens;
        self.schedule_running(&mut budget, &mut out);
        // Admitting in a step that had to preempt would only thrash.
        if out.preempted.is_empty() {
            self.schedule_waiting(&mut budget, &mut out);
        }
        out.num_batched_tokens = self.cfg.max_num_batched_tokens - budget;
        out
    }

    fn schedule_running(&mut self, budget: &mut usize, out: &mut SchedulerOutput) {
        let mut i = 0;
        while i < self.running.len() && *budget > 0 {
            let id = self.running[i];
            let req = &self.requests[&id];
            // Proposals ride along only behind the request's real tokens; what the budget
            // cannot take is dropped (it is only a guess).
            let wanted = match req.num_uncomputed_tokens() {
                0 => 0,
                u => u + req.spec_token_ids.len(),
            };
            let n = self.chunk_len(wanted, *budget);
            // n == 0: the engine has not appended this request's sampled token (it is about
            // to finish it); nothing to compute.
            if n > 0 {
                if !self.reserve_or_preempt(i, n, out) {
                    break; // `id` preempted itself, it was the last running request
                }
                out.seqs.push(self.scheduled_seq(id, n));
                self.req_mut(id).spec_token_ids.clear();
                *budget -= n;
            }
            i += 1;
        }
    }

    /// Make `running[i]`'s table cover `n` more tokens, preempting the lowest-priority running
    /// requests (from the back) until enough blocks are free. False if `running[i]` itself had
    /// to be preempted.
    fn reserve_or_preempt(&mut self, i: usize, n: usize, out: &mut SchedulerOutput) -> bool {
        let id = self.running[i];
        loop {
            let req = &self.requests[&id];
            let need = (req.num_computed_tokens + n)
                .div_ceil(self.kv.block_size)
                .saturating_sub(req.block_table.len());
            if let Some(blocks) = self.pool.allocate_n(need) {
                self.req_mut(id).block_table.extend(blocks);
                return true;
            }
            // running.len() > i, so there is always a victim; the oldest requests are spared.
            let Some(victim) = self.running.pop() else {
                return false;
            };
            self.preempt(victim);
            out.preempted.push(victim);
            if victim == id {
                return false;
            }
        }
    }

    fn preempt(&mut self, id: RequestId) {
        let req = self
            .requests
            .get_mut(&id)
            .expect("running request is tracked");
        Self::release_blocks(&mut self.pool, req);
        req.spec_token_ids.clear();
        req.num_computed_tokens = 0;
        req.status = RequestStatus::Waiting;
        req.num_preemptions += 1;
        // Front of the queue: it was admitted before anything still waiting.
        self.waiting.push_front(id);
    }

    fn schedule_waiting(&mut self, budget: &mut usize, out: &mut SchedulerOutput) {
        while *budget > 0 && self.running.len() < self.cfg.max_num_seqs {
            let Some(&id) = self.waiting.front() else {
                break;
            };
            let Some(n) = self.try_admit(id, *budget) else {
                break; // strict FIFO: nothing overtakes the head of the queue
            };
            self.waiting.pop_front();
            self.running.push(id);
            out.seqs.push(self.scheduled_seq(id, n));
            *budget -= n;
        }
    }

    /// Admit `id` if blocks for its first chunk (after prefix-cache hits) are available.
    /// Returns the chunk length.
    fn try_admit(&mut self, id: RequestId, budget: usize) -> Option<usize> {
        let hits = self.cached_prefix(&self.requests[&id]);
        let bs = self.kv.block_size;
        let num_cached = hits.len() * bs;
        let num_tokens = self.requests[&id].num_tokens();
        let n = self.chunk_len(num_tokens - num_cached, budget);
        let need = (num_cached + n).div_ceil(bs) - hits.len();
        // Hits on evictable blocks stop being allocatable once we take them.
        let revived = hits.iter().filter(|&&b| self.pool.refcount(b) == 0).count();
        if self.pool.num_free() - revived < need {
            return None;
        }
        for &b in &hits {
            self.pool.incref(b);
        }
        let Some(fresh) = self.pool.allocate_n(need) else {
            // Unreachable after the check above; undo rather than leak the hits.
            hits.iter().rev().for_each(|&b| _ = self.pool.decref(b));
            return None;
        };
        self.stats.queried_tokens += num_tokens as u64;
        self.stats.hit_tokens += num_cached as u64;
        let req = self.req_mut(id);
        req.num_registered_blocks = hits.len();
        req.block_table = hits;
        req.block_table.extend(fresh);
        req.num_computed_tokens = num_cached;
        req.num_cached_tokens = num_cached;
        req.status = RequestStatus::Running;
        Some(n)
    }

    /// Leading cached blocks of `req`, never covering its last token (the model must compute
    /// at least one token to produce logits), so at most `(num_tokens - 1) / block_size` blocks.
    fn cached_prefix(&self, req: &Request) -> Vec<BlockId> {
        if !self.kv.enable_prefix_caching {
            return Vec::new();
        }
        let max_blocks = (req.num_tokens() - 1) / self.kv.block_size;
        req.block_hashes
            .iter()
            .take(max_blocks)
            .map_while(|&h| self.pool.lookup(h))
            .collect()
    }

    fn chunk_len(&self, uncomputed: usize, budget: usize) -> usize {
        let cap = match self.cfg.long_prefill_token_threshold {
            0 => usize::MAX,
            t => t,
        };
        uncomputed.min(budget).min(cap)
    }

    /// `n` tokens of `id` from its first uncomputed one: real tokens, then (once those are all
    /// in) as many proposals as `n` leaves room for.
    fn scheduled_seq(&self, id: RequestId, n: usize) -> ScheduledSeq {
        let req = &self.requests[&id];
        let start = req.num_computed_tokens;
        let real = n.min(req.num_uncomputed_tokens());
        let num_spec = n - real;
        let mut token_ids = req.token_ids[start..start + real].to_vec();
        token_ids.extend_from_slice(&req.spec_token_ids[..num_spec]);
        ScheduledSeq {
            id,
            token_ids,
            start_pos: start,
            block_table: req.block_table.clone(),
            sample: start + real == req.num_tokens(),
            num_spec_tokens: num_spec,
        }
    }

    /// Proposes `tokens` to follow `id`'s sequence (speculative decoding): the next step
    /// computes them with its last token and the engine keeps the prefix the model agrees
    /// with. Only for a running request about to decode (one uncomputed token); capped so
    /// that even a fully accepted proposal (plus the bonus token) stays within `max_tokens`
    /// and the context. Returns how many were kept.
    pub fn set_spec_tokens(&mut self, id: RequestId, mut tokens: Vec<u32>) -> usize {
        let max_model_len = self.cfg.max_model_len;
        let Some(req) = self.requests.get_mut(&id) else {
            return 0;
        };
        if req.status != RequestStatus::Running || req.num_uncomputed_tokens() != 1 {
            return 0;
        }
        let room_output = req.max_tokens.saturating_sub(req.num_output_tokens() + 1);
        let room_context = max_model_len.saturating_sub(req.num_tokens() + 1);
        tokens.truncate(room_output.min(room_context));
        req.spec_token_ids = tokens;
        req.spec_token_ids.len()
    }

    /// Record that the model ran `out`: advance each scheduled request, register its newly
    /// full blocks in the prefix cache, then append the sampled tokens. Entries for requests
    /// finished since `schedule` (or otherwise stale) are ignored, as are samples for requests
    /// that were not due to sample.
    pub fn update(&mut self, out: &SchedulerOutput, sampled: &[(RequestId, u32)]) {
        let sampled: Vec<_> = sampled.iter().map(|&(id, t)| (id, vec![t])).collect();
        self.update_accepted(out, &sampled);
    }

    /// [`Self::update`] for steps that verified proposals: each sampling request appends the
    /// tokens the engine accepted — the proposals the model agreed with, in order, then the
    /// model's own next token. Tokens after the first disagreement are dropped, and the KV of
    /// rejected proposals is rolled back (blocks that only they used go back to the pool).
    pub fn update_accepted(&mut self, out: &SchedulerOutput, sampled: &[(RequestId, Vec<u32>)]) {
        let (bs, caching) = (self.kv.block_size, self.kv.enable_prefix_caching);
        for seq in &out.seqs {
            let Some(req) = self.requests.get_mut(&seq.id) else {
                continue;
            };
            let end = seq.end_pos() - seq.num_spec_tokens;
            if req.status != RequestStatus::Running
                || req.num_computed_tokens != seq.start_pos
                || end > req.num_tokens()
            {
                continue;
            }
            req.num_computed_tokens = end;
            if caching {
                Self::register_full_blocks(&mut self.pool, req, bs);
            }
        }
        for (id, tokens) in sampled {
            let Some(req) = self.requests.get_mut(id) else {
                continue;
            };
            let Some(seq) = out.seqs.iter().find(|q| q.id == *id && q.sample) else {
                continue;
            };
            if tokens.is_empty()
                || req.status != RequestStatus::Running
                || req.num_uncomputed_tokens() != 0
            {
                continue;
            }
            let spec = seq.spec_token_ids();
            let accepted = tokens
                .iter()
                .zip(spec)
                .take(tokens.len() - 1)
                .take_while(|(t, s)| t == s)
                .count();
            req.token_ids.extend_from_slice(&tokens[..=accepted]);
            // The accepted proposals' KV is valid; the rest of the step's slots are garbage
            // past num_computed_tokens, overwritten later.
            req.num_computed_tokens += accepted;
            if caching {
                req.update_hashes(bs);
                if accepted > 0 {
                    Self::register_full_blocks(&mut self.pool, req, bs);
                }
            }
        }
        // Blocks that only held rejected proposals go back (also when no tokens came back).
        for seq in out.seqs.iter().filter(|q| q.num_spec_tokens > 0) {
            let Some(req) = self.requests.get_mut(&seq.id) else {
                continue;
            };
            let keep = req.num_computed_tokens.div_ceil(bs);
            while req.status == RequestStatus::Running && req.block_table.len() > keep {
                let b = req.block_table.pop().expect("len > keep");
                self.pool.free(b);
            }
        }
    }

    fn register_full_blocks(pool: &mut BlockPool, req: &mut Request, bs: usize) {
        let full = (req.num_computed_tokens / bs).min(req.block_table.len());
        let mut stored: Vec<usize> = Vec::new();
        for i in req.num_registered_blocks..full {
            // A false return means another block already caches this prefix; fine.
            if pool.register(req.block_table[i], req.block_hashes[i]) {
                stored.push(i);
            }
        }
        req.num_registered_blocks = req.num_registered_blocks.max(full);
        if pool.events.is_enabled() {
            // One event per run of consecutive blocks, as vLLM reports them.
            for run in stored.chunk_by(|a, b| b == &(a + 1)) {
                let (first, last) = (run[0], run[run.len() - 1]);
                pool.events.push(KvEvent::Stored {
                    hashes: run.iter().map(|&i| req.block_hashes[i]).collect(),
                    parent: first.checked_sub(1).map(|p| req.block_hashes[p]),
                    tokens: req.token_ids[first * bs..(last + 1) * bs].to_vec(),
                });
            }
        }
    }

    /// Records prefix-cache events from now on (see [`Self::drain_kv_events`]); the first
    /// event is `AllCleared`, the cache being empty.
    pub fn enable_kv_events(&mut self) {
        self.pool.events.enable();
        self.pool.events.push(KvEvent::AllCleared);
    }

    /// Prefix-cache events since the last call (empty unless enabled).
    pub fn drain_kv_events(&mut self) -> Vec<KvEvent> {
        self.pool.events.drain()
    }

    /// Every key in the prefix cache (O(n); tests and diagnostics).
    pub fn cached_block_hashes(&self) -> Vec<crate::hash::BlockHash> {
        self.pool.cached_hashes()
    }

    /// The request is done (stop, EOS, length — the engine's call), cancelled or failed: drop
    /// it and release its blocks. Full cached blocks stay in the prefix cache, evictable.
    /// Returns false if `id` is unknown.
    pub fn finish_request(&mut self, id: RequestId) -> bool {
        let Some(mut req) = self.requests.remove(&id) else {
            return false;
        };
        match req.status {
            RequestStatus::Running => self.running.retain(|&r| r != id),
            RequestStatus::Waiting => self.waiting.retain(|&r| r != id),
        }
        Self::release_blocks(&mut self.pool, &mut req);
        true
    }

    /// Free in reverse so the tail blocks, least likely to be shared, are evicted first.
    fn release_blocks(pool: &mut BlockPool, req: &mut Request) {
        for &b in req.block_table.iter().rev() {
            pool.free(b);
        }
        req.block_table.clear();
        req.num_registered_blocks = 0;
    }

    fn req_mut(&mut self, id: RequestId) -> &mut Request {
        self.requests
            .get_mut(&id)
            .expect("scheduled request is tracked")
    }

    /// Blocks allocatable right now (free + evictable cached).
    pub fn num_free_blocks(&self) -> usize {
        self.pool.num_free()
    }

    pub fn num_total_blocks(&self) -> usize {
        self.pool.num_total()
    }

    pub fn num_waiting(&self) -> usize {
        self.waiting.len()
    }

    pub fn num_running(&self) -> usize {
        self.running.len()
    }

    pub fn has_unfinished(&self) -> bool {
        !self.requests.is_empty()
    }

    /// Prompt tokens served from the prefix cache at the request's last admission
    /// (0 before it is admitted); `None` for unknown ids.
    pub fn num_cached_tokens(&self, id: RequestId) -> Option<usize> {
        self.requests.get(&id).map(|r| r.num_cached_tokens)
    }

    pub fn block_size(&self) -> usize {
        self.kv.block_size
    }

    /// Read-only view of a live request.
    pub fn request(&self, id: RequestId) -> Option<&Request> {
        self.requests.get(&id)
    }

    /// Running request ids in admission order (the last is preempted first).
    pub fn running_ids(&self) -> &[RequestId] {
        &self.running
    }

    /// Waiting request ids in admission order.
    pub fn waiting_ids(&self) -> impl Iterator<Item = RequestId> + '_ {
        self.waiting.iter().copied()
    }

    pub fn pool(&self) -> &BlockPool {
        &self.pool
    }

    pub fn config(&self) -> &SchedulerConfig {
        &self.cfg
    }

    pub fn kv_config(&self) -> &KvCacheConfig {
        &self.kv
    }

    pub fn prefix_cache_stats(&self) -> PrefixCacheStats {
        self.stats
    }
}
