//! Fill-in-the-middle prompts: `/v1/completions` with a `suffix` lays out prefix and suffix with
//! the model family's FIM tokens (registry `fim`, `FimTokens::layout`): PSM
//! (`<P>prefix<S>suffix<M>`, Qwen, DeepSeek, StarCoder) or SPM (`[SUFFIX]suffix[PREFIX]prefix`,
//! Codestral). Each FIM token must be one token of the vocabulary; user text that contains a
//! FIM token is refused, so a client cannot forge the layout.

use lathe_models::registry::FimTokens;

/// The prompt token ids for `prefix`/`suffix`: BOS when given, then the family's layout.
pub fn fim_prompt(
    tokenizer: &tokenizers::Tokenizer,
    fim: &FimTokens,
    prefix: &str,
    suffix: &str,
    bos: Option<u32>,
) -> Result<Vec<u32>, String> {
    for tok in [&fim.prefix, &fim.suffix, &fim.middle] {
        if tok.is_empty() {
            continue;
        }
        if tokenizer.token_to_id(tok).is_none() {
            return Err(format!(
                "the tokenizer has no `{tok}` token, which this model's FIM layout needs"
            ));
        }
        if prefix.contains(tok.as_str()) || suffix.contains(tok.as_str()) {
            return Err(format!(
                "the prompt and suffix must not contain the FIM token `{tok}`"
            ));
        }
    }
    let text = fim.layout(prefix, suffix);
    let enc = tokenizer
        .encode_fast(text.as_str(), false)
        .map_err(|e| format!("tokenizing: {e}"))?;
    let mut ids: Vec<u32> = bos.into_iter().collect();
    ids.extend_from_slice(enc.get_ids());
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use lathe_models::Registry;
    use serde_json::json;
    use tokenizers::Tokenizer;

    use super::*;

    /// A word-level tokenizer (whitespace split) over a few words plus `specials` as special
    /// added tokens.
    fn tiny_tokenizer(specials: &[&str]) -> Tokenizer {
        let words = ["<unk>", "def", "add(a,", "b):", "return", "a", "+", "b"];
        let vocab: serde_json::Map<String, serde_json::Value> = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.to_string(), json!(i)))
            .collect();
        let added: Vec<serde_json::Value> = specials
            .iter()
            .enumerate()
            .map(|(i, s)| {
                json!({"id": words.len() + i, "content": s, "single_word": false, "lstrip": false,
                       "rstrip": false, "normalized": false, "special": true})
            })
            .collect();
        let spec = json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
            "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": null,
            "decoder": null, "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}
        });
        Tokenizer::from_str(&spec.to_string()).unwrap()
    }

    fn fim_of(model: &str) -> FimTokens {
        Registry::builtin()
            .get(model)
            .unwrap()
            .fim
            .clone()
            .unwrap_or_else(|| panic!("{model} has FIM tokens"))
    }

    /// Expected ids: each piece is either a special token or a word of the tiny vocabulary.
    fn ids(tk: &Tokenizer, pieces: &[&str]) -> Vec<u32> {
        pieces
            .iter()
            .map(|p| tk.token_to_id(p).unwrap_or_else(|| panic!("no id for {p}")))
            .collect()
    }

    const PREFIX: &str = "def add(a, b):";
    const SUFFIX: &str = "return a + b";

    #[test]
    fn psm_families_put_prefix_suffix_middle() {
        for (model, bos) in [
            ("qwen2.5-coder-0.5b", None),
            ("starcoder2-3b", None),
            (
                "deepseek-coder-1.3b-instruct",
                Some("<｜begin▁of▁sentence｜>"),
            ),
        ] {
            let fim = fim_of(model);
            let mut specials = vec![
                fim.prefix.as_str(),
                fim.suffix.as_str(),
                fim.middle.as_str(),
            ];
            specials.extend(bos);
            let tk = tiny_tokenizer(&specials);
            let bos_id = bos.map(|b| tk.token_to_id(b).unwrap());
            let got = fim_prompt(&tk, &fim, PREFIX, SUFFIX, bos_id).unwrap();
            let mut want: Vec<&str> = bos.into_iter().collect();
            want.extend([
                fim.prefix.as_str(),
                "def",
                "add(a,",
                "b):",
                &fim.suffix,
                "return",
                "a",
                "+",
                "b",
                &fim.middle,
            ]);
            assert_eq!(got, ids(&tk, &want), "{model}");
        }
    }

    #[test]
    fn spm_codestral_puts_suffix_first_without_middle() {
        let fim = fim_of("codestral-22b");
        let tk = tiny_tokenizer(&[&fim.prefix, &fim.suffix]);
        let got = fim_prompt(&tk, &fim, PREFIX, SUFFIX, None).unwrap();
        let want = ids(
            &tk,
            &[
                "[SUFFIX]", "return", "a", "+", "b", "[PREFIX]", "def", "add(a,", "b):",
            ],
        );
        assert_eq!(got, want);
    }

    #[test]
    fn refuses_missing_tokens_and_forged_layouts() {
        let fim = fim_of("qwen2.5-coder-0.5b");
        let without = tiny_tokenizer(&[]);
        assert!(fim_prompt(&without, &fim, "a", "b", None)
            .unwrap_err()
            .contains("<|fim_prefix|>"));
        let tk = tiny_tokenizer(&[&fim.prefix, &fim.suffix, &fim.middle]);
        let err = fim_prompt(&tk, &fim, "a <|fim_middle|> b", "c", None).unwrap_err();
        assert!(err.contains("must not contain"), "{err}");
    }
}
