//! Fill-in-the-middle prompts, for `/v1/completions` with a `suffix` and llama.cpp's `/infill`.
//!
//! The pieces are laid out with the model family's FIM tokens (registry `fim`): PSM
//! (`<P>prefix<S>suffix<M>`, Qwen, DeepSeek, StarCoder) or SPM (`[SUFFIX]suffix[PREFIX]prefix`,
//! Codestral). With other files of the project (`extra_context` / `input_extra`) and a model
//! that has repo-level tokens, the layout is Qwen2.5-Coder's repo-level one (llama.cpp's
//! `format_infill` builds the same):
//!
//! ```text
//! <|repo_name|>{repo}\n
//! <|file_sep|>{filename}\n{text}\n        (one per extra file; `\n` only if text lacks one)
//! <|file_sep|>{current filename}\n
//! <|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>{middle}
//! ```
//!
//! Without a `file_sep` token, extra files go before the FIM prefix as llama.cpp's
//! `\n\n--- snippet ---\n\n{text}` blocks (the repo name is then dropped), as llama.cpp does.
//!
//! User text is tokenized literally: a FIM (or any special) token written in the prefix, a
//! file, a filename... becomes plain text tokens, so a client cannot forge the layout and an
//! editor sending a file that mentions `<|fim_prefix|>` still works.
//!
//! Budget (when the whole prompt does not fit `budget` tokens; llama.cpp's rule, see
//! [`fim_prompt`]): the layout tokens always stay; the suffix gets at most a quarter of a
//! 2048-token core and the prefix the rest of it; the extra files fill what the window leaves,
//! whole files, the last ones (nearest to the current file) first; space still free goes back to
//! the prefix, then the suffix. The prefix loses its start, the suffix its end.

use lathe_engine::tokenizer::TextTokenizer;
use lathe_models::registry::{FimOrder, FimTokens};
use tokenizers::Tokenizer;

/// Prefix + suffix share of the budget before extra files get any (llama.cpp's `n_batch`
/// default; it keeps the FIM part in one batch).
pub const FIM_CORE_TOKENS: usize = 2048;
/// Repository name when a repo-level layout needs one and the request gives none (llama.cpp).
pub const DEFAULT_REPO_NAME: &str = "myproject";
/// Current file name when the request gives none (llama.cpp).
pub const DEFAULT_FILENAME: &str = "filename";
/// Name of an extra file that came without one (llama.cpp).
pub const DEFAULT_EXTRA_FILENAME: &str = "tmp";
/// llama.cpp's separator before an extra file when the model has no `file_sep` token.
const SNIPPET_SEPARATOR: &str = "\n\n--- snippet ---\n\n";

/// One other file of the project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChunk {
    pub filename: String,
    pub text: String,
}

/// What a FIM prompt is made of.
#[derive(Debug, Clone, Default)]
pub struct FimRequest {
    pub prefix: String,
    pub suffix: String,
    /// The start of the middle, after the middle token (`/infill`'s `prompt`).
    pub middle: String,
    pub extra: Vec<FileChunk>,
    pub repo_name: Option<String>,
    /// The current file's name.
    pub filename: Option<String>,
}

impl FimRequest {
    /// Whether the repo-level layout is asked for (when the model has the tokens).
    fn wants_repo(&self) -> bool {
        !self.extra.is_empty() || self.repo_name.is_some() || self.filename.is_some()
    }
}

/// The FIM tokens of the served model: the registry's, else (until model loading detects them
/// in any vocabulary) Qwen/StarCoder-style `<|fim_prefix|>` tokens found in the tokenizer.
pub fn model_fim(info: &lathe_engine::ModelInfo) -> Option<FimTokens> {
    info.fim.clone().or_else(|| detect(info.tokenizer.inner()))
}

/// `<|fim_prefix|>`, `<|fim_suffix|>`, `<|fim_middle|>` when the vocabulary has all three.
pub fn detect(tok: &Tokenizer) -> Option<FimTokens> {
    let [p, s, m] = ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"];
    if [p, s, m].iter().any(|t| tok.token_to_id(t).is_none()) {
        return None;
    }
    Some(FimTokens {
        prefix: p.into(),
        suffix: s.into(),
        middle: m.into(),
        order: FimOrder::Psm,
        repo_name: None,
        file_sep: None,
        pad: None,
        stop: Vec::new(),
    })
}

/// A family's FIM tokens as ids of one vocabulary.
#[derive(Debug, Clone)]
pub struct FimVocab {
    prefix: u32,
    suffix: u32,
    middle: Option<u32>,
    order: FimOrder,
    repo_name: Option<u32>,
    file_sep: Option<u32>,
    bos: Option<u32>,
    /// Tokens a FIM generation stops on: pad, file separator, `<|endoftext|>`, `fim.stop`.
    pub stop: Vec<u32>,
    /// Every special token's text (user text is cut so that none of them is parsed).
    specials: Vec<String>,
}

impl FimVocab {
    /// Looks the tokens up; BOS goes first when the tokenizer adds one.
    pub fn of_model(tok: &TextTokenizer, fim: &FimTokens) -> Result<Self, String> {
        let bos = if tok.add_bos() {
            tok.bos_token_id()
        } else {
            None
        };
        Self::new(tok.inner(), fim, bos)
    }

    /// Looks the tokens up. Prefix and suffix (and the middle token, unless the family has
    /// none) must be single tokens; repo-level and stop tokens are optional. Fields the
    /// registry leaves empty are looked up by the family's naming (`<|fim_prefix|>` →
    /// `<|repo_name|>`, `<|file_sep|>`, `<|fim_pad|>`; `<fim_prefix>` → `<repo_name>`...).
    pub fn new(tok: &Tokenizer, fim: &FimTokens, bos: Option<u32>) -> Result<Self, String> {
        let need = |t: &str| {
            tok.token_to_id(t).ok_or_else(|| {
                format!("the tokenizer has no `{t}` token, which this model's FIM layout needs")
            })
        };
        let named = |field: &Option<String>, name: &str| -> Option<u32> {
            match field {
                Some(t) => tok.token_to_id(t),
                None if fim.prefix.contains("fim_prefix") => {
                    tok.token_to_id(&fim.prefix.replace("fim_prefix", name))
                }
                None => None,
            }
        };
        let file_sep = named(&fim.file_sep, "file_sep");
        let mut stop: Vec<u32> = Vec::new();
        let pad = named(&fim.pad, "fim_pad");
        let eot = tok.token_to_id("<|endoftext|>");
        let listed = fim.stop.iter().filter_map(|t| tok.token_to_id(t));
        for id in pad.into_iter().chain(file_sep).chain(eot).chain(listed) {
            if !stop.contains(&id) {
                stop.push(id);
            }
        }
        let mut specials: Vec<String> = tok
            .get_added_tokens_decoder()
            .into_values()
            .filter(|t| t.special && !t.content.is_empty())
            .map(|t| t.content)
            .collect();
        specials.sort();
        Ok(Self {
            prefix: need(&fim.prefix)?,
            suffix: need(&fim.suffix)?,
            middle: if fim.middle.is_empty() {
                None
            } else {
                Some(need(&fim.middle)?)
            },
            order: fim.order,
            repo_name: named(&fim.repo_name, "repo_name"),
            file_sep,
            bos,
            stop,
            specials,
        })
    }

    /// Whether extra files get the repo-level layout (else llama.cpp's snippet blocks).
    pub fn has_repo_level(&self) -> bool {
        self.file_sep.is_some()
    }

    /// Token ids of user text, special-token text included as plain text: the text is cut
    /// one character into every occurrence of a special token and the pieces are tokenized
    /// apart, so no piece holds a whole special token.
    pub fn encode_literal(&self, tok: &Tokenizer, text: &str) -> Result<Vec<u32>, String> {
        let mut cuts: Vec<usize> = Vec::new();
        for s in &self.specials {
            let step = s.chars().next().map_or(1, char::len_utf8);
            cuts.extend(text.match_indices(s.as_str()).map(|(i, _)| i + step));
        }
        cuts.sort_unstable();
        cuts.dedup();
        let mut ids = Vec::new();
        let mut start = 0;
        for end in cuts.into_iter().chain([text.len()]) {
            if end > start {
                let enc = tok
                    .encode_fast(&text[start..end], false)
                    .map_err(|e| format!("tokenizing: {e}"))?;
                ids.extend_from_slice(enc.get_ids());
            }
            start = end;
        }
        Ok(ids)
    }
}

/// A laid-out FIM prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FimPrompt {
    pub ids: Vec<u32>,
    /// Whether the budget cut anything (prefix start, suffix end, extra files).
    pub truncated: bool,
    /// How many extra files made it in.
    pub extra_used: usize,
}

/// Lays out `req` in at most `budget` tokens (see the module docs for the rule). Fails only
/// when the layout tokens and the middle alone do not fit.
pub fn fim_prompt(
    tok: &Tokenizer,
    v: &FimVocab,
    req: &FimRequest,
    budget: usize,
) -> Result<FimPrompt, String> {
    let enc = |t: &str| v.encode_literal(tok, t);
    let repo_layout = v.has_repo_level() && req.wants_repo();
    // The head: repo name (repo layout only). Kept whole.
    let mut head: Vec<u32> = v.bos.into_iter().collect();
    if let (true, Some(r)) = (repo_layout, v.repo_name) {
        head.push(r);
        let name = req.repo_name.as_deref().unwrap_or(DEFAULT_REPO_NAME);
        head.extend(enc(&format!("{name}\n"))?);
    }
    // Extra files, each whole.
    let mut chunks: Vec<Vec<u32>> = Vec::with_capacity(req.extra.len());
    for c in &req.extra {
        let mut ids = Vec::new();
        match v.file_sep {
            Some(sep) => {
                let nl = if c.text.ends_with('\n') { "" } else { "\n" };
                ids.push(sep);
                ids.extend(enc(&format!("{}\n{}{nl}", c.filename, c.text))?);
            }
            None => ids.extend(enc(&format!("{SNIPPET_SEPARATOR}{}", c.text))?),
        }
        chunks.push(ids);
    }
    // The current file's header, then the FIM pieces.
    let mut file_head = Vec::new();
    if let (true, Some(sep)) = (repo_layout, v.file_sep) {
        file_head.push(sep);
        let name = req.filename.as_deref().unwrap_or(DEFAULT_FILENAME);
        file_head.extend(enc(&format!("{name}\n"))?);
    }
    let prefix = enc(&req.prefix)?;
    let suffix = enc(&req.suffix)?;
    let middle = enc(&req.middle)?;
    let fixed = head.len() + file_head.len() + 2 + usize::from(v.middle.is_some()) + middle.len();
    if fixed > budget {
        return Err(format!(
            "the FIM layout and the middle prompt alone take {fixed} tokens, more than the \
             {budget} the context window leaves"
        ));
    }
    let avail = budget - fixed;
    let extra_total: usize = chunks.iter().map(Vec::len).sum();
    let (mut n_pre, mut n_suf, n_chunks) = if prefix.len() + suffix.len() + extra_total <= avail {
        (prefix.len(), suffix.len(), chunks.len())
    } else {
        let core = avail.min(FIM_CORE_TOKENS);
        let n_suf = suffix.len().min(core / 4);
        let n_pre = prefix.len().min(core - n_suf);
        let mut left = avail - n_suf - n_pre;
        let mut n_chunks = 0;
        for c in chunks.iter().rev() {
            if c.len() > left {
                break;
            }
            left -= c.len();
            n_chunks += 1;
        }
        (n_pre, n_suf, n_chunks)
    };
    let used: usize = n_pre
        + n_suf
        + chunks[chunks.len() - n_chunks..]
            .iter()
            .map(Vec::len)
            .sum::<usize>();
    let mut left = avail - used;
    let grow = (prefix.len() - n_pre).min(left);
    n_pre += grow;
    left -= grow;
    n_suf += (suffix.len() - n_suf).min(left);
    let truncated = n_pre < prefix.len() || n_suf < suffix.len() || n_chunks < chunks.len();

    let mut ids = head;
    for c in &chunks[chunks.len() - n_chunks..] {
        ids.extend_from_slice(c);
    }
    ids.extend(file_head);
    let pre_part = |ids: &mut Vec<u32>| {
        ids.push(v.prefix);
        ids.extend_from_slice(&prefix[prefix.len() - n_pre..]);
    };
    let suf_part = |ids: &mut Vec<u32>| {
        ids.push(v.suffix);
        ids.extend_from_slice(&suffix[..n_suf]);
    };
    match v.order {
        FimOrder::Psm => {
            pre_part(&mut ids);
            suf_part(&mut ids);
        }
        FimOrder::Spm => {
            suf_part(&mut ids);
            pre_part(&mut ids);
        }
    }
    ids.extend(v.middle);
    ids.extend(middle);
    Ok(FimPrompt {
        ids,
        truncated,
        extra_used: n_chunks,
    })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use lathe_models::Registry;
    use serde_json::json;

    use super::*;

    /// A word-level tokenizer (whitespace split) over a few words plus `specials` as special
    /// added tokens.
    fn tiny_tokenizer(specials: &[&str]) -> Tokenizer {
        let words = [
            "<unk>",
            "def",
            "add(a,",
            "b):",
            "return",
            "a",
            "+",
            "b",
            "myproject",
            "filename",
            "utils.py",
            "main.py",
            "x",
            "=",
            "1",
            "2",
            "3",
            "4",
            "5",
            "6",
            "7",
            "8",
            "9",
        ];
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
    const QWEN_SPECIALS: [&str; 6] = [
        "<|fim_prefix|>",
        "<|fim_suffix|>",
        "<|fim_middle|>",
        "<|fim_pad|>",
        "<|repo_name|>",
        "<|file_sep|>",
    ];

    fn plain(prefix: &str, suffix: &str) -> FimRequest {
        FimRequest {
            prefix: prefix.into(),
            suffix: suffix.into(),
            ..Default::default()
        }
    }

    fn build(tk: &Tokenizer, fim: &FimTokens, req: &FimRequest, budget: usize) -> FimPrompt {
        let v = FimVocab::new(tk, fim, None).unwrap();
        fim_prompt(tk, &v, req, budget).unwrap()
    }

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
            let v = FimVocab::new(&tk, &fim, bos_id).unwrap();
            let got = fim_prompt(&tk, &v, &plain(PREFIX, SUFFIX), 1000).unwrap();
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
            assert_eq!(got.ids, ids(&tk, &want), "{model}");
            assert!(!got.truncated);
        }
    }

    #[test]
    fn spm_codestral_puts_suffix_first_without_middle() {
        let fim = fim_of("codestral-22b");
        let tk = tiny_tokenizer(&[&fim.prefix, &fim.suffix]);
        let got = build(&tk, &fim, &plain(PREFIX, SUFFIX), 1000);
        let want = ids(
            &tk,
            &[
                "[SUFFIX]", "return", "a", "+", "b", "[PREFIX]", "def", "add(a,", "b):",
            ],
        );
        assert_eq!(got.ids, want);
    }

    #[test]
    fn qwen_repo_level_layout() {
        let fim = fim_of("qwen2.5-coder-0.5b");
        let tk = tiny_tokenizer(&QWEN_SPECIALS);
        let req = FimRequest {
            extra: vec![FileChunk {
                filename: "utils.py".into(),
                text: "x = 1".into(),
            }],
            filename: Some("main.py".into()),
            middle: "return".into(),
            ..plain(PREFIX, SUFFIX)
        };
        let got = build(&tk, &fim, &req, 1000);
        let want = ids(
            &tk,
            &[
                "<|repo_name|>",
                "myproject",
                "<|file_sep|>",
                "utils.py",
                "x",
                "=",
                "1",
                "<|file_sep|>",
                "main.py",
                "<|fim_prefix|>",
                "def",
                "add(a,",
                "b):",
                "<|fim_suffix|>",
                "return",
                "a",
                "+",
                "b",
                "<|fim_middle|>",
                "return",
            ],
        );
        assert_eq!(got.ids, want);
        assert_eq!(got.extra_used, 1);
        let v = FimVocab::new(&tk, &fim, None).unwrap();
        assert_eq!(
            v.stop,
            ids(&tk, &["<|fim_pad|>", "<|file_sep|>"]),
            "pad and file_sep found by name"
        );
    }

    #[test]
    fn extra_files_without_repo_tokens_become_snippets() {
        let fim = fim_of("deepseek-coder-1.3b-instruct");
        let tk = tiny_tokenizer(&[&fim.prefix, &fim.suffix, &fim.middle]);
        let req = FimRequest {
            extra: vec![FileChunk {
                filename: "utils.py".into(),
                text: "x = 1".into(),
            }],
            repo_name: Some("proj".into()),
            ..plain(PREFIX, SUFFIX)
        };
        let got = build(&tk, &fim, &req, 1000);
        // "--- snippet ---" words are unknown to the tiny vocabulary.
        let unk = tk.token_to_id("<unk>").unwrap();
        let want: Vec<u32> = [unk, unk, unk]
            .into_iter()
            .chain(ids(
                &tk,
                &["x", "=", "1", &fim.prefix, "def", "add(a,", "b):"],
            ))
            .chain(ids(
                &tk,
                &[&fim.suffix, "return", "a", "+", "b", &fim.middle],
            ))
            .collect();
        assert_eq!(got.ids, want);
    }

    #[test]
    fn budget_cuts_prefix_start_suffix_end_and_keeps_the_last_files() {
        let fim = fim_of("qwen2.5-coder-0.5b");
        let tk = tiny_tokenizer(&QWEN_SPECIALS);
        let digits = |r: std::ops::RangeInclusive<u32>| {
            r.map(|d| d.to_string()).collect::<Vec<_>>().join(" ")
        };
        let req = FimRequest {
            prefix: digits(1..=9),
            suffix: digits(1..=9),
            extra: vec![
                FileChunk {
                    filename: "utils.py".into(),
                    text: "x = 1".into(),
                },
                FileChunk {
                    filename: "main.py".into(),
                    text: "x = 2".into(),
                },
            ],
            ..Default::default()
        };
        let full = build(&tk, &fim, &req, 1000);
        assert!(!full.truncated);
        // head 2 + files 5 + 5 + current-file header 2 + prefix 9 + suffix 9 + 3 specials = 35
        assert_eq!(full.ids.len(), 35);
        // 24 tokens: 7 fixed, 17 left. Core: suffix 4 (a quarter), prefix all 9; 4 left, where
        // no file (5 each) fits; those 4 go back to the suffix (8 of 9).
        let cut = build(&tk, &fim, &req, 24);
        assert!(cut.truncated);
        assert_eq!(cut.extra_used, 0);
        assert_eq!(cut.ids.len(), 24);
        let want = ids(
            &tk,
            &[
                "<|repo_name|>",
                "myproject",
                "<|file_sep|>",
                "filename",
                "<|fim_prefix|>",
                "1",
                "2",
                "3",
                "4",
                "5",
                "6",
                "7",
                "8",
                "9",
                "<|fim_suffix|>",
                "1",
                "2",
                "3",
                "4",
                "5",
                "6",
                "7",
                "8",
                "<|fim_middle|>",
            ],
        );
        assert_eq!(cut.ids, want);
        // 29 tokens: 22 left: core suffix 5, prefix 9, files 8 left → the last file (5) only,
        // then 3 back to the suffix (8 of 9).
        let cut = build(&tk, &fim, &req, 29);
        assert_eq!(cut.extra_used, 1);
        assert_eq!(cut.ids.len(), 29);
        assert_eq!(
            &cut.ids[2..7],
            &ids(&tk, &["<|file_sep|>", "main.py", "x", "=", "2"])[..]
        );
        // 11 tokens, 8 left: suffix 2, prefix 6; the prefix loses its start, the suffix its end.
        let req = plain(&digits(1..=9), &digits(1..=9));
        let cut = build(&tk, &fim, &req, 11);
        let want = ids(
            &tk,
            &[
                "<|fim_prefix|>",
                "4",
                "5",
                "6",
                "7",
                "8",
                "9",
                "<|fim_suffix|>",
                "1",
                "2",
                "<|fim_middle|>",
            ],
        );
        assert_eq!(cut.ids, want);
        // The layout alone does not fit.
        let v = FimVocab::new(&tk, &fim, None).unwrap();
        assert!(fim_prompt(&tk, &v, &req, 2).is_err());
    }

    #[test]
    fn refuses_missing_tokens_and_tokenizes_forged_specials_as_text() {
        let fim = fim_of("qwen2.5-coder-0.5b");
        let without = tiny_tokenizer(&[]);
        assert!(FimVocab::new(&without, &fim, None)
            .unwrap_err()
            .contains("<|fim_prefix|>"));
        let tk = tiny_tokenizer(&QWEN_SPECIALS);
        let got = build(&tk, &fim, &plain("a <|fim_middle|> b", "c"), 100);
        let middle = tk.token_to_id("<|fim_middle|>").unwrap();
        assert_eq!(got.ids.iter().filter(|&&i| i == middle).count(), 1);
        assert_eq!(got.ids.last(), Some(&middle));
    }
}
