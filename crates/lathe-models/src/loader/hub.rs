//! Hugging Face Hub downloads through hf-hub: its cache (shared with other HF tools) first, then
//! the network with progress bars. Offline, the error says so and suggests a local path.

use std::path::PathBuf;

use anyhow::{Context, Result};
use hf_hub::{Cache, Repo, RepoType};

/// Files of a safetensors model repo, downloaded or found in the cache.
pub struct HubFiles {
    pub config: PathBuf,
    pub tokenizer: PathBuf,
    pub tokenizer_config: Option<PathBuf>,
    pub safetensors: Vec<PathBuf>,
}

pub fn fetch_repo(repo_id: &str, revision: &str) -> Result<HubFiles> {
    let repo = Repo::with_revision(repo_id.to_string(), RepoType::Model, revision.to_string());
    let get = |file: &str| -> Result<PathBuf> {
        if let Some(p) = Cache::from_env().repo(repo.clone()).get(file) {
            return Ok(p);
        }
        let api = hf_hub::api::sync::ApiBuilder::from_env()
            .with_progress(true)
            .build()
            .context("initialising the Hugging Face client")?;
        api.repo(repo.clone()).get(file).map_err(|e| {
            anyhow::anyhow!(
                "could not download {file} of {repo_id}@{revision} from the Hugging Face hub ({e}). \
                 If this machine is offline, download the model elsewhere and pass its local \
                 directory (config.json + *.safetensors + tokenizer.json) or a .gguf file to --model"
            )
        })
    };
    let config = get("config.json")?;
    let tokenizer = get("tokenizer.json")?;
    let tokenizer_config = get("tokenizer_config.json").ok();
    let safetensors = match get("model.safetensors.index.json") {
        Ok(index) => {
            let files = super::resolve::shards_from_index(&index)?;
            files.iter().map(|f| get(f)).collect::<Result<Vec<_>>>()?
        }
        Err(_) => vec![get("model.safetensors")?],
    };
    Ok(HubFiles {
        config,
        tokenizer,
        tokenizer_config,
        safetensors,
    })
}
