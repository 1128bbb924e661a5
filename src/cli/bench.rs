//! `lathe bench serve` (any OpenAI endpoint) and `lathe bench engine` (the engine, no HTTP).

use clap::Subcommand;

// Parsed once per process: the variants' size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Load-test an OpenAI-compatible server (lathe, vLLM, llama-server, Ollama, …).
    Serve(lathe_bench::serve::ServeArgs),
    /// Offline prompt/decode throughput of the engine, beside candle-transformers' reference.
    Engine(lathe_bench::engine::EngineBenchArgs),
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Serve(a) => lathe_bench::serve::run_serve(a).await,
        BenchCommand::Engine(a) => lathe_bench::engine::run_engine_bench(a).await.map(|_| ()),
    }
}
