//! `code`: the three requests code assistants make, mixed by `--code-mix`.
//!
//! - `complete`: the head of a generated source file (`--input-len` tokens), cut mid-line, sent
//!   to `/v1/completions` to be continued (editor autocompletion).
//! - `fim`: fill-in-the-middle: the file split into `prompt` (prefix) and `suffix` around a
//!   removed span of 1–5 lines, sent to `/v1/completions` with `suffix`.
//! - `edit`: a 1–2k-token file and an instruction ("rename `f` to `g`", ...) asking for the whole
//!   modified file back, so the reply is about as long as the input; sent to `--endpoint`.

use std::str::FromStr;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::Rng;
use serde::Serialize;

use super::code_gen::{generate_file, random_lang, SourceFile};
use super::words::{pick, VERBS};
use super::{
    Conversation, Endpoint, Lengths, Message, Payload, RequestSpec, Single, Workload,
    WorkloadConfig,
};
use crate::tokens::{count_or, estimate_tokens, TokenCounter};

/// Relative weights of the three code request kinds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CodeMix {
    pub complete: f64,
    pub fim: f64,
    pub edit: f64,
}

impl Default for CodeMix {
    fn default() -> Self {
        CodeMix {
            complete: 1.0,
            fim: 1.0,
            edit: 1.0,
        }
    }
}

impl FromStr for CodeMix {
    type Err = String;

    /// `complete=2,fim=1,edit=0`; kinds left out weigh 0.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut mix = CodeMix {
            complete: 0.0,
            fim: 0.0,
            edit: 0.0,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or(format!("expected kind=weight: {part}"))?;
            let w: f64 = v
                .trim()
                .parse()
                .map_err(|_| format!("bad weight in {part}"))?;
            if !(w >= 0.0 && w.is_finite()) {
                return Err(format!("weight must be ≥ 0: {part}"));
            }
            match k.trim() {
                "complete" => mix.complete = w,
                "fim" => mix.fim = w,
                "edit" => mix.edit = w,
                other => return Err(format!("unknown code request kind {other:?}")),
            }
        }
        if mix.complete + mix.fim + mix.edit <= 0.0 {
            return Err("code mix weighs nothing".into());
        }
        Ok(mix)
    }
}

const EDIT_SYSTEM: &str = "You are a precise code editor. Apply the requested change and reply \
with the complete modified file in a single fenced code block, with no explanation.";

pub struct CodeWorkload {
    endpoint: Endpoint,
    lengths: Lengths,
    mix: CodeMix,
    counter: Arc<dyn TokenCounter>,
    rng: StdRng,
}

impl CodeWorkload {
    pub fn new(cfg: &WorkloadConfig, counter: Arc<dyn TokenCounter>, rng: StdRng) -> Self {
        CodeWorkload {
            endpoint: cfg.endpoint,
            lengths: cfg.lengths,
            mix: cfg.code_mix,
            counter,
            rng,
        }
    }

    fn file(&mut self, tokens: usize) -> SourceFile {
        let lang = random_lang(&mut self.rng);
        generate_file(lang, tokens, self.counter.as_ref(), &mut self.rng)
    }

    fn spec(
        &self,
        kind: &'static str,
        payload: Payload,
        max_tokens: u32,
        approx: usize,
    ) -> RequestSpec {
        let prompt_tokens = count_or(self.counter.as_ref(), &payload.text(), approx);
        RequestSpec {
            kind,
            payload,
            max_tokens,
            prompt_tokens,
        }
    }

    /// The head of a file, cut mid-line somewhere in its last 40%.
    pub fn complete(&mut self) -> RequestSpec {
        let target = self.lengths.input(&mut self.rng);
        let file = self.file(target);
        let len = file.text.len();
        let mut cut = self.rng.random_range(len * 6 / 10..len * 95 / 100);
        while !file.text.is_char_boundary(cut) {
            cut -= 1;
        }
        let prompt = file.text[..cut].to_string();
        let approx = estimate_tokens(&prompt);
        let max_tokens = self.lengths.output(&mut self.rng);
        self.spec(
            "complete",
            Payload::Completion {
                prompt,
                suffix: None,
            },
            max_tokens,
            approx,
        )
    }

    /// Prefix and suffix around 1–5 removed lines from the middle half of a file.
    pub fn fim(&mut self) -> RequestSpec {
        let target = self.lengths.input(&mut self.rng);
        let file = self.file(target);
        let lines: Vec<&str> = file.text.split_inclusive('\n').collect();
        let n = lines.len();
        let start = self.rng.random_range(n / 4..(3 * n / 4).max(n / 4 + 1));
        let end = (start + self.rng.random_range(1..=5))
            .min(n.saturating_sub(1))
            .max(start + 1);
        let prompt: String = lines[..start].concat();
        let suffix: String = lines[end..].concat();
        let approx = estimate_tokens(&prompt) + estimate_tokens(&suffix);
        let max_tokens = self.lengths.output(&mut self.rng);
        let payload = Payload::Completion {
            prompt,
            suffix: Some(suffix),
        };
        self.spec("fim", payload, max_tokens, approx)
    }

    /// A 1–2k-token file and an instruction that wants the whole file back.
    pub fn edit(&mut self) -> RequestSpec {
        let target = self.rng.random_range(1000..=2000);
        let file = self.file(target);
        let f = &file.functions[self.rng.random_range(0..file.functions.len())];
        let instruction = match self.rng.random_range(0..3) {
            0 => format!(
                "Rename `{f}` to `{}_v2` everywhere in this file.",
                pick(VERBS, &mut self.rng)
            ),
            1 => "Add a short documentation comment above every function, class and type.".into(),
            _ => format!(
                "Make `{f}` reject empty input with an error, and keep everything else unchanged."
            ),
        };
        let fence = file.lang.fence();
        let user = format!(
            "{instruction}\n\nFile `{}`:\n```{fence}\n{}```",
            file.path, file.text
        );
        let payload = match self.endpoint {
            Endpoint::Chat => Payload::Chat {
                messages: vec![
                    Message::new("system", EDIT_SYSTEM),
                    Message::new("user", user),
                ],
            },
            Endpoint::Completions => Payload::Completion {
                prompt: format!("{EDIT_SYSTEM}\n\n{user}\n\nModified file:\n```{fence}\n"),
                suffix: None,
            },
        };
        let approx =
            file.tokens + estimate_tokens(EDIT_SYSTEM) + estimate_tokens(&instruction) + 16;
        let max_tokens = self.lengths.output_or(file.tokens + 64);
        self.spec("edit", payload, max_tokens, approx)
    }

    pub fn next_spec(&mut self) -> RequestSpec {
        let total = self.mix.complete + self.mix.fim + self.mix.edit;
        let x = self.rng.random::<f64>() * total;
        if x < self.mix.complete {
            self.complete()
        } else if x < self.mix.complete + self.mix.fim {
            self.fim()
        } else {
            self.edit()
        }
    }
}

impl Workload for CodeWorkload {
    fn next_conversation(&mut self) -> Box<dyn Conversation> {
        Single::boxed(self.next_spec())
    }
}
