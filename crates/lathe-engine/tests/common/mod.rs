//! Helpers shared by the engine's end-to-end tests on the real default model.
#![allow(dead_code)]

pub mod oracle;

use lathe_core::SamplingParams;
use lathe_engine::{EngineConfig, EngineHandle, GenerateRequest, Generated, StreamEvent};

pub fn engine(cfg: EngineConfig) -> EngineHandle {
    lathe_engine::start(cfg).expect("the engine starts")
}

pub fn default_engine() -> EngineHandle {
    engine(EngineConfig {
        cpu_kv_cache_bytes: 256 << 20,
        ..smollm2()
    })
}

/// The fast test model (SmolLM2-135M, Q4_1): the engine's behaviour tests run on it.
pub fn smollm2() -> EngineConfig {
    EngineConfig {
        model: "smollm2-135m-instruct".into(),
        ..EngineConfig::default()
    }
}

/// The local GGUF file of a registry model (fetched and verified on first use).
pub fn registry_gguf(id: &str) -> std::path::PathBuf {
    let resolved = lathe_models::loader::resolve(id, &lathe_models::Registry::builtin())
        .unwrap_or_else(|e| panic!("{id}: {e:#}"));
    match resolved.files {
        lathe_models::loader::ModelFiles::Gguf(path) => path,
        other => panic!("{id} is not a GGUF model: {other:?}"),
    }
}

pub fn greedy(max_tokens: usize) -> SamplingParams {
    SamplingParams {
        ignore_eos: true,
        logprobs: Some(2),
        ..SamplingParams::greedy(max_tokens)
    }
}

pub fn chat_prompt(engine: &EngineHandle, user: &str) -> Vec<u32> {
    engine
        .info()
        .encode_chat(
            &[serde_json::json!({"role": "user", "content": user})],
            None,
        )
        .unwrap()
}

pub fn generate(engine: &EngineHandle, prompt: Vec<u32>, params: SamplingParams) -> Generated {
    let stream = engine.submit(GenerateRequest::new(prompt, params)).unwrap();
    runtime().block_on(stream.collect_all())
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Per-token (token, top-2 logprobs) of a greedy run.
pub fn greedy_trace(
    engine: &EngineHandle,
    prompt: Vec<u32>,
    n: usize,
) -> Vec<(u32, Vec<(u32, f32)>)> {
    greedy_trace_with(engine, prompt, greedy(n))
}

/// [`greedy_trace`] with explicit parameters (which must ask for 2 logprobs).
pub fn greedy_trace_with(
    engine: &EngineHandle,
    prompt: Vec<u32>,
    params: SamplingParams,
) -> Vec<(u32, Vec<(u32, f32)>)> {
    let mut s = engine.submit(GenerateRequest::new(prompt, params)).unwrap();
    runtime().block_on(async move {
        let mut out = Vec::new();
        while let Some(ev) = s.next().await {
            match ev {
                StreamEvent::Token(t) => out.push((t.token, t.logprobs.unwrap().top)),
                StreamEvent::Finished(_) => break,
            }
        }
        out
    })
}

/// Two greedy token sequences must be identical, except that they may part at a near tie: at
/// the first difference the reference's two best candidates are within `tie` of each other.
pub fn assert_same_or_near_tie(
    reference: &[(u32, Vec<(u32, f32)>)],
    other: &[u32],
    tie: f32,
    what: &str,
) {
    assert_eq!(reference.len(), other.len(), "{what}: different lengths");
    if let Some(i) = reference.iter().zip(other).position(|(r, o)| r.0 != *o) {
        let top = &reference[i].1;
        let gap = top[0].1 - top[1].1;
        assert!(
            gap <= tie && top.iter().any(|t| t.0 == other[i]),
            "{what}: diverged at token {i} ({} vs {}) where the reference's top-2 gap is {gap}, not a near tie",
            reference[i].0,
            other[i]
        );
    }
}

/// Waits (up to 10 s) until every KV block is free and nothing runs; fails naming the leak.
pub fn wait_all_blocks_free(engine: &lathe_engine::EngineHandle) {
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::{Duration, Instant};
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (free, total) = (
            engine.stats().free_blocks.load(Relaxed),
            engine.stats().total_blocks.load(Relaxed),
        );
        if free == total && engine.stats().running.load(Relaxed) == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "blocks leaked: {free} of {total} free"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
