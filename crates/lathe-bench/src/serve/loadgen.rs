//! The load generator: runs conversations against one target by fixed concurrency or by a
//! Poisson arrival rate, until the request budget, the duration or a stop signal runs out.
//!
//! - **Concurrency** (`--concurrency N`, no rate): N workers, each sending its next request as
//!   soon as its previous one finished: N requests in flight at all times.
//! - **Rate** (`--request-rate R`): conversations start at Poisson arrivals (the first at t=0);
//!   `--concurrency` then caps how many run at once (vLLM's `--max-concurrency`): arrivals past
//!   the cap wait client-side, and their clock starts when they are actually sent.
//!
//! Turns of one conversation are sequential; a failed turn ends its conversation. With
//! `--duration`, no request starts after the deadline and those in flight finish. A stop signal
//! (Ctrl-C) abandons in-flight requests, which are counted as cancelled and measured nowhere.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use tokio::sync::{watch, Semaphore};

use super::arrivals::PoissonArrivals;
use super::client::{BenchClient, Target};
use crate::record::RequestRecord;
use crate::workload::{Conversation, Workload};

/// A clonable stop flag (Ctrl-C sets it).
#[derive(Clone)]
pub struct StopSignal(Arc<watch::Sender<bool>>);

impl Default for StopSignal {
    fn default() -> Self {
        StopSignal(Arc::new(watch::channel(false).0))
    }
}

impl StopSignal {
    pub fn stop(&self) {
        self.0.send_replace(true);
    }

    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once [`StopSignal::stop`] has been called.
    pub async fn stopped(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|&v| v).await;
    }
}

/// How one run loads its target.
#[derive(Debug, Clone, Default)]
pub struct LoadPlan {
    /// Requests in flight (concurrency mode), or their cap (rate mode).
    pub concurrency: Option<usize>,
    /// Poisson arrivals per second; `None` for concurrency mode.
    pub request_rate: Option<f64>,
    pub num_requests: Option<usize>,
    /// Conversations to start at most (agent: `--sessions` when no request count is given).
    pub max_conversations: Option<usize>,
    pub duration: Option<Duration>,
    /// Seeds the arrival schedule.
    pub seed: u64,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// Finished requests (successful or failed), in issue order.
    pub records: Vec<RequestRecord>,
    /// From the first dispatch to the last completion (or to the stop).
    pub duration_s: f64,
    /// In flight when the stop signal came; not measured.
    pub cancelled: usize,
    pub interrupted: bool,
}

/// Counts requests against the limit, the deadline and the stop signal.
struct Budget {
    limit: Option<usize>,
    issued: AtomicUsize,
    deadline: Option<Instant>,
    stop: StopSignal,
}

impl Budget {
    fn take(&self) -> bool {
        if self.stop.is_stopped() || self.deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        match self.limit {
            None => {
                self.issued.fetch_add(1, Ordering::Relaxed);
                true
            }
            Some(l) => self
                .issued
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < l).then_some(n + 1)
                })
                .is_ok(),
        }
    }
}

struct Shared {
    client: Arc<BenchClient>,
    target: Target,
    source: Mutex<(Box<dyn Workload>, u64)>,
    max_conversations: Option<usize>,
    budget: Budget,
    records: Mutex<Vec<RequestRecord>>,
    next_id: AtomicU64,
    cancelled: AtomicUsize,
    failed: AtomicUsize,
    stop: StopSignal,
    progress: ProgressBar,
    run_start: Instant,
}

impl Shared {
    /// The next conversation and its id; `None` once `max_conversations` have started.
    fn next_conversation(&self) -> Option<(Box<dyn Conversation>, u64)> {
        let mut src = self.source.lock().expect("workload lock");
        let sid = src.1;
        if self.max_conversations.is_some_and(|m| sid >= m as u64) {
            return None;
        }
        src.1 += 1;
        Some((src.0.next_conversation(), sid))
    }

    /// Runs one conversation; the budget for its first turn is already taken.
    async fn run_conversation(&self, mut conv: Box<dyn Conversation>, session: u64) {
        let mut previous: Option<String> = None;
        for turn in 0u32.. {
            let Some(spec) = conv.next_request(previous.as_deref()) else {
                return;
            };
            if (turn > 0 && !self.budget.take()) || self.stop.is_stopped() {
                return;
            }
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let send = self.client.send(&self.target, &spec, id, self.run_start);
            let out = tokio::select! {
                out = send => out,
                _ = self.stop.stopped() => {
                    self.cancelled.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            };
            let mut record = out.record;
            record.session = session;
            record.turn = turn;
            let ok = record.ok();
            if !ok {
                let n = self.failed.fetch_add(1, Ordering::Relaxed) + 1;
                self.progress.set_message(format!("{n} failed"));
            }
            self.records.lock().expect("records lock").push(record);
            self.progress.inc(1);
            if !ok {
                return;
            }
            previous = Some(out.text);
        }
    }
}

/// Runs `workload` against `target` as `plan` says.
pub async fn run_load(
    client: Arc<BenchClient>,
    target: Target,
    workload: Box<dyn Workload>,
    plan: &LoadPlan,
    stop: StopSignal,
    progress: ProgressBar,
) -> RunOutput {
    let run_start = Instant::now();
    let shared = Arc::new(Shared {
        client,
        target,
        source: Mutex::new((workload, 0)),
        max_conversations: plan.max_conversations,
        budget: Budget {
            limit: plan.num_requests,
            issued: AtomicUsize::new(0),
            deadline: plan.duration.map(|d| run_start + d),
            stop: stop.clone(),
        },
        records: Mutex::new(Vec::new()),
        next_id: AtomicU64::new(0),
        cancelled: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        stop: stop.clone(),
        progress,
        run_start,
    });
    match plan.request_rate {
        None => by_concurrency(&shared, plan.concurrency.unwrap_or(1).max(1)).await,
        Some(rate) => by_rate(&shared, rate, plan).await,
    }
    let duration_s = run_start.elapsed().as_secs_f64();
    let mut records = std::mem::take(&mut *shared.records.lock().expect("records lock"));
    records.sort_by_key(|r| r.id);
    RunOutput {
        records,
        duration_s,
        cancelled: shared.cancelled.load(Ordering::Relaxed),
        interrupted: stop.is_stopped(),
    }
}

async fn by_concurrency(shared: &Arc<Shared>, n: usize) {
    let workers: Vec<_> = (0..n)
        .map(|_| {
            let s = shared.clone();
            tokio::spawn(async move {
                while let Some((conv, sid)) = s.next_conversation() {
                    if !s.budget.take() {
                        break;
                    }
                    s.run_conversation(conv, sid).await;
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
}

async fn by_rate(shared: &Arc<Shared>, rate: f64, plan: &LoadPlan) {
    let cap = plan.concurrency.map(|c| Arc::new(Semaphore::new(c.max(1))));
    let mut arrivals = PoissonArrivals::new(rate, plan.seed);
    let mut next = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = shared.stop.stopped() => break,
        }
        let Some((conv, sid)) = shared.next_conversation() else {
            break;
        };
        if !shared.budget.take() {
            break;
        }
        let (s, cap) = (shared.clone(), cap.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = match cap {
                Some(sem) => Some(sem.acquire_owned().await.expect("semaphore open")),
                None => None,
            };
            s.run_conversation(conv, sid).await;
        }));
        next += arrivals.next_gap();
    }
    for t in tasks {
        let _ = t.await;
    }
}
