//! Workloads: what the load generator sends.
//!
//! A [`Workload`] hands out [`Conversation`]s; a conversation hands out one [`RequestSpec`] per
//! turn, given the server's reply to the previous turn. Single-shot workloads (`random`, `code`,
//! `sharegpt`) are conversations of one turn; `agent` conversations re-send their whole history,
//! so each turn shares a growing prefix with the one before. Every workload is deterministic in
//! its seed: the same seed sends the same prompts to every server compared.

mod agent;
mod code;
mod code_gen;
mod random;
mod sharegpt;
mod words;

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::tokens::TokenCounter;

pub use agent::{system_prompt, AgentSession, AgentWorkload};
pub use code::{CodeMix, CodeWorkload};
pub use random::RandomWorkload;
pub use sharegpt::{load_sharegpt, parse_sharegpt, ShareGptPair, ShareGptWorkload};

/// Which OpenAI route a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `/v1/chat/completions` with `messages`.
    Chat,
    /// `/v1/completions` with `prompt` (and `suffix` for fill-in-the-middle).
    Completions,
}

/// The workloads `--workload` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadKind {
    /// Random word prompts of `--input-len` tokens asking for `--output-len` tokens.
    Random,
    /// Code completion, fill-in-the-middle and code-edit prompts built from templates.
    Code,
    /// Prompts and reply lengths from a ShareGPT JSON file (`--dataset`).
    Sharegpt,
    /// Multi-turn agent sessions re-sending system prompt + tools + history.
    Agent,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// The body-specific part of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Payload {
    Chat {
        messages: Vec<Message>,
    },
    Completion {
        prompt: String,
        suffix: Option<String>,
    },
}

impl Payload {
    /// A single user prompt, shaped for `endpoint`.
    pub fn prompt(endpoint: Endpoint, text: String) -> Payload {
        match endpoint {
            Endpoint::Chat => Payload::Chat {
                messages: vec![Message::new("user", text)],
            },
            Endpoint::Completions => Payload::Completion {
                prompt: text,
                suffix: None,
            },
        }
    }

    /// All prompt text, concatenated (for token counting).
    pub fn text(&self) -> String {
        match self {
            Payload::Chat { messages } => messages.iter().map(|m| m.content.as_str()).collect(),
            Payload::Completion { prompt, suffix } => {
                format!("{prompt}{}", suffix.as_deref().unwrap_or(""))
            }
        }
    }
}

/// One request to send.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestSpec {
    /// Sub-kind for reports: `random`, `complete`, `fim`, `edit`, `sharegpt`, `agent`.
    pub kind: &'static str,
    pub payload: Payload,
    pub max_tokens: u32,
    /// Prompt tokens as far as the harness can tell (used when the server reports no `usage`).
    pub prompt_tokens: usize,
}

impl RequestSpec {
    pub fn endpoint(&self) -> Endpoint {
        match self.payload {
            Payload::Chat { .. } => Endpoint::Chat,
            Payload::Completion { .. } => Endpoint::Completions,
        }
    }
}

/// A sequence of requests, each built after the previous reply arrived.
pub trait Conversation: Send {
    /// The next request, given the text the server returned for the previous one (`None` on
    /// the first turn); `None` when the conversation is over.
    fn next_request(&mut self, previous_reply: Option<&str>) -> Option<RequestSpec>;
}

/// A source of conversations; never runs dry (finite datasets cycle).
pub trait Workload: Send {
    fn next_conversation(&mut self) -> Box<dyn Conversation>;
}

/// A conversation of exactly one request.
pub struct Single(Option<RequestSpec>);

impl Single {
    pub fn boxed(spec: RequestSpec) -> Box<dyn Conversation> {
        Box::new(Single(Some(spec)))
    }
}

impl Conversation for Single {
    fn next_request(&mut self, _: Option<&str>) -> Option<RequestSpec> {
        self.0.take()
    }
}

/// Everything a workload is built from.
#[derive(Clone)]
pub struct WorkloadConfig {
    pub kind: WorkloadKind,
    pub endpoint: Endpoint,
    pub seed: u64,
    pub lengths: Lengths,
    pub code_mix: CodeMix,
    /// Pairs loaded from `--dataset` (sharegpt only).
    pub dataset: Option<Arc<Vec<ShareGptPair>>>,
    /// Turns per agent session.
    pub turns: usize,
}

/// Prompt and reply lengths: `input_len`/`output_len` ± `range_ratio`, and a `max_tokens`
/// override that wins over every workload's own reply length.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Lengths {
    pub input_len: usize,
    pub output_len: usize,
    pub range_ratio: f64,
    pub max_tokens: Option<u32>,
}

impl Lengths {
    fn sample(len: usize, ratio: f64, rng: &mut StdRng) -> usize {
        let lo = ((len as f64) * (1.0 - ratio)).floor().max(1.0) as usize;
        let hi = ((len as f64) * (1.0 + ratio)).ceil().max(lo as f64) as usize;
        rng.random_range(lo..=hi)
    }

    /// A prompt length drawn uniformly from `input_len · [1 − r, 1 + r]`.
    pub fn input(&self, rng: &mut StdRng) -> usize {
        Self::sample(self.input_len, self.range_ratio, rng)
    }

    /// `max_tokens` for a request: the override, else a draw from `output_len · [1 − r, 1 + r]`.
    pub fn output(&self, rng: &mut StdRng) -> u32 {
        self.max_tokens
            .unwrap_or_else(|| Self::sample(self.output_len, self.range_ratio, rng) as u32)
    }

    /// `max_tokens` for a request whose natural reply length is `natural` (edits, datasets).
    pub fn output_or(&self, natural: usize) -> u32 {
        self.max_tokens.unwrap_or(natural.max(1) as u32)
    }
}

/// Builds the workload `cfg` describes.
pub fn build(
    cfg: &WorkloadConfig,
    counter: Arc<dyn TokenCounter>,
) -> anyhow::Result<Box<dyn Workload>> {
    let rng = StdRng::seed_from_u64(cfg.seed);
    Ok(match cfg.kind {
        WorkloadKind::Random => Box::new(RandomWorkload::new(cfg, counter, rng)),
        WorkloadKind::Code => Box::new(CodeWorkload::new(cfg, counter, rng)),
        WorkloadKind::Sharegpt => {
            let data = cfg
                .dataset
                .clone()
                .ok_or_else(|| anyhow::anyhow!("--workload sharegpt needs --dataset PATH"))?;
            Box::new(ShareGptWorkload::new(cfg, data, rng)?)
        }
        WorkloadKind::Agent => Box::new(AgentWorkload::new(cfg, counter, rng)),
    })
}
