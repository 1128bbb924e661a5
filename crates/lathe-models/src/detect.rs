//! What a model can do, read off its own vocabulary and chat template, so that any GGUF file or
//! local directory gets FIM, tool calls and reasoning without a registry entry. A registry entry
//! overrides each field it sets ([`Capabilities::with_overrides`]).
//!
//! - FIM: the family's special tokens in the vocabulary (Qwen2.5-Coder, StarCoder/StarCoder2,
//!   DeepSeek-Coder, CodeLlama, Codestral), with the repository-level tokens and the tokens that
//!   end a FIM answer when the vocabulary has them.
//! - Tool calls: what the chat template writes (`[TOOL_CALLS]` mistral, `<tool_call>` hermes,
//!   `<function=` inside `<tool_call>` qwen3_coder, `<|python_tag|>`/llama 3 headers with tools
//!   llama3_json, harmony channels gpt_oss).
//! - Reasoning: a template that writes `<think>` (think_tags) or harmony channels. A `<think>`
//!   token in the vocabulary alone is not enough: Qwen3-Coder has one and never thinks, and a
//!   thinking model's output is reasoning until `</think>`.

use crate::registry::{FimOrder, FimTokens, ModelEntry, ReasoningFormat, ToolCallFormat};

/// The effective capabilities of a loaded model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    pub fim: Option<FimTokens>,
    pub tool_format: ToolCallFormat,
    pub reasoning: ReasoningFormat,
}

impl Capabilities {
    /// Detects everything from the vocabulary (`has_token(text)`: the text is one token,
    /// special or not) and the chat template.
    pub fn detect(has_token: &dyn Fn(&str) -> bool, template: Option<&str>) -> Self {
        Self {
            fim: detect_fim(has_token),
            tool_format: detect_tool_format(template),
            reasoning: detect_reasoning(template),
        }
    }

    /// Each field the registry entry sets replaces the detected one.
    pub fn with_overrides(mut self, entry: Option<&ModelEntry>) -> Self {
        if let Some(e) = entry {
            if let Some(fim) = &e.fim {
                self.fim = Some(fim.clone());
            }
            if let Some(t) = e.tool_format {
                self.tool_format = t;
            }
            if let Some(r) = e.reasoning {
                self.reasoning = r;
            }
        }
        self
    }
}

/// One family's FIM vocabulary.
struct FimFamily {
    prefix: &'static str,
    suffix: &'static str,
    /// Empty: the family has no middle token (Codestral).
    middle: &'static str,
    order: FimOrder,
    repo_name: &'static str,
    file_sep: &'static str,
    pad: &'static str,
    /// Candidates for [`FimTokens::stop`], kept where the vocabulary has them.
    stop: &'static [&'static str],
}

const FIM_FAMILIES: &[FimFamily] = &[
    // Qwen2.5-Coder, Qwen3-Coder (and StarCoder2-style names with bars).
    FimFamily {
        prefix: "<|fim_prefix|>",
        suffix: "<|fim_suffix|>",
        middle: "<|fim_middle|>",
        order: FimOrder::Psm,
        repo_name: "<|repo_name|>",
        file_sep: "<|file_sep|>",
        pad: "<|fim_pad|>",
        stop: &["<|endoftext|>", "<|fim_pad|>", "<|file_sep|>"],
    },
    // StarCoder, StarCoder2, SantaCoder.
    FimFamily {
        prefix: "<fim_prefix>",
        suffix: "<fim_suffix>",
        middle: "<fim_middle>",
        order: FimOrder::Psm,
        repo_name: "<repo_name>",
        file_sep: "<file_sep>",
        pad: "<fim_pad>",
        stop: &["<|endoftext|>", "<fim_pad>", "<file_sep>"],
    },
    // DeepSeek-Coder (fullwidth bars and U+2581).
    FimFamily {
        prefix: "<｜fim▁begin｜>",
        suffix: "<｜fim▁hole｜>",
        middle: "<｜fim▁end｜>",
        order: FimOrder::Psm,
        repo_name: "",
        file_sep: "",
        pad: "",
        stop: &["<｜end▁of▁sentence｜>", "<|EOT|>"],
    },
    // CodeLlama (SentencePiece pieces with the word-start mark).
    FimFamily {
        prefix: "▁<PRE>",
        suffix: "▁<SUF>",
        middle: "▁<MID>",
        order: FimOrder::Psm,
        repo_name: "",
        file_sep: "",
        pad: "",
        stop: &["▁<EOT>", "</s>"],
    },
    // Codestral: `[SUFFIX]suf[PREFIX]pre`, the answer follows (mistral-common writes no
    // `[MIDDLE]`).
    FimFamily {
        prefix: "[PREFIX]",
        suffix: "[SUFFIX]",
        middle: "",
        order: FimOrder::Spm,
        repo_name: "",
        file_sep: "",
        pad: "",
        stop: &["</s>"],
    },
];

/// The FIM tokens of the first family whose prefix, suffix and middle tokens are all in the
/// vocabulary.
pub fn detect_fim(has_token: &dyn Fn(&str) -> bool) -> Option<FimTokens> {
    let present = |t: &str| (!t.is_empty() && has_token(t)).then(|| t.to_string());
    FIM_FAMILIES
        .iter()
        .find(|f| {
            has_token(f.prefix)
                && has_token(f.suffix)
                && (f.middle.is_empty() || has_token(f.middle))
        })
        .map(|f| FimTokens {
            prefix: f.prefix.to_string(),
            suffix: f.suffix.to_string(),
            middle: f.middle.to_string(),
            order: f.order,
            repo_name: present(f.repo_name),
            file_sep: present(f.file_sep),
            pad: present(f.pad),
            stop: f.stop.iter().filter_map(|t| present(t)).collect(),
        })
}

/// The tool-call format the chat template writes.
pub fn detect_tool_format(template: Option<&str>) -> ToolCallFormat {
    let Some(t) = template else {
        return ToolCallFormat::None;
    };
    if t.contains("<|channel|>") {
        ToolCallFormat::GptOss
    } else if t.contains("[TOOL_CALLS]") {
        ToolCallFormat::Mistral
    } else if t.contains("<tool_call>") {
        if t.contains("<function=") {
            ToolCallFormat::Qwen3Coder
        } else {
            ToolCallFormat::Hermes
        }
    } else if t.contains("<|python_tag|>")
        || (t.contains("<|start_header_id|>") && t.contains("tools") && t.contains("ipython"))
    {
        ToolCallFormat::Llama3Json
    } else {
        ToolCallFormat::None
    }
}

/// How the chat template says the model reasons.
pub fn detect_reasoning(template: Option<&str>) -> ReasoningFormat {
    match template {
        Some(t) if t.contains("<|channel|>") => ReasoningFormat::Harmony,
        Some(t) if t.contains("<think>") || t.contains("</think>") => ReasoningFormat::ThinkTags,
        _ => ReasoningFormat::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(tokens: &[&str]) -> impl Fn(&str) -> bool {
        let set: std::collections::HashSet<String> = tokens.iter().map(|s| s.to_string()).collect();
        move |t: &str| set.contains(t)
    }

    #[test]
    fn qwen_coder_fim_with_repo_level_tokens() {
        let v = vocab(&[
            "<|endoftext|>",
            "<|im_end|>",
            "<|fim_prefix|>",
            "<|fim_middle|>",
            "<|fim_suffix|>",
            "<|fim_pad|>",
            "<|repo_name|>",
            "<|file_sep|>",
        ]);
        let fim = detect_fim(&v).unwrap();
        assert_eq!(
            fim.layout("a", "b"),
            "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>"
        );
        assert_eq!(fim.repo_name.as_deref(), Some("<|repo_name|>"));
        assert_eq!(fim.file_sep.as_deref(), Some("<|file_sep|>"));
        assert_eq!(fim.pad.as_deref(), Some("<|fim_pad|>"));
        assert_eq!(fim.stop, ["<|endoftext|>", "<|fim_pad|>", "<|file_sep|>"]);
    }

    #[test]
    fn starcoder_fim() {
        let v = vocab(&[
            "<|endoftext|>",
            "<fim_prefix>",
            "<fim_middle>",
            "<fim_suffix>",
            "<fim_pad>",
            "<file_sep>",
            "<repo_name>",
        ]);
        let fim = detect_fim(&v).unwrap();
        assert_eq!(
            fim.layout("a", "b"),
            "<fim_prefix>a<fim_suffix>b<fim_middle>"
        );
        assert_eq!(fim.repo_name.as_deref(), Some("<repo_name>"));
        assert_eq!(fim.stop, ["<|endoftext|>", "<fim_pad>", "<file_sep>"]);
        // StarCoder 1 has no repo-level tokens: none are claimed.
        let v1 = vocab(&[
            "<|endoftext|>",
            "<fim_prefix>",
            "<fim_middle>",
            "<fim_suffix>",
            "<fim_pad>",
        ]);
        let fim = detect_fim(&v1).unwrap();
        assert_eq!((fim.repo_name, fim.file_sep), (None, None));
    }

    #[test]
    fn deepseek_codellama_codestral_fim() {
        let ds = vocab(&[
            "<｜fim▁begin｜>",
            "<｜fim▁hole｜>",
            "<｜fim▁end｜>",
            "<｜end▁of▁sentence｜>",
        ]);
        let fim = detect_fim(&ds).unwrap();
        assert_eq!(
            fim.layout("a", "b"),
            "<｜fim▁begin｜>a<｜fim▁hole｜>b<｜fim▁end｜>"
        );
        assert_eq!(fim.stop, ["<｜end▁of▁sentence｜>"]);

        let cl = vocab(&["▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>", "</s>"]);
        let fim = detect_fim(&cl).unwrap();
        assert_eq!(fim.layout("a", "b"), "▁<PRE>a▁<SUF>b▁<MID>");
        assert_eq!(fim.stop, ["▁<EOT>", "</s>"]);

        let cs = vocab(&["[PREFIX]", "[SUFFIX]", "[MIDDLE]", "</s>"]);
        let fim = detect_fim(&cs).unwrap();
        assert_eq!(fim.order, FimOrder::Spm);
        assert_eq!(fim.layout("a", "b"), "[SUFFIX]b[PREFIX]a");
    }

    #[test]
    fn no_fim_without_all_three_tokens() {
        assert_eq!(
            detect_fim(&vocab(&["<|endoftext|>", "<|im_start|>", "<|im_end|>"])),
            None
        );
        assert_eq!(
            detect_fim(&vocab(&["<|fim_prefix|>", "<|fim_suffix|>"])),
            None
        );
    }

    #[test]
    fn tool_formats_from_templates() {
        let hermes = "{% for tool in tools %}{{ tool | tojson }}{% endfor %}<tool_call>\n{\"name\": ...}\n</tool_call>";
        assert_eq!(detect_tool_format(Some(hermes)), ToolCallFormat::Hermes);
        let qwen3 = "<tool_call>\n<function={{ tool_call.name }}>\n</function>\n</tool_call>";
        assert_eq!(detect_tool_format(Some(qwen3)), ToolCallFormat::Qwen3Coder);
        let llama =
            "<|start_header_id|>ipython<|end_header_id|>{% if tools %}{% endif %}<|python_tag|>";
        assert_eq!(detect_tool_format(Some(llama)), ToolCallFormat::Llama3Json);
        let llama_no_tag = "{% if tools %}<|start_header_id|>ipython<|end_header_id|>{% endif %}";
        assert_eq!(
            detect_tool_format(Some(llama_no_tag)),
            ToolCallFormat::Llama3Json
        );
        let mistral = "[AVAILABLE_TOOLS]{{ tools }}[/AVAILABLE_TOOLS][TOOL_CALLS]";
        assert_eq!(detect_tool_format(Some(mistral)), ToolCallFormat::Mistral);
        let harmony = "<|start|>assistant<|channel|>analysis<|message|>";
        assert_eq!(detect_tool_format(Some(harmony)), ToolCallFormat::GptOss);
        let plain_llama = "<|start_header_id|>{{ message['role'] }}<|end_header_id|>";
        assert_eq!(detect_tool_format(Some(plain_llama)), ToolCallFormat::None);
        assert_eq!(detect_tool_format(None), ToolCallFormat::None);
    }

    #[test]
    fn reasoning_from_templates() {
        assert_eq!(
            detect_reasoning(Some("<|Assistant|><think>\n")),
            ReasoningFormat::ThinkTags
        );
        assert_eq!(
            detect_reasoning(Some("{{ content.split('</think>')[-1] }}")),
            ReasoningFormat::ThinkTags
        );
        assert_eq!(
            detect_reasoning(Some("<|im_start|>assistant\n")),
            ReasoningFormat::None
        );
        assert_eq!(detect_reasoning(None), ReasoningFormat::None);
    }

    #[test]
    fn registry_fields_override_detection() {
        let reg = crate::Registry::parse(
            r#"
[[model]]
id = "m"
arch = "qwen2"
dtype = "q4_k_m"
context_length = 4096
source = { path = "/x.gguf" }
tool_format = "none"
"#,
        )
        .unwrap();
        let detected = Capabilities::detect(
            &vocab(&["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"]),
            Some("<tool_call><think>"),
        );
        assert_eq!(detected.tool_format, ToolCallFormat::Hermes);
        let eff = detected.with_overrides(reg.get("m"));
        assert_eq!(eff.tool_format, ToolCallFormat::None);
        assert_eq!(
            eff.reasoning,
            ReasoningFormat::ThinkTags,
            "not set: detected"
        );
        assert!(eff.fim.is_some(), "not set: detected");
    }
}
