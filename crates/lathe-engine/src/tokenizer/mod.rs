//! The text tokenizer: one type over HF `tokenizers`, built from GGUF metadata or from
//! tokenizer.json (+ tokenizer_config.json).
//!
//! Decisions:
//! - Everything is an HF `tokenizers::Tokenizer` underneath, even for GGUF models: one
//!   encoder/decoder implementation, tested for parity against llama.cpp (tests/
//!   tokenizer_parity.rs), and `inner()` for anyone needing offsets or batch encoding.
//! - Special tokens written in the text (`<|im_start|>`) are always parsed as special tokens:
//!   prompts come from chat templates, which write them as text. (Raw-completion clients
//!   that must not be able to inject control tokens are the server's concern.)
//! - `encode(text, add_special_tokens = true)` runs the tokenizer's post-processor, i.e. adds
//!   BOS exactly when [`TextTokenizer::add_bos`] says so.
//! - `eos_token_ids` is a *set of stop tokens*: the declared EOS plus the usual end-of-turn
//!   tokens present as special tokens, because chat models end a turn with a token that is
//!   often not the declared EOS (`<|im_end|>` vs `<|endoftext|>`, `<|eot_id|>` vs
//!   `<|end_of_text|>`).

mod config;
mod gguf;
mod pretokenizer;
mod spm;

use std::path::Path;

use anyhow::{anyhow, Result};
use candle_core::quantized::gguf_file::Content;

/// Tokens that end a turn or a document in common model families. Only those present in a
/// vocabulary as special (or GGUF control) tokens are used.
const END_OF_TURN_TOKENS: &[&str] = &[
    "<|im_end|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<end_of_turn>",
    "<|end|>",
    "<|END_OF_TURN_TOKEN|>",
    "<｜end▁of▁sentence｜>",
    "</s>",
];

/// A tokenizer plus the metadata the engine and server need around it.
#[derive(Debug, Clone)]
pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
    bos_token: Option<String>,
    bos_token_id: Option<u32>,
    eos_token: Option<String>,
    eos_token_ids: Vec<u32>,
    chat_template: Option<String>,
    add_bos: bool,
}

/// What the two builders (GGUF, files) found besides the tokenizer itself.
pub(crate) struct TokenizerMeta {
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    /// Stop ids declared outside `eos_token` (GGUF `eot_token_id`/`eom_token_id`).
    pub extra_eos_ids: Vec<u32>,
    pub chat_template: Option<String>,
    pub add_bos: bool,
}

impl TextTokenizer {
    /// Builds the tokenizer from a GGUF file's `tokenizer.*` metadata (byte-level BPE or
    /// SentencePiece).
    pub fn from_gguf(content: &Content) -> Result<Self> {
        gguf::build(content)
    }

    /// Loads tokenizer.json, plus bos/eos/chat template/add_bos from tokenizer_config.json
    /// when given (and chat_template.jinja next to it when the config has no template).
    pub fn from_files(tokenizer_json: &Path, tokenizer_config_json: Option<&Path>) -> Result<Self> {
        config::build(tokenizer_json, tokenizer_config_json)
    }

    pub(crate) fn assemble(inner: tokenizers::Tokenizer, meta: TokenizerMeta) -> Self {
        let bos_token_id = meta.bos_token.as_deref().and_then(|t| inner.token_to_id(t));
        let mut eos_token_ids = Vec::new();
        let mut push = |id: u32| {
            if !eos_token_ids.contains(&id) {
                eos_token_ids.push(id);
            }
        };
        // The declared EOS first: callers that need "the" EOS id take `eos_token_ids()[0]`.
        if let Some(id) = meta.eos_token.as_deref().and_then(|t| inner.token_to_id(t)) {
            push(id);
        }
        meta.extra_eos_ids.iter().copied().for_each(&mut push);
        let specials = inner.get_added_tokens_decoder();
        for (id, tok) in specials.iter() {
            if tok.special && END_OF_TURN_TOKENS.contains(&tok.content.as_str()) {
                push(*id);
            }
        }
        // Added tokens come from a hash map: sort the tail for a deterministic order.
        let declared = usize::from(meta.eos_token.is_some()) + meta.extra_eos_ids.len();
        let declared = declared.min(eos_token_ids.len());
        eos_token_ids[declared..].sort_unstable();
        Self {
            inner,
            bos_token: meta.bos_token,
            bos_token_id,
            eos_token: meta.eos_token,
            eos_token_ids,
            chat_template: meta.chat_template,
            add_bos: meta.add_bos,
        }
    }

    /// Token ids of `text`. Special tokens written in the text are parsed as such;
    /// `add_special_tokens` adds BOS/EOS as the tokenizer's post-processor says.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode_fast(text, add_special_tokens)
            .map_err(|e| anyhow!("tokenizing: {e}"))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`; invalid UTF-8 (a split multi-byte character) becomes U+FFFD.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| anyhow!("detokenizing: {e}"))
    }

    pub fn bos_token(&self) -> Option<&str> {
        self.bos_token.as_deref()
    }

    pub fn bos_token_id(&self) -> Option<u32> {
        self.bos_token_id
    }

    pub fn eos_token(&self) -> Option<&str> {
        self.eos_token.as_deref()
    }

    /// Every token that ends generation: the declared EOS first, then end-of-turn tokens.
    pub fn eos_token_ids(&self) -> &[u32] {
        &self.eos_token_ids
    }

    pub fn token_to_id(&self, tok: &str) -> Option<u32> {
        self.inner.token_to_id(tok)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Number of ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The Jinja chat template shipped with the model, if any.
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// Whether `encode(prompt, true)` prepends BOS.
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}
