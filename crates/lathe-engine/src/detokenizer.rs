//! Incremental, UTF-8 safe detokenization of a generated token stream.
//!
//! Decoding one token at a time is wrong in two ways: a multi-byte character can be split
//! across byte-level tokens (each half decodes to U+FFFD), and some decoders depend on
//! context (SentencePiece drops the leading space of the first token it sees). So we use the
//! prefix/read-offset technique of TGI and vLLM: decode a small window `ids[prefix..]` and
//! the part already emitted `ids[prefix..read]`, emit the difference, and only move the
//! window forward when the new text does not end in U+FFFD (an incomplete character).
//! Both decodes start at the same token, so context effects cancel and the concatenation of
//! everything emitted equals `decode(all_ids)`.

use std::sync::Arc;

use anyhow::Result;

use crate::tokenizer::TextTokenizer;

const REPLACEMENT: char = '\u{FFFD}';

/// Turns generated token ids into text chunks, one push per token.
#[derive(Debug, Clone)]
pub struct IncrementalDetokenizer {
    tokenizer: Arc<TextTokenizer>,
    skip_special_tokens: bool,
    ids: Vec<u32>,
    /// Start of the decode window (context for the tokens not yet emitted).
    prefix_offset: usize,
    /// Tokens before this index have been emitted.
    read_offset: usize,
}

impl IncrementalDetokenizer {
    pub fn new(tokenizer: Arc<TextTokenizer>, skip_special_tokens: bool) -> Self {
        Self {
            tokenizer,
            skip_special_tokens,
            ids: Vec::new(),
            prefix_offset: 0,
            read_offset: 0,
        }
    }

    /// Every id pushed so far.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// Feeds one generated token; returns the newly completed text (empty while a
    /// multi-byte character is incomplete or the token decodes to nothing).
    pub fn push(&mut self, token: u32) -> Result<String> {
        self.ids.push(token);
        let (prefix_text, new_text) = self.window()?;
        if new_text.len() > prefix_text.len() && !new_text.ends_with(REPLACEMENT) {
            let out = suffix_after(&new_text, &prefix_text);
            self.prefix_offset = self.read_offset;
            self.read_offset = self.ids.len();
            Ok(out)
        } else {
            Ok(String::new())
        }
    }

    /// Whatever has not been emitted yet, U+FFFD standing in for incomplete bytes.
    pub fn flush(&mut self) -> String {
        let out = match self.window() {
            Ok((prefix_text, new_text)) => suffix_after(&new_text, &prefix_text),
            Err(_) => String::new(),
        };
        self.prefix_offset = self.ids.len();
        self.read_offset = self.ids.len();
        out
    }

    /// (text of the emitted context, text of the whole window).
    fn window(&self) -> Result<(String, String)> {
        let tk = &self.tokenizer;
        let skip = self.skip_special_tokens;
        let prefix = tk.decode(&self.ids[self.prefix_offset..self.read_offset], skip)?;
        let new = tk.decode(&self.ids[self.prefix_offset..], skip)?;
        Ok((prefix, new))
    }
}

/// `new` minus its leading `prefix`. Decoders that rewrite context could break the prefix
/// relation; then we cut at the nearest char boundary rather than panic.
fn suffix_after(new: &str, prefix: &str) -> String {
    if let Some(rest) = new.strip_prefix(prefix) {
        return rest.to_string();
    }
    let mut cut = prefix.len().min(new.len());
    while !new.is_char_boundary(cut) {
        cut += 1;
    }
    new[cut..].to_string()
}
