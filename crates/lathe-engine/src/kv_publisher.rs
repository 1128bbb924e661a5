//! Prefix-cache events on a ZMQ PUB socket, exactly as vLLM publishes them, so that llm-d's
//! precise prefix scorer and NVIDIA Dynamo's relay can follow which blocks this replica holds.
//!
//! Wire format (vLLM's `ZmqEventPublisher`): multipart `[topic, sequence (u64, 8 bytes
//! big-endian), payload]`, the payload a msgpack array `[ts, [event, ...]]` with events as
//! tagged arrays: `["BlockStored", block_hashes, parent_block_hash | nil, token_ids,
//! block_size, lora_id (nil), medium]`, `["BlockRemoved", block_hashes, medium]`,
//! `["AllBlocksCleared"]`. Block hashes are lathe's 128-bit prefix keys cut to their high 64
//! bits (vLLM's integer form). The socket runs on its own thread; the engine thread only
//! hands it each step's events through a channel, so a slow subscriber never stalls a step.

use anyhow::{Context, Result};
use lathe_core::{BlockHash, KvEvent};
use serde::Serialize;
use zeromq::{Socket, SocketSend, ZmqMessage};

/// Where and under which topic to publish (`lathe serve --kv-events-endpoint`).
#[derive(Debug, Clone)]
pub struct KvEventsConfig {
    /// A ZMQ endpoint to bind, e.g. `tcp://*:5557` (vLLM's default).
    pub endpoint: String,
    /// The topic frame; llm-d expects `kv@<pod>@<model>`.
    pub topic: String,
}

/// The publishing thread's inbox.
pub(crate) struct KvPublisher {
    tx: tokio::sync::mpsc::UnboundedSender<Vec<KvEvent>>,
}

/// One event in vLLM's array form.
#[derive(Serialize)]
#[serde(untagged)]
enum Wire<'a> {
    Stored(
        &'static str,
        Vec<u64>,
        Option<u64>,
        &'a [u32],
        usize,
        Option<i64>,
        &'a str,
    ),
    Removed(&'static str, Vec<u64>, &'a str),
    Cleared((&'static str,)),
}

fn wire_hash(h: BlockHash) -> u64 {
    (h.0 >> 64) as u64
}

/// The msgpack payload of one batch.
pub fn encode_batch(ts: f64, events: &[KvEvent], block_size: usize, medium: &str) -> Vec<u8> {
    let wire: Vec<Wire> = events
        .iter()
        .map(|e| match e {
            KvEvent::Stored {
                hashes,
                parent,
                tokens,
            } => Wire::Stored(
                "BlockStored",
                hashes.iter().copied().map(wire_hash).collect(),
                parent.map(wire_hash),
                tokens,
                block_size,
                None,
                medium,
            ),
            KvEvent::Removed { hashes } => Wire::Removed(
                "BlockRemoved",
                hashes.iter().copied().map(wire_hash).collect(),
                medium,
            ),
            KvEvent::AllCleared => Wire::Cleared(("AllBlocksCleared",)),
        })
        .collect();
    rmp_serde::to_vec(&(ts, wire)).expect("plain data always encodes")
}

/// The key a subscriber sees for `h` (tests compare the pool with what they received).
pub fn published_key(h: BlockHash) -> u64 {
    wire_hash(h)
}

impl KvPublisher {
    /// Binds the socket (an error if the endpoint is taken) and starts the thread.
    pub fn start(cfg: &KvEventsConfig, block_size: usize, medium: &'static str) -> Result<Self> {
        // zmq's "any interface" spelling; the socket library wants an address.
        let endpoint = cfg.endpoint.replace("://*:", "://0.0.0.0:");
        let topic = cfg.topic.clone();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<KvEvent>>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        std::thread::Builder::new()
            .name("lathe-kv-events".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                rt.block_on(async move {
                    let mut socket = zeromq::PubSocket::new();
                    if let Err(e) = socket.bind(&endpoint).await {
                        let _ = ready_tx.send(Err(format!("binding {endpoint}: {e}")));
                        return;
                    }
                    let _ = ready_tx.send(Ok(()));
                    let mut seq: u64 = 0;
                    while let Some(events) = rx.recv().await {
                        let ts = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0.0, |d| d.as_secs_f64());
                        let mut msg = ZmqMessage::from(topic.clone());
                        msg.push_back(seq.to_be_bytes().to_vec().into());
                        msg.push_back(encode_batch(ts, &events, block_size, medium).into());
                        if let Err(e) = socket.send(msg).await {
                            tracing::warn!(error = %e, "publishing KV events failed");
                        }
                        seq += 1;
                    }
                });
            })
            .context("spawning the KV-event thread")?;
        match ready_rx.recv() {
            Ok(Ok(())) => {
                tracing::info!(endpoint = %cfg.endpoint, topic = %cfg.topic, "publishing KV-cache events");
                Ok(Self { tx })
            }
            Ok(Err(e)) => anyhow::bail!("KV events: {e}"),
            Err(_) => anyhow::bail!("KV events: the publisher thread died"),
        }
    }

    /// Queues one step's events (nothing when there are none).
    pub fn publish(&self, events: Vec<KvEvent>) {
        if !events.is_empty() {
            let _ = self.tx.send(events);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_encode_as_vllms_tagged_arrays() {
        let a = BlockHash(7 << 64);
        let b = BlockHash(9 << 64 | 1);
        let events = vec![
            KvEvent::AllCleared,
            KvEvent::Stored {
                hashes: vec![a, b],
                parent: None,
                tokens: vec![1, 2, 3, 4],
            },
            KvEvent::Removed { hashes: vec![a] },
        ];
        let bytes = encode_batch(1.5, &events, 2, "CPU");
        let v: serde_json::Value = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(
            v,
            serde_json::json!([
                1.5,
                [
                    ["AllBlocksCleared"],
                    ["BlockStored", [7, 9], null, [1, 2, 3, 4], 2, null, "CPU"],
                    ["BlockRemoved", [7], "CPU"]
                ]
            ])
        );
    }
}
