//! Loads a model on the CPU and prints the process's peak resident memory (VmHWM) and the
//! current one (VmRSS) afterwards: `cargo run -p lathe-models --example load_rss -- model.gguf`.

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .expect("usage: load_rss <model.gguf | model dir>");
    let files =
        lathe_models::loader::resolve(&path, &lathe_models::registry::Registry::builtin())?.files;
    let before = std::fs::read_to_string("/proc/self/status")?;
    if let Some(l) = before.lines().find(|l| l.starts_with("VmRSS")) {
        println!("before load {l}");
    }
    let t = std::time::Instant::now();
    let model = lathe_models::loader::load_model(
        &files,
        &candle_core::Device::Cpu,
        candle_core::DType::F32,
    )?;
    let elapsed = t.elapsed();
    if std::env::var_os("LOAD_RSS_SPEC").is_some() {
        println!("{:?}", model.spec());
    }
    let status = std::fs::read_to_string("/proc/self/status")?;
    for line in status.lines() {
        if line.starts_with("VmHWM") || line.starts_with("VmRSS") {
            println!("{line}");
        }
    }
    println!(
        "loaded in {elapsed:.2?}; weights {} MiB",
        model.spec().weight_bytes >> 20
    );
    Ok(())
}
