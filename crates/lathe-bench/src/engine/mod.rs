//! `lathe bench engine`: offline throughput of the engine (no HTTP), side by side with
//! candle-transformers' quantized model of the same architecture on the same GGUF file (where
//! candle has one; otherwise skipped with a note), plus a read-bandwidth roofline line.
//!
//! Prompt throughput: one request of `--prompt-len` tokens and `max_tokens = 1`, prefix caching
//! off, median of `--repeats`. Decode throughput at batch B: B concurrent requests with short
//! distinct prompts, `--decode-len` tokens each (EOS ignored); tokens generated after every
//! request produced its first token, divided by the time from then until the last finished.

mod bandwidth;
mod reference;

use std::time::{Duration, Instant};

use clap::Args;
use lathe_core::SamplingParams;
use lathe_engine::{EngineConfig, EngineHandle, GenerateRequest, StreamEvent};
use serde::Serialize;

#[derive(Args, Debug, Clone)]
pub struct EngineBenchArgs {
    /// Registry id, hub repo, directory or .gguf file.
    #[arg(long, default_value = "smollm2-135m-instruct")]
    pub model: String,
    #[arg(long, default_value_t = 512)]
    pub prompt_len: usize,
    #[arg(long, default_value_t = 128)]
    pub decode_len: usize,
    /// Batch sizes for decode throughput.
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    pub batch: Vec<usize>,
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Threads for lathe's CPU kernels and for candle's reference (rayon); default: every core.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Skip candle-transformers' reference run.
    #[arg(long)]
    pub no_reference: bool,
    /// Write the results as JSON here.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct DecodePoint {
    pub batch: usize,
    pub total_tok_s: f64,
    pub per_seq_tok_s: f64,
    /// Share of the read-bandwidth limit (weights + KV read per step).
    pub roofline_pct: f64,
}

#[derive(Debug, Serialize)]
pub struct EngineBenchReport {
    pub model: String,
    pub threads: usize,
    pub prompt_len: usize,
    pub decode_len: usize,
    pub prompt_tok_s: f64,
    pub decode: Vec<DecodePoint>,
    pub reference: Option<reference::ReferenceNumbers>,
    /// Why there is no reference run, when there is none.
    pub reference_note: Option<String>,
    /// Read bandwidth with the kernels' thread count: the roofline's limit.
    pub read_bandwidth_gb_s: f64,
    /// One-thread copy bandwidth (read + write), for comparison with older reports.
    pub memory_bandwidth_gb_s: f64,
    pub weight_bytes: usize,
    pub git_commit: &'static str,
}

pub async fn run_engine_bench(args: EngineBenchArgs) -> anyhow::Result<EngineBenchReport> {
    if let Some(n) = args.threads {
        lathe_kernels::cpu::set_num_threads(n);
        // Read when rayon's global pool starts, which nothing has done yet in this process.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    let max_batch = args.batch.iter().copied().max().unwrap_or(1);
    let engine = lathe_engine::start(EngineConfig {
        model: args.model.clone(),
        enable_prefix_caching: false,
        max_num_seqs: max_batch.max(1),
        max_num_batched_tokens: args.prompt_len.max(2048),
        cpu_kv_cache_bytes: 1 << 30,
        ..EngineConfig::default()
    })?;
    let info = engine.info().clone();
    let vocab = info.spec.vocab_size as u32;
    let threads = lathe_kernels::cpu::num_threads();
    eprintln!(
        "bench engine: {} on {:?}, {threads} threads (candle's reference: {})",
        info.id,
        info.spec.device,
        rayon_threads()
    );

    // Warm-up: page in the weights and start the thread pools.
    run_one(&engine, synthetic_prompt(64, vocab, 99), 4).await?;

    let mut prompt_times = Vec::new();
    for r in 0..args.repeats.max(1) {
        let t = Instant::now();
        run_one(
            &engine,
            synthetic_prompt(args.prompt_len, vocab, r as u64),
            1,
        )
        .await?;
        prompt_times.push(t.elapsed());
    }
    prompt_times.sort();
    let prompt_tok_s = args.prompt_len as f64 / prompt_times[prompt_times.len() / 2].as_secs_f64();

    let copy_bandwidth = bandwidth::measure_copy_bandwidth();
    let bandwidth = bandwidth::measure_read_bandwidth(threads);
    let kv_per_token = info.spec.kv.bytes_per_block(1);
    let mut decode = Vec::new();
    for &b in &args.batch {
        let (tokens, secs) = decode_throughput(&engine, b, args.decode_len, vocab).await?;
        let total = tokens as f64 / secs;
        // Mean context over the measured window ≈ short prompt + half the decode length.
        let ctx = 32 + args.decode_len / 2;
        let bytes_per_step = info.spec.weight_bytes as f64 + (b * ctx * kv_per_token) as f64;
        let limit = bandwidth / bytes_per_step * b as f64;
        decode.push(DecodePoint {
            batch: b,
            total_tok_s: total,
            per_seq_tok_s: total / b as f64,
            roofline_pct: 100.0 * total / limit,
        });
    }
    engine.shutdown();

    let (reference, reference_note) = if args.no_reference {
        (None, Some("--no-reference".to_string()))
    } else {
        match &lathe_models::loader::resolve(&args.model, &lathe_models::Registry::builtin())?.files
        {
            lathe_models::loader::ModelFiles::Gguf(path) => {
                match reference::measure(path, args.prompt_len, args.decode_len, vocab)? {
                    Ok(numbers) => (Some(numbers), None),
                    Err(skipped) => (None, Some(skipped)),
                }
            }
            _ => (
                None,
                Some("candle's reference runs on GGUF files only".to_string()),
            ),
        }
    };
    if let Some(note) = &reference_note {
        eprintln!("bench engine: no candle reference run: {note}");
    }
    let report = EngineBenchReport {
        model: info.id.clone(),
        threads,
        prompt_len: args.prompt_len,
        decode_len: args.decode_len,
        prompt_tok_s,
        decode,
        reference,
        reference_note,
        read_bandwidth_gb_s: bandwidth / 1e9,
        memory_bandwidth_gb_s: copy_bandwidth / 1e9,
        weight_bytes: info.spec.weight_bytes,
        git_commit: crate::GIT_COMMIT,
    };
    print_table(&report);
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(report)
}

fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Deterministic pseudo-random token ids (skipping the lowest ids, where special tokens live).
fn synthetic_prompt(len: usize, vocab: u32, seed: u64) -> Vec<u32> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            200 + ((x >> 33) as u32 % (vocab - 200))
        })
        .collect()
}

fn params(max_tokens: usize) -> SamplingParams {
    SamplingParams {
        ignore_eos: true,
        ..SamplingParams::greedy(max_tokens)
    }
}

async fn run_one(engine: &EngineHandle, prompt: Vec<u32>, max_tokens: usize) -> anyhow::Result<()> {
    let g = engine
        .submit(GenerateRequest::new(prompt, params(max_tokens)))?
        .collect_all()
        .await;
    if let lathe_engine::FinishReason::Error(e) = g.finished.reason {
        anyhow::bail!("benchmark request failed: {e}");
    }
    Ok(())
}

/// (tokens generated in the window, window seconds) for `b` concurrent streams.
async fn decode_throughput(
    engine: &EngineHandle,
    b: usize,
    n: usize,
    vocab: u32,
) -> anyhow::Result<(usize, f64)> {
    let mut streams = Vec::new();
    for i in 0..b {
        streams.push(engine.submit(GenerateRequest::new(
            synthetic_prompt(32, vocab, 1000 + i as u64),
            params(n),
        ))?);
    }
    let tasks = streams.into_iter().map(|mut s| async move {
        let mut stamps = Vec::new();
        while let Some(ev) = s.next().await {
            match ev {
                StreamEvent::Token(_) => stamps.push(Instant::now()),
                StreamEvent::Finished(_) => break,
            }
        }
        stamps
    });
    let all: Vec<Vec<Instant>> = futures::future::join_all(tasks).await;
    let start = all
        .iter()
        .filter_map(|s| s.first())
        .max()
        .copied()
        .unwrap_or_else(Instant::now);
    let end = all
        .iter()
        .filter_map(|s| s.last())
        .max()
        .copied()
        .unwrap_or(start);
    let tokens = all
        .iter()
        .map(|s| s.iter().filter(|&&t| t > start).count())
        .sum();
    Ok((
        tokens,
        end.duration_since(start)
            .max(Duration::from_micros(1))
            .as_secs_f64(),
    ))
}

fn print_table(r: &EngineBenchReport) {
    println!(
        "\nlathe bench engine — {} ({} threads, commit {})",
        r.model, r.threads, r.git_commit
    );
    println!(
        "{:<34} {:>12} {:>14} {:>8}",
        "", "lathe", "candle (ref)", "ratio"
    );
    let (rp, rd) = r.reference.as_ref().map_or((None, None), |x| {
        (Some(x.prompt_tok_s), Some(x.decode_tok_s))
    });
    let row = |name: &str, ours: f64, theirs: Option<f64>| {
        let t = theirs.map_or("-".to_string(), |t| format!("{t:.1}"));
        let ratio = theirs.map_or("-".to_string(), |t| format!("{:.2}x", ours / t));
        println!("{name:<34} {ours:>12.1} {t:>14} {ratio:>8}");
    };
    row(
        &format!("prompt tok/s ({} tokens)", r.prompt_len),
        r.prompt_tok_s,
        rp,
    );
    for d in &r.decode {
        let theirs = if d.batch == 1 { rd } else { None };
        row(
            &format!("decode tok/s, batch {} (total)", d.batch),
            d.total_tok_s,
            theirs,
        );
    }
    if let (Some(b1), Some(bmax)) = (r.decode.first(), r.decode.last()) {
        if bmax.batch > b1.batch {
            println!(
                "batch {} / batch {} total decode: {:.2}x",
                bmax.batch,
                b1.batch,
                bmax.total_tok_s / b1.total_tok_s
            );
        }
    }
    println!(
        "roofline: {:.1} GB/s read bandwidth ({} threads; one-thread copy {:.1} GB/s), {:.1} MB weights; batch-1 decode at {:.1}% of the read limit",
        r.read_bandwidth_gb_s,
        r.threads,
        r.memory_bandwidth_gb_s,
        r.weight_bytes as f64 / 1e6,
        r.decode.first().map_or(0.0, |d| d.roofline_pct)
    );
}
