//! The paged KV block pool: refcounted blocks, a free list, and the prefix cache.
//!
//! Every block is in exactly one of three states:
//! - **used**: refcount > 0 (held by one request, or shared by several through prefix hits);
//! - **free**: refcount 0, no cached content — on the free stack;
//! - **evictable**: refcount 0 but registered in the prefix cache — on the LRU list. Still
//!   counted as free ([`BlockPool::num_free`]) because [`BlockPool::allocate`] takes it (and drops
//!   its cache entry) once the free stack is empty, least recently freed first.

use std::collections::HashMap;

use crate::hash::BlockHash;
use crate::kv_events::{KvEvent, KvEventLog};
use crate::lru::LruList;
use crate::BlockId;

/// Refcounted pool of KV blocks with an LRU prefix cache; all operations are O(1).
#[derive(Clone, Debug)]
pub struct BlockPool {
    refcounts: Vec<u32>,
    hashes: Vec<Option<BlockHash>>,
    /// refcount 0, uncached. A stack: the most recently freed block is reused first.
    free: Vec<BlockId>,
    /// refcount 0, cached; front = least recently freed = next to evict.
    evictable: LruList,
    cached: HashMap<BlockHash, BlockId>,
    num_evictions: u64,
    /// Evictions, for KV-event subscribers (off unless enabled).
    pub(crate) events: KvEventLog,
}

impl BlockPool {
    pub fn new(num_blocks: usize) -> Self {
        assert!(num_blocks < BlockId::MAX as usize, "too many blocks");
        Self {
            refcounts: vec![0; num_blocks],
            hashes: vec![None; num_blocks],
            // Reversed so that a fresh pool hands out 0, 1, 2, ...
            free: (0..num_blocks as BlockId).rev().collect(),
            evictable: LruList::new(num_blocks),
            cached: HashMap::new(),
            num_evictions: 0,
            events: KvEventLog::default(),
        }
    }

    pub fn num_total(&self) -> usize {
        self.refcounts.len()
    }

    /// Blocks allocatable right now: plain free blocks plus evictable cached ones.
    pub fn num_free(&self) -> usize {
        self.free.len() + self.evictable.len()
    }

    /// Cached blocks with refcount 0 (a subset of [`Self::num_free`]).
    pub fn num_evictable(&self) -> usize {
        self.evictable.len()
    }

    /// Blocks with refcount > 0.
    pub fn num_used(&self) -> usize {
        self.num_total() - self.num_free()
    }

    /// Blocks currently registered in the prefix cache (used or evictable).
    pub fn num_cached(&self) -> usize {
        self.cached.len()
    }

    /// How many cached blocks have been evicted to satisfy allocations so far.
    pub fn num_evictions(&self) -> u64 {
        self.num_evictions
    }

    /// Refcount of `id` (0 for free, evictable or out-of-range blocks).
    pub fn refcount(&self, id: BlockId) -> u32 {
        self.refcounts.get(id as usize).copied().unwrap_or(0)
    }

    /// Take a block with refcount 1. Prefers plain free blocks; otherwise evicts the least
    /// recently freed cached block (its cache entry is dropped). `None` when nothing is free.
    pub fn allocate(&mut self) -> Option<BlockId> {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                let id = self.evictable.pop_front()?;
                if let Some(h) = self.hashes[id as usize].take() {
                    self.cached.remove(&h);
                    self.events.push(KvEvent::Removed { hashes: vec![h] });
                }
                self.num_evictions += 1;
                id
            }
        };
        self.refcounts[id as usize] = 1;
        Some(id)
    }

    /// Allocate `n` blocks, all or nothing.
    pub fn allocate_n(&mut self, n: usize) -> Option<Vec<BlockId>> {
        if n > self.num_free() {
            return None;
        }
        (0..n).map(|_| self.allocate()).collect()
    }

    /// Add a reference to a used block, or revive an evictable cached block (a prefix hit).
    /// Returns false, changing nothing, for a plain free block or an out-of-range id.
    pub fn incref(&mut self, id: BlockId) -> bool {
        let Some(rc) = self.refcounts.get(id as usize).copied() else {
            return false;
        };
        if rc == 0 && !self.evictable.remove(id) {
            return false;
        }
        self.refcounts[id as usize] = rc + 1;
        true
    }

    /// Drop a reference. At refcount 0 a cached block becomes evictable (most recently used
    /// end of the LRU list) and an uncached one returns to the free stack. Returns false,
    /// changing nothing, if the block had no reference (double free) or is out of range.
    pub fn decref(&mut self, id: BlockId) -> bool {
        let Some(rc) = self.refcounts.get_mut(id as usize) else {
            return false;
        };
        if *rc == 0 {
            return false;
        }
        *rc -= 1;
        if *rc == 0 {
            if self.hashes[id as usize].is_some() {
                self.evictable.push_back(id);
            } else {
                self.free.push(id);
            }
        }
        true
    }

    /// Same as [`Self::decref`]: a request "frees" its reference, the block is only reusable
    /// once nobody references it.
    pub fn free(&mut self, id: BlockId) -> bool {
        self.decref(id)
    }

    /// The cached block holding the prefix keyed by `hash`, without taking a reference
    /// (call [`Self::incref`] to use it).
    pub fn lookup(&self, hash: BlockHash) -> Option<BlockId> {
        self.cached.get(&hash).copied()
    }

    /// Key under which `id` is cached, if any.
    pub fn block_hash(&self, id: BlockId) -> Option<BlockHash> {
        self.hashes.get(id as usize).copied().flatten()
    }

    /// Register a used, fully computed block in the prefix cache. Returns false (nothing
    /// changes) if the block is not in use, is already cached, or another block already holds
    /// this key — two requests computed the same prefix concurrently; the first one wins and
    /// the duplicate simply returns to the free stack when released.
    pub fn register(&mut self, id: BlockId, hash: BlockHash) -> bool {
        if self.refcount(id) == 0 || self.hashes[id as usize].is_some() {
            return false;
        }
        if self.cached.contains_key(&hash) {
            return false;
        }
        self.cached.insert(hash, id);
        self.hashes[id as usize] = Some(hash);
        true
    }

    /// Every key in the prefix cache (O(n); tests and diagnostics).
    pub fn cached_hashes(&self) -> Vec<BlockHash> {
        self.cached.keys().copied().collect()
    }

    /// Evictable blocks, next victim first (O(n); tests and diagnostics).
    pub fn eviction_order(&self) -> Vec<BlockId> {
        self.evictable.iter().collect()
    }

    /// Check the state invariants described in the module docs (O(n); tests and debugging).
    pub fn check_invariants(&self) -> Result<(), String> {
        let n = self.num_total();
        let mut on_free = vec![false; n];
        for &id in &self.free {
            let i = id as usize;
            if i >= n || on_free[i] {
                return Err(format!(
                    "block {id} on the free stack twice or out of range"
                ));
            }
            on_free[i] = true;
        }
        for (i, (&rc, &hashed)) in self.refcounts.iter().zip(&self.hashes).enumerate() {
            let id = i as BlockId;
            let (free, lru) = (on_free[i], self.evictable.contains(id));
            let ok = match (rc, hashed.is_some()) {
                (0, false) => free && !lru,
                (0, true) => lru && !free,
                (_, _) => !free && !lru,
            };
            if !ok {
                return Err(format!(
                    "block {id}: refcount {rc}, cached {}, on free stack {}, on LRU {lru}",
                    hashed.is_some(),
                    free
                ));
            }
            if let Some(h) = hashed {
                if self.cached.get(&h) != Some(&id) {
                    return Err(format!("block {id} has a hash the cache maps elsewhere"));
                }
            }
        }
        let num_hashed = self.hashes.iter().filter(|h| h.is_some()).count();
        if num_hashed != self.cached.len() {
            return Err(format!(
                "{} cache entries for {num_hashed} hashed blocks",
                self.cached.len()
            ));
        }
        if self.evictable.iter().count() != self.evictable.len() {
            return Err("LRU list length mismatch".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(x: u32) -> BlockHash {
        BlockHash::new(None, &[x])
    }

    #[test]
    fn allocate_free_and_refcount() {
        let mut p = BlockPool::new(3);
        assert_eq!((p.num_total(), p.num_free()), (3, 3));
        let a = p.allocate_n(3).unwrap();
        assert_eq!(a, vec![0, 1, 2]);
        assert_eq!(p.allocate(), None);
        assert_eq!(p.allocate_n(1), None);
        assert!(p.incref(1));
        assert_eq!(p.refcount(1), 2);
        assert!(p.decref(1));
        assert_eq!(p.num_free(), 0, "still referenced once");
        assert!(p.free(1));
        assert_eq!((p.num_free(), p.num_used()), (1, 2));
        assert!(!p.free(1), "double free is refused");
        assert!(!p.incref(1), "a plain free block cannot be revived");
        assert!(!p.incref(99) && !p.decref(99));
        assert_eq!(p.allocate(), Some(1), "freed block is reused");
        p.check_invariants().unwrap();
    }

    #[test]
    fn all_or_nothing_allocation_does_not_leak() {
        let mut p = BlockPool::new(4);
        p.allocate_n(3).unwrap();
        assert_eq!(p.allocate_n(2), None);
        assert_eq!(p.num_free(), 1);
        p.check_invariants().unwrap();
    }

    #[test]
    fn cached_blocks_survive_free_and_can_be_revived() {
        let mut p = BlockPool::new(2);
        let b = p.allocate().unwrap();
        assert!(p.register(b, h(1)));
        assert!(!p.register(b, h(2)), "already cached");
        p.free(b);
        assert_eq!((p.num_free(), p.num_evictable()), (2, 1));
        assert_eq!(p.lookup(h(1)), Some(b));
        assert!(p.incref(b), "prefix hit revives an evictable block");
        assert_eq!((p.refcount(b), p.num_evictable(), p.num_free()), (1, 0, 1));
        // A second block with the same key is not registered: first wins.
        let c = p.allocate().unwrap();
        assert!(!p.register(c, h(1)));
        assert_eq!(p.block_hash(c), None);
        p.check_invariants().unwrap();
    }

    #[test]
    fn eviction_is_lru_and_only_when_free_stack_is_empty() {
        let mut p = BlockPool::new(4);
        let ids = p.allocate_n(4).unwrap();
        for (i, &id) in ids.iter().enumerate().take(3) {
            p.register(id, h(i as u32));
        }
        // Free in the order 2, 0, 1 (cached) then 3 (plain).
        for id in [2, 0, 1, 3] {
            p.free(id);
        }
        assert_eq!(p.eviction_order(), vec![2, 0, 1]);
        // Touch 0 (a hit) and release it: it becomes the most recently used.
        p.incref(0);
        p.free(0);
        assert_eq!(p.eviction_order(), vec![2, 1, 0]);
        assert_eq!(p.allocate(), Some(3), "plain free block goes first");
        assert_eq!(p.num_evictions(), 0);
        assert_eq!(p.allocate(), Some(2));
        assert_eq!(p.lookup(h(2)), None, "evicted block left the cache");
        assert_eq!(p.block_hash(2), None);
        assert_eq!(p.allocate(), Some(1));
        assert_eq!(p.allocate(), Some(0));
        assert_eq!((p.num_evictions(), p.num_cached()), (3, 0));
        p.check_invariants().unwrap();
    }

    #[test]
    fn large_pool_churn_stays_consistent() {
        let n = 100_000;
        let mut p = BlockPool::new(n);
        let all = p.allocate_n(n).unwrap();
        for &id in all.iter().step_by(2) {
            p.register(id, h(id));
        }
        for &id in &all {
            p.free(id);
        }
        assert_eq!((p.num_free(), p.num_evictable()), (n, n / 2));
        // Reallocating everything drains the free stack, then evicts every cached block.
        assert_eq!(p.allocate_n(n).unwrap().len(), n);
        assert_eq!((p.num_cached(), p.num_evictions()), (0, n as u64 / 2));
        p.check_invariants().unwrap();
    }
}
