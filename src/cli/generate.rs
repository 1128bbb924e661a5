//! `lathe run` and `lathe chat`: generation streamed to the terminal.

use std::io::{BufRead, Write};

use clap::Args;
use lathe_core::SamplingParams;
use lathe_engine::{EngineHandle, GenerateRequest, StreamEvent};
use serde_json::{json, Value};

use super::EngineArgs;

#[derive(Args, Debug, Clone)]
pub struct SamplingArgs {
    #[arg(long, default_value_t = 256)]
    pub max_tokens: usize,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stop string (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
}

impl SamplingArgs {
    fn params(&self) -> SamplingParams {
        SamplingParams {
            max_tokens: self.max_tokens,
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            seed: self.seed,
            stop: self.stop.clone(),
            ..SamplingParams::default()
        }
    }
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Plain completion: no chat template.
    #[arg(long)]
    pub raw: bool,
    /// System prompt (chat models).
    #[arg(long)]
    pub system: Option<String>,
    /// The prompt.
    pub prompt: String,
}

#[derive(Args, Debug)]
pub struct ChatArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[arg(long)]
    pub system: Option<String>,
}

pub async fn run(a: RunArgs) -> anyhow::Result<()> {
    let engine = a.engine.start()?;
    let info = engine.info().clone();
    let prompt = if a.raw || info.chat_template.is_none() {
        info.encode_raw(&a.prompt)?
    } else {
        let mut messages = Vec::new();
        if let Some(s) = &a.system {
            messages.push(json!({"role": "system", "content": s}));
        }
        messages.push(json!({"role": "user", "content": a.prompt}));
        info.encode_chat(&messages, None)?
    };
    stream_to_stdout(&engine, prompt, a.sampling.params()).await?;
    Ok(())
}

pub async fn chat(a: ChatArgs) -> anyhow::Result<()> {
    let engine = a.engine.start()?;
    let info = engine.info().clone();
    let mut messages: Vec<Value> = a
        .system
        .iter()
        .map(|s| json!({"role": "system", "content": s}))
        .collect();
    eprintln!("lathe chat with {} — empty line or Ctrl-D to quit", info.id);
    let stdin = std::io::stdin();
    loop {
        eprint!("> ");
        std::io::stderr().flush()?;
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 || line.trim().is_empty() {
            return Ok(());
        }
        messages.push(json!({"role": "user", "content": line.trim_end()}));
        let prompt = info.encode_chat(&messages, None)?;
        let answer = stream_to_stdout(&engine, prompt, a.sampling.params()).await?;
        messages.push(json!({"role": "assistant", "content": answer}));
    }
}

async fn stream_to_stdout(
    engine: &EngineHandle,
    prompt: Vec<u32>,
    params: SamplingParams,
) -> anyhow::Result<String> {
    let mut stream = engine.submit(GenerateRequest::new(prompt, params))?;
    let mut out = std::io::stdout();
    let mut text = String::new();
    while let Some(ev) = stream.next().await {
        match ev {
            StreamEvent::Token(t) => {
                out.write_all(t.text.as_bytes())?;
                out.flush()?;
                text.push_str(&t.text);
            }
            StreamEvent::Finished(f) => {
                out.write_all(f.text.as_bytes())?;
                text.push_str(&f.text);
                writeln!(out)?;
                if let lathe_engine::FinishReason::Error(e) = &f.reason {
                    anyhow::bail!("generation failed: {e}");
                }
                break;
            }
        }
    }
    Ok(text)
}
