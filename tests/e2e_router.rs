//! End to end behind the real SGLang Model Gateway (`smg`, pinned in scripts/router-e2e.sh,
//! installed from PyPI into a venv under target/): two `lathe serve` replicas, agent sessions
//! through the gateway's cache-aware policy, through round-robin, and to one replica alone
//! (fresh replicas each phase, a loopback-only namespace). Asserted from the replicas' own
//! /metrics: every turn of a conversation lands on one replica under the cache-aware policy,
//! and the share of prompt tokens served from the prefix cache through it is at least that of
//! a single replica (round-robin, which splits conversations, gets less).
//!
//! Where the machine cannot run it (no python3 venv, no `unshare -n`), the test fails under
//! `CI=true` and otherwise says so loudly and passes.

mod common;

use std::path::Path;
use std::time::Duration;

const SESSIONS: usize = 2;
const TURNS: usize = 3;

/// The value of the first sample of `name` in a metrics dump (0 when absent).
fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Chat requests each replica has answered after session `s` of `phase`.
fn chat_counts(dir: &Path, phase: &str, s: usize, replicas: usize) -> Vec<f64> {
    (0..replicas)
        .map(|i| {
            sample(
                &read(dir, &format!("{phase}-{s}-r{i}.metrics")),
                "lathe_requests_total{route=\"/v1/chat/completions\",status=\"200\"}",
            )
        })
        .collect()
}

/// Share of queried prompt tokens served from the prefix cache, over all replicas at the end.
fn cached_share(dir: &Path, phase: &str, replicas: usize) -> f64 {
    let (mut hits, mut queries) = (0.0, 0.0);
    for i in 0..replicas {
        let m = read(dir, &format!("{phase}-{SESSIONS}-r{i}.metrics"));
        hits += sample(&m, "vllm:prefix_cache_hits_total");
        queries += sample(&m, "vllm:prefix_cache_queries_total");
    }
    assert!(queries > 0.0, "{phase}: no prompt tokens counted");
    hits / queries
}

#[test]
fn conversations_stick_to_a_replica_behind_the_cache_aware_gateway() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("router-e2e");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/router-e2e.sh");
    let sessions = SESSIONS.to_string();
    let turns = TURNS.to_string();
    let Some(status) = common::run_client_script(
        "e2e_router",
        script,
        &[
            ("ROUTER_E2E_DIR", dir.to_str().unwrap()),
            ("ROUTER_E2E_SESSIONS", &sessions),
            ("ROUTER_E2E_TURNS", &turns),
        ],
        Duration::from_secs(1800),
    ) else {
        return;
    };
    assert!(status.success(), "scripts/router-e2e.sh failed: {status}");

    for phase in ["single", "cache_aware", "round_robin"] {
        for s in 1..=SESSIONS {
            let report: serde_json::Value =
                serde_json::from_str(&read(&dir, &format!("{phase}-{s}.json"))).unwrap();
            let m = &report["runs"][0]["metrics"];
            assert_eq!(m["completed"], TURNS, "{phase}-{s}: {m}");
            assert_eq!(m["failed"], 0, "{phase}-{s}: {m}");
        }
    }
    let mut before = vec![0.0, 0.0];
    for s in 1..=SESSIONS {
        let after = chat_counts(&dir, "cache_aware", s, 2);
        let mut grew: Vec<f64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
        grew.sort_by(f64::total_cmp);
        assert_eq!(
            grew,
            vec![0.0, TURNS as f64],
            "session {s}: the turns of one conversation went to both replicas ({before:?} -> {after:?})"
        );
        before = after;
    }
    let single = cached_share(&dir, "single", 1);
    let aware = cached_share(&dir, "cache_aware", 2);
    let round_robin = cached_share(&dir, "round_robin", 2);
    eprintln!("cached-token share: single {single:.3}, cache-aware gateway {aware:.3}, round-robin {round_robin:.3}");
    assert!(
        aware >= single - 1e-9,
        "cache-aware {aware} < single replica {single}"
    );
    assert!(
        round_robin < aware,
        "round-robin {round_robin} vs cache-aware {aware}"
    );
}
