//! Reasoning text of thinking models (registry `reasoning = "think_tags"`): what the model
//! writes before `</think>` is its reasoning, the rest is the answer. Chat completions return
//! it as `reasoning_content` (as vLLM does), the Responses API as a `reasoning` output item.
//!
//! Templates of such models (DeepSeek-R1, Qwen3) often end the prompt with `<think>`, so the
//! output may start inside the reasoning without an opening tag: generation starts in
//! reasoning, a leading `<think>` is dropped, and `</think>` switches to the answer. Tags split
//! across tokens are held back until they can be told apart from text.

use crate::tool_parsers::partial_suffix;

const OPEN: &str = "<think>";
const CLOSE: &str = "</think>";

/// A piece of generated text, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Reasoning(String),
    Answer(String),
}

#[derive(Debug, Default)]
pub struct ThinkSplitter {
    /// Past `</think>`: everything is answer.
    answering: bool,
    /// Text held back (a possible tag prefix, or the start before `<think>` is ruled out).
    held: String,
    /// Whether the leading `<think>` was seen or ruled out.
    opened: bool,
}

impl ThinkSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, text: &str) -> Vec<Piece> {
        let mut out = Vec::new();
        if self.answering {
            push_piece(&mut out, Piece::Answer(text.to_string()));
            return out;
        }
        self.held.push_str(text);
        if !self.opened {
            let trimmed = self.held.trim_start();
            if trimmed.len() < OPEN.len() && OPEN.starts_with(trimmed) {
                return out; // still possibly the opening tag
            }
            if let Some(rest) = trimmed.strip_prefix(OPEN) {
                self.held = rest.to_string();
            }
            self.opened = true;
        }
        if let Some(pos) = self.held.find(CLOSE) {
            let reasoning = self.held[..pos].to_string();
            let answer = self.held[pos + CLOSE.len()..].to_string();
            self.held.clear();
            self.answering = true;
            push_piece(&mut out, Piece::Reasoning(reasoning));
            push_piece(&mut out, Piece::Answer(answer));
            return out;
        }
        let keep = partial_suffix(&self.held, CLOSE);
        let emit = self.held[..self.held.len() - keep].to_string();
        self.held.drain(..self.held.len() - keep);
        push_piece(&mut out, Piece::Reasoning(emit));
        out
    }

    /// The generation ended: whatever is held back was reasoning (no `</think>` came).
    pub fn finish(&mut self) -> Vec<Piece> {
        let mut out = Vec::new();
        let held = std::mem::take(&mut self.held);
        if !self.answering {
            push_piece(&mut out, Piece::Reasoning(held));
        }
        out
    }
}

fn push_piece(out: &mut Vec<Piece>, p: Piece) {
    let empty = match &p {
        Piece::Reasoning(s) | Piece::Answer(s) => s.is_empty(),
    };
    if !empty {
        out.push(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&str]) -> (String, String) {
        let mut s = ThinkSplitter::new();
        let mut pieces = Vec::new();
        for c in chunks {
            pieces.extend(s.push(c));
        }
        pieces.extend(s.finish());
        let (mut r, mut a) = (String::new(), String::new());
        for p in pieces {
            match p {
                Piece::Reasoning(t) => r.push_str(&t),
                Piece::Answer(t) => a.push_str(&t),
            }
        }
        (r, a)
    }

    #[test]
    fn tags_split_across_tokens_are_recognised() {
        let (r, a) = split(&["<th", "ink>", "let me ", "see</", "thi", "nk>", "42"]);
        assert_eq!(r, "let me see");
        assert_eq!(a, "42");
    }

    #[test]
    fn output_that_starts_inside_the_reasoning_needs_no_opening_tag() {
        let (r, a) = split(&["hmm, ", "a < b", "</think>\n\nyes"]);
        assert_eq!(r, "hmm, a < b");
        assert_eq!(a, "\n\nyes");
    }

    #[test]
    fn without_a_closing_tag_everything_is_reasoning() {
        let (r, a) = split(&["<think>", "still thinking </thi"]);
        assert_eq!(r, "still thinking </thi");
        assert_eq!(a, "");
    }

    #[test]
    fn text_after_the_answer_starts_is_never_reclassified() {
        let (r, a) = split(&["x</think>", "a <think> b </think> c"]);
        assert_eq!(r, "x");
        assert_eq!(a, "a <think> b </think> c");
    }
}
