//! The async face of the engine: submit a request, get a stream of its tokens. Dropping the
//! stream before it finished cancels the request and frees its KV blocks.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::task::{Context, Poll};

use lathe_core::{RequestId, SamplingParams};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use super::events::StreamEvent;
use super::ModelInfo;

/// A request as the engine takes it: already tokenized (tokenize off the async runtime).
pub struct GenerateRequest {
    pub prompt: Vec<u32>,
    pub params: SamplingParams,
    /// Optional grammar constraint (JSON schema, tool call, …) applied at every sampling step.
    pub constraint: Option<Box<dyn crate::constraint::TokenConstraint>>,
}

impl GenerateRequest {
    pub fn new(prompt: Vec<u32>, params: SamplingParams) -> Self {
        Self {
            prompt,
            params,
            constraint: None,
        }
    }
}

pub(crate) enum Command {
    Submit {
        id: RequestId,
        req: GenerateRequest,
        tx: tokio::sync::mpsc::UnboundedSender<StreamEvent>,
    },
    Abort(RequestId),
    /// The prefix cache's keys (diagnostics, tests).
    CachedBlocks(Sender<Vec<lathe_core::BlockHash>>),
    /// Finish the request now as if it had stopped (`FinishReason::Stop`, usage counted).
    Stop(RequestId),
    Shutdown,
}

/// Live numbers the engine thread publishes after every step (for /metrics and tests).
#[derive(Debug, Default)]
pub struct EngineStats {
    pub free_blocks: AtomicUsize,
    pub total_blocks: AtomicUsize,
    pub waiting: AtomicUsize,
    pub running: AtomicUsize,
    pub prompt_tokens_total: AtomicU64,
    pub generation_tokens_total: AtomicU64,
    pub preemptions_total: AtomicU64,
    /// Prompt tokens of admitted requests looked up in the prefix cache, and the hits.
    pub prefix_cache_queries_total: AtomicU64,
    pub prefix_cache_hits_total: AtomicU64,
    pub steps_total: AtomicU64,
    /// Speculative decoding: verification steps of a request that had proposals, tokens
    /// proposed, and proposals the target accepted.
    pub spec_drafts_total: AtomicU64,
    pub spec_draft_tokens_total: AtomicU64,
    pub spec_accepted_tokens_total: AtomicU64,
    /// KV blocks the draft model holds (0 without one).
    pub draft_used_blocks: AtomicUsize,
}

impl EngineStats {
    pub(crate) fn record_verification(&self, proposed: usize, accepted: usize) {
        self.spec_drafts_total.fetch_add(1, Ordering::Relaxed);
        self.spec_draft_tokens_total
            .fetch_add(proposed as u64, Ordering::Relaxed);
        self.spec_accepted_tokens_total
            .fetch_add(accepted as u64, Ordering::Relaxed);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the engine has stopped")]
    EngineStopped,
    #[error("{0}")]
    Invalid(String),
}

/// Cloneable handle to the engine thread.
#[derive(Clone)]
pub struct EngineHandle {
    pub(crate) tx: Sender<Command>,
    pub(crate) info: Arc<ModelInfo>,
    pub(crate) stats: Arc<EngineStats>,
    pub(crate) next_id: Arc<AtomicU64>,
}

impl EngineHandle {
    /// Queues a request; its events arrive on the returned stream.
    pub fn submit(&self, req: GenerateRequest) -> Result<RequestStream, SubmitError> {
        if req.prompt.is_empty() {
            return Err(SubmitError::Invalid("the prompt is empty".into()));
        }
        if req.params.speculative == Some(lathe_core::SpecMode::Draft)
            && self.info.draft_model.is_none()
        {
            return Err(SubmitError::Invalid(
                "speculative `draft` needs a server started with --speculative-model".into(),
            ));
        }
        let max_len = self.info.max_model_len;
        if req.prompt.len() >= max_len {
            return Err(SubmitError::Invalid(format!(
                "the prompt has {} tokens, the context window is {max_len}",
                req.prompt.len()
            )));
        }
        req.params.validate().map_err(SubmitError::Invalid)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = unbounded_channel();
        self.tx
            .send(Command::Submit { id, req, tx })
            .map_err(|_| SubmitError::EngineStopped)?;
        Ok(RequestStream {
            id,
            rx,
            abort: Some(self.tx.clone()),
            finished: false,
        })
    }

    pub fn info(&self) -> &Arc<ModelInfo> {
        &self.info
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// The keys in the prefix cache right now, after the current step (diagnostics and tests:
    /// a KV-event subscriber must have the same set). `None` if the engine has stopped.
    pub fn cached_block_hashes(&self) -> Option<Vec<lathe_core::BlockHash>> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.tx.send(Command::CachedBlocks(tx)).ok()?;
        rx.recv_timeout(std::time::Duration::from_secs(30)).ok()
    }

    /// Asks the engine thread to stop after the current step; pending requests end with Abort.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Command::Shutdown);
    }
}

/// The events of one request. A `futures::Stream`; `next().await` also works without it.
pub struct RequestStream {
    id: RequestId,
    rx: UnboundedReceiver<StreamEvent>,
    abort: Option<Sender<Command>>,
    finished: bool,
}

impl RequestStream {
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// A handle that ends this request early with `FinishReason::Stop`, as a stop sequence
    /// would: its `Finished` event (with usage) still arrives on this stream. For callers that
    /// decide from the text that the answer is complete (one tool call when parallel calls are
    /// off).
    pub fn stopper(&self) -> RequestStopper {
        RequestStopper {
            id: self.id,
            tx: self.abort.clone(),
        }
    }

    pub async fn next(&mut self) -> Option<StreamEvent> {
        let ev = self.rx.recv().await;
        self.observe(&ev);
        ev
    }

    /// Blocking receive for synchronous callers (never call inside an async task).
    pub fn blocking_next(&mut self) -> Option<StreamEvent> {
        let ev = self.rx.blocking_recv();
        self.observe(&ev);
        ev
    }

    fn observe(&mut self, ev: &Option<StreamEvent>) {
        if matches!(ev, Some(StreamEvent::Finished(_)) | None) {
            self.finished = true;
        }
    }
}

impl futures::Stream for RequestStream {
    type Item = StreamEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<StreamEvent>> {
        let ev = self.rx.poll_recv(cx);
        if let Poll::Ready(e) = &ev {
            let e = e.clone();
            self.observe(&e);
        }
        ev
    }
}

impl Drop for RequestStream {
    fn drop(&mut self) {
        if !self.finished {
            if let Some(tx) = self.abort.take() {
                let _ = tx.send(Command::Abort(self.id));
            }
        }
    }
}

/// Ends one request early; see [`RequestStream::stopper`].
#[derive(Clone)]
pub struct RequestStopper {
    id: RequestId,
    tx: Option<Sender<Command>>,
}

impl RequestStopper {
    /// Asks the engine to finish the request; a no-op if it already finished.
    pub fn stop(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Command::Stop(self.id));
        }
    }
}

/// A finished generation, collected.
#[derive(Debug, Clone)]
pub struct Generated {
    pub text: String,
    pub token_ids: Vec<u32>,
    pub finished: super::events::Finished,
}

impl RequestStream {
    /// Waits for the whole generation and returns its text and tokens.
    pub async fn collect_all(mut self) -> Generated {
        let mut text = String::new();
        let mut token_ids = Vec::new();
        loop {
            match self.next().await {
                Some(StreamEvent::Token(t)) => {
                    text.push_str(&t.text);
                    token_ids.push(t.token);
                }
                Some(StreamEvent::Finished(f)) => {
                    text.push_str(&f.text);
                    return Generated {
                        text,
                        token_ids,
                        finished: f,
                    };
                }
                None => {
                    let finished = super::events::Finished {
                        reason: super::events::FinishReason::Error("the engine stopped".into()),
                        text: String::new(),
                        prompt_tokens: 0,
                        completion_tokens: token_ids.len(),
                        cached_tokens: 0,
                        matched_stop: None,
                    };
                    return Generated {
                        text,
                        token_ids,
                        finished,
                    };
                }
            }
        }
    }
}
