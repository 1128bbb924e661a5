//! Tokenizer parity with llama.cpp on its own vocabulary test files (tests/data/llama-cpp-vocab,
//! provenance there): a SentencePiece vocabulary (llama SPM) and two byte-level BPE code-model
//! vocabularies (DeepSeek-Coder, StarCoder). The expected ids were produced by llama.cpp.

use std::path::Path;

use candle_core::quantized::gguf_file;
use lathe_engine::tokenizer::TextTokenizer;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/llama-cpp-vocab");

fn tokenizer(name: &str) -> TextTokenizer {
    let path = Path::new(DATA).join(format!("ggml-vocab-{name}.gguf"));
    let mut file = std::fs::File::open(&path).expect("vocab file");
    let content = gguf_file::Content::read(&mut file).expect("readable GGUF");
    TextTokenizer::from_gguf(&content).expect("tokenizer from GGUF")
}

/// (text, llama.cpp ids) pairs of one vocabulary's `.inp` / `.out` files.
fn cases(name: &str) -> Vec<(String, Vec<u32>)> {
    let read = |ext: &str| {
        std::fs::read_to_string(Path::new(DATA).join(format!("ggml-vocab-{name}.gguf.{ext}")))
            .expect("test file")
    };
    let inp = read("inp");
    // Every case is followed by the separator line.
    let mut texts: Vec<&str> = inp.split("\n__ggml_vocab_test__\n").collect();
    assert_eq!(texts.pop(), Some(""), "{name}: .inp ends with a separator");
    let out = read("out");
    let ids: Vec<Vec<u32>> = out
        .lines()
        .map(|l| l.split_whitespace().map(|t| t.parse().unwrap()).collect())
        .collect();
    assert!(texts.len() >= 30, "{name}: {} cases", texts.len());
    assert_eq!(texts.len(), ids.len(), "{name}: inp/out case counts");
    texts.into_iter().map(String::from).zip(ids).collect()
}

fn check(name: &str) {
    let tk = tokenizer(name);
    let failures: Vec<String> = cases(name)
        .into_iter()
        .filter_map(|(text, want)| {
            let got = tk.encode(&text, false).unwrap();
            (got != want).then(|| format!("{text:?}\n  llama.cpp {want:?}\n  lathe     {got:?}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{name}: {} cases differ from llama.cpp:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn sentencepiece_llama_vocab_matches_llama_cpp() {
    check("llama-spm");
}

#[test]
fn sentencepiece_decodes_what_it_encodes() {
    let tk = tokenizer("llama-spm");
    for text in [
        "Hello world",
        "def f(x):\n    return x  # two  spaces",
        "нещо на Български",
        "🦙.cpp",
    ] {
        let ids = tk.encode(text, false).unwrap();
        assert_eq!(tk.decode(&ids, false).unwrap(), text, "{ids:?}");
    }
    // BOS is added by default for SentencePiece models, as llama.cpp does.
    let with_bos = tk.encode("Hello", true).unwrap();
    assert_eq!(Some(with_bos[0]), tk.bos_token_id());
}

#[test]
fn deepseek_coder_vocab_matches_llama_cpp() {
    check("deepseek-coder");
}

#[test]
fn starcoder_vocab_matches_llama_cpp() {
    check("starcoder");
}
