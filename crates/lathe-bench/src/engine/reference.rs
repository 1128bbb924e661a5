//! The reference: candle-transformers' own quantized model of the file's architecture
//! (`quantized_llama`, `quantized_qwen2`, `quantized_qwen3`) on the same GGUF file, batch 1.
//! Other architectures have no candle twin here: the run is skipped with a note.

use std::path::Path;
use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::{quantized_llama, quantized_qwen2, quantized_qwen3};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct ReferenceNumbers {
    /// The candle-transformers model that ran.
    pub model: &'static str,
    pub prompt_tok_s: f64,
    pub decode_tok_s: f64,
}

/// One of candle's quantized models, by `general.architecture`.
enum Candle {
    Llama(quantized_llama::ModelWeights),
    Qwen2(quantized_qwen2::ModelWeights),
    Qwen3(quantized_qwen3::ModelWeights),
}

impl Candle {
    /// The candle model for `arch`, or why there is none.
    fn name_for(arch: &str) -> Result<&'static str, String> {
        match arch {
            "llama" => Ok("quantized_llama"),
            "qwen2" => Ok("quantized_qwen2"),
            "qwen3" => Ok("quantized_qwen3"),
            other => Err(format!(
                "candle-transformers has no quantized model for architecture `{other}` \
                 (reference runs: llama, qwen2, qwen3)"
            )),
        }
    }

    fn load(path: &Path) -> anyhow::Result<Self> {
        let mut f = std::fs::File::open(path)?;
        let ct = gguf_file::Content::read(&mut f)?;
        let dev = &Device::Cpu;
        Ok(match architecture(&ct).as_str() {
            "qwen2" => Self::Qwen2(quantized_qwen2::ModelWeights::from_gguf(ct, &mut f, dev)?),
            "qwen3" => Self::Qwen3(quantized_qwen3::ModelWeights::from_gguf(ct, &mut f, dev)?),
            _ => Self::Llama(quantized_llama::ModelWeights::from_gguf(ct, &mut f, dev)?),
        })
    }

    fn forward(&mut self, x: &Tensor, pos: usize) -> candle_core::Result<Tensor> {
        match self {
            Self::Llama(m) => m.forward(x, pos),
            Self::Qwen2(m) => m.forward(x, pos),
            Self::Qwen3(m) => m.forward(x, pos),
        }
    }
}

fn architecture(ct: &gguf_file::Content) -> String {
    ct.metadata
        .get("general.architecture")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .unwrap_or_else(|| "llama".into())
}

/// Measures candle's model of the file's architecture; `Ok(Err(note))` when there is none.
pub fn measure(
    path: &Path,
    prompt_len: usize,
    decode_len: usize,
    vocab: u32,
) -> anyhow::Result<Result<ReferenceNumbers, String>> {
    let arch = {
        let mut f = std::fs::File::open(path)?;
        architecture(&gguf_file::Content::read(&mut f)?)
    };
    let name = match Candle::name_for(&arch) {
        Ok(name) => name,
        Err(note) => return Ok(Err(note)),
    };
    let load = || Candle::load(path);
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
    let t = Instant::now();
    for pos in short.len()..short.len() + decode_len {
        let l = model.forward(&Tensor::new(&[next], &Device::Cpu)?.unsqueeze(0)?, pos)?;
        next = l.flatten_all()?.argmax(0)?.to_scalar::<u32>()?;
    }
    Ok(Ok(ReferenceNumbers {
        model: name,
        prompt_tok_s: prompt_len as f64 / prompt_secs,
        decode_tok_s: decode_len as f64 / t.elapsed().as_secs_f64(),
    }))
}
