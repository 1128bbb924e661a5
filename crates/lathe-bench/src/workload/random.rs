//! `random`: prompts of random common words, `--input-len` ± `--range-ratio` tokens each,
//! asking for `--output-len` ± `--range-ratio` tokens. Every prompt differs from its first
//! word, so prefix caches get no help (as with vLLM's random dataset).

use std::sync::Arc;

use rand::rngs::StdRng;

use super::words::random_text;
use super::{
    Conversation, Endpoint, Lengths, Payload, RequestSpec, Single, Workload, WorkloadConfig,
};
use crate::tokens::{count_or, TokenCounter};

pub struct RandomWorkload {
    endpoint: Endpoint,
    lengths: Lengths,
    counter: Arc<dyn TokenCounter>,
    rng: StdRng,
}

impl RandomWorkload {
    pub fn new(cfg: &WorkloadConfig, counter: Arc<dyn TokenCounter>, rng: StdRng) -> Self {
        RandomWorkload {
            endpoint: cfg.endpoint,
            lengths: cfg.lengths,
            counter,
            rng,
        }
    }

    pub fn next_spec(&mut self) -> RequestSpec {
        let n = self.lengths.input(&mut self.rng);
        let max_tokens = self.lengths.output(&mut self.rng);
        let text = random_text(n, &mut self.rng);
        let prompt_tokens = count_or(self.counter.as_ref(), &text, n);
        RequestSpec {
            kind: "random",
            payload: Payload::prompt(self.endpoint, text),
            max_tokens,
            prompt_tokens,
        }
    }
}

impl Workload for RandomWorkload {
    fn next_conversation(&mut self) -> Box<dyn Conversation> {
        Single::boxed(self.next_spec())
    }
}
