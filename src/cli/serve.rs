//! `lathe serve`: the OpenAI-compatible HTTP API (crate lathe-server).
//!
//! The socket is bound first and answers `/health` with 503 while the model loads, 200 once it
//! is ready. SIGINT or SIGTERM stops accepting connections, lets in-flight requests finish (for
//! a grace period, then cancels them) and exits 0. A model that fails to load exits non-zero.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Args;
use lathe_server::{AppState, ServerOptions};

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub engine: super::EngineArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Require `Authorization: Bearer <key>` on the API routes (/health and /metrics stay open).
    #[arg(long, env = "LATHE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Generations that may wait beyond the engine's --max-num-seqs before requests get 429.
    #[arg(long, default_value_t = 256)]
    pub max_queue: usize,
    /// Name(s) clients use for the model (default: the registry id). Repeatable.
    #[arg(long)]
    pub served_model_name: Vec<String>,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 16 << 20)]
    pub max_body_bytes: usize,
    /// Temperature for requests that do not set one (OpenAI's default is 1.0). Agent frontends
    /// such as Codex CLI send none; 0 makes their runs greedy and repeatable.
    #[arg(long)]
    pub default_temperature: Option<f32>,
    /// Output-token limit for requests that do not set one (default: the rest of the context
    /// window).
    #[arg(long)]
    pub default_max_tokens: Option<usize>,
    /// With `tool_choice: auto`, constrain tool calls (once the model opens one) to the offered
    /// tools and their argument schemas; `off` leaves auto mode unconstrained.
    #[arg(long, value_enum, default_value_t = Switch::On)]
    pub tool_call_grammar: Switch,
    /// Seconds a connection has to send a whole request head (also the idle keep-alive limit);
    /// slower clients are disconnected.
    #[arg(long, default_value_t = 30.0)]
    pub header_timeout: f64,
    /// Seconds a request body has to arrive once its head is in (408 after that).
    #[arg(long, default_value_t = 60.0)]
    pub body_timeout: f64,
    /// Open connections at most; more wait in the listen backlog until one closes.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
    /// Seconds a client may leave its response unread (its socket full) before it is
    /// disconnected and its requests cancelled.
    #[arg(long, default_value_t = 60.0)]
    pub client_stall_timeout: f64,
}

/// `on` / `off`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switch {
    On,
    Off,
}

pub async fn serve(a: ServeArgs) -> anyhow::Result<()> {
    if let Some(t) = a.default_temperature.filter(|t| !(0.0..=2.0).contains(t)) {
        anyhow::bail!("--default-temperature must be in [0, 2], got {t}");
    }
    let secs = |name: &str, v: f64| {
        if v.is_finite() && v > 0.0 {
            Ok(std::time::Duration::from_secs_f64(v))
        } else {
            Err(anyhow::anyhow!(
                "--{name} must be a positive number of seconds, got {v}"
            ))
        }
    };
    let options = ServerOptions {
        header_read_timeout: secs("header-timeout", a.header_timeout)?,
        body_read_timeout: secs("body-timeout", a.body_timeout)?,
        max_connections: a.max_connections.max(1),
        client_stall_timeout: secs("client-stall-timeout", a.client_stall_timeout)?,
        api_key: a.api_key.clone().filter(|k| !k.is_empty()),
        served_model_names: a.served_model_name.clone(),
        engine_slots: a.engine.max_num_seqs,
        max_queue: a.max_queue,
        max_body_bytes: a.max_body_bytes,
        default_temperature: a.default_temperature,
        default_max_tokens: a.default_max_tokens.filter(|&n| n > 0),
        tool_call_grammar: a.tool_call_grammar == Switch::On,
        ..ServerOptions::default()
    };
    let addr: SocketAddr = tokio::net::lookup_host((a.host.as_str(), a.port))
        .await
        .with_context(|| format!("resolving --host {}", a.host))?
        .next()
        .with_context(|| format!("--host {} resolves to no address", a.host))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(
        address = %listener.local_addr()?,
        auth = options.api_key.is_some(),
        "lathe serve: listening on http://{}/v1 (model loading)",
        listener.local_addr()?
    );
    let state = AppState::loading(options);

    let (failed_tx, failed_rx) = tokio::sync::oneshot::channel::<anyhow::Error>();
    let engine_args = a.engine.clone();
    let loading = state.clone();
    tokio::spawn(async move {
        match tokio::task::spawn_blocking(move || engine_args.start()).await {
            Ok(Ok(engine)) => {
                tracing::info!(model = %engine.info().id, max_model_len = engine.info().max_model_len, "model loaded; ready");
                loading.set_engine(engine);
            }
            Ok(Err(e)) => {
                let _ = failed_tx.send(e);
            }
            Err(e) => {
                let _ = failed_tx.send(anyhow::anyhow!("the model loader panicked: {e}"));
            }
        }
    });

    let (err_tx, mut err_rx) = tokio::sync::mpsc::channel::<anyhow::Error>(1);
    let shutdown = async move {
        tokio::select! {
            _ = signal() => {}
            Ok(e) = failed_rx => { let _ = err_tx.send(e).await; }
        }
    };
    lathe_server::serve_listener(state, listener, shutdown).await?;
    if let Ok(e) = err_rx.try_recv() {
        return Err(e.context("loading the model"));
    }
    tracing::info!("lathe serve: stopped");
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received"),
        _ = term => tracing::info!("SIGTERM received"),
    }
}
