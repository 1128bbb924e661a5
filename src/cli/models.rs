//! `lathe models`: the registry as a table.

use lathe_models::Registry;

pub fn list() -> anyhow::Result<()> {
    let reg = Registry::builtin();
    println!(
        "{:<32} {:<11} {:<7} {:>8}  {:<6} {:<4} status",
        "ID", "ARCH", "DTYPE", "CONTEXT", "TIER", "FIM"
    );
    for m in &reg.models {
        let status = if m.implemented_arch().is_some() {
            "ready"
        } else {
            "architecture not implemented yet"
        };
        println!(
            "{:<32} {:<11} {:<7} {:>8}  {:<6} {:<4} {}",
            m.id,
            m.arch,
            m.dtype,
            m.context_length,
            m.tier,
            if m.fim.is_some() { "yes" } else { "-" },
            status
        );
    }
    Ok(())
}
