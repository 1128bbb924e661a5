//! SentencePiece (llama SPM) GGUF vocabularies (`tokenizer.ggml.model = "llama"`) as an HF
//! `tokenizers` BPE, tokenizing exactly like llama.cpp's `llm_tokenizer_spm`.
//!
//! llama.cpp's SPM repeatedly merges the adjacent pair whose concatenation is a vocabulary
//! piece with the highest score (leftmost first on ties) and falls back to `<0xXX>` byte
//! tokens for characters outside the vocabulary. A BPE whose merge list holds, for every
//! piece, each split into two pieces ranked by the piece's score (what HF's
//! `SentencePieceExtractor` builds) makes the same choices. Spaces become `▁` and each run of
//! text at the start or after a special token gets one leading `▁` (`add_space_prefix`), which
//! is the `Prepend` normalizer: HF normalizes each segment between added tokens separately.

use anyhow::{anyhow, Result};
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSequence};
use tokenizers::{DecoderWrapper, NormalizerWrapper, Tokenizer};

/// SentencePiece's word-boundary marker.
const SPACE: &str = "\u{2581}";

/// A tokenizer over `tokens` (id order) with their SPM `scores`; `add_space_prefix` as the
/// GGUF says (`tokenizer.ggml.add_space_prefix`, default true).
pub(crate) fn tokenizer(
    tokens: &[String],
    scores: &[f32],
    add_space_prefix: bool,
) -> Result<Tokenizer> {
    let mut vocab = Vocab::default();
    for (id, tok) in tokens.iter().enumerate() {
        vocab.entry(tok.clone()).or_insert(id as u32);
    }
    let merges = merges_by_score(tokens, scores, &vocab);
    let unk = tokens.iter().find(|t| t.as_str() == "<unk>").cloned();
    let mut builder = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .byte_fallback(true)
        .fuse_unk(true);
    if let Some(unk) = unk {
        builder = builder.unk_token(unk);
    }
    let bpe = builder
        .build()
        .map_err(|e| anyhow!("building SPM vocabulary from GGUF: {e}"))?;
    let mut tk = Tokenizer::new(bpe);
    let mut norm: Vec<NormalizerWrapper> = Vec::new();
    if add_space_prefix {
        norm.push(Prepend::new(SPACE.into()).into());
    }
    norm.push(Replace::new(" ", SPACE).map_err(|e| anyhow!("{e}"))?.into());
    tk.with_normalizer(Some(NormalizerSequence::new(norm)));
    let mut dec: Vec<DecoderWrapper> = vec![
        Replace::new(SPACE, " ").map_err(|e| anyhow!("{e}"))?.into(),
        ByteFallback::new().into(),
        Fuse::new().into(),
    ];
    if add_space_prefix {
        dec.push(Strip::new(' ', 1, 0).into());
    }
    tk.with_decoder(Some(DecoderSequence::new(dec)));
    Ok(tk)
}

/// Every split of every piece into two pieces, best-scoring merged piece first (ties: by the
/// merged piece's id, then the split's piece ids — a stable, deterministic order).
fn merges_by_score(tokens: &[String], scores: &[f32], vocab: &Vocab) -> Vec<(String, String)> {
    let mut ranked: Vec<(f32, u32, u32, u32, &str, &str)> = Vec::new();
    for (id, piece) in tokens.iter().enumerate() {
        let score = scores.get(id).copied().unwrap_or(0.0);
        for (at, _) in piece.char_indices().skip(1) {
            let (l, r) = piece.split_at(at);
            if let (Some(&li), Some(&ri)) = (vocab.get(l), vocab.get(r)) {
                ranked.push((score, id as u32, li, ri, l, r));
            }
        }
    }
    ranked.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(a.1.cmp(&b.1))
            .then(a.2.cmp(&b.2))
            .then(a.3.cmp(&b.3))
    });
    ranked
        .into_iter()
        .map(|(_, _, _, _, l, r)| (l.to_string(), r.to_string()))
        .collect()
}
