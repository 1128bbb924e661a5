//! Running prepared requests on the engine: admission, submission (one engine request per
//! choice), the merged event stream of all choices, and the per-request record that feeds the
//! metrics and the one log line of each request.
//!
//! `Generation` owns the engine streams, the admission permit and the record: whoever holds it
//! (the SSE body while streaming) keeps the request alive; dropping it — a client that went
//! away — cancels every choice and frees their KV blocks.

use std::pin::Pin;
use std::time::Instant;

use futures::stream::{SelectAll, Stream, StreamExt};
use lathe_core::SamplingParams;
use lathe_engine::constraint::TokenConstraint;
use lathe_engine::{GenerateRequest, RequestStopper, RequestStream, StreamEvent};

use crate::constrained::CompiledGrammar;
use crate::error::ApiError;
use crate::state::{AppState, Permit};

/// One engine request to make.
pub struct Job {
    pub prompt: Vec<u32>,
    pub params: SamplingParams,
    pub constraint: Option<Box<dyn TokenConstraint>>,
}

impl Job {
    /// A job per choice: `n` copies of one prompt, each with its own constraint.
    pub fn choices(
        prompt: &[u32],
        params: &SamplingParams,
        grammar: Option<&CompiledGrammar>,
        n: usize,
    ) -> Result<Vec<Job>, ApiError> {
        (0..n)
            .map(|_| {
                let constraint = match grammar {
                    Some(g) => Some(Box::new(g.constraint().map_err(ApiError::internal)?)
                        as Box<dyn TokenConstraint>),
                    None => None,
                };
                Ok(Job {
                    prompt: prompt.to_vec(),
                    params: params.clone(),
                    constraint,
                })
            })
            .collect()
    }
}

type Indexed = Pin<Box<dyn Stream<Item = (usize, StreamEvent)> + Send>>;

/// A running request: the events of all its choices, tagged with the choice index.
pub struct Generation {
    streams: SelectAll<Indexed>,
    /// Choice `i`'s early stop.
    stoppers: Vec<RequestStopper>,
    pub record: RequestRecord,
    _permit: Permit,
}

impl Generation {
    /// Admits and submits `jobs` (choice `i` is `jobs[i]`). On failure nothing stays queued.
    pub fn start(
        state: &AppState,
        id: &str,
        arrived: Instant,
        jobs: Vec<Job>,
    ) -> Result<Self, ApiError> {
        let permit = state.admit(jobs.len())?;
        let engine = state.engine()?;
        let mut streams = SelectAll::new();
        let mut stoppers = Vec::with_capacity(jobs.len());
        let prompt_tokens = jobs.iter().map(|j| j.prompt.len()).sum();
        for (i, job) in jobs.into_iter().enumerate() {
            let req = GenerateRequest {
                prompt: job.prompt,
                params: job.params,
                constraint: job.constraint,
            };
            let s: RequestStream = engine.submit(req)?;
            stoppers.push(s.stopper());
            streams.push(Box::pin(s.map(move |ev| (i, ev))) as Indexed);
        }
        let n = streams.len();
        Ok(Self {
            streams,
            stoppers,
            record: RequestRecord::new(state, id, arrived, n, prompt_tokens),
            _permit: permit,
        })
    }

    /// Ends choice `i` now as a stop (its `Finished` event follows on [`Self::next`]).
    pub fn stop(&self, i: usize) {
        if let Some(s) = self.stoppers.get(i) {
            s.stop();
        }
    }

    /// The next event of any choice; `None` once all finished.
    pub async fn next(&mut self) -> Option<(usize, StreamEvent)> {
        let ev = self.streams.next().await;
        if let Some((i, e)) = &ev {
            self.record.observe(*i, e);
        }
        ev
    }
}

/// Timing and token counts of one request; logged and recorded when dropped.
pub struct RequestRecord {
    state: AppState,
    pub id: String,
    arrived: Instant,
    first_token: Option<Instant>,
    last_token: Vec<Option<Instant>>,
    /// Tokens received per choice (the engine's final count may add the stop token).
    tokens: Vec<usize>,
    /// Prompt tokens of all the engine requests.
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    finished: usize,
    choices: usize,
    /// Set when the engine failed a choice.
    pub error: Option<String>,
    /// Set when the engine aborted a choice (shutdown).
    aborted: bool,
}

impl RequestRecord {
    fn new(
        state: &AppState,
        id: &str,
        arrived: Instant,
        choices: usize,
        prompt_tokens: usize,
    ) -> Self {
        Self {
            state: state.clone(),
            id: id.to_string(),
            arrived,
            first_token: None,
            last_token: vec![None; choices],
            tokens: vec![0; choices],
            prompt_tokens,
            completion_tokens: 0,
            finished: 0,
            choices,
            error: None,
            aborted: false,
        }
    }

    fn observe(&mut self, i: usize, ev: &StreamEvent) {
        let now = Instant::now();
        let m = self.state.metrics();
        match ev {
            StreamEvent::Token(_) => {
                self.completion_tokens += 1;
                if let Some(t) = self.tokens.get_mut(i) {
                    *t += 1;
                }
                if self.first_token.is_none() {
                    self.first_token = Some(now);
                    m.observe_ttft((now - self.arrived).as_secs_f64());
                }
                if let Some(Some(prev)) = self.last_token.get(i) {
                    m.observe_itl((now - *prev).as_secs_f64());
                }
                if let Some(slot) = self.last_token.get_mut(i) {
                    *slot = Some(now);
                }
            }
            StreamEvent::Finished(f) => {
                self.finished += 1;
                let seen = self.tokens.get(i).copied().unwrap_or(0);
                self.completion_tokens += f.completion_tokens.saturating_sub(seen);
                match &f.reason {
                    lathe_engine::FinishReason::Error(e) => self.error = Some(e.clone()),
                    lathe_engine::FinishReason::Abort => self.aborted = true,
                    _ => {}
                }
            }
        }
    }
}

impl Drop for RequestRecord {
    fn drop(&mut self) {
        let m = self.state.metrics();
        let elapsed = self.arrived.elapsed();
        m.observe_finished(
            elapsed.as_secs_f64(),
            self.prompt_tokens as u64,
            self.completion_tokens as u64,
        );
        let status = match (&self.error, self.aborted, self.finished < self.choices) {
            (Some(_), _, _) => "error",
            (None, true, _) => "aborted",
            (None, false, true) => "cancelled",
            (None, false, false) => "ok",
        };
        let ttft_ms = self
            .first_token
            .map(|t| (t - self.arrived).as_secs_f64() * 1e3);
        tracing::info!(
            target: "lathe_server::request",
            id = %self.id,
            status,
            prompt_tokens = self.prompt_tokens,
            completion_tokens = self.completion_tokens,
            ttft_ms = %ttft_ms.map(|t| format!("{t:.1}")).unwrap_or_else(|| "-".into()),
            duration_ms = %format!("{:.1}", elapsed.as_secs_f64() * 1e3),
            error = self.error.as_deref().unwrap_or(""),
            "request finished"
        );
    }
}

/// Runs blocking preparation (template, tokenizer, grammar) off the async runtime.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)))
        .await?
        .unwrap_or_else(|p| {
            Err(ApiError::internal(format!(
                "panic while preparing the request: {}",
                panic_message(&p)
            )))
        })
}

/// The message of a caught panic.
pub fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Marks a response whose request is logged by its `RequestRecord` (not the access log).
#[derive(Debug, Clone, Copy)]
pub struct LoggedByGeneration;
