//! Prompt lookup (n-gram) proposals: code edits re-emit what the prompt showed, so the tokens
//! that followed the last earlier occurrence of the sequence's final n-gram are a good guess
//! for what comes next.

/// Up to `k` tokens to follow `tokens`: for n from `n_max` down to `n_min`, the tokens after
/// the latest earlier occurrence of the last n tokens. Empty if no n-gram recurs.
pub fn propose(tokens: &[u32], n_min: usize, n_max: usize, k: usize) -> Vec<u32> {
    let len = tokens.len();
    if k == 0 || n_min == 0 {
        return Vec::new();
    }
    for n in (n_min..=n_max.min(len.saturating_sub(1))).rev() {
        let suffix = &tokens[len - n..];
        // Latest match first: a rewrite copies the part of the file it is at.
        let found = (0..len - n)
            .rev()
            .find(|&start| &tokens[start..start + n] == suffix);
        if let Some(start) = found {
            let from = start + n;
            return tokens[from..(from + k).min(len)].to_vec();
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::propose;

    #[test]
    fn continues_the_latest_earlier_occurrence_of_the_longest_ngram() {
        // "1 2 3" recurs at the end: what followed it last time (at 5..) is proposed.
        let t = [1, 2, 3, 4, 9, 1, 2, 3, 7, 8, 5, 1, 2, 3];
        assert_eq!(propose(&t, 1, 3, 2), vec![7, 8]);
        // Only 1-grams allowed: the latest earlier `3` is at index 7.
        assert_eq!(propose(&t, 1, 1, 3), vec![7, 8, 5]);
    }

    #[test]
    fn prefers_longer_ngrams_and_stops_at_the_end_of_the_sequence() {
        // The 2-gram "5 6" occurs once (followed by 7); the 1-gram "6" more recently by 0.
        let t = [5, 6, 7, 6, 0, 5, 6];
        assert_eq!(propose(&t, 1, 2, 5), vec![7, 6, 0, 5, 6]);
        assert_eq!(propose(&t, 1, 1, 5), vec![0, 5, 6]);
    }

    #[test]
    fn nothing_when_no_ngram_recurs_or_k_is_zero() {
        assert!(propose(&[1, 2, 3, 4], 1, 3, 4).is_empty());
        assert!(propose(&[1, 1, 1], 1, 3, 0).is_empty());
        assert!(propose(&[], 1, 3, 4).is_empty());
        assert!(propose(&[7], 1, 3, 4).is_empty());
        assert!(propose(&[1, 2, 1, 2], 3, 3, 4).is_empty());
    }
}
