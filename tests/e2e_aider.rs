//! End to end with the real, unmodified Aider (`aider-chat`, pinned in scripts/aider-e2e.sh,
//! installed from PyPI into a venv under target/ on first run): `aider --message … --yes-always`
//! in a temporary git repository against `lathe serve` on the default model over the OpenAI
//! API (`--openai-api-base`, model `openai/<id>`, the `whole` edit format), both inside a network
//! namespace with only loopback. Aider must exit 0 and the file must carry the edit.
//!
//! Where the machine cannot run it (no python3 venv, no `unshare -n`), the test fails under
//! `CI=true` and otherwise says so loudly and passes; README "Use with Aider" shows how to run
//! the script by hand.

mod common;

use std::time::Duration;

#[test]
fn aider_edits_a_file_through_the_openai_api() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("aider-e2e");
    let port = common::free_port().to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/aider-e2e.sh");
    let Some(status) = common::run_client_script(
        "e2e_aider",
        script,
        &[
            ("AIDER_E2E_DIR", dir.to_str().unwrap()),
            ("AIDER_E2E_PORT", &port),
        ],
        Duration::from_secs(1500),
    ) else {
        return;
    };
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    let file = read("repo/greet.py");
    let context = format!(
        "--- greet.py\n{file}\n--- aider stdout\n{}\n--- aider stderr\n{}\n--- lathe serve\n{}",
        read("aider.out"),
        read("aider.err"),
        read("serve.log")
    );
    assert!(status.success(), "aider failed ({status}):\n{context}");
    assert!(
        file.contains("goodbye") && !file.contains("\"hello\""),
        "Aider did not apply the edit:\n{context}"
    );
    assert!(
        file.contains("def greet"),
        "the rest of the file is kept:\n{context}"
    );
}
