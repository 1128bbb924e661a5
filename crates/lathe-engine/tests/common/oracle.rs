//! The reference for the quantized-model oracles: candle-transformers' own quantized model of
//! the file's architecture (`quantized_llama`, `quantized_qwen2`) on the same GGUF file,
//! greedy, batch 1.

use std::path::Path;

use candle_core::{Device, Tensor};
use candle_transformers::models::{quantized_llama, quantized_qwen2};
use lathe_engine::EngineHandle;

/// candle-transformers' quantized model for a GGUF file, by `general.architecture`.
enum Reference {
    Llama(quantized_llama::ModelWeights),
    Qwen2(quantized_qwen2::ModelWeights),
}

impl Reference {
    fn load(path: &Path) -> Self {
        let mut f = std::fs::File::open(path).unwrap();
        let ct = candle_core::quantized::gguf_file::Content::read(&mut f).unwrap();
        let arch = ct.metadata["general.architecture"]
            .to_string()
            .unwrap()
            .clone();
        match arch.as_str() {
            "llama" => Self::Llama(
                quantized_llama::ModelWeights::from_gguf(ct, &mut f, &Device::Cpu).unwrap(),
            ),
            "qwen2" => Self::Qwen2(
                quantized_qwen2::ModelWeights::from_gguf(ct, &mut f, &Device::Cpu).unwrap(),
            ),
            other => panic!("no candle reference for GGUF architecture {other}"),
        }
    }

    fn forward(&mut self, x: &Tensor, pos: usize) -> Tensor {
        match self {
            Self::Llama(m) => m.forward(x, pos),
            Self::Qwen2(m) => m.forward(x, pos),
        }
        .unwrap()
    }
}

/// Reference greedy run on the GGUF at `path`: per step (chosen token, full logit row).
pub fn reference(path: &Path, prompt: &[u32], n: usize) -> Vec<(u32, Vec<f32>)> {
    let mut model = Reference::load(path);
    let mut out = Vec::new();
    let mut input = prompt.to_vec();
    let mut pos = 0;
    for _ in 0..n {
        let x = Tensor::new(input.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let logits: Vec<f32> = model
            .forward(&x, pos)
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        pos += input.len();
        let tok = lathe_engine::sampler::argmax(&logits);
        out.push((tok, logits));
        input = vec![tok];
    }
    out
}

pub fn log_softmax(l: &[f32]) -> Vec<f32> {
    let max = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = max + l.iter().map(|x| (x - max).exp()).sum::<f32>().ln();
    l.iter().map(|x| x - lse).collect()
}

/// The oracle prompts: two chat prompts and a raw code prefix.
pub fn prompts(engine: &EngineHandle) -> Vec<Vec<u32>> {
    vec![
        super::chat_prompt(
            engine,
            "Write a Python function that checks whether a number is prime.",
        ),
        super::chat_prompt(
            engine,
            "What is the capital of France? Answer in one sentence.",
        ),
        engine
            .info()
            .encode_raw("fn main() {\n    let numbers = vec![1, 2, 3];\n")
            .unwrap(),
    ]
}

/// How close a greedy trace must stay to the reference.
pub struct Tolerance {
    /// |logprob − reference| of the chosen token (the first of the reported top-k).
    pub chosen: f32,
    /// Mean of that difference over the tokens compared.
    pub chosen_mean: f32,
    /// |logprob − reference| of the other reported alternatives, relative to |reference|
    /// (floor `chosen`): an unlikely token's logit is a small difference of large sums.
    pub others: f32,
    /// Largest top-2 logit gap of the reference at which the two runs may part.
    pub tie: f32,
}

/// What [`compare`] saw.
pub struct Agreement {
    /// Largest and summed |logprob − reference| of the chosen tokens.
    pub chosen_max: f32,
    pub chosen_sum: f32,
    /// Tokens compared (identical ones, plus the one where the runs parted).
    pub compared: usize,
    /// Tokens identical before any parting.
    pub identical: usize,
}

/// Compares a greedy trace of ours (token, top-2 logprobs) with the reference: tokens equal
/// up to the end, or up to a first difference where the reference's two best logits are
/// within `tol.tie`; up to and at that point every reported logprob within tolerance.
pub fn compare(
    what: &str,
    ours: &[(u32, Vec<(u32, f32)>)],
    theirs: &[(u32, Vec<f32>)],
    tol: &Tolerance,
) -> Agreement {
    assert_eq!(ours.len(), theirs.len(), "{what}: lengths");
    let mut a = Agreement {
        chosen_max: 0.0,
        chosen_sum: 0.0,
        compared: 0,
        identical: 0,
    };
    for (i, ((our_tok, our_top), (ref_tok, ref_logits))) in ours.iter().zip(theirs).enumerate() {
        assert!(ref_logits.iter().all(|x| x.is_finite()));
        let ref_lp = log_softmax(ref_logits);
        for (k, &(t, lp)) in our_top.iter().enumerate() {
            assert!(lp.is_finite(), "{what} token {i}: logprob {lp}");
            let diff = (lp - ref_lp[t as usize]).abs();
            let limit = if k == 0 {
                tol.chosen
            } else {
                tol.chosen.max(tol.others * ref_lp[t as usize].abs())
            };
            if k == 0 {
                a.chosen_max = a.chosen_max.max(diff);
                a.chosen_sum += diff;
            }
            assert!(
                diff <= limit,
                "{what} token {i}: logprob of {t} is {lp}, reference {}",
                ref_lp[t as usize]
            );
        }
        a.compared += 1;
        if our_tok != ref_tok {
            let mut sorted = ref_logits.clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            assert!(
                sorted[0] - sorted[1] <= tol.tie,
                "{what}: diverged at token {i} ({our_tok} vs {ref_tok}) without a near tie (gap {})",
                sorted[0] - sorted[1]
            );
            return a;
        }
        a.identical += 1;
    }
    a
}

/// Runs the oracle prompts greedily for `n` tokens on `engine` and [`compare`]s each with the
/// reference; the mean chosen-token difference over all prompts must stay within
/// `tol.chosen_mean`.
pub fn check_prompts(engine: &EngineHandle, n: usize, tol: &Tolerance) {
    let path = super::registry_gguf(&engine.info().id);
    let (mut max, mut sum, mut count) = (0f32, 0f32, 0usize);
    for (p, prompt) in prompts(engine).into_iter().enumerate() {
        let ours = super::greedy_trace(engine, prompt.clone(), n);
        let theirs = reference(&path, &prompt, n);
        let a = compare(&format!("prompt {p}"), &ours, &theirs, tol);
        eprintln!(
            "prompt {p}: {} of {n} tokens identical, chosen logprobs within {} (mean {})",
            a.identical,
            a.chosen_max,
            a.chosen_sum / a.compared as f32
        );
        (max, sum, count) = (
            max.max(a.chosen_max),
            sum + a.chosen_sum,
            count + a.compared,
        );
    }
    let mean = sum / count as f32;
    eprintln!("chosen-token logprob difference from the reference: max {max}, mean {mean}");
    assert!(
        mean <= tol.chosen_mean,
        "mean chosen-token logprob difference {mean}"
    );
}
