//! `sharegpt`: real prompts from a ShareGPT JSON file, replayed as vLLM replays them.
//!
//! The file is a list of `{"conversations": [{"from": "human"|"gpt", "value": "..."}, ...]}`.
//! Each entry gives one request: its first human turn is the prompt and the length of the reply
//! that follows is `max_tokens`. As in vLLM, pairs with a prompt or reply under 4 tokens, a
//! prompt over 1024 tokens or a total over 2048 are skipped (token counts from the tokenizer hook
//! when one is plugged in, else 4 characters per token). The order is shuffled by the seed and
//! the list cycles when a run outlasts it.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Deserialize;

use super::{
    Conversation, Endpoint, Lengths, Payload, RequestSpec, Single, Workload, WorkloadConfig,
};
use crate::tokens::{count_or, estimate_tokens, TokenCounter};

/// A prompt and the reply it got in the dataset, with their token counts.
#[derive(Debug, Clone, PartialEq)]
pub struct ShareGptPair {
    pub prompt: String,
    pub prompt_tokens: usize,
    pub reply_tokens: usize,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    conversations: Vec<Turn>,
}

#[derive(Deserialize)]
struct Turn {
    from: String,
    value: String,
}

fn is_user(from: &str) -> bool {
    matches!(from, "human" | "user")
}

/// Valid (prompt, reply) pairs of a ShareGPT JSON document.
pub fn parse_sharegpt(json: &str, counter: &dyn TokenCounter) -> anyhow::Result<Vec<ShareGptPair>> {
    let entries: Vec<Entry> = serde_json::from_str(json).context("not a ShareGPT JSON list")?;
    let pairs = entries
        .into_iter()
        .filter_map(|e| {
            let mut turns = e.conversations.into_iter();
            let first = turns.next()?;
            let reply = turns.next()?;
            if !is_user(&first.from) || is_user(&reply.from) {
                return None;
            }
            let p = count_or(counter, &first.value, estimate_tokens(&first.value));
            let r = count_or(counter, &reply.value, estimate_tokens(&reply.value));
            let valid = p >= 4 && r >= 4 && p <= 1024 && p + r <= 2048;
            valid.then_some(ShareGptPair {
                prompt: first.value,
                prompt_tokens: p,
                reply_tokens: r,
            })
        })
        .collect();
    Ok(pairs)
}

/// Reads and parses `path`; fails when no valid pair is left.
pub fn load_sharegpt(path: &Path, counter: &dyn TokenCounter) -> anyhow::Result<Vec<ShareGptPair>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let pairs =
        parse_sharegpt(&text, counter).with_context(|| format!("parsing {}", path.display()))?;
    anyhow::ensure!(
        !pairs.is_empty(),
        "{}: no usable conversation",
        path.display()
    );
    Ok(pairs)
}

pub struct ShareGptWorkload {
    endpoint: Endpoint,
    lengths: Lengths,
    data: Arc<Vec<ShareGptPair>>,
    order: Vec<usize>,
    next: usize,
}

impl ShareGptWorkload {
    pub fn new(
        cfg: &WorkloadConfig,
        data: Arc<Vec<ShareGptPair>>,
        mut rng: StdRng,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(!data.is_empty(), "the ShareGPT dataset is empty");
        let mut order: Vec<usize> = (0..data.len()).collect();
        order.shuffle(&mut rng);
        Ok(ShareGptWorkload {
            endpoint: cfg.endpoint,
            lengths: cfg.lengths,
            data,
            order,
            next: 0,
        })
    }

    pub fn next_spec(&mut self) -> RequestSpec {
        let pair = &self.data[self.order[self.next % self.order.len()]];
        self.next += 1;
        RequestSpec {
            kind: "sharegpt",
            payload: Payload::prompt(self.endpoint, pair.prompt.clone()),
            max_tokens: self.lengths.output_or(pair.reply_tokens),
            prompt_tokens: pair.prompt_tokens,
        }
    }
}

impl Workload for ShareGptWorkload {
    fn next_conversation(&mut self) -> Box<dyn Conversation> {
        Single::boxed(self.next_spec())
    }
}
