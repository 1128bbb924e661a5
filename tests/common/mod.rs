//! Helpers for the end-to-end tests of the `lathe` binary.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the server if the test fails before stopping it.
pub struct Server {
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl Server {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            eprintln!("---- server log ----\n{}", self.log());
        }
    }
}

pub fn wait_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// Spawns `lathe serve` on the default model at a free port (small KV cache, log to a file
/// under the test tmpdir) without waiting for it.
pub fn spawn_server(extra_args: &[&str], envs: &[(&str, &str)]) -> (Server, u16) {
    let port = free_port();
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("serve-{port}.log"));
    let child = Command::new(env!("CARGO_BIN_EXE_lathe"))
        .args([
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--kv-cache-gib",
            "0.5",
        ])
        .args(extra_args)
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("lathe binary starts");
    let server = Server {
        child: Some(child),
        log,
    };
    (server, port)
}

/// Starts `lathe serve` on the default model at a free port; returns it once /health is 200.
pub fn start_server(extra_args: &[&str]) -> (Server, u16) {
    let (server, port) = spawn_server(extra_args, &[]);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let ok = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok_and(|mut s| {
            use std::io::{Read, Write};
            let _ = s.write_all(b"GET /health HTTP/1.0\r\n\r\n");
            let mut buf = String::new();
            let _ = s.read_to_string(&mut buf);
            buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200")
        });
        if ok {
            return (server, port);
        }
        assert!(
            Instant::now() < deadline,
            "lathe serve did not become healthy:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Runs a real-client end-to-end script (`scripts/<name>-e2e.sh` style: exit 77 = this machine
/// cannot run it) with `envs`, for at most `limit`. `None` when it could not run: that fails
/// under `CI=true` (a NOT RUN must not pass in CI) and is said loudly otherwise.
pub fn run_client_script(
    test: &str,
    script: &str,
    envs: &[(&str, &str)],
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let mut child = Command::new("bash")
        .arg(script)
        .env("LATHE_BIN", env!("CARGO_BIN_EXE_lathe"))
        .envs(envs.iter().copied())
        .spawn()
        .expect("bash runs the script");
    let status = wait_timeout(&mut child, limit).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("{script} did not finish in {} s", limit.as_secs())
    });
    if status.code() != Some(77) {
        return Some(status);
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !ci,
        "{test} cannot run its client here (reason above) and CI=true: a NOT RUN must not pass in CI"
    );
    eprintln!(
        "\n{bar}\n!! {test}: NOT RUN — this machine cannot run the client in a loopback-only \
         namespace (see the reason above).\n!! Run it by hand: {script}\n{bar}\n",
        bar = "!".repeat(78)
    );
    None
}
