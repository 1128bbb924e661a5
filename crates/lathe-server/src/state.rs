//! `AppState`: the engine handle (once loaded), the server options, metrics, and admission
//! control. Cheap to clone (one `Arc`). Handlers never touch engine internals: they submit
//! requests and read `EngineHandle::stats()`.
//!
//! Loading: `AppState::loading()` starts without an engine so that `/health` can answer 503
//! while the model loads; `set_engine` makes it ready. `AppState::new` is both at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use lathe_engine::EngineHandle;

use crate::constrained::GrammarCompiler;
use crate::error::ApiError;
use crate::metrics::Metrics;

/// Knobs of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Bearer token required on the API routes; `None` = open.
    pub api_key: Option<String>,
    /// Names the model is served under (the first is reported by `/v1/models`). Empty: the
    /// engine's model id. The engine's id is always accepted too.
    pub served_model_names: Vec<String>,
    /// Generations the engine runs at once (its `max_num_seqs`); admission allows this many
    /// plus `max_queue` before answering 429.
    pub engine_slots: usize,
    /// Generations allowed to wait beyond `engine_slots`.
    pub max_queue: usize,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Largest `n` (choices per request).
    pub max_n: usize,
    /// Temperature of requests that set none (OpenAI's default, 1.0, when `None`).
    pub default_temperature: Option<f32>,
    /// Output limit of requests that set none (the rest of the context window when `None`).
    pub default_max_tokens: Option<usize>,
    /// With `tool_choice: auto`, constrain tool calls to the offered tools and their schemas
    /// (the format's lazy grammar); free text stays free.
    pub tool_call_grammar: bool,
    /// A connection must deliver each request head within this (slowloris, idle keep-alive).
    pub header_read_timeout: Duration,
    /// A request body must arrive within this once its head is in (answered 408).
    pub body_read_timeout: Duration,
    /// Open connections at most; more wait in the listen backlog.
    pub max_connections: usize,
    /// A client that reads none of its response for this long is disconnected (its requests
    /// are cancelled).
    pub client_stall_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            api_key: None,
            served_model_names: Vec::new(),
            engine_slots: 64,
            max_queue: 256,
            max_body_bytes: 16 << 20,
            max_n: 16,
            default_temperature: None,
            default_max_tokens: None,
            tool_call_grammar: true,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(60),
            max_connections: 1024,
            client_stall_timeout: Duration::from_secs(60),
        }
    }
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    engine: OnceLock<Loaded>,
    options: ServerOptions,
    metrics: Metrics,
    in_flight: Arc<AtomicUsize>,
}

/// What exists once the model is loaded.
pub(crate) struct Loaded {
    pub engine: EngineHandle,
    /// Built on first use (the token trie takes a moment), then shared.
    pub grammar: OnceLock<Result<Arc<GrammarCompiler>, String>>,
}

impl AppState {
    /// A ready server over a loaded engine.
    pub fn new(engine: EngineHandle, options: ServerOptions) -> Self {
        let state = Self::loading(options);
        state.set_engine(engine);
        state
    }

    /// A server whose model is still loading: generation routes and `/health` answer 503.
    pub fn loading(options: ServerOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                engine: OnceLock::new(),
                options,
                metrics: Metrics::new(),
                in_flight: Arc::new(AtomicUsize::new(0)),
            }),
        }
    }

    /// Marks the model as loaded. A second call is ignored.
    pub fn set_engine(&self, engine: EngineHandle) {
        let info = engine.info().clone();
        let name = self
            .inner
            .options
            .served_model_names
            .first()
            .cloned()
            .unwrap_or_else(|| info.id.clone());
        self.inner
            .metrics
            .vllm
            .set_model(&name, info.block_size, info.num_blocks);
        let _ = self.inner.engine.set(Loaded {
            engine,
            grammar: OnceLock::new(),
        });
    }

    pub fn is_ready(&self) -> bool {
        self.inner.engine.get().is_some()
    }

    /// The engine, or 503 while loading.
    pub fn engine(&self) -> Result<&EngineHandle, ApiError> {
        Ok(&self.loaded()?.engine)
    }

    pub(crate) fn loaded(&self) -> Result<&Loaded, ApiError> {
        self.inner
            .engine
            .get()
            .ok_or_else(|| ApiError::unavailable("the model is still loading"))
    }

    pub fn options(&self) -> &ServerOptions {
        &self.inner.options
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The grammar compiler for constrained decoding (built once, off the async runtime by
    /// the caller: call from `spawn_blocking`).
    pub fn grammar_compiler(&self) -> Result<Arc<GrammarCompiler>, ApiError> {
        let loaded = self.loaded()?;
        let built = loaded.grammar.get_or_init(|| {
            let start = std::time::Instant::now();
            let built = GrammarCompiler::new(&loaded.engine.info().tokenizer)
                .map(Arc::new)
                .map_err(|e| format!("building the grammar engine: {e:#}"));
            tracing::info!(
                ms = start.elapsed().as_millis() as u64,
                ok = built.is_ok(),
                "grammar engine built"
            );
            built
        });
        built.clone().map_err(ApiError::internal)
    }

    /// The name clients use for the model.
    pub fn model_name(&self) -> Result<String, ApiError> {
        let engine = self.engine()?;
        Ok(self
            .inner
            .options
            .served_model_names
            .first()
            .cloned()
            .unwrap_or_else(|| engine.info().id.clone()))
    }

    /// Checks the requested model; a missing `model` means the served one.
    pub fn resolve_model(&self, requested: Option<&str>) -> Result<String, ApiError> {
        let name = self.model_name()?;
        let Some(req) = requested else {
            return Ok(name);
        };
        let id = &self.engine()?.info().id;
        let known = req == name
            || req == id
            || self
                .inner
                .options
                .served_model_names
                .iter()
                .any(|n| n == req);
        if known {
            Ok(req.to_string())
        } else {
            Err(ApiError::model_not_found(req))
        }
    }

    /// Admits `n` generations or answers 429. The permit gives them back when dropped.
    pub fn admit(&self, n: usize) -> Result<Permit, ApiError> {
        let cap = self.inner.options.engine_slots + self.inner.options.max_queue;
        let counter = &self.inner.in_flight;
        let mut cur = counter.load(Ordering::Relaxed);
        loop {
            if cur + n > cap {
                return Err(ApiError::too_many_requests(cur));
            }
            match counter.compare_exchange_weak(cur, cur + n, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        self.inner
            .metrics
            .in_flight
            .set(counter.load(Ordering::Relaxed) as i64);
        Ok(Permit {
            counter: counter.clone(),
            n,
            metrics: self.inner.metrics.clone(),
        })
    }

    /// Generations admitted and not finished.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::Relaxed)
    }
}

/// Admission of one request's generations; released on drop (end of the response stream).
pub struct Permit {
    counter: Arc<AtomicUsize>,
    n: usize,
    metrics: Metrics,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let left = self.counter.fetch_sub(self.n, Ordering::AcqRel) - self.n;
        self.metrics.in_flight.set(left as i64);
    }
}
