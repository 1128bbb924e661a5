//! Per-request output processing on the engine thread: detokenize, match stop strings and stop
//! tokens, enforce the length limit, and send events to the request's stream.

use std::sync::Arc;

use lathe_core::SamplingParams;
use tokio::sync::mpsc::UnboundedSender;

use super::events::{FinishReason, Finished, StreamEvent, TokenDelta};
use crate::constraint::TokenConstraint;
use crate::detokenizer::IncrementalDetokenizer;
use crate::sampler::{Sampled, SamplerState};
use crate::stop::StopMatcher;
use crate::tokenizer::TextTokenizer;

pub(crate) struct ActiveRequest {
    pub params: SamplingParams,
    pub constraint: Option<Box<dyn TokenConstraint>>,
    pub sampler: SamplerState,
    pub prompt_len: usize,
    pub generated: usize,
    /// max_tokens capped by the context window.
    pub max_new: usize,
    detok: IncrementalDetokenizer,
    stops: StopMatcher,
    eos: Vec<u32>,
    tx: UnboundedSender<StreamEvent>,
}

/// What became of a request after one token.
pub(crate) enum Progress {
    Continue,
    Done(FinishReason, Option<String>, String),
    /// The receiver is gone: cancel.
    Disconnected,
}

impl ActiveRequest {
    pub fn new(
        prompt: &[u32],
        params: SamplingParams,
        constraint: Option<Box<dyn TokenConstraint>>,
        max_model_len: usize,
        tokenizer: &Arc<TextTokenizer>,
        tx: UnboundedSender<StreamEvent>,
    ) -> Self {
        let mut eos = params.stop_token_ids.clone();
        if !params.ignore_eos {
            eos.extend_from_slice(tokenizer.eos_token_ids());
        }
        Self {
            constraint,
            sampler: SamplerState::new(&params, prompt),
            prompt_len: prompt.len(),
            generated: 0,
            max_new: params
                .max_tokens
                .min(max_model_len.saturating_sub(prompt.len())),
            detok: IncrementalDetokenizer::new(tokenizer.clone(), true),
            stops: StopMatcher::new(params.stop.clone()),
            eos,
            tx,
            params,
        }
    }

    /// A verification step: samples at each logits row in turn (one per proposal, plus one)
    /// and goes on while the sampled token is the proposal, so every row is sampled in the
    /// state (penalties, grammar) of the tokens before it. Returns the tokens to append and
    /// how the request stands after them.
    pub fn accept_rows(
        &mut self,
        rows: &[Vec<f32>],
        proposals: &[u32],
        tokenizer: &TextTokenizer,
    ) -> (Vec<u32>, Progress) {
        let mut tokens = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            let proposal = proposals.get(i).copied();
            let mask = self.constraint.as_mut().and_then(|c| c.mask(row.len()));
            let s =
                self.sampler
                    .sample_given_proposal(row, &self.params, mask.as_deref(), proposal);
            let token = s.token;
            tokens.push(token);
            let progress = self.on_token(s, tokenizer);
            if !matches!(progress, Progress::Continue) || proposal != Some(token) {
                return (tokens, progress);
            }
        }
        (tokens, Progress::Continue)
    }

    /// Handles one sampled token: emits its text unless it ends the request.
    pub fn on_token(&mut self, s: Sampled, tokenizer: &TextTokenizer) -> Progress {
        self.sampler.accept(s.token);
        self.generated += 1;
        let grammar_done = match self.constraint.as_mut() {
            Some(c) => {
                if !c.accept(s.token) {
                    let why = c
                        .failure()
                        .unwrap_or_else(|| "sampled token rejected by the grammar".into());
                    return Progress::Done(FinishReason::Error(why), None, String::new());
                }
                c.is_finished()
            }
            None => false,
        };
        if self.eos.contains(&s.token) {
            let name = tokenizer.id_to_token(s.token);
            return match self.release_held_text() {
                Ok(rest) => Progress::Done(FinishReason::Stop, name, rest),
                Err((matched, rest)) => Progress::Done(FinishReason::Stop, matched, rest),
            };
        }
        let piece = self.detok.push(s.token).unwrap_or_default();
        let outcome = self.stops.push(&piece);
        let delta = TokenDelta {
            token: s.token,
            text: outcome.text,
            logprobs: s.logprobs,
        };
        if self.tx.send(StreamEvent::Token(delta)).is_err() {
            return Progress::Disconnected;
        }
        if outcome.stopped {
            return Progress::Done(FinishReason::Stop, outcome.matched, String::new());
        }
        if grammar_done || self.generated >= self.max_new {
            let reason = if grammar_done {
                FinishReason::Stop
            } else {
                FinishReason::Length
            };
            return match self.release_held_text() {
                Ok(rest) => Progress::Done(reason, None, rest),
                Err((matched, rest)) => Progress::Done(FinishReason::Stop, matched, rest),
            };
        }
        Progress::Continue
    }

    /// At the end of generation: the text still held by the detokenizer (an unfinished
    /// character) and by the stop matcher. `Err` when that tail completes a stop string.
    fn release_held_text(&mut self) -> Result<String, (Option<String>, String)> {
        let tail = self.detok.flush();
        let mut rest = self.stops.push(&tail);
        if rest.stopped {
            return Err((rest.matched, rest.text));
        }
        rest.text.push_str(&self.stops.flush());
        Ok(rest.text)
    }

    /// Sends the final event.
    pub fn finish(
        &self,
        reason: FinishReason,
        matched_stop: Option<String>,
        text: String,
        cached_tokens: usize,
    ) {
        let _ = self.tx.send(StreamEvent::Finished(Finished {
            reason,
            text,
            prompt_tokens: self.prompt_len,
            completion_tokens: self.generated,
            cached_tokens,
            matched_stop,
        }));
    }
}
