//! Speculative decoding in the scheduler: proposals ride behind a request's last token, the
//! fake model keeps the prefix it agrees with, rejected KV is rolled back. Outputs must equal
//! what each request generates alone, and every block must come back.

mod common;

use common::{kv, next_token, reference, sched_cfg, Harness};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The true continuation of `tokens`, `k` long.
fn truth(tokens: &[u32], k: usize) -> Vec<u32> {
    let mut ctx = tokens.to_vec();
    for _ in 0..k {
        ctx.push(next_token(&ctx));
    }
    ctx.split_off(tokens.len())
}

/// Proposes up to 7 tokens: the truth with one token corrupted at a random place (or none).
fn noisy_proposer(seed: u64) -> common::Proposer {
    let mut rng = StdRng::seed_from_u64(seed);
    Box::new(move |tokens| {
        let k = rng.random_range(0..=7);
        let mut p = truth(tokens, k);
        if k > 0 && rng.random_bool(0.6) {
            let i = rng.random_range(0..k);
            p[i] += 1000; // next_token never returns >= 1000
        }
        p
    })
}

fn prompts(seed: u64, n: usize) -> Vec<Vec<u32>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            (0..rng.random_range(5..30))
                .map(|_| rng.random_range(0..50))
                .collect()
        })
        .collect()
}

#[test]
fn outputs_are_unchanged_by_right_and_wrong_proposals() {
    let prompts = prompts(3, 6);
    for prefix in [true, false] {
        for (budget, blocks) in [(64, 256), (24, 24)] {
            let mut h = Harness::new(sched_cfg(budget, 8, 0), kv(4, blocks, prefix));
            h.proposer = Some(noisy_proposer(11));
            for (i, p) in prompts.iter().enumerate() {
                h.add(i as u64, p.clone(), 25);
            }
            h.run_to_completion(10_000);
            for (i, p) in prompts.iter().enumerate() {
                assert_eq!(
                    h.finished[&(i as u64)],
                    reference(p, 25),
                    "request {i}, prefix {prefix}, {blocks} blocks"
                );
            }
            assert!(
                h.accepted > 0 && h.accepted < h.proposed,
                "{} of {}",
                h.accepted,
                h.proposed
            );
            if blocks == 24 {
                assert!(h.preemptions > 0, "the pool was meant to be too small");
            }
        }
    }
}

#[test]
fn a_perfect_proposer_emits_k_plus_one_tokens_a_step_and_stops_at_max_tokens() {
    let mut h = Harness::new(sched_cfg(64, 4, 0), kv(4, 64, true));
    h.proposer = Some(Box::new(|t: &[u32]| truth(t, 4)));
    let prompt: Vec<u32> = (0..10).collect();
    h.add(1, prompt.clone(), 23);
    h.step(); // prefill + first token
    let steps = h.steps;
    h.run_to_completion(100);
    // 22 more tokens at 5 a step: 5 steps (the last one capped to what max_tokens leaves).
    assert_eq!(h.steps - steps, 5);
    assert_eq!(h.finished[&1], reference(&prompt, 23));
    assert_eq!(h.accepted, h.proposed);
}

#[test]
fn rejected_proposals_give_their_blocks_back() {
    let mut h = Harness::new(sched_cfg(64, 4, 0), kv(4, 16, false));
    h.add(1, (0..8).collect(), 20); // 8 prompt tokens: 2 full blocks
    h.step();
    // 7 wrong proposals: the step computes 8 tokens, needing 2 more blocks.
    let wrong: Vec<u32> = (0..7).map(|i| 2000 + i).collect();
    assert_eq!(h.sched.set_spec_tokens(1, wrong), 7);
    let out = h.step();
    assert_eq!(out.seqs[0].num_spec_tokens, 7);
    assert_eq!(out.seqs[0].block_table.len(), 4);
    let req = h.sched.request(1).unwrap();
    // Only the model's own token came back; the rejected slots' blocks are free again.
    assert_eq!((req.num_tokens(), req.num_computed_tokens()), (10, 9));
    assert_eq!(req.block_table().len(), 3);
    assert_eq!(h.sched.num_free_blocks(), 13);
    h.run_to_completion(100);
}

#[test]
fn proposals_are_capped_by_max_tokens_and_refused_while_prefilling() {
    let mut h = Harness::new(sched_cfg(4, 4, 0), kv(4, 16, true));
    h.add(1, (0..10).collect(), 3);
    h.step(); // a 4-token chunk of the prompt
    assert_eq!(
        h.sched.set_spec_tokens(1, vec![1, 2]),
        0,
        "still prefilling"
    );
    h.step();
    h.step(); // prompt done, first token sampled
              // 1 of 3 generated: room for 1 proposal (plus the bonus token).
    assert_eq!(h.sched.set_spec_tokens(1, vec![1, 2, 3]), 1);
    assert_eq!(h.sched.set_spec_tokens(99, vec![1]), 0, "unknown request");
    h.run_to_completion(100);
}

#[test]
fn cancelling_a_request_with_pending_proposals_leaks_nothing() {
    let mut h = Harness::new(sched_cfg(64, 4, 0), kv(4, 32, true));
    h.proposer = Some(noisy_proposer(5));
    h.add(1, (0..12).collect(), 40);
    h.add(2, (50..70).collect(), 40);
    for _ in 0..4 {
        h.step();
    }
    h.cancel(1);
    h.run_to_completion(100);
    assert_eq!(h.finished[&2], reference(&(50..70).collect::<Vec<_>>(), 40));
}
