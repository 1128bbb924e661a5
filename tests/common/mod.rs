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
