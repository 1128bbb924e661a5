//! End to end with the real, unmodified Codex CLI (`@openai/codex`, pinned in
//! scripts/codex-e2e.sh, installed from npm on first run) in its default configuration (built-in
//! instructions, every tool, default sandbox): `codex exec --json` against `lathe serve` on the
//! default model (Qwen2.5-Coder-0.5B-Instruct) over the Responses API, both inside a network
//! namespace with only loopback. The model must call Codex's shell tool, Codex must run the
//! command and send its output back for a second model turn. (Exit 0 of the whole run is not
//! asserted yet: see the note in the test.)
//!
//! Where the machine cannot run it (no npm, no `unshare -n`), the test fails under `CI=true`
//! and otherwise says so loudly and passes; README "Use with Codex CLI" shows how to run the
//! script by hand.

mod common;

use std::time::Duration;

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The items Codex reports as completed in its `--json` event stream.
fn completed_items(jsonl: &str) -> Vec<serde_json::Value> {
    jsonl
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["type"] == "item.completed")
        .map(|e| e["item"].clone())
        .collect()
}

#[test]
fn codex_exec_with_its_default_config_runs_a_tool_the_model_called() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("codex-e2e");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/codex-e2e.sh");
    let port = common::free_port().to_string();
    let Some(status) = common::run_client_script(
        "e2e_codex",
        script,
        &[
            ("CODEX_E2E_DIR", dir.to_str().unwrap()),
            ("CODEX_E2E_PORT", &port),
        ],
        Duration::from_secs(1500),
    ) else {
        return;
    };
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    let (out, err, log) = (
        read("codex.out"),
        read("codex.err"),
        strip_ansi(&read("serve.log")),
    );
    let context =
        format!("--- codex stdout\n{out}\n--- codex stderr\n{err}\n--- lathe serve\n{log}");
    // Not asserted yet: exit 0. After the command's output the 0.5B model does not answer in
    // prose: it calls a tool again (bare JSON, now parsed as a call that Codex runs) with
    // arguments padded from the schema until the server's --default-max-tokens, and Codex fails
    // that turn ("Incomplete response"). Everything up to that point is asserted below.
    // A long first prefill must not trip Codex's 300 s idle timeout (the server repeats
    // `response.in_progress`): no reconnects.
    assert!(
        !out.contains("idle timeout waiting for SSE"),
        "Codex timed out waiting for events and retried:\n{context}"
    );
    eprintln!("e2e_codex: codex exec exited with {status}");
    let items = completed_items(&out);
    let commands: Vec<&serde_json::Value> = items
        .iter()
        .filter(|i| i["type"] == "command_execution")
        .collect();
    assert!(
        !commands.is_empty(),
        "Codex executed no tool call of the model; items: {items:?}\n{context}"
    );
    // Codex ran the command the model asked for: `ls` of the work folder finds our file.
    assert!(
        commands.iter().any(|c| c["aggregated_output"]
            .as_str()
            .is_some_and(|o| o.contains("hello_lathe.py"))),
        "no executed command listed the work folder: {commands:?}\n{context}"
    );
    // Every model turn was served by lathe's Responses API and generated tokens.
    let served = log
        .lines()
        .filter(|l| {
            l.contains("request finished")
                && l.contains("id=resp_")
                && l.contains("status=\"ok\"")
                && !l.contains("completion_tokens=0 ")
        })
        .count();
    assert!(
        served >= 2,
        "expected a tool-call turn and a follow-up turn in the server log:\n{context}"
    );
}
