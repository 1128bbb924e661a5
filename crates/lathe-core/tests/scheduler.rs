//! Targeted scheduler behaviour: admission errors, prefix hits, eviction order, budget,
//! chunked prefill, continuous batching, cancellation, preemption, FIFO and seq limits.

mod common;

use common::{kv, reference, sched_cfg, Harness};
use lathe_core::{RequestStatus, Scheduler, SchedulerConfig, SchedulerError};

fn seq(start: u32, len: usize) -> Vec<u32> {
    (start..start + len as u32).collect()
}

#[test]
fn add_request_rejects_bad_requests() {
    let cfg = SchedulerConfig {
        max_model_len: 32,
        ..Default::default()
    };
    let mut s = Scheduler::new(cfg, kv(4, 4, true));
    assert!(matches!(
        s.add_request(1, vec![], 4),
        Err(SchedulerError::EmptyPrompt)
    ));
    let err = s.add_request(1, seq(0, 32), 4).unwrap_err();
    assert_eq!(
        err,
        SchedulerError::PromptTooLong {
            prompt_len: 32,
            max_model_len: 32
        }
    );
    // 10 prompt + 7 output needs 16 KV slots = 4 blocks: fits exactly.
    s.add_request(1, seq(0, 10), 7).unwrap();
    assert_eq!(
        s.add_request(1, seq(0, 3), 1),
        Err(SchedulerError::DuplicateId(1))
    );
    let err = s.add_request(2, seq(0, 10), 8).unwrap_err();
    assert_eq!(
        err,
        SchedulerError::TooLargeForPool {
            needed_blocks: 5,
            num_blocks: 4
        }
    );
    // max_model_len caps what a request can ever need: 31 tokens of KV at most -> 8 blocks.
    let mut s = Scheduler::new(cfg_len(32), kv(4, 8, true));
    s.add_request(3, seq(0, 20), 1000).unwrap();
    assert_eq!((s.num_waiting(), s.num_running()), (1, 0));
    assert!(s.has_unfinished());
}

fn cfg_len(max_model_len: usize) -> SchedulerConfig {
    SchedulerConfig {
        max_model_len,
        ..Default::default()
    }
}

#[test]
fn prefix_hit_shares_blocks_with_a_running_request() {
    let mut h = Harness::new(sched_cfg(64, 8, 0), kv(4, 32, true));
    let a_prompt = seq(100, 40);
    h.add(1, a_prompt.clone(), 4);
    h.step(); // A's whole prompt computed: 10 full blocks registered
    let mut b_prompt = a_prompt[..33].to_vec();
    b_prompt.extend([7, 7, 7]);
    h.add(2, b_prompt.clone(), 4);
    let out = h.step();
    let a_table = h.sched.request(1).unwrap().block_table().to_vec();
    let b = out.seqs.iter().find(|q| q.id == 2).unwrap();
    assert_eq!(h.sched.num_cached_tokens(2), Some(32));
    assert_eq!((b.start_pos, b.token_ids.len()), (32, 4));
    assert_eq!(b.block_table[..8], a_table[..8], "shared block ids");
    assert_ne!(b.block_table[8], a_table[8]);
    for &blk in &a_table[..8] {
        assert_eq!(h.sched.pool().refcount(blk), 2);
    }
    assert_eq!(h.sched.prefix_cache_stats().hit_tokens, 32);
    h.run_to_completion(100);
    assert_eq!(h.finished[&2], reference(&b_prompt, 4));
    assert_eq!(h.finished[&1], reference(&a_prompt, 4));
}

#[test]
fn fully_cached_prompt_still_computes_its_last_token() {
    let mut h = Harness::new(sched_cfg(64, 8, 0), kv(4, 32, true));
    let p16 = seq(0, 16);
    let p17 = seq(50, 17);
    h.add(1, p16.clone(), 3);
    h.add(2, p17.clone(), 3);
    h.run_to_completion(100);
    h.add(3, p16.clone(), 3);
    h.add(4, p17.clone(), 3);
    let out = h.step();
    // 16 tokens: at most (16 - 1) / 4 = 3 blocks from the cache, the last block is recomputed.
    assert_eq!(h.sched.num_cached_tokens(3), Some(12));
    assert_eq!(h.sched.num_cached_tokens(4), Some(16));
    let lens: Vec<_> = out
        .seqs
        .iter()
        .map(|q| (q.id, q.start_pos, q.token_ids.len()))
        .collect();
    assert_eq!(lens, vec![(3, 12, 4), (4, 16, 1)]);
    assert!(out.seqs.iter().all(|q| q.sample));
    h.run_to_completion(100);
    assert_eq!(h.finished[&3], reference(&p16, 3));
    assert_eq!(h.finished[&4], reference(&p17, 3));
}

#[test]
fn prefix_caching_disabled_never_hits() {
    let mut h = Harness::new(sched_cfg(64, 8, 0), kv(4, 32, false));
    h.add(1, seq(0, 20), 2);
    h.run_to_completion(100);
    h.add(2, seq(0, 20), 2);
    h.step();
    assert_eq!(h.sched.num_cached_tokens(2), Some(0));
    assert_eq!(h.sched.pool().num_cached(), 0);
    h.run_to_completion(100);
}

#[test]
fn cached_blocks_are_evicted_least_recently_freed_first() {
    let mut h = Harness::new(sched_cfg(64, 8, 0), kv(4, 8, true));
    let (a, b) = (seq(0, 9), seq(100, 9));
    h.add(1, a.clone(), 1); // 2 full blocks cached, freed first
    h.run_to_completion(10);
    h.add(2, b.clone(), 1); // 2 full blocks cached, freed second
    h.run_to_completion(10);
    assert_eq!(h.sched.pool().num_evictable(), 4);
    // 25 tokens need 7 blocks: the 4 plain free ones, then 3 evictions (A's two, B's tail).
    h.add(3, seq(500, 25), 1);
    h.run_to_completion(10);
    assert_eq!(h.sched.pool().num_evictions(), 3);
    h.add(4, b.clone(), 2);
    h.add(5, a.clone(), 2);
    h.step();
    assert_eq!(
        h.sched.num_cached_tokens(4),
        Some(4),
        "B's first block survived"
    );
    assert_eq!(
        h.sched.num_cached_tokens(5),
        Some(0),
        "A's blocks were evicted first"
    );
    h.run_to_completion(10);
}

#[test]
fn chunked_prefill_splits_a_long_prompt_under_the_budget() {
    let mut h = Harness::new(sched_cfg(8, 8, 0), kv(4, 16, true));
    h.add(1, seq(0, 30), 2);
    let mut chunks = Vec::new();
    for _ in 0..4 {
        let out = h.step();
        let q = &out.seqs[0];
        chunks.push((
            q.start_pos,
            q.token_ids.len(),
            q.sample,
            q.block_table.len(),
        ));
    }
    assert_eq!(
        chunks,
        vec![
            (0, 8, false, 2),
            (8, 8, false, 4),
            (16, 8, false, 6),
            (24, 6, true, 8)
        ]
    );
    h.run_to_completion(10);
    assert_eq!(h.finished[&1], reference(&seq(0, 30), 2));
}

#[test]
fn long_prefill_threshold_caps_each_requests_chunk() {
    let mut h = Harness::new(sched_cfg(10, 8, 4), kv(4, 32, true));
    h.add(1, seq(0, 12), 2);
    h.add(2, seq(100, 12), 2);
    h.add(3, seq(200, 12), 2);
    let out = h.step();
    let got: Vec<_> = out.seqs.iter().map(|q| (q.id, q.token_ids.len())).collect();
    // 4 + 4 + the 2 tokens of budget left.
    assert_eq!(got, vec![(1, 4), (2, 4), (3, 2)]);
    assert_eq!(out.num_batched_tokens, 10);
    h.run_to_completion(100);
}

#[test]
fn continuous_batching_new_requests_join_running_decodes() {
    let mut h = Harness::new(sched_cfg(16, 8, 0), kv(4, 64, true));
    h.add(1, seq(0, 5), 10);
    h.step();
    h.step();
    h.add(2, seq(100, 20), 5);
    let out = h.step();
    let got: Vec<_> = out
        .seqs
        .iter()
        .map(|q| (q.id, q.token_ids.len(), q.sample))
        .collect();
    // The decode goes first and costs 1 token; the newcomer prefills with the other 15.
    assert_eq!(got, vec![(1, 1, true), (2, 15, false)]);
    let out = h.step();
    let got: Vec<_> = out
        .seqs
        .iter()
        .map(|q| (q.id, q.token_ids.len(), q.sample))
        .collect();
    assert_eq!(got, vec![(1, 1, true), (2, 5, true)]);
    assert_eq!(h.sched.num_running(), 2);
    h.run_to_completion(100);
    assert_eq!(h.finished[&1], reference(&seq(0, 5), 10));
    assert_eq!(h.finished[&2], reference(&seq(100, 20), 5));
}

#[test]
fn max_num_seqs_and_strict_fifo_admission() {
    let mut h = Harness::new(sched_cfg(100, 2, 0), kv(4, 64, true));
    for id in 1..=3 {
        h.add(id, seq(id as u32 * 100, 6), 3);
    }
    let out = h.step();
    assert_eq!(
        out.seqs.iter().map(|q| q.id).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!((h.sched.num_running(), h.sched.num_waiting()), (2, 1));
    h.run_to_completion(100);

    // The head of the queue does not fit yet; a small request behind it must not overtake.
    let mut h = Harness::new(sched_cfg(100, 8, 0), kv(4, 10, true));
    h.add(1, seq(0, 20), 3); // 5 blocks, grows to 6
    h.step();
    h.add(2, seq(100, 20), 3); // needs 5 blocks, only 4 free
    h.add(3, seq(200, 2), 3); // would fit
    let out = h.step();
    assert_eq!(out.seqs.iter().map(|q| q.id).collect::<Vec<_>>(), vec![1]);
    assert_eq!(h.sched.waiting_ids().collect::<Vec<_>>(), vec![2, 3]);
    h.run_to_completion(100);
}

#[test]
fn cancellation_frees_blocks_and_ignores_stale_updates() {
    let mut s = Scheduler::new(sched_cfg(8, 8, 0), kv(4, 16, true));
    s.add_request(1, seq(0, 30), 5).unwrap();
    s.add_request(2, seq(100, 3), 5).unwrap();
    let out = s.schedule(); // mid-prefill for 1
    assert!(s.num_free_blocks() < s.num_total_blocks());
    assert!(s.finish_request(1));
    assert!(!s.finish_request(1), "already gone");
    assert!(!s.finish_request(99));
    s.update(&out, &[(1, 5)]); // stale: must not resurrect or panic
    assert!(s.request(1).is_none());
    assert!(
        s.finish_request(2),
        "a waiting request can be cancelled too"
    );
    assert_eq!(s.num_free_blocks(), s.num_total_blocks());
    assert!(!s.has_unfinished());
    s.check_invariants().unwrap();

    // Mid-decode cancellation, with another request sharing its prefix blocks.
    let mut h = Harness::new(sched_cfg(64, 8, 0), kv(4, 16, true));
    h.add(1, seq(0, 12), 8);
    h.step();
    h.add(2, seq(0, 13), 8);
    h.step();
    h.step();
    let shared = h.sched.request(1).unwrap().block_table()[0];
    assert_eq!(h.sched.pool().refcount(shared), 2);
    h.cancel(1);
    assert_eq!(
        h.sched.pool().refcount(shared),
        1,
        "still held by request 2"
    );
    h.run_to_completion(100);
    assert_eq!(h.finished[&2], reference(&seq(0, 13), 8));
}

#[test]
fn update_is_idempotent_for_a_replayed_output() {
    let mut s = Scheduler::new(sched_cfg(64, 8, 0), kv(4, 16, true));
    s.add_request(1, seq(0, 6), 5).unwrap();
    let out = s.schedule();
    s.update(&out, &[(1, 9)]);
    s.update(&out, &[(1, 9)]);
    let r = s.request(1).unwrap();
    assert_eq!((r.num_computed_tokens(), r.num_tokens()), (6, 7));
    s.update(&out, &[(2, 9)]); // unknown id: ignored
    s.check_invariants().unwrap();
}

#[test]
fn preemption_recomputes_the_youngest_and_it_rehits_its_own_blocks() {
    // 8 blocks of 4; two requests of 12 prompt tokens (3 blocks) growing by 10 tokens each.
    let mut h = Harness::new(sched_cfg(64, 8, 0), kv(4, 8, true));
    h.add(1, seq(0, 12), 10);
    h.add(2, seq(100, 12), 10);
    h.add(3, seq(200, 12), 2); // never fits while 1 and 2 run
    let mut first = None;
    while first.is_none() {
        let out = h.step();
        if !out.preempted.is_empty() {
            first = Some(out);
        }
    }
    let out = first.unwrap();
    assert_eq!(
        out.preempted,
        vec![2],
        "the most recently admitted request is the victim"
    );
    assert_eq!(out.seqs.iter().map(|q| q.id).collect::<Vec<_>>(), vec![1]);
    let r2 = h.sched.request(2).unwrap();
    assert_eq!(r2.status(), RequestStatus::Waiting);
    assert_eq!((r2.num_computed_tokens(), r2.num_preemptions()), (0, 1));
    assert!(
        r2.num_output_tokens() > 0,
        "generated tokens are kept for recompute"
    );
    // Both decode in lockstep; request 1 needs a 5th block at position 16, when request 2
    // has 16 computed tokens (4 full, cached blocks) and 17 tokens in all.
    assert_eq!((r2.num_tokens(), r2.num_output_tokens()), (17, 5));
    assert_eq!(
        h.sched.waiting_ids().collect::<Vec<_>>(),
        vec![2, 3],
        "victim goes first"
    );
    assert_eq!(
        h.sched.pool().num_evictable(),
        3,
        "one of 2's blocks was just evicted"
    );
    while h.sched.request(2).unwrap().status() == RequestStatus::Waiting {
        h.step();
    }
    // Request 1 grew to 6 blocks, evicting request 2's two tail blocks (freed in reverse
    // order for that reason); request 2 comes back and re-hits its first two blocks.
    assert_eq!(h.sched.num_cached_tokens(2), Some(8));
    h.run_to_completion(100);
    assert_eq!(h.finished[&1], reference(&seq(0, 12), 10));
    assert_eq!(h.finished[&2], reference(&seq(100, 12), 10));
    assert_eq!(h.finished[&3], reference(&seq(200, 12), 2));
}
