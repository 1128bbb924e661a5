//! What happened to the prefix cache, for routers that score replicas by the blocks they hold
//! (llm-d's precise prefix scorer, NVIDIA Dynamo's KV router): the same three events vLLM
//! publishes. Recorded by the block pool and the scheduler only when enabled, drained by the
//! engine after each step, published by it (ZMQ, `lathe-engine::kv_publisher`).

use crate::hash::BlockHash;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvEvent {
    /// Full blocks entered the prefix cache: consecutive blocks of one sequence, with the
    /// key of the block before the first (`None` at the sequence start) and their tokens.
    Stored {
        hashes: Vec<BlockHash>,
        parent: Option<BlockHash>,
        tokens: Vec<u32>,
    },
    /// Cached blocks were evicted (their KV was overwritten).
    Removed { hashes: Vec<BlockHash> },
    /// The whole cache was emptied (at start: a subscriber drops what it knew of this pod).
    AllCleared,
}

/// An optional event log: recording costs nothing while it is off.
#[derive(Clone, Debug, Default)]
pub struct KvEventLog {
    events: Option<Vec<KvEvent>>,
}

impl KvEventLog {
    pub fn enable(&mut self) {
        self.events.get_or_insert_with(Vec::new);
    }

    pub fn is_enabled(&self) -> bool {
        self.events.is_some()
    }

    pub fn push(&mut self, event: KvEvent) {
        if let Some(ev) = &mut self.events {
            // Consecutive evictions become one event, as vLLM batches them.
            if let (KvEvent::Removed { hashes: new }, Some(KvEvent::Removed { hashes })) =
                (&event, ev.last_mut())
            {
                hashes.extend(new);
                return;
            }
            ev.push(event);
        }
    }

    /// Everything recorded since the last drain.
    pub fn drain(&mut self) -> Vec<KvEvent> {
        self.events.as_mut().map(std::mem::take).unwrap_or_default()
    }
}
