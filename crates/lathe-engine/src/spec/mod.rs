//! Speculative decoding: propose a few tokens per decoding request, verify them in the target's
//! next step (one forward over the last token and the proposals, a logits row at each), keep
//! the longest prefix the target agrees with plus its own next token. The scheduler rolls back
//! the KV of rejected proposals (`Scheduler::update_accepted`); the sampler keeps the output
//! distribution unchanged (`SamplerState::sample_given_proposal`).
//!
//! Proposers: prompt lookup ([`ngram`], free) and a draft model ([`draft`], a smaller model of
//! the same tokenizer on the same thread). Both propose deterministically (the draft decodes
//! greedily), which makes the rejection rule simple and exact at any temperature.

pub(crate) mod draft;
pub mod ngram;

use std::collections::HashMap;

use lathe_core::{RequestId, SamplingParams, Scheduler, SpecMode};

use draft::{DraftModel, DraftWant};

/// Server-wide speculative decoding settings (off by default).
#[derive(Debug, Clone, PartialEq)]
pub struct SpeculativeConfig {
    /// Method for requests that do not choose one.
    pub method: SpecMode,
    /// Tokens proposed per request and step.
    pub num_speculative_tokens: usize,
    /// Prompt lookup tries n-grams from `ngram_max` down to `ngram_min` tokens.
    pub ngram_min: usize,
    pub ngram_max: usize,
    /// Draft model (registry id, Hugging Face repo, directory or `.gguf`): loaded when set,
    /// and needed by `SpecMode::Draft`.
    pub draft_model: Option<String>,
    /// The draft stops proposing at a token it gives less than this probability.
    pub draft_p_min: f32,
}

impl Default for SpeculativeConfig {
    fn default() -> Self {
        Self {
            method: SpecMode::Off,
            num_speculative_tokens: 5,
            ngram_min: 2,
            ngram_max: 4,
            draft_model: None,
            draft_p_min: 0.75,
        }
    }
}

/// The engine thread's proposer: picks each request's method and asks for proposals.
pub(crate) struct Speculator {
    pub cfg: SpeculativeConfig,
    pub draft: Option<DraftModel>,
}

impl Speculator {
    /// The method `params` gets: its own choice, else the server's; a draft without a draft
    /// model is off (the server refuses such requests before they get here).
    pub fn mode_for(&self, params: &SamplingParams) -> SpecMode {
        match params.speculative.unwrap_or(self.cfg.method) {
            SpecMode::Draft if self.draft.is_none() => SpecMode::Off,
            m => m,
        }
    }

    /// After a step: proposals for every running request that is about to decode.
    pub fn propose(&mut self, sched: &mut Scheduler, params: &HashMap<RequestId, &SamplingParams>) {
        let k = self.cfg.num_speculative_tokens;
        if k == 0 {
            return;
        }
        let mut found: Vec<(RequestId, Vec<u32>)> = Vec::new();
        let mut wants = Vec::new();
        for &id in sched.running_ids() {
            let (Some(req), Some(p)) = (sched.request(id), params.get(&id)) else {
                continue;
            };
            let decoding = req.num_uncomputed_tokens() == 1;
            match self.mode_for(p) {
                // Prefilling: the draft catches up on the prompt meanwhile.
                SpecMode::Draft if !decoding => wants.push(DraftWant {
                    id,
                    tokens: req.token_ids(),
                    k: 0,
                }),
                _ if !decoding => {}
                SpecMode::Off => {}
                SpecMode::Ngram => {
                    let t =
                        ngram::propose(req.token_ids(), self.cfg.ngram_min, self.cfg.ngram_max, k);
                    if !t.is_empty() {
                        found.push((id, t));
                    }
                }
                SpecMode::Draft => wants.push(DraftWant {
                    id,
                    tokens: req.token_ids(),
                    k,
                }),
            }
        }
        if let (Some(draft), false) = (self.draft.as_mut(), wants.is_empty()) {
            match draft.propose(&wants) {
                Ok(p) => found.extend(p),
                // A failed draft only costs the speedup.
                Err(e) => tracing::warn!(error = %e, "draft model step failed; no proposals"),
            }
        }
        drop(wants);
        for (id, tokens) in found {
            sched.set_spec_tokens(id, tokens);
        }
    }

    /// The request is gone: the draft frees its cache.
    pub fn release(&mut self, id: RequestId) {
        if let Some(d) = self.draft.as_mut() {
            d.release(id);
        }
    }
}
