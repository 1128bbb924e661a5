//! The reference: candle-transformers' own quantized llama on the same GGUF file, batch 1.

use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct ReferenceNumbers {
    pub prompt_tok_s: f64,
    pub decode_tok_s: f64,
}

pub fn measure(
    path: &Path,
    prompt_len: usize,
    decode_len: usize,
    vocab: u32,
) -> anyhow::Result<ReferenceNumbers> {
    let load = || -> anyhow::Result<ModelWeights> {
        let mut f = std::fs::File::open(path)?;
        let ct = candle_core::quantized::gguf_file::Content::read(&mut f)?;
        Ok(ModelWeights::from_gguf(ct, &mut f, &Device::Cpu)?)
    };
    let prompt = super::synthetic_prompt(prompt_len, vocab, 0);
    let mut model = load()?;
    // Warm-up on a short prompt, then a fresh model (fresh KV cache) for the timed prompt.
    model.forward(&Tensor::new(&prompt[..16], &Device::Cpu)?.unsqueeze(0)?, 0)?;
    let mut model = load()?;
    let t = Instant::now();
    let logits = model.forward(
        &Tensor::new(prompt.as_slice(), &Device::Cpu)?.unsqueeze(0)?,
        0,
    )?;
    let prompt_secs = t.elapsed().as_secs_f64();
    drop(logits);
    // Decode from the same short context as lathe's decode measurement (32 prompt tokens).
    let mut model = load()?;
    let short = super::synthetic_prompt(32, vocab, 1000);
    let l = model.forward(
        &Tensor::new(short.as_slice(), &Device::Cpu)?.unsqueeze(0)?,
        0,
    )?;
    let mut next = l.flatten_all()?.argmax(0)?.to_scalar::<u32>()?;
    let mut pos = short.len();
    let t = Instant::now();
    for _ in 0..decode_len {
        let l = model.forward(&Tensor::new(&[next], &Device::Cpu)?.unsqueeze(0)?, pos)?;
        next = l.flatten_all()?.argmax(0)?.to_scalar::<u32>()?;
        pos += 1;
    }
    Ok(ReferenceNumbers {
        prompt_tok_s: prompt_len as f64 / prompt_secs,
        decode_tok_s: decode_len as f64 / t.elapsed().as_secs_f64(),
    })
}
