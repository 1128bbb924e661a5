//! Sampling parameters carried by a request. The engine's sampler reads them; the scheduler only
//! needs `max_tokens`. Ranges follow the OpenAI API where it defines one.

use serde::{Deserialize, Serialize};

/// Values below this temperature mean greedy decoding (as in vLLM).
const GREEDY_EPS: f32 = 1e-5;
/// OpenAI caps `top_logprobs` at 20.
const MAX_LOGPROBS: usize = 20;

/// How to pick the next token. Missing fields deserialize to their defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingParams {
    /// Maximum number of generated tokens (default 256).
    pub max_tokens: usize,
    /// Softmax temperature, 0..=2 (default 1.0); 0 => greedy.
    pub temperature: f32,
    /// Keep the k most likely tokens; 0 => disabled.
    pub top_k: usize,
    /// Nucleus sampling mass, (0, 1]; 1.0 => disabled.
    pub top_p: f32,
    /// Drop tokens below `min_p * p_max`, [0, 1]; 0.0 => disabled.
    pub min_p: f32,
    /// Multiplicative penalty on tokens already seen (> 0); 1.0 => disabled.
    pub repetition_penalty: f32,
    /// Additive penalty on tokens already generated, -2..=2.
    pub presence_penalty: f32,
    /// Penalty proportional to a token's generated count, -2..=2.
    pub frequency_penalty: f32,
    /// Per-request RNG seed for reproducible sampling.
    pub seed: Option<u64>,
    /// Stop strings (never part of the output).
    pub stop: Vec<String>,
    /// Token ids that stop generation.
    pub stop_token_ids: Vec<u32>,
    /// Keep generating past the EOS token.
    pub ignore_eos: bool,
    /// `Some(k)`: return the sampled token's logprob and the top-k alternatives (k <= 20).
    pub logprobs: Option<usize>,
    /// Speculative decoding for this request; `None` follows the server's setting.
    pub speculative: Option<SpecMode>,
}

/// How a request's next tokens are proposed for speculative decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpecMode {
    /// One token per step.
    Off,
    /// Prompt lookup: continue the latest earlier occurrence of the sequence's last n-gram.
    Ngram,
    /// The server's draft model proposes.
    Draft,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            max_tokens: 256,
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repetition_penalty: 1.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            seed: None,
            stop: Vec::new(),
            stop_token_ids: Vec::new(),
            ignore_eos: false,
            logprobs: None,
            speculative: None,
        }
    }
}

impl SamplingParams {
    /// Deterministic argmax decoding of at most `max_tokens` tokens.
    pub fn greedy(max_tokens: usize) -> Self {
        Self {
            max_tokens,
            temperature: 0.0,
            ..Self::default()
        }
    }

    /// True when the sampler should take the argmax (temperature ~ 0).
    pub fn is_greedy(&self) -> bool {
        self.temperature < GREEDY_EPS
    }

    /// Check every field's range; the message names the field (the server turns it into a 400).
    /// NaN fails every range check.
    pub fn validate(&self) -> Result<(), String> {
        fn check(ok: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
            if ok {
                Ok(())
            } else {
                Err(msg())
            }
        }
        check(self.max_tokens >= 1, || {
            "max_tokens must be at least 1".into()
        })?;
        check((0.0..=2.0).contains(&self.temperature), || {
            format!("temperature must be in [0, 2], got {}", self.temperature)
        })?;
        check(self.top_p > 0.0 && self.top_p <= 1.0, || {
            format!("top_p must be in (0, 1], got {}", self.top_p)
        })?;
        check((0.0..=1.0).contains(&self.min_p), || {
            format!("min_p must be in [0, 1], got {}", self.min_p)
        })?;
        check(
            self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite(),
            || {
                format!(
                    "repetition_penalty must be > 0, got {}",
                    self.repetition_penalty
                )
            },
        )?;
        check((-2.0..=2.0).contains(&self.presence_penalty), || {
            format!(
                "presence_penalty must be in [-2, 2], got {}",
                self.presence_penalty
            )
        })?;
        check((-2.0..=2.0).contains(&self.frequency_penalty), || {
            format!(
                "frequency_penalty must be in [-2, 2], got {}",
                self.frequency_penalty
            )
        })?;
        check(self.stop.iter().all(|s| !s.is_empty()), || {
            "stop strings must not be empty".into()
        })?;
        check(self.logprobs.is_none_or(|k| k <= MAX_LOGPROBS), || {
            format!("logprobs must be at most {MAX_LOGPROBS}")
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_greedy() {
        let d = SamplingParams::default();
        assert_eq!((d.max_tokens, d.temperature, d.top_p), (256, 1.0, 1.0));
        assert!(!d.is_greedy());
        assert!(d.validate().is_ok());
        let g = SamplingParams::greedy(8);
        assert!(g.is_greedy() && g.max_tokens == 8 && g.validate().is_ok());
    }

    #[test]
    fn validate_rejects_out_of_range_fields() {
        let bad: Vec<(&str, SamplingParams)> = vec![
            (
                "max_tokens",
                SamplingParams {
                    max_tokens: 0,
                    ..Default::default()
                },
            ),
            (
                "temperature",
                SamplingParams {
                    temperature: 2.5,
                    ..Default::default()
                },
            ),
            (
                "temperature",
                SamplingParams {
                    temperature: -0.1,
                    ..Default::default()
                },
            ),
            (
                "temperature",
                SamplingParams {
                    temperature: f32::NAN,
                    ..Default::default()
                },
            ),
            (
                "top_p",
                SamplingParams {
                    top_p: 0.0,
                    ..Default::default()
                },
            ),
            (
                "top_p",
                SamplingParams {
                    top_p: 1.01,
                    ..Default::default()
                },
            ),
            (
                "min_p",
                SamplingParams {
                    min_p: 1.5,
                    ..Default::default()
                },
            ),
            (
                "repetition_penalty",
                SamplingParams {
                    repetition_penalty: 0.0,
                    ..Default::default()
                },
            ),
            (
                "presence_penalty",
                SamplingParams {
                    presence_penalty: 2.1,
                    ..Default::default()
                },
            ),
            (
                "frequency_penalty",
                SamplingParams {
                    frequency_penalty: -3.0,
                    ..Default::default()
                },
            ),
            (
                "stop",
                SamplingParams {
                    stop: vec![String::new()],
                    ..Default::default()
                },
            ),
            (
                "logprobs",
                SamplingParams {
                    logprobs: Some(21),
                    ..Default::default()
                },
            ),
        ];
        for (field, p) in bad {
            let err = p.validate().unwrap_err();
            assert!(err.contains(field), "{field}: {err}");
        }
        let edge = SamplingParams {
            temperature: 2.0,
            top_p: 1.0,
            min_p: 1.0,
            presence_penalty: -2.0,
            frequency_penalty: 2.0,
            logprobs: Some(20),
            ..Default::default()
        };
        assert!(edge.validate().is_ok());
    }

    #[test]
    fn serde_round_trip_and_partial_input() {
        let p = SamplingParams {
            seed: Some(3),
            stop: vec!["\n\n".into()],
            logprobs: Some(2),
            ..SamplingParams::greedy(5)
        };
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<SamplingParams>(&json).unwrap(), p);
        let partial: SamplingParams = serde_json::from_str(r#"{"temperature":0.5}"#).unwrap();
        assert_eq!(partial.temperature, 0.5);
        assert_eq!(partial.max_tokens, 256);
    }
}
