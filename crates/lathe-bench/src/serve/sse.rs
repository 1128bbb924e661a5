//! Server-sent events: an incremental decoder and the reading of OpenAI stream chunks.
//!
//! [`SseDecoder`] turns arbitrary byte slices (network reads split events anywhere) into event
//! payloads: `data:` lines joined by `\n`, dispatched on a blank line; comments (`:`) and other
//! fields are ignored; `\n` and `\r\n` line ends both work. [`parse_chunk`] reads one payload.

use serde_json::Value;

/// Incremental SSE decoder.
#[derive(Debug, Default)]
pub struct SseDecoder {
    line: Vec<u8>,
    data: Option<String>,
}

impl SseDecoder {
    /// Feeds bytes; returns the payloads of the events they completed.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut events = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                let mut line = std::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.line_done(&line, &mut events);
            } else {
                self.line.push(b);
            }
        }
        events
    }

    /// Flushes an event left open when the stream ended without a blank line.
    pub fn finish(&mut self) -> Option<String> {
        let line = std::mem::take(&mut self.line);
        let mut events = Vec::new();
        if !line.is_empty() {
            self.line_done(&line, &mut events);
        }
        events.pop().or_else(|| self.data.take())
    }

    fn line_done(&mut self, line: &[u8], events: &mut Vec<String>) {
        if line.is_empty() {
            if let Some(d) = self.data.take() {
                events.push(d);
            }
            return;
        }
        let line = String::from_utf8_lossy(line);
        if let Some(rest) = line.strip_prefix("data:") {
            let rest = rest.strip_prefix(' ').unwrap_or(rest);
            match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(rest);
                }
                None => self.data = Some(rest.to_string()),
            }
        }
    }
}

/// `usage` of a response, as far as the server reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub prompt_tokens: Option<usize>,
    pub completion_tokens: Option<usize>,
}

/// What one stream chunk carried.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Chunk {
    /// Generated text in this chunk (content, reasoning, tool-call names and arguments, or
    /// completion text); empty for role-only, finish-only and usage-only chunks.
    pub text: String,
    pub usage: Option<Usage>,
    /// Message of an in-stream `{"error": ...}` event.
    pub error: Option<String>,
}

/// A parsed SSE payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `[DONE]`: the server finished the stream.
    Done,
    Chunk(Chunk),
}

fn push_str(out: &mut String, v: Option<&Value>) {
    if let Some(s) = v.and_then(Value::as_str) {
        out.push_str(s);
    }
}

/// Reads one SSE payload of a chat or completions stream.
pub fn parse_chunk(data: &str) -> Result<Event, String> {
    let data = data.trim();
    if data == "[DONE]" {
        return Ok(Event::Done);
    }
    let v: Value =
        serde_json::from_str(data).map_err(|e| format!("invalid JSON chunk ({e}): {data}"))?;
    let mut chunk = Chunk::default();
    if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
        let msg = err
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string);
        chunk.error = Some(msg.unwrap_or_else(|| err.to_string()));
    }
    if let Some(choice) = v.get("choices").and_then(|c| c.get(0)) {
        push_str(&mut chunk.text, choice.get("text"));
        if let Some(delta) = choice.get("delta") {
            for key in ["content", "reasoning_content", "reasoning"] {
                push_str(&mut chunk.text, delta.get(key));
            }
            for call in delta
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(f) = call.get("function") {
                    push_str(&mut chunk.text, f.get("name"));
                    push_str(&mut chunk.text, f.get("arguments"));
                }
            }
        }
    }
    if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
        let field = |k: &str| u.get(k).and_then(Value::as_u64).map(|n| n as usize);
        chunk.usage = Some(Usage {
            prompt_tokens: field("prompt_tokens"),
            completion_tokens: field("completion_tokens"),
        });
    }
    Ok(Event::Chunk(chunk))
}
