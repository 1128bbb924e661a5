//! End-to-end runs of the scheduler against the fake model (see common/mod.rs): outputs must
//! equal what each request generates alone, whatever batching, caching and preemption did.

mod common;

use common::{kv, reference, sched_cfg, Harness};
use lathe_core::SchedulerError;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn run_alone(prompt: &[u32], max_tokens: usize) -> Vec<u32> {
    let mut h = Harness::new(sched_cfg(4096, 1, 0), kv(4, 1024, false));
    h.add(0, prompt.to_vec(), max_tokens);
    h.run_to_completion(10_000);
    h.finished.remove(&0).unwrap()
}

#[test]
fn preemption_under_a_tiny_pool_preserves_every_output() {
    let mut rng = StdRng::seed_from_u64(7);
    let prompts: Vec<Vec<u32>> = (0..6)
        .map(|_| {
            (0..rng.random_range(10..30))
                .map(|_| rng.random_range(0..50))
                .collect()
        })
        .collect();
    for prefix in [true, false] {
        // 16 blocks of 4 = 64 slots; each request alone needs <= 29 + 19 = 48.
        let mut h = Harness::new(sched_cfg(32, 8, 0), kv(4, 16, prefix));
        for (i, p) in prompts.iter().enumerate() {
            h.add(i as u64, p.clone(), 20);
        }
        h.run_to_completion(10_000);
        assert!(h.preemptions > 0, "the pool was meant to be too small");
        for (i, p) in prompts.iter().enumerate() {
            let alone = run_alone(p, 20);
            assert_eq!(alone, reference(p, 20));
            assert_eq!(
                h.finished[&(i as u64)],
                alone,
                "request {i}, prefix {prefix}"
            );
        }
    }
}

#[test]
fn a_request_that_fills_the_whole_pool_completes_alongside_others() {
    // Request 0 needs all 8 blocks at its end; the others must be preempted around it.
    let mut h = Harness::new(sched_cfg(16, 4, 0), kv(4, 8, true));
    h.add(0, (0..20).collect(), 13); // 20 + 12 = 32 KV tokens
    h.add(1, (100..110).collect(), 10);
    h.add(2, (200..205).collect(), 10);
    h.run_to_completion(1_000);
    assert_eq!(h.finished[&0], reference(&(0..20).collect::<Vec<_>>(), 13));
    assert_eq!(
        h.finished[&1],
        reference(&(100..110).collect::<Vec<_>>(), 10)
    );
    assert_eq!(
        h.finished[&2],
        reference(&(200..205).collect::<Vec<_>>(), 10)
    );
}

#[test]
fn staggered_arrivals_share_a_common_system_prompt() {
    let system: Vec<u32> = (0..32).map(|i| (i * 7 % 50) as u32).collect();
    let mut h = Harness::new(sched_cfg(64, 16, 0), kv(4, 128, true));
    let mut prompts = Vec::new();
    for i in 0..20u32 {
        let mut p = system.clone();
        p.extend((0..1 + i % 9).map(|k| 1000 + i * 10 + k));
        h.add(i as u64, p.clone(), 6);
        prompts.push(p);
        h.step(); // one arrival per step: continuous batching with decodes in flight
        assert_eq!(
            h.sched.num_cached_tokens(i as u64),
            Some(if i == 0 { 0 } else { 32 })
        );
    }
    h.run_to_completion(1_000);
    assert_eq!(h.sched.prefix_cache_stats().hit_tokens, 19 * 32);
    for (i, p) in prompts.iter().enumerate() {
        assert_eq!(h.finished[&(i as u64)], reference(p, 6));
    }
}

/// One randomized run: random configuration, arrivals, lengths, shared prefixes and
/// cancellations; the harness checks all invariants at every step. Returns (preemptions,
/// prefix-hit tokens) so the caller can check the runs exercised those paths.
fn stress(seed: u64) -> (usize, u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let bs = rng.random_range(1..=8);
    let num_blocks = rng.random_range(6..40);
    let capacity = bs * num_blocks;
    let threshold = if rng.random_bool(0.5) {
        0
    } else {
        rng.random_range(1..24)
    };
    let cfg = sched_cfg(rng.random_range(1..80), rng.random_range(1..10), threshold);
    let mut h = Harness::new(cfg, kv(bs, num_blocks, rng.random_bool(0.8)));
    let bases: Vec<Vec<u32>> = (0..3)
        .map(|_| (0..capacity).map(|_| rng.random_range(0..6)).collect())
        .collect();
    let mut prompts = std::collections::HashMap::new();
    let (mut next_id, num_requests) = (0u64, 50u64);
    while next_id < num_requests || h.sched.has_unfinished() {
        assert!(h.steps < 50_000, "seed {seed}: no progress");
        if next_id < num_requests && rng.random_bool(0.3) {
            let max_tokens = rng.random_range(1..=16).min(capacity);
            let len = rng.random_range(1..=capacity + 1 - max_tokens);
            let shared = if rng.random_bool(0.6) {
                rng.random_range(0..=len)
            } else {
                0
            };
            let base = &bases[rng.random_range(0..bases.len())];
            let mut prompt = base[..shared].to_vec();
            prompt.extend((shared..len).map(|_| rng.random_range(0..6)));
            h.add(next_id, prompt.clone(), max_tokens);
            prompts.insert(next_id, (prompt, max_tokens));
            next_id += 1;
            if rng.random_bool(0.1) {
                // Just too large for the whole pool: refused up front.
                let big = vec![1; capacity + 1];
                let err = h.sched.add_request(10_000 + next_id, big, 1).unwrap_err();
                assert!(matches!(err, SchedulerError::TooLargeForPool { .. }));
            }
        }
        if rng.random_bool(0.02) && !h.live.is_empty() {
            let ids: Vec<_> = h.live.keys().copied().collect();
            h.cancel(ids[rng.random_range(0..ids.len())]);
        }
        if h.sched.has_unfinished() {
            h.step();
        }
    }
    assert_eq!(
        h.sched.num_free_blocks(),
        h.sched.num_total_blocks(),
        "seed {seed}: leak"
    );
    assert!(!h.finished.is_empty());
    for (id, out) in &h.finished {
        let (prompt, max_tokens) = &prompts[id];
        assert_eq!(
            out,
            &reference(prompt, *max_tokens),
            "seed {seed}, request {id}"
        );
    }
    (h.preemptions, h.sched.prefix_cache_stats().hit_tokens)
}

#[test]
fn randomized_stress_keeps_invariants_and_outputs() {
    let (mut preemptions, mut hits) = (0, 0);
    for seed in 0..150 {
        let (p, hit) = stress(seed);
        preemptions += p;
        hits += hit;
    }
    assert!(
        preemptions > 0 && hits > 0,
        "{preemptions} preemptions, {hits} hit tokens"
    );
}
