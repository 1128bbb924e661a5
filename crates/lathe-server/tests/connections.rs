//! The listener over a real socket: what no `oneshot` test can see. Slow and idle clients,
//! requests hyper cannot parse, bodies that never arrive, the connection limit, and a client
//! that stops reading its stream. Its own binary: the stall test counts KV blocks.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use lathe_engine::{EngineConfig, EngineHandle};
use lathe_server::{AppState, ServerOptions};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn engine() -> EngineHandle {
    static ENGINE: OnceLock<EngineHandle> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            lathe_engine::start(EngineConfig {
                max_model_len: Some(8192),
                cpu_kv_cache_bytes: 512 << 20,
                model: "smollm2-135m-instruct".into(),
                ..EngineConfig::default()
            })
            .expect("the test model loads")
        })
        .clone()
}

/// A server on a free loopback port; it stops when the test's runtime ends.
async fn serve(opts: ServerOptions) -> (SocketAddr, AppState) {
    let state = AppState::new(engine(), opts);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(lathe_server::serve_listener(
        state.clone(),
        listener,
        std::future::pending(),
    ));
    (addr, state)
}

/// Writes `raw`, then reads until the server closes (or `limit` passes): the whole answer.
async fn exchange(addr: SocketAddr, raw: &[u8], limit: Duration) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    // The server may answer (and close) before it has read everything we send.
    let _ = s.write_all(raw).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(limit, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Status and JSON body of a whole HTTP/1.1 answer (content-length framed).
fn status_and_json(answer: &str) -> (u16, Value) {
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete head in {answer:?}"));
    let status = head[9..12].parse().unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    (status, v)
}

async fn healthy(addr: SocketAddr) -> bool {
    let answer = exchange(
        addr,
        b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    answer.starts_with("HTTP/1.1 200")
}

/// True once the peer has closed `s` (EOF or reset) within `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn slow_partial_and_idle_connections_are_closed_after_the_header_timeout() {
    let (addr, _) = serve(ServerOptions {
        header_read_timeout: Duration::from_secs(1),
        ..ServerOptions::default()
    })
    .await;
    let mut conns = Vec::new();
    for i in 0..60 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        match i % 3 {
            // Slowloris: a request line and some headers, never the end of the head.
            0 => s
                .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-a: 1\r\n")
                .await
                .unwrap(),
            // Connected, silent.
            1 => {}
            // One whole request, then an idle keep-alive connection.
            _ => {
                s.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
                    .await
                    .unwrap();
            }
        }
        conns.push(s);
    }
    let start = Instant::now();
    for (i, s) in conns.iter_mut().enumerate() {
        assert!(
            closed_within(s, Duration::from_secs(10)).await,
            "connection {i} still open after {:?}",
            start.elapsed()
        );
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "closed late: {:?}",
        start.elapsed()
    );
    assert!(healthy(addr).await, "the server goes on serving");
}

#[tokio::test]
async fn requests_hyper_cannot_parse_get_openai_error_bodies() {
    let (addr, _) = serve(ServerOptions::default()).await;
    let long_path = format!(
        "GET /v1/{} HTTP/1.1\r\nhost: x\r\n\r\n",
        "a".repeat(64 << 10)
    );
    let huge_header = format!(
        "GET /health HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "b".repeat(1 << 20)
    );
    let many_headers = format!(
        "GET /health HTTP/1.1\r\nhost: x\r\n{}\r\n",
        (0..2000)
            .map(|i| format!("x-h{i}: v\r\n"))
            .collect::<String>()
    );
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("garbage request line", b"GARBAGE\r\n\r\n".to_vec(), 400),
        (
            "NUL in Authorization",
            b"GET /v1/models HTTP/1.1\r\nhost: x\r\nauthorization: Bearer a\0b\r\n\r\n".to_vec(),
            400,
        ),
        ("64 KB path", long_path.into_bytes(), 414),
        ("1 MB header", huge_header.into_bytes(), 431),
        ("2000 headers", many_headers.into_bytes(), 431),
    ];
    for (name, raw, want) in cases {
        let answer = exchange(addr, &raw, Duration::from_secs(10)).await;
        let (status, body) = status_and_json(&answer);
        assert_eq!(status, want, "{name}: {body}");
        assert_eq!(body["error"]["type"], "invalid_request_error", "{name}");
    }
    assert!(healthy(addr).await, "the server goes on serving");
}

#[tokio::test]
async fn a_body_that_never_arrives_is_a_408_with_a_body() {
    let (addr, _) = serve(ServerOptions {
        body_read_timeout: Duration::from_millis(500),
        ..ServerOptions::default()
    })
    .await;
    let raw = b"POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"prompt\":";
    let answer = exchange(addr, raw, Duration::from_secs(10)).await;
    let (status, body) = status_and_json(&answer);
    assert_eq!(status, 408, "{body}");
}

#[tokio::test]
async fn past_the_connection_limit_new_clients_wait_until_one_closes() {
    let (addr, _) = serve(ServerOptions {
        max_connections: 3,
        ..ServerOptions::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(s); // keep-alive: the connection stays open
    }
    let waiting = tokio::spawn(async move {
        let t = Instant::now();
        assert!(healthy(addr).await);
        t.elapsed()
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!waiting.is_finished(), "a fourth connection was served");
    drop(held.pop());
    let waited = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("served once a connection closed")
        .unwrap();
    assert!(waited >= Duration::from_millis(600), "{waited:?}");
}

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected_and_its_request_cancelled() {
    let (addr, state) = serve(ServerOptions {
        client_stall_timeout: Duration::from_secs(1),
        ..ServerOptions::default()
    })
    .await;
    let engine = engine();
    let stats = engine.stats();
    let total = stats.total_blocks.load(Ordering::Relaxed);
    let generated_before = stats.generation_tokens_total.load(Ordering::Relaxed);
    // Eight choices with 20 logprobs each make about 10 KB of SSE per step, so the kernel's
    // socket buffers (megabytes on loopback) fill within seconds once we stop reading.
    const N: u64 = 8;
    const MAX_TOKENS: u64 = 1000;

    // A small receive window so that the server's writes block soon after we stop reading.
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut s = sock.connect(addr).await.unwrap();
    let body = json!({"messages": [{"role": "user", "content": "Write a long story."}],
        "max_tokens": MAX_TOKENS, "n": N, "logprobs": true, "top_logprobs": 20,
        "temperature": 1.0, "ignore_eos": true, "stream": true})
    .to_string();
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = [0u8; 64];
    let n = s.read(&mut head).await.unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &head[..n]);
    // ...and read nothing more.

    let deadline = Instant::now() + Duration::from_secs(90);
    while state.in_flight() > 0 || stats.free_blocks.load(Ordering::Relaxed) != total {
        assert!(
            Instant::now() < deadline,
            "the stalled request still runs ({} in flight)",
            state.in_flight()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let generated = stats.generation_tokens_total.load(Ordering::Relaxed) - generated_before;
    assert!(
        generated < N * MAX_TOKENS,
        "cancelled before the end: {generated} of {} tokens generated",
        N * MAX_TOKENS
    );
    assert!(
        closed_within(&mut s, Duration::from_secs(5)).await,
        "the connection was closed"
    );
    assert!(healthy(addr).await);
}
