//! `agent`: multi-turn coding-agent sessions, as Codex-style frontends drive a server.
//!
//! Every request re-sends the whole conversation: the system prompt and tool definitions
//! (identical across all sessions: ~1.4k tokens from `data/agent/`), the task, and every
//! previous turn — the server's actual reply, then a tool result (a file read or a test run of
//! about `--input-len` tokens). Each turn is therefore the previous turn's prompt plus a suffix,
//! which is what prefix caching must exploit. Turns of one session are sequential: turn k+1 is
//! built from turn k's reply and sent after it arrived. Tool definitions are written into the
//! system prompt (not the `tools` field) so that every server accepts the request and replies in
//! plain content; on `/v1/completions` the conversation is rendered as a plain transcript.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::code_gen::{generate_file, random_lang};
use super::words::{pick, random_text, NOUNS, VERBS};
use super::{
    Conversation, Endpoint, Lengths, Message, Payload, RequestSpec, Workload, WorkloadConfig,
};
use crate::tokens::{count_or, estimate_tokens, TokenCounter};

const SYSTEM: &str = include_str!("../../data/agent/system.txt");
const TOOLS: &str = include_str!("../../data/agent/tools.json");

/// The system prompt every agent session starts with (instructions + tool definitions).
pub fn system_prompt() -> String {
    format!("{SYSTEM}\n# Tools\n\nCall a tool by replying with a JSON object {{\"tool\": NAME, \"arguments\": {{...}}}}. Available tools:\n\n{TOOLS}")
}

pub struct AgentWorkload {
    endpoint: Endpoint,
    lengths: Lengths,
    turns: usize,
    system: Arc<str>,
    counter: Arc<dyn TokenCounter>,
    rng: StdRng,
}

impl AgentWorkload {
    pub fn new(cfg: &WorkloadConfig, counter: Arc<dyn TokenCounter>, rng: StdRng) -> Self {
        AgentWorkload {
            endpoint: cfg.endpoint,
            lengths: cfg.lengths,
            turns: cfg.turns.max(1),
            system: system_prompt().into(),
            counter,
            rng,
        }
    }

    /// A new session, with its own seed drawn from the workload's.
    pub fn session(&mut self) -> AgentSession {
        let mut rng = StdRng::seed_from_u64(self.rng.random());
        let task = format!(
            "`{}_{}` in src/{}.rs returns the wrong result when the {} list is empty. Find the cause, fix it, and run the tests.",
            pick(VERBS, &mut rng),
            pick(NOUNS, &mut rng),
            pick(NOUNS, &mut rng),
            pick(NOUNS, &mut rng),
        );
        AgentSession {
            endpoint: self.endpoint,
            lengths: self.lengths,
            turns_left: self.turns,
            messages: vec![
                Message::new("system", &*self.system),
                Message::new("user", task),
            ],
            turn: 0,
            counter: self.counter.clone(),
            rng,
        }
    }
}

impl Workload for AgentWorkload {
    fn next_conversation(&mut self) -> Box<dyn Conversation> {
        Box::new(self.session())
    }
}

/// One agent session: its history grows by (assistant reply, tool result) every turn.
pub struct AgentSession {
    endpoint: Endpoint,
    lengths: Lengths,
    turns_left: usize,
    messages: Vec<Message>,
    turn: usize,
    counter: Arc<dyn TokenCounter>,
    rng: StdRng,
}

impl AgentSession {
    /// History so far (system, task, then alternating replies and tool results).
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    fn tool_result(&mut self) -> String {
        let tokens = self.lengths.input(&mut self.rng);
        if self.rng.random_bool(0.7) {
            let file = generate_file(
                random_lang(&mut self.rng),
                tokens,
                self.counter.as_ref(),
                &mut self.rng,
            );
            format!(
                "Tool result (read_file {}):\n```{}\n{}```",
                file.path,
                file.lang.fence(),
                file.text
            )
        } else {
            let mut out = String::from("Tool result (run_tests):\nexit code: 101\n");
            while estimate_tokens(&out) < tokens {
                let name = format!(
                    "{}_{}",
                    pick(VERBS, &mut self.rng),
                    pick(NOUNS, &mut self.rng)
                );
                let ok = self.rng.random_bool(0.8);
                out.push_str(&format!(
                    "test tests::{name} ... {}\n",
                    if ok { "ok" } else { "FAILED" }
                ));
                if !ok {
                    out.push_str(&format!(
                        "  assertion failed: {}\n",
                        random_text(12, &mut self.rng)
                    ));
                }
            }
            out
        }
    }

    fn render(&self) -> Payload {
        match self.endpoint {
            Endpoint::Chat => Payload::Chat {
                messages: self.messages.clone(),
            },
            Endpoint::Completions => {
                let mut prompt = String::new();
                for m in &self.messages {
                    prompt.push_str(&format!("### {}\n{}\n\n", m.role, m.content));
                }
                prompt.push_str("### assistant\n");
                Payload::Completion {
                    prompt,
                    suffix: None,
                }
            }
        }
    }
}

impl Conversation for AgentSession {
    fn next_request(&mut self, previous_reply: Option<&str>) -> Option<RequestSpec> {
        if self.turns_left == 0 {
            return None;
        }
        if self.turn > 0 {
            self.messages
                .push(Message::new("assistant", previous_reply.unwrap_or("")));
            let result = self.tool_result();
            self.messages.push(Message::new("user", result));
        }
        self.turn += 1;
        self.turns_left -= 1;
        let payload = self.render();
        let text = payload.text();
        let prompt_tokens = count_or(self.counter.as_ref(), &text, estimate_tokens(&text));
        let max_tokens = self.lengths.output(&mut self.rng);
        Some(RequestSpec {
            kind: "agent",
            payload,
            max_tokens,
            prompt_tokens,
        })
    }
}
