//! Config reading: GGUF metadata and config.json → `DecoderConfig`, refusals by key.
use std::collections::HashMap;

use candle_core::quantized::gguf_file::VersionedMagic;

use candle_core::quantized::gguf_file::Value as GgufValue;

use super::*;
use crate::layers::RopeScaling;
use crate::loader::gguf::{GgmlType, GgufFile, TensorInfo};

/// The dense config of a GGUF header.
fn from_gguf(g: &GgufFile, rope_freqs: Option<Vec<f32>>) -> anyhow::Result<DecoderConfig> {
    DecoderConfig::from_gguf(&GgufMeta::new(g)?, rope_freqs, false)
}

/// A qwen2-like header: 896 wide, 14 heads of 64, plus `extra` `qwen2.*` keys.
fn gguf(extra: &[(&str, GgufValue)]) -> GgufFile {
    let mut metadata: HashMap<String, GgufValue> = [
        ("general.architecture", GgufValue::String("qwen2".into())),
        ("qwen2.embedding_length", GgufValue::U32(896)),
        ("qwen2.attention.head_count", GgufValue::U32(14)),
        ("qwen2.attention.head_count_kv", GgufValue::U32(2)),
        ("qwen2.feed_forward_length", GgufValue::U32(4864)),
        ("qwen2.block_count", GgufValue::U32(24)),
        ("qwen2.context_length", GgufValue::U32(32768)),
        ("qwen2.rope.freq_base", GgufValue::F32(1_000_000.0)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra {
        metadata.insert(format!("qwen2.{k}"), v.clone());
    }
    let tensors = HashMap::from([(
        "token_embd.weight".to_string(),
        TensorInfo {
            ggml_type: GgmlType(8),
            dims: vec![151936, 896],
            offset: 0,
        },
    )]);
    GgufFile {
        magic: VersionedMagic::GgufV3,
        metadata,
        tensors,
        data_offset: 0,
    }
}

fn refusal(extra: &[(&str, GgufValue)]) -> String {
    format!("{:#}", from_gguf(&gguf(extra), None).unwrap_err())
}

#[test]
fn gguf_defaults() {
    let c = from_gguf(&gguf(&[]), None).unwrap();
    assert_eq!(
        (c.head_dim, c.vocab_size, c.num_key_value_heads),
        (64, 151936, 2)
    );
    assert_eq!(c.rope_scaling, RopeScaling::None);
    assert_eq!(c.rope_style, RopeStyle::Neox);
    assert!(c.tie_word_embeddings);
}

#[test]
fn gguf_head_dim_comes_from_key_length() {
    let c = from_gguf(
        &gguf(&[
            ("attention.key_length", GgufValue::U32(128)),
            ("attention.value_length", GgufValue::U32(128)),
            ("rope.dimension_count", GgufValue::U32(128)),
        ]),
        None,
    )
    .unwrap();
    assert_eq!(c.head_dim, 128);
    let e = refusal(&[
        ("attention.key_length", GgufValue::U32(128)),
        ("attention.value_length", GgufValue::U32(64)),
    ]);
    assert!(e.contains("qwen2.attention.value_length"), "{e}");
}

#[test]
fn gguf_partial_rotary_is_refused() {
    let e = refusal(&[("rope.dimension_count", GgufValue::U32(32))]);
    assert!(
        e.contains("qwen2.rope.dimension_count") && e.contains("partial"),
        "{e}"
    );
}

#[test]
fn gguf_rope_scaling_types() {
    let s = |extra: &[(&str, GgufValue)]| from_gguf(&gguf(extra), None).unwrap().rope_scaling;
    let ty = |t: &str| ("rope.scaling.type", GgufValue::String(t.into()));
    let factor = |f: f32| ("rope.scaling.factor", GgufValue::F32(f));
    assert_eq!(s(&[ty("none")]), RopeScaling::None);
    assert_eq!(
        s(&[ty("linear"), factor(4.0)]),
        RopeScaling::Linear { factor: 4.0 }
    );
    assert_eq!(
        s(&[("rope.scale_linear", GgufValue::F32(2.0))]),
        RopeScaling::Linear { factor: 2.0 }
    );
    assert_eq!(
        s(&[
            ty("yarn"),
            factor(4.0),
            (
                "rope.scaling.original_context_length",
                GgufValue::U32(32768)
            ),
        ]),
        RopeScaling::Yarn {
            factor: 4.0,
            original_max_position_embeddings: 32768,
            beta_fast: 32.0,
            beta_slow: 1.0,
            attention_factor: RopeScaling::yarn_mscale(4.0),
        }
    );
    assert_eq!(
        s(&[
            ty("yarn"),
            factor(2.0),
            ("rope.scaling.yarn_beta_fast", GgufValue::F32(16.0)),
            ("rope.scaling.yarn_beta_slow", GgufValue::F32(2.0)),
        ]),
        RopeScaling::Yarn {
            factor: 2.0,
            original_max_position_embeddings: 32768,
            beta_fast: 16.0,
            beta_slow: 2.0,
            attention_factor: RopeScaling::yarn_mscale(2.0),
        }
    );
    let e = refusal(&[ty("longrope")]);
    assert!(
        e.contains("qwen2.rope.scaling.type") && e.contains("longrope"),
        "{e}"
    );
    let e = refusal(&[ty("yarn")]);
    assert!(e.contains("qwen2.rope.scaling.factor"), "{e}");
    let e = refusal(&[
        ty("yarn"),
        factor(4.0),
        ("rope.scaling.yarn_log_multiplier", GgufValue::F32(0.1)),
    ]);
    assert!(e.contains("yarn_log_multiplier"), "{e}");
    // A key of the wrong type is an error, not a default.
    let e = refusal(&[("rope.scaling.factor", GgufValue::String("4".into()))]);
    assert!(e.contains("qwen2.rope.scaling.factor"), "{e}");
}

#[test]
fn gguf_unsupported_math_is_refused_by_key() {
    for (k, v) in [
        ("attention.sliding_window_pattern", GgufValue::U32(6)),
        ("attn_logit_softcapping", GgufValue::F32(50.0)),
        ("final_logit_softcapping", GgufValue::F32(30.0)),
        ("expert_count", GgufValue::U32(8)),
    ] {
        let e = refusal(&[(k, v)]);
        assert!(e.contains(&format!("qwen2.{k}")), "{e}");
    }
    // One window over every layer is what lathe's attention implements.
    let c = from_gguf(
        &gguf(&[("attention.sliding_window", GgufValue::U32(4096))]),
        None,
    )
    .unwrap();
    assert_eq!(c.sliding_window, Some(4096));
    // Experts are read by MoE architectures only.
    let g = gguf(&[("expert_count", GgufValue::U32(8))]);
    assert!(DecoderConfig::from_gguf(&GgufMeta::new(&g).unwrap(), None, true).is_ok());
    // expert_count 0 is a dense model.
    assert!(from_gguf(&gguf(&[("expert_count", GgufValue::U32(0))]), None).is_ok());
}

#[test]
fn gguf_rope_freqs_must_match_the_head() {
    let c = from_gguf(&gguf(&[]), Some(vec![1.0; 32])).unwrap();
    assert_eq!(c.rope_freq_factors.as_deref(), Some(&[1.0; 32][..]));
    assert!(from_gguf(&gguf(&[]), Some(vec![1.0; 16])).is_err());
}

fn hf(extra: serde_json::Value) -> anyhow::Result<DecoderConfig> {
    let mut cfg = serde_json::json!({
        "hidden_size": 896, "num_attention_heads": 14, "num_key_value_heads": 2,
        "intermediate_size": 4864, "num_hidden_layers": 24, "vocab_size": 151936,
        "max_position_embeddings": 32768, "rope_theta": 1000000.0,
    });
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    DecoderConfig::from_hf(&cfg, HfWindow::QwenPerLayer, false)
}

#[test]
fn hf_rope_scaling_types() {
    use serde_json::json;
    let s = |r: serde_json::Value| hf(json!({ "rope_scaling": r })).unwrap().rope_scaling;
    assert_eq!(s(json!(null)), RopeScaling::None);
    assert_eq!(s(json!({"rope_type": "default"})), RopeScaling::None);
    assert_eq!(
        s(json!({"type": "linear", "factor": 4.0})),
        RopeScaling::Linear { factor: 4.0 }
    );
    assert_eq!(
        s(json!({"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768})),
        RopeScaling::Yarn {
            factor: 4.0,
            original_max_position_embeddings: 32768,
            beta_fast: 32.0,
            beta_slow: 1.0,
            attention_factor: RopeScaling::yarn_mscale(4.0),
        }
    );
    assert!(matches!(
        s(json!({"rope_type": "yarn", "factor": 4.0, "attention_factor": 1.0})),
        RopeScaling::Yarn {
            attention_factor: 1.0,
            ..
        }
    ));
    assert!(matches!(
        s(json!({"rope_type": "llama3", "factor": 8.0})),
        RopeScaling::Llama3 { factor: 8.0, .. }
    ));
    for ty in ["dynamic", "longrope", "su", "something-new"] {
        let e = format!(
            "{:#}",
            hf(json!({"rope_scaling": {"type": ty, "factor": 2.0}})).unwrap_err()
        );
        assert!(e.contains(ty), "{e}");
    }
    assert!(hf(json!({"rope_scaling": {"type": "linear"}})).is_err());
    assert!(hf(json!({"rope_scaling": {"type": "yarn", "factor": 40.0, "mscale": 1.0}})).is_err());
}

#[test]
fn hf_unsupported_math_is_refused() {
    use serde_json::json;
    for extra in [
        json!({"use_sliding_window": true, "sliding_window": 4096}),
        json!({"partial_rotary_factor": 0.5}),
        json!({"num_local_experts": 8}),
        json!({"final_logit_softcapping": 30.0}),
    ] {
        assert!(hf(extra.clone()).is_err(), "{extra}");
    }
    assert!(hf(json!({"use_sliding_window": false, "sliding_window": 4096})).is_ok());
    assert_eq!(hf(json!({"head_dim": 128})).unwrap().head_dim, 128);
}
