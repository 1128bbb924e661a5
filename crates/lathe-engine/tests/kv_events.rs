//! KV-cache events over a real ZMQ socket: a subscriber that applies every BlockStored /
//! BlockRemoved it receives ends with exactly the prefix cache the engine holds, across a run
//! with prefix hits, evictions and preemption (a pool far too small for the load). The frames
//! and payloads are vLLM's (see `kv_publisher`).

mod common;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use lathe_engine::kv_publisher::published_key;
use lathe_engine::{EngineConfig, GenerateRequest, KvEventsConfig};
use serde_json::Value;
use zeromq::{Socket, SocketRecv};

const TOPIC: &str = "kv@test-pod@smollm2-135m-instruct";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_subscriber_ends_with_exactly_the_engines_prefix_cache() {
    let port = free_port();
    let engine = engine(EngineConfig {
        // Far too small for six concurrent requests even once their preamble is shared.
        num_blocks: Some(32),
        max_num_seqs: 6,
        kv_events: Some(KvEventsConfig {
            endpoint: format!("tcp://127.0.0.1:{port}"),
            topic: TOPIC.into(),
        }),
        ..smollm2()
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    rt.spawn(async move {
        let mut sub = zeromq::SubSocket::new();
        sub.connect(&format!("tcp://127.0.0.1:{port}"))
            .await
            .unwrap();
        sub.subscribe("").await.unwrap();
        let _ = tx.send(None); // connected
        while let Ok(msg) = sub.recv().await {
            if tx.send(Some(msg.into_vec())).is_err() {
                break;
            }
        }
    });
    assert!(rt.block_on(rx.recv()).is_some_and(|m| m.is_none()));
    std::thread::sleep(Duration::from_millis(300)); // the subscription reaches the publisher

    // Three rounds of six requests sharing a long preamble: hits on the preamble, and far
    // more blocks wanted than the pool has (evictions, preemption).
    let preamble = "You are a careful Rust reviewer. Read the code and answer briefly. ".repeat(6);
    for round in 0..3 {
        let streams: Vec<_> = (0..6)
            .map(|i| {
                let p = chat_prompt(
                    &engine,
                    &format!("{preamble}\nQuestion {round}-{i}: what is a trait?"),
                );
                engine
                    .submit(GenerateRequest::new(p, greedy(60 + 15 * i)))
                    .unwrap()
            })
            .collect();
        rt.block_on(async {
            for s in streams {
                s.collect_all().await;
            }
        });
    }
    let stats = engine.stats();
    assert!(
        stats.preemptions_total.load(Ordering::Relaxed) > 0,
        "the load preempts"
    );
    assert!(
        stats.prefix_cache_hits_total.load(Ordering::Relaxed) > 0,
        "the preamble hits"
    );

    let pool: HashSet<u64> = engine
        .cached_block_hashes()
        .unwrap()
        .into_iter()
        .map(published_key)
        .collect();
    std::thread::sleep(Duration::from_millis(500)); // the last batch is on its way

    let mut known: HashSet<u64> = HashSet::new();
    let (mut stored, mut removed, mut last_seq) = (0, 0, None::<u64>);
    while let Ok(Some(frames)) = rx.try_recv() {
        assert_eq!(frames.len(), 3, "[topic, seq, payload]");
        assert_eq!(&frames[0][..], TOPIC.as_bytes());
        let seq = u64::from_be_bytes(frames[1][..].try_into().expect("8-byte sequence"));
        if let Some(prev) = last_seq {
            assert_eq!(seq, prev + 1, "no batch lost or reordered");
        }
        last_seq = Some(seq);
        let batch: Value = rmp_serde::from_slice(&frames[2]).unwrap();
        assert!(batch[0].as_f64().is_some_and(|ts| ts > 1.7e9), "{batch}");
        for ev in batch[1].as_array().unwrap() {
            let keys = || -> Vec<u64> {
                ev[1]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h.as_u64().unwrap())
                    .collect()
            };
            match ev[0].as_str().unwrap() {
                "BlockStored" => {
                    let keys = keys();
                    assert_eq!(ev[3].as_array().unwrap().len(), keys.len() * 16, "{ev}");
                    assert_eq!(ev[4], 16, "block_size");
                    assert_eq!(ev[6], "CPU", "medium");
                    for k in keys {
                        assert!(known.insert(k), "stored twice: {ev}");
                        stored += 1;
                    }
                }
                "BlockRemoved" => {
                    for k in keys() {
                        assert!(known.remove(&k), "removed but never stored: {ev}");
                        removed += 1;
                    }
                }
                "AllBlocksCleared" => known.clear(),
                other => panic!("unknown event {other}"),
            }
        }
    }
    assert!(
        stored > 0 && removed > 0,
        "{stored} stored, {removed} removed"
    );
    assert_eq!(
        known, pool,
        "the subscriber's view is the engine's prefix cache"
    );
}
