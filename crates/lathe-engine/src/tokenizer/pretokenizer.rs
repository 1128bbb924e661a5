//! The `tokenizer.ggml.pre` table: llama.cpp's pre-tokenizer names expressed with HF
//! `tokenizers` pre-tokenizers.
//!
//! llama.cpp splits text with a list of regexes applied one after another; every regex splits
//! each fragment left by the previous one and keeps both the matches and the text between them.
//! That is exactly HF's `Split(regex, Isolated)` in a `Sequence`, followed by
//! `ByteLevel(use_regex = false)` to map bytes to the GPT-2 alphabet. Where the HF tokenizer
//! of the same model uses a different but equivalent form (SmolLM/StarCoder:
//! `Digits(individual_digits)` + `ByteLevel(use_regex = true)`), we use the HF form so that
//! GGUF and tokenizer.json builds are the same tokenizer. Unknown names are an error that
//! names them: silently falling back to another regex would tokenize wrongly without a sign.

use anyhow::{bail, Result};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::SplitDelimiterBehavior;

/// GPT-2's split regex as llama.cpp writes it (HF's ByteLevel adds a trailing `|\s+`, which
/// changes nothing once unmatched text is kept as its own fragment).
const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";

/// Llama 3 (tiktoken cl100k-style): digits in groups of up to three.
const LLAMA3: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Qwen2: like Llama 3 but every digit alone.
const QWEN2: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// DeepSeek-Coder (v1): a chain of splits, CJK runs kept whole, digits alone.
const DEEPSEEK_CODER: &[&str] = &[
    r"[\r\n]",
    r"\s?\p{L}+",
    r"\s?\p{P}+",
    r"[一-龥ࠀ-一가-퟿]+",
    r"\p{N}",
];

/// llama.cpp's legacy "default" chain (used when a GGUF names no pre-tokenizer).
const LLAMA_CPP_DEFAULT: &[&str] = &[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"];

/// What a pre-tokenizer name implies for the tokenizer build.
pub(crate) struct PreTokenizerSpec {
    pub pre_tokenizer: PreTokenizerWrapper,
    /// BPE `ignore_merges`: a word that is itself in the vocab is one token (Llama 3).
    pub ignore_merges: bool,
}

/// Builds the pre-tokenizer for a `tokenizer.ggml.pre` value.
pub(crate) fn for_name(name: &str) -> Result<PreTokenizerSpec> {
    let (pre_tokenizer, ignore_merges) = match name {
        "gpt2" | "mpt" | "olmo" | "jais" => (byte_level(true).into(), false),
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" => {
            let seq = vec![Digits::new(true).into(), byte_level(true).into()];
            (Sequence::new(seq).into(), false)
        }
        "qwen2" | "deepseek-r1-qwen" | "stablelm2" => (splits_then_bytes(&[QWEN2])?, false),
        "llama-bpe" | "llama3" | "smaug-bpe" | "falcon3" => (splits_then_bytes(&[LLAMA3])?, true),
        "deepseek-coder" => (splits_then_bytes(DEEPSEEK_CODER)?, false),
        "default" => (splits_then_bytes(LLAMA_CPP_DEFAULT)?, false),
        other => bail!(
            "unsupported GGUF pre-tokenizer `tokenizer.ggml.pre = {other:?}` \
             (supported: gpt2, smollm, starcoder, qwen2, llama-bpe/llama3, deepseek-coder, default)"
        ),
    };
    Ok(PreTokenizerSpec {
        pre_tokenizer,
        ignore_merges,
    })
}

/// Whether llama.cpp prepends BOS for this pre-tokenizer when the GGUF does not say.
pub(crate) fn default_add_bos(name: &str) -> bool {
    matches!(name, "llama-bpe" | "llama3" | "smaug-bpe" | "falcon3")
}

fn byte_level(use_regex: bool) -> ByteLevel {
    // No prefix space: llama.cpp never adds one for BPE vocabularies.
    ByteLevel::new(false, true, use_regex)
}

fn splits_then_bytes(regexes: &[&str]) -> Result<PreTokenizerWrapper> {
    let mut seq: Vec<PreTokenizerWrapper> = Vec::with_capacity(regexes.len() + 1);
    for re in regexes {
        let split = Split::new(
            SplitPattern::Regex((*re).to_string()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(|e| anyhow::anyhow!("pre-tokenizer regex {re:?}: {e}"))?;
        seq.push(split.into());
    }
    seq.push(byte_level(false).into());
    Ok(Sequence::new(seq).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_pre_tokenizer_builds() {
        for name in [
            "gpt2",
            "smollm",
            "starcoder",
            "qwen2",
            "llama-bpe",
            "llama3",
            "deepseek-coder",
            "default",
        ] {
            assert!(for_name(name).is_ok(), "{name}");
        }
    }

    fn pieces(name: &str, text: &str) -> Vec<String> {
        use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};
        let spec = for_name(name).unwrap();
        let mut pts = PreTokenizedString::from(text);
        spec.pre_tokenizer.pre_tokenize(&mut pts).unwrap();
        pts.get_splits(OffsetReferential::Original, OffsetType::Byte)
            .into_iter()
            .map(|(s, _, _)| s.to_string())
            .collect()
    }

    #[test]
    fn digit_grouping_differs_by_family() {
        let text = "abc 12345";
        assert_eq!(pieces("llama3", text), ["abc", "Ġ", "123", "45"]);
        assert_eq!(pieces("qwen2", text), ["abc", "Ġ", "1", "2", "3", "4", "5"]);
        assert_eq!(
            pieces("smollm", text),
            ["abc", "Ġ", "1", "2", "3", "4", "5"]
        );
        assert_eq!(pieces("gpt2", text), ["abc", "Ġ12345"]);
    }

    #[test]
    fn unknown_name_is_named_in_the_error() {
        let err = for_name("martian").err().unwrap().to_string();
        assert!(err.contains("martian"), "{err}");
    }
}
