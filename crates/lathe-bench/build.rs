//! Records the git commit the harness was built from, so every JSON report names it.
//!
//! `LATHE_GIT_COMMIT` wins when set (builds from a tarball, CI); otherwise `git rev-parse HEAD`
//! in this crate's directory; otherwise "unknown". The script reruns when HEAD moves.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=LATHE_GIT_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        let dir = Path::new(&dir);
        // Watch only paths that exist: cargo reruns the script on every build for a missing one.
        let mut watch = vec![dir.join("HEAD"), dir.join("packed-refs")];
        if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
            let r = dir.join(&head_ref);
            // An unborn branch has no ref file yet: watch its folder instead.
            watch.push(if r.exists() {
                r
            } else {
                dir.join("refs").join("heads")
            });
        }
        for p in watch.iter().filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
    let commit = std::env::var("LATHE_GIT_COMMIT")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| git(&["rev-parse", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=LATHE_BENCH_GIT_COMMIT={commit}");
}
