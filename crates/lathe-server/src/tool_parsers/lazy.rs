//! The "lazy" grammar of `tool_choice: auto` (llama.cpp's lazy grammars): the answer is free
//! text until the model emits the token that opens a call; from there on it must be calls to
//! the offered tools with schema-valid arguments, and after them only the end of the turn.
//!
//! Decisions:
//! - Free text is a token-level set, `<[^open,end…]>*`: any token but the call opener and the
//!   stop tokens (those are the grammar's EOS, allowed wherever the grammar may end). Masks in
//!   free text cost no walk of the token trie, and a call opened by the marker token is seen
//!   at once. A format whose marker is not one token gets no lazy grammar.
//! - Text that spells the marker out of several tokens is free text for the grammar; the
//!   parsers still read it (and hermes' fenced or bare JSON calls) as calls, unconstrained.

/// What a tool grammar needs to know of the vocabulary (implemented by `GrammarCompiler`).
pub trait GrammarVocab {
    /// The Lark spelling of a literal: a special token by id, or a quoted string.
    fn literal(&self, text: &str) -> String;
    /// The id of `text` when it is exactly one token of the vocabulary.
    fn single_token(&self, text: &str) -> Option<u32>;
    /// The tokens that end the turn (the grammar's EOS).
    fn end_tokens(&self) -> &[u32];
}

/// `start: free tail?` where `free` is any token but `opener` and the end tokens, and `tail`
/// (a Lark expression that begins with the `opener` token) is defined with `rules`.
pub(crate) fn lazy_grammar(
    opener: u32,
    vocab: &dyn GrammarVocab,
    tail: &str,
    rules: &str,
) -> String {
    let mut excluded = vec![opener];
    excluded.extend(vocab.end_tokens().iter().copied().filter(|&t| t != opener));
    let excluded: Vec<String> = excluded.iter().map(u32::to_string).collect();
    format!(
        "start: free tail?\nfree: <[^{}]>*\ntail: {tail}\n{rules}",
        excluded.join(",")
    )
}
