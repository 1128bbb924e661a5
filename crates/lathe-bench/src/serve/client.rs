//! One streamed request, timed: builds the OpenAI body, sends it, reads the SSE stream and
//! returns a [`RequestRecord`] plus the generated text (agent sessions feed it back).
//!
//! The clock starts just before the request is handed to the HTTP client (vLLM starts it just
//! before `session.post`), so TTFT includes connection set-up when the pool has no idle
//! connection. Every network read is timestamped on arrival; the events it completes share that
//! timestamp. E2E ends when `[DONE]` arrives (or the body ends); the rest of the body is still
//! drained so the connection goes back to the pool.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Map, Value};

use super::sse::{parse_chunk, Event, SseDecoder, Usage};
use crate::record::{ErrorKind, RequestError, RequestRecord, TokenSource};
use crate::tokens::TokenCounter;
use crate::workload::{Endpoint, Payload, RequestSpec};

/// A server under test.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Target {
    /// Short name for tables and plots (`lathe`, `vllm`, or the host:port).
    pub label: String,
    pub base_url: String,
    pub model: String,
}

impl Target {
    /// Full URL of `endpoint`; `base_url` may or may not end in `/v1`.
    pub fn url(&self, endpoint: Endpoint) -> String {
        let base = self.base_url.trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base);
        match endpoint {
            Endpoint::Chat => format!("{base}/v1/chat/completions"),
            Endpoint::Completions => format!("{base}/v1/completions"),
        }
    }
}

/// What the client adds to every request.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    pub api_key: Option<String>,
    /// Merged into every body last: its keys win; a key set to `null` is removed.
    pub extra_body: Map<String, Value>,
    /// Per-request limit, from send to the end of the stream.
    pub timeout: Duration,
}

/// A request's result: what was measured and the text generated.
pub struct Outcome {
    pub record: RequestRecord,
    pub text: String,
}

/// Sends requests and measures them.
pub struct BenchClient {
    http: reqwest::Client,
    opts: ClientOptions,
    counter: Arc<dyn TokenCounter>,
}

impl BenchClient {
    pub fn new(opts: ClientOptions, counter: Arc<dyn TokenCounter>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .build()?;
        Ok(BenchClient {
            http,
            opts,
            counter,
        })
    }

    /// The JSON body for `spec`: streaming with usage, greedy unless `extra_body` says otherwise.
    /// The HTTP client (for side requests such as `/metrics`).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn body(&self, model: &str, spec: &RequestSpec) -> Value {
        let mut body = json!({
            "model": model,
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": spec.max_tokens,
            "temperature": 0.0,
        });
        let obj = body.as_object_mut().expect("object");
        match &spec.payload {
            Payload::Chat { messages } => {
                obj.insert("messages".into(), json!(messages));
            }
            Payload::Completion { prompt, suffix } => {
                obj.insert("prompt".into(), json!(prompt));
                if let Some(s) = suffix {
                    obj.insert("suffix".into(), json!(s));
                }
            }
        }
        for (k, v) in &self.opts.extra_body {
            if v.is_null() {
                obj.remove(k);
            } else {
                obj.insert(k.clone(), v.clone());
            }
        }
        body
    }

    /// Sends `spec` to `target` and measures it; `run_start` anchors `start_s`.
    pub async fn send(
        &self,
        target: &Target,
        spec: &RequestSpec,
        id: u64,
        run_start: Instant,
    ) -> Outcome {
        let mut req = self
            .http
            .post(target.url(spec.endpoint()))
            .json(&self.body(&target.model, spec));
        if let Some(key) = &self.opts.api_key {
            req = req.bearer_auth(key);
        }
        let sent = Instant::now();
        let start_s = sent.duration_since(run_start).as_secs_f64();
        let mut out =
            match tokio::time::timeout(self.opts.timeout, self.stream(req, sent, spec)).await {
                Ok(o) => o,
                Err(_) => {
                    let msg = format!("no complete response within {:?}", self.opts.timeout);
                    let err = RequestError::new(ErrorKind::Timeout, None, msg);
                    Outcome {
                        record: RequestRecord::failed(0, 0.0, self.opts.timeout.as_secs_f64(), err),
                        text: String::new(),
                    }
                }
            };
        out.record.id = id;
        out.record.start_s = start_s;
        out.record.kind = spec.kind.to_string();
        out
    }

    async fn stream(
        &self,
        req: reqwest::RequestBuilder,
        sent: Instant,
        spec: &RequestSpec,
    ) -> Outcome {
        let since = |t: Instant| t.duration_since(sent).as_secs_f64();
        let fail = |kind, status, msg: String| Outcome {
            record: RequestRecord::failed(
                0,
                0.0,
                since(Instant::now()),
                RequestError::new(kind, status, msg),
            ),
            text: String::new(),
        };
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return fail(ErrorKind::Transport, None, error_chain(&e)),
        };
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return fail(ErrorKind::Http, Some(status.as_u16()), body);
        }
        let mut acc = Accumulator::default();
        let mut decoder = SseDecoder::default();
        let mut body = resp.bytes_stream();
        while let Some(item) = body.next().await {
            let now = Instant::now();
            match item {
                Ok(bytes) => {
                    for data in decoder.push(&bytes) {
                        acc.event(&data, now, sent);
                    }
                }
                Err(e) if acc.done_at.is_none() => {
                    acc.error.get_or_insert(RequestError::new(
                        ErrorKind::Transport,
                        None,
                        error_chain(&e),
                    ));
                    break;
                }
                Err(_) => break,
            }
        }
        let end = Instant::now();
        if let Some(data) = decoder.finish() {
            acc.event(&data, end, sent);
        }
        let end = acc.done_at.unwrap_or(end);
        acc.finish(since(end), spec, self.counter.as_ref())
    }
}

/// State of one stream being read.
#[derive(Default)]
struct Accumulator {
    ttft: Option<f64>,
    last: Option<Instant>,
    itl: Vec<f64>,
    text: String,
    chunks: usize,
    usage: Option<Usage>,
    error: Option<RequestError>,
    done_at: Option<Instant>,
}

impl Accumulator {
    fn event(&mut self, data: &str, now: Instant, sent: Instant) {
        if self.done_at.is_some() {
            return;
        }
        let chunk = match parse_chunk(data) {
            Ok(Event::Done) => {
                self.done_at = Some(now);
                return;
            }
            Ok(Event::Chunk(c)) => c,
            Err(msg) => {
                self.error
                    .get_or_insert(RequestError::new(ErrorKind::Stream, None, msg));
                return;
            }
        };
        if let Some(msg) = chunk.error {
            self.error
                .get_or_insert(RequestError::new(ErrorKind::Stream, None, msg));
        }
        if let Some(u) = chunk.usage {
            self.usage = Some(u);
        }
        if chunk.text.is_empty() {
            return;
        }
        match self.last {
            None => self.ttft = Some(now.duration_since(sent).as_secs_f64()),
            Some(prev) => self.itl.push(now.duration_since(prev).as_secs_f64()),
        }
        self.last = Some(now);
        self.chunks += 1;
        self.text.push_str(&chunk.text);
    }

    fn finish(self, e2e_s: f64, spec: &RequestSpec, counter: &dyn TokenCounter) -> Outcome {
        let error = self.error.or_else(|| {
            (self.chunks == 0).then(|| {
                RequestError::new(
                    ErrorKind::NoContent,
                    None,
                    "the stream ended without a content chunk",
                )
            })
        });
        let (prompt_tokens, output_tokens, token_source) = match self.usage {
            Some(Usage {
                prompt_tokens,
                completion_tokens: Some(n),
            }) => (
                prompt_tokens.unwrap_or(spec.prompt_tokens),
                n,
                TokenSource::Usage,
            ),
            _ => (
                spec.prompt_tokens,
                counter.count_output(&self.text, self.chunks),
                TokenSource::Counter,
            ),
        };
        let record = RequestRecord {
            id: 0,
            kind: String::new(),
            session: 0,
            turn: 0,
            start_s: 0.0,
            ttft_s: self.ttft,
            itl_s: self.itl,
            e2e_s,
            prompt_tokens,
            output_tokens,
            content_chunks: self.chunks,
            token_source,
            error,
        };
        Outcome {
            record,
            text: self.text,
        }
    }
}

/// An error and its sources on one line ("error sending request: connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}
