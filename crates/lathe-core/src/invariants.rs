//! Whole-state consistency check of the scheduler, for tests and debug builds of the engine.

use std::collections::HashSet;

use crate::request::RequestStatus;
use crate::Scheduler;

impl Scheduler {
    /// Verify every cross-structure invariant (O(blocks + tokens)):
    /// - the pool's own invariants (each block free, evictable or used, exactly once);
    /// - each block's refcount equals the number of block tables that hold it, and no table
    ///   holds a block twice;
    /// - waiting requests hold no blocks and have nothing computed; running ones have a table
    ///   covering their computed tokens and no more than all their tokens;
    /// - the queues and the request map agree; at most `max_num_seqs` are running.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.pool.check_invariants()?;
        let bs = self.kv.block_size;
        let mut holders = vec![0u32; self.pool.num_total()];
        for (id, req) in &self.requests {
            let mut seen = HashSet::new();
            for &b in &req.block_table {
                if !seen.insert(b) {
                    return Err(format!("request {id} holds block {b} twice"));
                }
                match holders.get_mut(b as usize) {
                    Some(h) => *h += 1,
                    None => return Err(format!("request {id} holds unknown block {b}")),
                }
            }
            let (computed, len) = (req.num_computed_tokens, req.block_table.len());
            match req.status {
                RequestStatus::Waiting if computed != 0 || len != 0 => {
                    return Err(format!(
                        "waiting request {id} has state: {computed} computed, {len} blocks"
                    ));
                }
                RequestStatus::Running
                    if len < computed.div_ceil(bs) || len > req.num_tokens().div_ceil(bs) =>
                {
                    return Err(format!(
                        "running request {id}: {len} blocks for {computed}/{} tokens",
                        req.num_tokens()
                    ));
                }
                _ => {}
            }
            if computed > req.num_tokens() {
                return Err(format!("request {id} computed more tokens than it has"));
            }
        }
        for (b, &n) in holders.iter().enumerate() {
            let rc = self.pool.refcount(b as u32);
            if rc != n {
                return Err(format!("block {b}: refcount {rc} but held by {n} requests"));
            }
        }
        let queued = self.running.len() + self.waiting.len();
        let running: HashSet<_> = self.running.iter().collect();
        let waiting: HashSet<_> = self.waiting.iter().collect();
        let agree = queued == self.requests.len()
            && running.len() == self.running.len()
            && waiting.len() == self.waiting.len()
            && self.requests.iter().all(|(id, r)| match r.status {
                RequestStatus::Running => running.contains(id),
                RequestStatus::Waiting => waiting.contains(id),
            });
        if !agree {
            return Err("running/waiting queues disagree with the request map".into());
        }
        if self.running.len() > self.cfg.max_num_seqs {
            return Err(format!("{} running > max_num_seqs", self.running.len()));
        }
        Ok(())
    }
}
