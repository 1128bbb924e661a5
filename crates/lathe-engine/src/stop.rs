//! Stop strings matched across token (chunk) boundaries, never emitted.
//!
//! Text arrives in chunks of any size (one per token). The matcher emits text as soon as it
//! cannot be the beginning of a stop string and holds back the longest suffix that still
//! could be. Decisions:
//! - When several stops are present, the one that *completes first* (smallest end offset;
//!   on a tie the longer one, which starts earlier) wins. That is what a client reading the
//!   stream character by character would see, so the outcome does not depend on how the
//!   text was chunked.
//! - The stop string itself and everything after it are dropped (OpenAI semantics).
//! - After a stop, further pushes return nothing and keep reporting `stopped`.
//! - Held-back text is cut on char boundaries only: stop strings are valid UTF-8, so any
//!   suffix that can start one starts at a char boundary.

/// Stateful matcher for one generation stream.
#[derive(Debug, Clone, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    /// Longest stop in bytes; bounds how much text can be held back.
    max_len: usize,
    /// Text received but not yet emitted (a possible stop prefix).
    held: String,
    stopped: bool,
}

/// Result of one [`StopMatcher::push`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StopOutcome {
    /// Text that is safe to emit now.
    pub text: String,
    /// A stop string matched; generation should end.
    pub stopped: bool,
    /// The stop string that matched.
    pub matched: Option<String>,
}

impl StopMatcher {
    /// A matcher for `stops`; empty strings are ignored (they would match everywhere).
    pub fn new(stops: Vec<String>) -> Self {
        let mut stops: Vec<String> = stops.into_iter().filter(|s| !s.is_empty()).collect();
        stops.dedup();
        let max_len = stops.iter().map(String::len).max().unwrap_or(0);
        Self {
            stops,
            max_len,
            held: String::new(),
            stopped: false,
        }
    }

    /// Whether a stop string has matched.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Feeds newly generated text; returns what can be emitted now.
    pub fn push(&mut self, text: &str) -> StopOutcome {
        if self.stopped {
            return StopOutcome {
                text: String::new(),
                stopped: true,
                matched: None,
            };
        }
        self.held.push_str(text);
        if let Some((start, stop)) = self.first_completed() {
            self.stopped = true;
            let mut emit = std::mem::take(&mut self.held);
            emit.truncate(start);
            return StopOutcome {
                text: emit,
                stopped: true,
                matched: Some(stop),
            };
        }
        let keep_from = self.partial_start();
        let rest = self.held.split_off(keep_from);
        StopOutcome {
            text: std::mem::replace(&mut self.held, rest),
            stopped: false,
            matched: None,
        }
    }

    /// The held-back text, for when generation ends without a stop.
    pub fn flush(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// Start offset and text of the stop that completes first in `held`.
    fn first_completed(&self) -> Option<(usize, String)> {
        self.stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()).map(|start| (start, s)))
            // Smallest end; on equal ends the earliest start (the longer stop).
            .min_by_key(|(start, s)| (start + s.len(), *start))
            .map(|(start, s)| (start, s.clone()))
    }

    /// Offset of the longest suffix of `held` that is a proper prefix of some stop
    /// (`held.len()` when there is none).
    fn partial_start(&self) -> usize {
        let len = self.held.len();
        let earliest = len.saturating_sub(self.max_len.saturating_sub(1));
        (earliest..len)
            .filter(|&i| self.held.is_char_boundary(i))
            .find(|&i| {
                let tail = &self.held[i..];
                self.stops.iter().any(|s| s.starts_with(tail))
            })
            .unwrap_or(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_stops_passes_everything_through() {
        let mut m = StopMatcher::new(vec![String::new()]);
        assert_eq!(m.push("abc").text, "abc");
        assert_eq!(m.flush(), "");
    }

    #[test]
    fn multibyte_prefix_is_held_on_char_boundaries() {
        let mut m = StopMatcher::new(vec!["é!".into()]);
        assert_eq!(m.push("caf").text, "caf");
        assert_eq!(m.push("é").text, "");
        assert_eq!(m.push("?").text, "é?");
    }
}
