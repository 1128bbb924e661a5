//! The tokenizer hook: how the harness counts tokens when the server does not say.
//!
//! Servers that honour `stream_options: {include_usage: true}` (vLLM, lathe, recent
//! llama-server) report exact prompt and completion counts, and those always win. Otherwise the
//! harness asks a [`TokenCounter`]. The default, [`ChunkCounter`], cannot tokenize: it counts one
//! output token per SSE content chunk (true for every server that streams token by token without
//! speculative decoding) and leaves prompt counts to the workload's own estimate. The lathe binary
//! can plug the model's real tokenizer in through [`crate::serve::run_serve_with`].

/// Counts tokens for requests whose server did not report `usage`.
pub trait TokenCounter: Send + Sync {
    /// Short name written into reports ("chunks", "tokenizer:Qwen2.5-Coder", ...).
    fn name(&self) -> &str {
        "chunks"
    }

    /// Tokens in `text`, or `None` when this counter cannot tokenize.
    fn count_text(&self, _text: &str) -> Option<usize> {
        None
    }

    /// Output tokens of one response whose text is `text`, streamed as `content_chunks` chunks.
    fn count_output(&self, text: &str, content_chunks: usize) -> usize {
        self.count_text(text).unwrap_or(content_chunks)
    }
}

/// The default counter: one token per content chunk, no prompt tokenization.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChunkCounter;

impl TokenCounter for ChunkCounter {}

/// Rough token estimate for text when no tokenizer is at hand: 4 characters per token.
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

/// Tokens in `text`: the counter's count when it can tokenize, else `fallback`.
pub fn count_or(counter: &dyn TokenCounter, text: &str, fallback: usize) -> usize {
    counter.count_text(text).unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_counter_counts_chunks() {
        assert_eq!(ChunkCounter.count_output("hello world", 7), 7);
        assert_eq!(ChunkCounter.count_text("hello"), None);
        assert_eq!(estimate_tokens("abcdefghi"), 3);
    }
}
