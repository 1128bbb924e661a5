//! Command-line interface: `lathe run`, `chat`, `models`, `serve`, `bench`.

mod bench;
mod engine_args;
mod generate;
mod models;
mod serve;

use clap::{Parser, Subcommand};

pub use engine_args::EngineArgs;

#[derive(Parser, Debug)]
#[command(
    name = "lathe",
    version,
    about = "Local inference engine for open-weight code models"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the variants' size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Generate from one prompt and stream the answer to the terminal.
    Run(generate::RunArgs),
    /// Interactive chat in the terminal.
    Chat(generate::ChatArgs),
    /// List the model registry.
    Models,
    /// Serve the OpenAI-compatible HTTP API.
    Serve(serve::ServeArgs),
    /// Benchmarks: `bench serve` against any OpenAI endpoint, `bench engine` offline.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(a) => generate::run(a).await,
        Command::Chat(a) => generate::chat(a).await,
        Command::Models => models::list(),
        Command::Serve(a) => serve::serve(a).await,
        Command::Bench { command } => bench::run(command).await,
    }
}
