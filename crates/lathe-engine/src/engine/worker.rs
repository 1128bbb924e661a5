//! The engine thread: sole owner of the model, the KV cache and the scheduler. It runs
//! `schedule → execute → update` until shut down; no panic crosses it.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;

use lathe_core::{RequestId, Scheduler};
use lathe_models::{CausalLm, KvCache};

use super::events::FinishReason;
use super::handle::{Command, EngineStats};
use super::output::{ActiveRequest, Progress};
use crate::runner::{execute, HostBatch};
use crate::tokenizer::TextTokenizer;

pub(crate) struct Worker {
    pub model: Box<dyn CausalLm>,
    pub kv: KvCache,
    pub scheduler: Scheduler,
    pub tokenizer: Arc<TextTokenizer>,
    pub stats: Arc<EngineStats>,
    pub max_model_len: usize,
    pub active: HashMap<RequestId, ActiveRequest>,
    pub kv_events: Option<crate::kv_publisher::KvPublisher>,
    pub spec: crate::spec::Speculator,
}

impl Worker {
    pub fn run(mut self, rx: Receiver<Command>) {
        loop {
            // Idle: block until work arrives. Busy: take what is queued without waiting.
            if self.active.is_empty() {
                match rx.recv() {
                    Ok(cmd) => {
                        if !self.handle(cmd) {
                            return self.abort_all();
                        }
                    }
                    Err(_) => return,
                }
            }
            loop {
                match rx.try_recv() {
                    Ok(cmd) => {
                        if !self.handle(cmd) {
                            return self.abort_all();
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return self.abort_all(),
                }
            }
            if self.scheduler.has_unfinished() {
                self.step();
            }
            if let Some(p) = &self.kv_events {
                p.publish(self.scheduler.drain_kv_events());
            }
            self.publish_stats();
        }
    }

    /// Returns false on shutdown.
    fn handle(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::Submit { id, req, tx } => {
                let max_tokens = req
                    .params
                    .max_tokens
                    .min(self.max_model_len - req.prompt.len());
                let active = ActiveRequest::new(
                    &req.prompt,
                    req.params,
                    req.constraint,
                    self.max_model_len,
                    &self.tokenizer,
                    tx,
                );
                if max_tokens == 0 {
                    active.finish(FinishReason::Length, None, String::new(), 0);
                    return true;
                }
                match self.scheduler.add_request(id, req.prompt, max_tokens) {
                    Ok(()) => {
                        self.active.insert(id, active);
                    }
                    Err(e) => {
                        active.finish(FinishReason::Error(e.to_string()), None, String::new(), 0)
                    }
                }
            }
            Command::Abort(id) => {
                if let Some(req) = self.active.remove(&id) {
                    self.scheduler.finish_request(id);
                    self.spec.release(id);
                    req.finish(FinishReason::Abort, None, String::new(), 0);
                }
            }
            Command::CachedBlocks(reply) => {
                let _ = reply.send(self.scheduler.cached_block_hashes());
            }
            Command::Stop(id) => {
                if self.active.contains_key(&id) {
                    self.complete(id, FinishReason::Stop, None, String::new());
                }
            }
            Command::Shutdown => return false,
        }
        true
    }

    fn step(&mut self) {
        let out = self.scheduler.schedule();
        if !out.preempted.is_empty() {
            self.stats
                .preemptions_total
                .fetch_add(out.preempted.len() as u64, Ordering::Relaxed);
        }
        if out.seqs.is_empty() {
            return;
        }
        let batch = HostBatch::build(&out, self.scheduler.block_size());
        let result = catch_unwind(AssertUnwindSafe(|| {
            execute(self.model.as_ref(), &self.kv, &batch)
        }));
        let rows = match result {
            Ok(Ok(rows)) => rows,
            Ok(Err(e)) => {
                return self.fail(
                    &out.seqs.iter().map(|s| s.id).collect::<Vec<_>>(),
                    e.to_string(),
                )
            }
            Err(_) => {
                return self.fail(
                    &out.seqs.iter().map(|s| s.id).collect::<Vec<_>>(),
                    "the model panicked".into(),
                )
            }
        };
        let prompt_tokens: usize = out
            .seqs
            .iter()
            .filter_map(|s| {
                let prompt_len = self.active.get(&s.id)?.prompt_len;
                Some(
                    prompt_len
                        .saturating_sub(s.start_pos)
                        .min(s.token_ids.len()),
                )
            })
            .sum();
        self.stats
            .prompt_tokens_total
            .fetch_add(prompt_tokens as u64, Ordering::Relaxed);
        let proposals: HashMap<RequestId, &[u32]> = out
            .seqs
            .iter()
            .filter(|s| s.num_spec_tokens > 0)
            .map(|s| (s.id, s.spec_token_ids()))
            .collect();
        let mut appended = Vec::with_capacity(batch.sampled.len());
        let mut outcomes = Vec::with_capacity(batch.sampled.len());
        let mut offset = 0;
        for &(id, n) in &batch.sampled {
            let rows = &rows[offset..offset + n];
            offset += n;
            let Some(req) = self.active.get_mut(&id) else {
                continue;
            };
            let proposed = proposals.get(&id).copied().unwrap_or_default();
            let (tokens, progress) = req.accept_rows(rows, proposed, &self.tokenizer);
            if !proposed.is_empty() {
                let accepted = tokens.iter().zip(proposed).take_while(|(a, b)| a == b);
                self.stats
                    .record_verification(proposed.len(), accepted.count());
            }
            self.stats
                .generation_tokens_total
                .fetch_add(tokens.len() as u64, Ordering::Relaxed);
            appended.push((id, tokens));
            outcomes.push((id, progress));
        }
        self.scheduler.update_accepted(&out, &appended);
        for (id, progress) in outcomes {
            match progress {
                Progress::Continue => {}
                Progress::Done(reason, matched, text) => self.complete(id, reason, matched, text),
                Progress::Disconnected => {
                    self.complete(id, FinishReason::Abort, None, String::new())
                }
            }
        }
        let params = self.active.iter().map(|(id, r)| (*id, &r.params)).collect();
        self.spec.propose(&mut self.scheduler, &params);
    }

    fn complete(
        &mut self,
        id: RequestId,
        reason: FinishReason,
        matched: Option<String>,
        text: String,
    ) {
        let cached = self.scheduler.num_cached_tokens(id).unwrap_or(0);
        self.scheduler.finish_request(id);
        self.spec.release(id);
        if let Some(req) = self.active.remove(&id) {
            req.finish(reason, matched, text, cached);
        }
    }

    fn fail(&mut self, ids: &[RequestId], cause: String) {
        tracing::error!(%cause, requests = ids.len(), "engine step failed");
        for &id in ids {
            self.complete(id, FinishReason::Error(cause.clone()), None, String::new());
        }
    }

    fn abort_all(mut self) {
        let ids: Vec<_> = self.active.keys().copied().collect();
        for id in ids {
            self.complete(id, FinishReason::Abort, None, String::new());
        }
        self.publish_stats();
    }

    fn publish_stats(&self) {
        let s = &self.stats;
        s.free_blocks
            .store(self.scheduler.num_free_blocks(), Ordering::Relaxed);
        s.total_blocks
            .store(self.scheduler.num_total_blocks(), Ordering::Relaxed);
        s.waiting
            .store(self.scheduler.num_waiting(), Ordering::Relaxed);
        s.running
            .store(self.scheduler.num_running(), Ordering::Relaxed);
        let prefix = self.scheduler.prefix_cache_stats();
        s.prefix_cache_queries_total
            .store(prefix.queried_tokens, Ordering::Relaxed);
        s.prefix_cache_hits_total
            .store(prefix.hit_tokens, Ordering::Relaxed);
        s.steps_total.fetch_add(1, Ordering::Relaxed);
        if let Some(d) = &self.spec.draft {
            s.draft_used_blocks
                .store(d.num_used_blocks(), Ordering::Relaxed);
        }
    }
}
