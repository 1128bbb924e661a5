//! Streaming text: the incremental detokenizer on the default model's tokenizer and the
//! stop-string matcher, both checked against their one-shot equivalents.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use candle_core::quantized::gguf_file;
use lathe_engine::detokenizer::IncrementalDetokenizer;
use lathe_engine::stop::{StopMatcher, StopOutcome};
use lathe_engine::tokenizer::TextTokenizer;

/// Resolved once per test binary: the first call may download the model, and concurrent
/// tests must not race on that.
fn gguf_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        lathe_models::default_model::test_gguf_path().expect("the test model (SmolLM2)")
    })
    .clone()
}

fn tokenizer() -> Arc<TextTokenizer> {
    static TK: OnceLock<Arc<TextTokenizer>> = OnceLock::new();
    TK.get_or_init(|| {
        let mut file = std::fs::File::open(gguf_path()).unwrap();
        let content = gguf_file::Content::read(&mut file).unwrap();
        Arc::new(TextTokenizer::from_gguf(&content).unwrap())
    })
    .clone()
}

/// A tiny deterministic generator (64-bit LCG, Knuth's constants): no rand dependency.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Streams `ids` through the detokenizer; returns every push's output and the flush.
fn stream(ids: &[u32], skip_special: bool) -> (Vec<String>, String) {
    let mut detok = IncrementalDetokenizer::new(tokenizer(), skip_special);
    let pieces = ids.iter().map(|&id| detok.push(id).unwrap()).collect();
    (pieces, detok.flush())
}

#[test]
fn emoji_and_cjk_split_across_byte_tokens_stream_cleanly() {
    let tk = tokenizer();
    let text = "Launch 🚀🚀 to 東京 and 서울 — naïve ✓ done";
    let ids = tk.encode(text, false).unwrap();
    // The premise: some characters really are split over several tokens.
    let split = ids
        .iter()
        .any(|&id| tk.decode(&[id], false).unwrap().contains('\u{FFFD}'));
    assert!(split, "expected byte-level tokens in {ids:?}");

    let (pieces, rest) = stream(&ids, false);
    for p in &pieces {
        assert!(
            !p.contains('\u{FFFD}'),
            "partial character emitted: {pieces:?}"
        );
    }
    assert!(
        pieces.iter().any(String::is_empty),
        "a push should have held bytes back"
    );
    assert_eq!(rest, "");
    assert_eq!(pieces.concat(), text);
}

#[test]
fn concatenation_equals_one_shot_decode_on_parity_texts() {
    let tk = tokenizer();
    let texts = [
        "def f(x):\n    return x  # comment\n",
        "  leading and trailing  ",
        "<|im_start|>assistant\nHi 👋🏽 there<|im_end|>\n",
        "mixed 日本語 text with 1234 digits",
    ];
    for text in texts {
        let ids = tk.encode(text, false).unwrap();
        for skip in [false, true] {
            let (pieces, rest) = stream(&ids, skip);
            let want = tk.decode(&ids, skip).unwrap();
            assert_eq!(pieces.concat() + &rest, want, "{text:?} skip={skip}");
        }
    }
}

#[test]
fn random_token_streams_match_one_shot_decode() {
    let tk = tokenizer();
    let vocab = tk.vocab_size();
    let mut rng = Lcg(0x5eed);
    for _ in 0..200 {
        let len = 1 + rng.below(24);
        // Mostly low ids (single bytes and short pieces, where splits happen), some others.
        let ids: Vec<u32> = (0..len)
            .map(|_| if rng.below(3) == 0 { rng.below(vocab) } else { rng.below(300) } as u32)
            .collect();
        for skip in [false, true] {
            let (pieces, rest) = stream(&ids, skip);
            let want = tk.decode(&ids, skip).unwrap();
            assert_eq!(pieces.concat() + &rest, want, "{ids:?} skip={skip}");
        }
    }
}

#[test]
fn flush_returns_an_incomplete_tail_lossily() {
    let tk = tokenizer();
    let ids = tk.encode("ok 🚀", false).unwrap();
    let cut = &ids[..ids.len() - 1];
    let (pieces, rest) = stream(cut, false);
    assert!(!pieces.concat().contains('\u{FFFD}'), "{pieces:?}");
    assert!(rest.ends_with('\u{FFFD}'), "{rest:?}");
    assert_eq!(pieces.concat() + &rest, tk.decode(cut, false).unwrap());
}

fn push_all(m: &mut StopMatcher, chunks: &[&str]) -> (String, Option<StopOutcome>) {
    let mut out = String::new();
    for c in chunks {
        let o = m.push(c);
        out.push_str(&o.text);
        if o.stopped {
            return (out, Some(o));
        }
    }
    (out, None)
}

#[test]
fn stop_split_over_many_pushes_never_leaks() {
    let mut m = StopMatcher::new(vec!["</stop>".into()]);
    let (out, stop) = push_all(&mut m, &["ab", "c", "</", "stop", ">", "tail"]);
    assert_eq!(out, "abc");
    let stop = stop.expect("stopped");
    assert_eq!(stop.matched.as_deref(), Some("</stop>"));
    // After a stop nothing more comes out.
    assert_eq!(m.push("more").text, "");
    assert_eq!(m.flush(), "");
}

#[test]
fn held_prefix_is_released_when_it_stops_matching() {
    let mut m = StopMatcher::new(vec!["</stop>".into()]);
    assert_eq!(m.push("a </st").text, "a ");
    assert_eq!(m.push("ep").text, "</step");
    assert_eq!(m.push(" <").text, " ");
    assert_eq!(m.flush(), "<");
}

#[test]
fn the_stop_that_completes_first_wins() {
    // "lo w" completes before "world" does, though "world" is longer.
    let mut m = StopMatcher::new(vec!["world".into(), "lo w".into()]);
    let o = m.push("hello world");
    assert_eq!((o.text.as_str(), o.stopped), ("hel", true));
    assert_eq!(o.matched.as_deref(), Some("lo w"));

    // Same end: the longer (earlier-starting) stop wins.
    let mut m = StopMatcher::new(vec!["c".into(), "abc".into()]);
    let o = m.push("xxabcyy");
    assert_eq!((o.text.as_str(), o.matched.as_deref()), ("xx", Some("abc")));
}

#[test]
fn random_chunkings_agree_with_the_one_shot_answer() {
    let text = "The answer is <eot> maybe, or ##END## after ```code``` </s> ok";
    let stop_sets: [&[&str]; 4] = [
        &["</s>"],
        &["##END##", "```"],
        &["<eot>", "eot> maybe"],
        &["never-there"],
    ];
    let mut rng = Lcg(42);
    for stops in stop_sets {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let (want_text, want_stop) = {
            let mut m = StopMatcher::new(stops.clone());
            let o = m.push(text);
            (o.text.clone() + &m.flush(), o.matched)
        };
        for _ in 0..300 {
            let mut m = StopMatcher::new(stops.clone());
            let mut out = String::new();
            let mut matched = None;
            let mut rest = text;
            while !rest.is_empty() && matched.is_none() {
                let mut cut = (1 + rng.below(6)).min(rest.len());
                while !rest.is_char_boundary(cut) {
                    cut += 1;
                }
                let (chunk, tail) = rest.split_at(cut);
                rest = tail;
                let o = m.push(chunk);
                out.push_str(&o.text);
                matched = o.matched;
                // Whatever has been emitted must never contain a stop string.
                assert!(stops.iter().all(|s| !out.contains(s.as_str())), "{out:?}");
            }
            out.push_str(&m.flush());
            assert_eq!(
                (out, matched),
                (want_text.clone(), want_stop.clone()),
                "{stops:?}"
            );
        }
    }
}
