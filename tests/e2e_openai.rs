//! End-to-end: the `lathe serve` binary with the default model (Qwen2.5-Coder-0.5B-Instruct:
//! FIM, tools from its chat template, 32k window) on 127.0.0.1 (a free port),
//! driven by the official `openai` Python SDK (tests/e2e/openai_sdk.py), then stopped with
//! SIGTERM, which must exit 0.
//!
//! The SDK is installed, pinned, into a virtualenv under target/ on first run (pip needs the
//! package registry once). Python and pip are required: if they are missing this test FAILS
//! with instructions, it never skips. `LATHE_E2E_PYTHON` picks the interpreter (default
//! `python3`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{spawn_server, wait_timeout};

/// The pinned SDK version.
const OPENAI_VERSION: &str = "1.109.1";
const API_KEY: &str = "lathe-e2e-key";

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("{what}: could not run {cmd:?}: {e}\nThe e2e test needs python3 with venv and pip (e.g. apt-get install python3-venv python3-pip), or LATHE_E2E_PYTHON pointing at one.")
    });
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The venv's interpreter with the pinned `openai` installed.
fn sdk_python() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-venv");
    let py = dir.join("bin").join("python");
    let marker = dir.join(format!(".openai-{OPENAI_VERSION}"));
    if !marker.exists() {
        let base = std::env::var("LATHE_E2E_PYTHON").unwrap_or_else(|_| "python3".into());
        run(
            Command::new(&base)
                .args(["-m", "venv", "--clear"])
                .arg(&dir),
            "creating the e2e virtualenv",
        );
        run(
            Command::new(&py)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .arg(format!("openai=={OPENAI_VERSION}")),
            "installing the openai SDK",
        );
        std::fs::write(&marker, "").unwrap();
    }
    py
}

#[test]
fn openai_sdk_against_lathe_serve() {
    let python = sdk_python();
    // The SDK script itself waits for /health (the model loads after the socket is bound).
    let (mut server, port) = spawn_server(
        &[],
        &[
            ("LATHE_API_KEY", API_KEY),
            ("RUST_LOG", "lathe=info,lathe_server=info,warn"),
        ],
    );

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/openai_sdk.py");
    let mut sdk = Command::new(&python)
        .arg(&script)
        .args([
            "--base-url",
            &format!("http://127.0.0.1:{port}/v1"),
            "--api-key",
            API_KEY,
        ])
        .spawn()
        .expect("running the SDK script");
    let status = wait_timeout(&mut sdk, Duration::from_secs(900)).unwrap_or_else(|| {
        let _ = sdk.kill();
        panic!("the SDK script timed out")
    });
    assert!(
        status.success(),
        "SDK checks failed ({status}); server log:\n{}",
        server.log()
    );

    // Graceful shutdown: SIGTERM, exit 0.
    let mut child = server.child.take().unwrap();
    run(
        Command::new("kill").args(["-TERM", &child.id().to_string()]),
        "sending SIGTERM",
    );
    let exit = wait_timeout(&mut child, Duration::from_secs(30));
    let log = server.log();
    assert!(
        exit.is_some_and(|s| s.success()),
        "lathe serve did not exit 0 after SIGTERM: {exit:?}\n{log}"
    );
    assert!(
        log.contains("request finished"),
        "per-request log lines missing:\n{log}"
    );
}
