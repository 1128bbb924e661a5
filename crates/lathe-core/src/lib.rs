//! lathe-core: the pure-Rust heart of the engine — requests, sampling parameters, the paged KV
//! block pool with prefix caching, and the scheduler. No candle, no device: everything here is
//! bookkeeping over token ids and block ids, tested on the CPU with fake model outputs.
//!
//! # The scheduling rule
//!
//! Following vLLM v1 there is no prefill phase and no decode phase. Every request has
//! `num_tokens` (prompt + generated) and `num_computed_tokens` (tokens whose KV is in the cache).
//! Each [`Scheduler::schedule`] call hands out at most `max_num_batched_tokens` tokens so that
//! computed catches up with total: running requests first (a decode needs one token, a request
//! still prefilling gets a chunk), then waiting requests FIFO. Chunked prefill, prefix-cache hits
//! (a hit simply starts `num_computed_tokens` above zero) and recompute-preemption (reset it to
//! zero) are all the same rule.
//!
//! # Decisions
//!
//! - **Preemption by recompute, never swap.** When a running request needs a block and the pool
//!   is empty, the most recently admitted running request loses all its blocks and goes back to
//!   the *front* of the waiting queue, keeping its generated tokens. The oldest running request
//!   is never preempted for a younger one, so as long as every single request fits in the pool
//!   (checked by [`Scheduler::add_request`]) the system always makes progress.
//! - **Strict FIFO admission.** If the head of the waiting queue does not fit, nothing behind it
//!   is admitted either: this prevents starvation of long prompts. No request is admitted in a
//!   step that preempted, so a victim is not re-admitted straight away only to thrash.
//! - **Prefix cache inside the pool.** A full, computed block is registered under a hash chained
//!   over (parent block hash, its token ids) — see [`BlockHash`]. Freed cached blocks keep their
//!   content and stay allocatable; they are evicted least-recently-freed first, and only when
//!   the plain free list is empty. Blocks of generated tokens are cached too, so a preempted
//!   request usually finds its own blocks again when it is re-admitted.
//! - **At least one token is always computed.** The cache never serves a request's last token
//!   (hits are capped to `num_tokens - 1` rounded down to a block boundary), so the model always
//!   produces logits to sample from.
//! - **O(1) pool operations.** A free stack for plain blocks plus an intrusive doubly-linked LRU
//!   list for cached free blocks; no scans on the allocate/free path.
//! - **The engine owns stopping.** The scheduler does not look at sampled tokens beyond
//!   appending them; the engine decides on stop strings, EOS and length and calls
//!   [`Scheduler::finish_request`], which is also the cancellation path.
//!
//! # The engine's loop
//!
//! ```
//! use lathe_core::{KvCacheConfig, Scheduler, SchedulerConfig};
//!
//! let mut s = Scheduler::new(
//!     SchedulerConfig { max_model_len: 128, ..Default::default() },
//!     KvCacheConfig { block_size: 4, num_blocks: 16, enable_prefix_caching: true },
//! );
//! s.add_request(7, vec![1, 2, 3, 4, 5], 3).unwrap();
//! let mut produced = 0;
//! while s.has_unfinished() {
//!     let out = s.schedule();
//!     // ... run the model on out.seqs, sample where `sample` is true ...
//!     let sampled: Vec<_> = out.seqs.iter().filter(|q| q.sample).map(|q| (q.id, 42)).collect();
//!     s.update(&out, &sampled);
//!     produced += sampled.len();
//!     if produced == 3 {
//!         s.finish_request(7);
//!     }
//! }
//! assert_eq!(s.num_free_blocks(), s.num_total_blocks());
//! ```

mod block_pool;
mod config;
mod hash;
mod invariants;
mod kv_events;
mod lru;
mod output;
mod request;
mod sampling;
mod scheduler;

pub use block_pool::BlockPool;
pub use config::{KvCacheConfig, SchedulerConfig};
pub use hash::BlockHash;
pub use kv_events::KvEvent;
pub use output::{ScheduledSeq, SchedulerError, SchedulerOutput};
pub use request::{Request, RequestStatus};
pub use sampling::{SamplingParams, SpecMode};
pub use scheduler::{PrefixCacheStats, Scheduler};

/// Identifies a request for its whole life (chosen by the engine, unique among live requests).
pub type RequestId = u64;
/// Index of a KV-cache block: `k_cache[block_id]` is `[block_size, num_kv_heads, head_dim]`.
pub type BlockId = u32;
