//! Speculative-decoding counters of the server under test, scraped from its Prometheus
//! `/metrics` before and after each run under vLLM's names (which lathe exports too):
//! `vllm:spec_decode_num_drafts_total`, `…_num_draft_tokens_total`,
//! `…_num_accepted_tokens_total`. The run's numbers are the differences; a server without
//! these counters (or without `/metrics`) gives none.

use serde::{Deserialize, Serialize};

use super::client::Target;

const DRAFTS: &str = "vllm:spec_decode_num_drafts_total";
const DRAFT_TOKENS: &str = "vllm:spec_decode_num_draft_tokens_total";
const ACCEPTED: &str = "vllm:spec_decode_num_accepted_tokens_total";

/// The counters at one moment (summed over label sets).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SpecCounters {
    pub drafts: f64,
    pub draft_tokens: f64,
    pub accepted_tokens: f64,
}

/// What one run's verification steps did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpecDecodeStats {
    /// Verification steps that checked proposals.
    pub drafts: u64,
    pub draft_tokens: u64,
    pub accepted_tokens: u64,
    /// accepted / proposed tokens (`None` without proposals).
    pub acceptance_rate: Option<f64>,
    /// Tokens emitted per verification step: 1 + accepted / drafts (vLLM's definition).
    pub mean_accepted_length: Option<f64>,
}

/// The counters in a Prometheus text exposition; `None` if it has none of them.
pub fn parse(text: &str) -> Option<SpecCounters> {
    let mut c = SpecCounters::default();
    let mut seen = false;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name_labels, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let name = name_labels.split('{').next().unwrap_or("").trim();
        let Ok(v) = value.trim().parse::<f64>() else {
            continue;
        };
        let slot = match name {
            DRAFTS => &mut c.drafts,
            DRAFT_TOKENS => &mut c.draft_tokens,
            ACCEPTED => &mut c.accepted_tokens,
            _ => continue,
        };
        *slot += v;
        seen = true;
    }
    seen.then_some(c)
}

/// GET `/metrics` of `target` (beside its `/v1`); `None` on any failure.
pub async fn scrape(http: &reqwest::Client, target: &Target) -> Option<SpecCounters> {
    let base = target.base_url.trim_end_matches('/');
    let base = base.strip_suffix("/v1").unwrap_or(base);
    let resp = http.get(format!("{base}/metrics")).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    parse(&resp.text().await.ok()?)
}

impl SpecDecodeStats {
    /// The run between two scrapes (counters reset in between: none).
    pub fn between(before: SpecCounters, after: SpecCounters) -> Option<Self> {
        let d = |a: f64, b: f64| (a >= b).then(|| (a - b).round() as u64);
        let drafts = d(after.drafts, before.drafts)?;
        let draft_tokens = d(after.draft_tokens, before.draft_tokens)?;
        let accepted_tokens = d(after.accepted_tokens, before.accepted_tokens)?;
        Some(Self {
            drafts,
            draft_tokens,
            accepted_tokens,
            acceptance_rate: (draft_tokens > 0)
                .then(|| accepted_tokens as f64 / draft_tokens as f64),
            mean_accepted_length: (drafts > 0)
                .then(|| 1.0 + accepted_tokens as f64 / drafts as f64),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LATHE: &str = "# HELP vllm:spec_decode_num_drafts_total x\n# TYPE vllm:spec_decode_num_drafts_total counter\nvllm:spec_decode_num_drafts_total{model_name=\"m\"} 10\nvllm:spec_decode_num_draft_tokens_total{model_name=\"m\"} 50\nvllm:spec_decode_num_accepted_tokens_total{model_name=\"m\"} 35\nlathe_spec_decode_num_drafts_total 10\n";

    #[test]
    fn counters_are_read_by_name_and_differenced() {
        let before = parse(LATHE).unwrap();
        assert_eq!(
            (before.drafts, before.draft_tokens, before.accepted_tokens),
            (10.0, 50.0, 35.0)
        );
        let after = SpecCounters {
            drafts: 30.0,
            draft_tokens: 150.0,
            accepted_tokens: 95.0,
        };
        let s = SpecDecodeStats::between(before, after).unwrap();
        assert_eq!((s.drafts, s.draft_tokens, s.accepted_tokens), (20, 100, 60));
        assert_eq!(s.acceptance_rate, Some(0.6));
        assert_eq!(s.mean_accepted_length, Some(4.0));
        // A restarted server (counters went down) gives nothing rather than nonsense.
        assert_eq!(SpecDecodeStats::between(after, before), None);
        assert_eq!(parse("other_metric 1\n"), None);
        let idle = SpecDecodeStats::between(before, before).unwrap();
        assert_eq!((idle.drafts, idle.acceptance_rate), (0, None));
    }
}
