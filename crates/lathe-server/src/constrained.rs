//! Constrained decoding with llguidance: `response_format` (json_object, json_schema), forced
//! tool calls (`tool_choice` required or named) and the lazy tool-call grammar of
//! `tool_choice: auto` (`tool_parsers/lazy.rs`) compile to a Lark grammar; each generation gets
//! an `LlgConstraint` implementing the engine's `TokenConstraint`, which masks the logits at
//! every step so that the output always matches.
//!
//! Decisions:
//! - The token trie comes from the engine's HF tokenizer serialized to tokenizer.json
//!   (`token_bytes_from_tokenizer_json`): exact bytes for byte-level BPE and byte-fallback
//!   vocabularies; special tokens are marked so that grammar text can never produce them.
//! - JSON is generated compact with Python-style separators (`{"a": 1, "b": 2}`), no free
//!   whitespace: small models otherwise wander into endless whitespace.
//! - Every stop token of the engine counts as EOS for the grammar: once the grammar may end,
//!   the model may end its turn.
//! - Schemas are compiled when the request is validated, so an invalid one is a 400.
//! - A mask that allows the whole vocabulary (free text under the lazy tool grammar) is
//!   `None` for the engine: no mask to build or apply.

use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use lathe_engine::constraint::TokenConstraint;
use lathe_engine::tokenizer::TextTokenizer;
use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use serde_json::Value;
use toktrie::{SimpleVob, TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};

use crate::tool_parsers::GrammarVocab;

/// Compiles grammars for one tokenizer (built once per server, shared).
pub struct GrammarCompiler {
    factory: ParserFactory,
}

/// A grammar that compiled; cheap to instantiate once per generation.
#[derive(Clone)]
pub struct CompiledGrammar {
    grammar: TopLevelGrammar,
    compiler: Arc<GrammarCompiler>,
}

impl GrammarCompiler {
    /// Builds the token trie for `tokenizer` (tens of milliseconds: call off the runtime).
    pub fn new(tokenizer: &TextTokenizer) -> Result<Self> {
        let words = token_bytes(tokenizer)?;
        let eos: Vec<TokenId> = tokenizer.eos_token_ids().to_vec();
        let first_eos = *eos.first().context("the tokenizer has no EOS token")?;
        let info = TokRxInfo::new(words.len() as u32, first_eos);
        let trie = TokTrie::from(&info, &words).with_eos_tokens(&eos);
        let env: TokEnv = Arc::new(HfEnv {
            trie,
            tokenizer: tokenizer.inner().clone(),
        });
        let mut factory = ParserFactory::new_simple(&env)?;
        factory.quiet();
        Ok(Self { factory })
    }

    /// Compiles a Lark grammar (which may embed `%json {schema}`); errors are the user's.
    pub fn compile(this: &Arc<Self>, lark: &str) -> Result<CompiledGrammar, String> {
        let grammar = TopLevelGrammar::from_lark(lark.to_string());
        let parser =
            catch(|| this.factory.create_parser(grammar.clone())).map_err(|e| e.to_string())?;
        let mut matcher = Matcher::new(Ok(parser));
        if let Some(err) = matcher.get_error() {
            return Err(err);
        }
        // Some grammars compile but cannot produce a first token (a schema whose `$ref`s only
        // lead back to themselves): found here, they are the client's 400, not an empty "stop".
        if let Err(e) = matcher.compute_mask() {
            return Err(format!("the grammar cannot start: {e}"));
        }
        Ok(CompiledGrammar {
            grammar,
            compiler: this.clone(),
        })
    }

    /// The Lark spelling of a literal: a special token by id (text can never produce one), or
    /// a quoted string.
    pub fn literal(&self, text: &str) -> String {
        let trie = self.factory.tok_env().tok_trie();
        match trie.get_special_token(text) {
            Some(id) => format!("<[{id}]>"),
            None => lark_string(text),
        }
    }

    fn trie(&self) -> &TokTrie {
        self.factory.tok_env().tok_trie()
    }
}

impl GrammarVocab for GrammarCompiler {
    fn literal(&self, text: &str) -> String {
        GrammarCompiler::literal(self, text)
    }

    fn single_token(&self, text: &str) -> Option<u32> {
        let trie = self.trie();
        trie.get_special_token(text)
            .or_else(|| trie.token_id(text.as_bytes()))
    }

    fn end_tokens(&self) -> &[u32] {
        self.trie().eos_tokens()
    }
}

impl CompiledGrammar {
    /// A fresh constraint for one generation.
    pub fn constraint(&self) -> Result<LlgConstraint> {
        let parser = catch(|| self.compiler.factory.create_parser(self.grammar.clone()))?;
        let matcher = Matcher::new(Ok(parser));
        if let Some(err) = matcher.get_error() {
            return Err(anyhow!(err));
        }
        let trie = self.compiler.trie();
        // llguidance never allows the token that is the lone special-token marker byte.
        let marker = trie.greedy_tokenize(&[TokTrie::SPECIAL_TOKEN_MARKER]).len() == 1;
        Ok(LlgConstraint {
            matcher,
            everything: trie.vocab_size() - usize::from(marker),
            eos: trie.eos_tokens().to_vec(),
            masks: 0,
            mask_time: Default::default(),
            failed: None,
        })
    }
}

/// The engine-side constraint of one generation.
pub struct LlgConstraint {
    matcher: Matcher,
    /// Allowed tokens in a mask that allows everything llguidance can allow.
    everything: usize,
    eos: Vec<TokenId>,
    masks: usize,
    mask_time: std::time::Duration,
    /// The mask error that ended the generation, if any.
    failed: Option<String>,
}

impl Drop for LlgConstraint {
    fn drop(&mut self) {
        tracing::debug!(
            masks = self.masks,
            total_ms = self.mask_time.as_millis() as u64,
            "grammar constraint done"
        );
    }
}

impl TokenConstraint for LlgConstraint {
    fn mask(&mut self, vocab_size: usize) -> Option<Vec<bool>> {
        let start = std::time::Instant::now();
        let out = match self.matcher.compute_mask_or_eos() {
            Ok(vob) if vob.num_set() >= self.everything => {
                // Free text: every token of the tokenizer. Rows past it (padding of the
                // embedding) stay masked when the model has any.
                (vocab_size > vob.len()).then(|| {
                    let mut out = vec![true; vob.len().min(vocab_size)];
                    out.resize(vocab_size, false);
                    out
                })
            }
            Ok(vob) => Some(expand(&vob, vocab_size)),
            Err(e) => {
                tracing::warn!(error = %e, "grammar mask failed; ending the generation with an error");
                self.failed = Some(format!("the grammar failed mid-generation: {e}"));
                Some(vec![false; vocab_size])
            }
        };
        let out = out.map(|mut out| {
            if !out.iter().any(|&b| b) {
                for &e in &self.eos {
                    if (e as usize) < vocab_size {
                        out[e as usize] = true;
                    }
                }
            }
            out
        });
        self.masks += 1;
        self.mask_time += start.elapsed();
        out
    }

    fn accept(&mut self, token: u32) -> bool {
        if self.failed.is_some() {
            return false;
        }
        if self.matcher.is_stopped() && self.eos.contains(&token) {
            return true;
        }
        self.matcher.consume_token(token).is_ok()
    }

    fn is_finished(&self) -> bool {
        self.matcher.is_stopped()
    }

    fn failure(&self) -> Option<String> {
        self.failed.clone()
    }
}

/// The first `vocab_size` bits of `vob` as bools, a 32-bit word at a time.
fn expand(vob: &SimpleVob, vocab_size: usize) -> Vec<bool> {
    let mut out = vec![false; vocab_size];
    for (chunk, &word) in out.chunks_mut(32).zip(vob.as_slice()) {
        if word == u32::MAX {
            chunk.fill(true);
        } else if word != 0 {
            for (i, b) in chunk.iter_mut().enumerate() {
                *b = word >> i & 1 == 1;
            }
        }
    }
    out
}

/// `start: %json {schema}` with our compact JSON options merged into the schema.
pub fn json_grammar(schema: &Value) -> Result<String, String> {
    Ok(format!("start: {}\n", json_rule(schema)?))
}

/// `%json {schema}` for use inside a larger grammar.
pub fn json_rule(schema: &Value) -> Result<String, String> {
    let mut schema = match schema {
        Value::Object(_) => schema.clone(),
        Value::Bool(true) => serde_json::json!({}),
        _ => return Err("the JSON schema must be an object".into()),
    };
    let obj = schema.as_object_mut().expect("checked above");
    obj.entry("x-guidance").or_insert_with(|| {
        serde_json::json!({"whitespace_flexible": false, "item_separator": ", ", "key_separator": ": "})
    });
    Ok(format!(
        "%json {}",
        serde_json::to_string(&schema).expect("a Value serializes")
    ))
}

/// A Lark string literal (JSON escaping is a subset Lark accepts).
pub fn lark_string(text: &str) -> String {
    serde_json::to_string(text).expect("a str serializes")
}

/// Runs llguidance code that may panic on inputs it did not expect.
fn catch<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(anyhow!("the grammar engine panicked")))
}

/// Bytes of every token id, from tokenizer.json; a lossy per-token decode as a fallback.
fn token_bytes(tokenizer: &TextTokenizer) -> Result<Vec<Vec<u8>>> {
    let vocab = tokenizer.vocab_size();
    let from_json = catch(|| {
        let json: Value = serde_json::from_str(
            &tokenizer
                .inner()
                .to_string(false)
                .map_err(|e| anyhow!("{e}"))?,
        )?;
        llguidance::token_bytes_from_tokenizer_json(&json)
    });
    let mut words = match from_json {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "token bytes from tokenizer.json failed; decoding tokens one by one");
            (0..vocab as u32)
                .map(|id| {
                    tokenizer
                        .decode(&[id], false)
                        .unwrap_or_default()
                        .into_bytes()
                })
                .collect()
        }
    };
    if words.len() < vocab {
        words.resize(vocab, Vec::new());
    }
    Ok(words)
}

/// Tokenizer environment over the HF tokenizer (used by llguidance for literal text).
struct HfEnv {
    trie: TokTrie,
    tokenizer: tokenizers::Tokenizer,
}

impl TokenizerEnv for HfEnv {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        self.trie.tokenize_with_greedy_fallback(s, |text| {
            self.tokenizer
                .encode_fast(text, false)
                .map(|e| e.get_ids().to_vec())
                .unwrap_or_default()
        })
    }
}
