//! End to end with the real, unmodified Claude Code CLI (`@anthropic-ai/claude-code`, pinned in
//! scripts/claude-code-e2e.sh, installed from npm on first run) in its default configuration
//! (built-in system prompt and tools): two `claude -p --output-format json` turns (the second
//! with `--continue`) against `lathe serve` on the default model (Qwen2.5-Coder-0.5B-Instruct)
//! over the Anthropic Messages API, both inside a network namespace with only loopback, the
//! API key sent as `x-api-key`. Each turn must finish and exit 0, and the second must read
//! most of its prompt from the prefix cache (`usage.cache_read_input_tokens`): Claude Code's
//! per-request billing block is stripped from the system prompt.
//!
//! Where the machine cannot run it (no npm, no `unshare -n`), the test fails under `CI=true`
//! and otherwise says so loudly and passes; README "Use with Claude Code" shows how to run the
//! script by hand.

mod common;

use std::time::Duration;

use serde_json::Value;

#[test]
fn claude_code_finishes_two_turns_and_the_second_reads_the_prefix_cache() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("claude-code-e2e");
    let port = common::free_port().to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/claude-code-e2e.sh");
    let Some(status) = common::run_client_script(
        "e2e_claude_code",
        script,
        &[
            ("CLAUDE_E2E_DIR", dir.to_str().unwrap()),
            ("CLAUDE_E2E_PORT", &port),
        ],
        Duration::from_secs(2400),
    ) else {
        return;
    };
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    let context = format!(
        "--- turn1\n{}\n{}\n--- turn2\n{}\n{}\n--- lathe serve\n{}",
        read("turn1.json"),
        read("turn1.err"),
        read("turn2.json"),
        read("turn2.err"),
        read("serve.log")
    );
    assert!(status.success(), "claude -p failed ({status}):\n{context}");
    let result = |f: &str| -> Value {
        serde_json::from_str(read(f).trim())
            .unwrap_or_else(|e| panic!("{f} is not Claude Code's JSON result ({e}):\n{context}"))
    };
    let (t1, t2) = (result("turn1.json"), result("turn2.json"));
    for t in [&t1, &t2] {
        assert_eq!(t["is_error"], false, "{t}\n{context}");
        assert!(
            t["result"].as_str().is_some_and(|r| !r.trim().is_empty()),
            "an answer: {t}"
        );
    }
    let cached = t2["usage"]["cache_read_input_tokens"].as_u64().unwrap_or(0);
    let fresh = t2["usage"]["input_tokens"].as_u64().unwrap_or(0);
    eprintln!(
        "e2e_claude_code: turn 2 read {cached} prompt tokens from the cache, computed {fresh}"
    );
    assert!(
        cached > 1000 && cached > fresh,
        "the second turn reuses the first one's prompt (system prompt, tools): {t2}\n{context}"
    );
}
