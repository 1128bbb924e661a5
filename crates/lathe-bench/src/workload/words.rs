//! Word lists for generated text: prompts and identifiers.
//!
//! [`COMMON`] holds short, frequent English words, each a single token (with its leading space)
//! in the BPE vocabularies of the Llama, Qwen, Mistral and GPT families, so a prompt of `n`
//! random words is close to `n` tokens without a tokenizer at hand.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;

pub const COMMON: &[&str] = &[
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by",
    "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an",
    "had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has", "there",
    "been", "if", "more", "when", "will", "would", "who", "so", "no", "she", "other", "its", "may",
    "these", "what", "them", "than", "some", "him", "time", "into", "only", "do", "could", "new",
    "about", "two", "first", "then", "also", "after", "any", "like", "our", "over", "such",
    "people", "most", "made", "should", "used", "between", "many", "before", "must", "through",
    "years", "where", "much", "your", "way", "well", "down", "each", "because", "just", "those",
    "how", "work", "life", "state", "world", "very", "make", "still", "back", "being", "us",
    "same", "both", "long", "own", "under", "while", "last", "here", "might", "never", "day",
    "great", "old", "year", "off", "come", "since", "against", "go", "came", "right", "take",
    "three", "small", "large", "next", "found", "part", "point", "place", "high", "every", "does",
    "number", "case", "water", "system", "group", "light", "home", "hand", "order", "form", "line",
    "city", "power", "name", "end", "left", "house", "data", "model", "code", "file", "value",
    "table", "field", "list", "test", "user", "key", "call", "run", "set", "get", "read", "write",
    "open", "close", "start", "stop", "build", "change", "check", "find", "keep", "move", "need",
    "show", "turn", "help", "play", "give", "tell", "ask", "feel", "seem", "try", "leave", "bring",
    "begin", "hold", "stand", "hear",
];

/// Nouns for identifiers.
pub const NOUNS: &[&str] = &[
    "user", "order", "item", "account", "session", "token", "buffer", "record", "entry", "config",
    "request", "response", "message", "event", "handler", "worker", "task", "job", "queue",
    "cache", "block", "page", "node", "edge", "graph", "tree", "index", "batch", "stream", "chunk",
    "frame", "packet", "invoice", "payment", "customer", "product", "cart", "report", "metric",
    "sample", "shard", "replica", "lease", "ticket", "profile", "image",
];

/// Verbs for function names.
pub const VERBS: &[&str] = &[
    "load",
    "save",
    "parse",
    "build",
    "update",
    "remove",
    "insert",
    "find",
    "validate",
    "compute",
    "merge",
    "split",
    "flush",
    "fetch",
    "render",
    "encode",
    "decode",
    "resolve",
    "collect",
    "schedule",
    "refresh",
    "apply",
    "normalize",
    "register",
    "emit",
    "sync",
];

/// `n` random words from [`COMMON`], space-separated.
pub fn random_text(n: usize, rng: &mut StdRng) -> String {
    let mut s = String::with_capacity(n * 6);
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(COMMON.choose(rng).expect("non-empty"));
    }
    s
}

pub fn pick<'a>(list: &[&'a str], rng: &mut StdRng) -> &'a str {
    list.choose(rng).expect("non-empty list")
}

/// `word` with its first letter upper-cased.
pub fn capitalize(word: &str) -> String {
    let mut c = word.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
