//! Tokenizer parity with llama.cpp on the default model (SmolLM2-135M-Instruct GGUF), plus
//! the metadata the engine reads from the tokenizer and a tokenizer.json round trip.
//!
//! The expected ids in tests/data/smollm2-tokenize.json come from llama.cpp's
//! `/tokenize` (add_special = false, parse_special = true).

use std::path::PathBuf;
use std::sync::OnceLock;

use candle_core::quantized::gguf_file;
use lathe_engine::tokenizer::TextTokenizer;
use serde_json::Value;

/// Resolved once per test binary: the first call may download the model, and concurrent
/// tests must not race on that.
fn gguf_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        lathe_models::default_model::test_gguf_path().expect("the test model (SmolLM2)")
    })
    .clone()
}

fn smollm2() -> TextTokenizer {
    let path = gguf_path();
    let mut file = std::fs::File::open(&path).expect("open gguf");
    let content = gguf_file::Content::read(&mut file).expect("read gguf");
    TextTokenizer::from_gguf(&content).expect("tokenizer from gguf")
}

fn cases() -> Vec<(String, Vec<u32>)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/smollm2-tokenize.json"
    );
    let data: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    data["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let text = c["text"].as_str().unwrap().to_string();
            let ids = c["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_u64().unwrap() as u32)
                .collect();
            (text, ids)
        })
        .collect()
}

#[test]
fn encode_and_decode_match_llama_cpp() {
    let tk = smollm2();
    let mut failures = Vec::new();
    for (text, ids) in cases() {
        let got = tk.encode(&text, false).unwrap();
        if got != ids {
            failures.push(format!("encode {text:?}\n  want {ids:?}\n  got  {got:?}"));
        }
        let back = tk.decode(&ids, false).unwrap();
        if back != text {
            failures.push(format!("decode {ids:?}\n  want {text:?}\n  got  {back:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn metadata_of_the_default_model() {
    let tk = smollm2();
    assert_eq!(tk.vocab_size(), 49152);
    assert_eq!(tk.bos_token(), Some("<|im_start|>"));
    assert_eq!(tk.bos_token_id(), Some(1));
    assert_eq!(tk.eos_token(), Some("<|im_end|>"));
    // Declared EOS first, then the other end-of-turn token of this vocabulary.
    assert_eq!(tk.eos_token_ids(), &[2, 0]);
    assert!(!tk.add_bos());
    assert_eq!(tk.token_to_id("<|im_start|>"), Some(1));
    assert_eq!(tk.id_to_token(2).as_deref(), Some("<|im_end|>"));
    let tpl = tk.chat_template().expect("template in GGUF");
    assert!(tpl.contains("<|im_start|>"), "{tpl}");
}

#[test]
fn special_tokens_are_parsed_and_skippable() {
    let tk = smollm2();
    let ids = tk.encode("<|im_start|>user\nhi<|im_end|>", false).unwrap();
    assert_eq!(ids.first(), Some(&1));
    assert_eq!(ids.last(), Some(&2));
    assert_eq!(tk.decode(&ids, true).unwrap(), "user\nhi");
    // add_bos is false for SmolLM2, so add_special_tokens adds nothing.
    assert_eq!(
        tk.encode("hi", true).unwrap(),
        tk.encode("hi", false).unwrap()
    );
}

#[test]
fn tokenizer_json_round_trip_matches_gguf_build() {
    let tk = smollm2();
    let dir = std::env::temp_dir().join(format!("lathe-tok-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tj = dir.join("tokenizer.json");
    tk.inner().save(&tj, false).unwrap();
    let cfg = dir.join("tokenizer_config.json");
    let cfg_json = serde_json::json!({
        "bos_token": {"content": "<|im_start|>"},
        "eos_token": "<|im_end|>",
        "chat_template": [{"name": "default", "template": tk.chat_template().unwrap()}],
    });
    std::fs::write(&cfg, cfg_json.to_string()).unwrap();

    let loaded = TextTokenizer::from_files(&tj, Some(&cfg)).unwrap();
    for (text, ids) in cases() {
        assert_eq!(loaded.encode(&text, false).unwrap(), ids, "{text:?}");
    }
    assert_eq!(loaded.eos_token_ids(), tk.eos_token_ids());
    assert_eq!(loaded.bos_token_id(), Some(1));
    assert_eq!(loaded.chat_template(), tk.chat_template());
    assert!(!loaded.add_bos());
    std::fs::remove_dir_all(&dir).ok();
}
