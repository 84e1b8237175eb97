//! Prompt lookup: a guess at the next tokens of an answer, taken from what
//! followed the last few tokens where they occurred before in the prompt or
//! the answer. Code repeats itself (a second similar function, a call
//! shaped like the one above, the suffix the answer leads into), and a
//! guess costs no model: `generate` checks it against the model's own
//! greedy choices in one batch and keeps only what they agree with.
//!
//! Pure, on token ids.

use crate::prompt::Token;

/// Lengths of the n-gram looked up, longest first: a longer match predicts
/// better, a shorter one finds something more often (`generate` checks
/// every guess, so a wrong one costs time, never an answer).
const NGRAM_SIZES: [usize; 2] = [3, 2];

/// The tokens that followed the latest earlier occurrence of the last `n`
/// tokens of `history` (n from `NGRAM_SIZES`, the longest that occurs), at
/// most `max` of them; empty when none occurs or `max` is 0.
pub(super) fn lookup(history: &[Token], max: usize) -> &[Token] {
    if max == 0 {
        return &[];
    }
    for n in NGRAM_SIZES {
        if history.len() <= n {
            continue;
        }
        let tail = &history[history.len() - n..];
        // The latest occurrence that ends before the tail itself: code near
        // the cursor is the likeliest to be repeated.
        let found = (0..history.len() - n)
            .rev()
            .find(|&start| &history[start..start + n] == tail);
        if let Some(start) = found {
            let from = start + n;
            let to = (from + max).min(history.len());
            return &history[from..to];
        }
    }
    &[]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tokens_after_the_latest_earlier_occurrence_are_the_guess() {
        // 1 2 3 occurs at 0 and 5; the tail 1 2 3 (at 10) matches the
        // latest earlier one, followed by 9 8.
        let history = [1, 2, 3, 4, 5, 1, 2, 3, 9, 8, 1, 2, 3];
        assert_eq!(lookup(&history, 2), &[9, 8]);
        assert_eq!(lookup(&history, 16), &[9, 8, 1, 2, 3]);
        assert_eq!(lookup(&history, 0), &[] as &[Token]);
    }

    #[test]
    fn a_shorter_ngram_is_the_fallback() {
        // 7 2 3 never occurred before; 2 3 did, followed by 4.
        let history = [2, 3, 4, 5, 7, 2, 3];
        assert_eq!(lookup(&history, 3), &[4, 5, 7]);
        // Not even the last two: no guess.
        assert_eq!(lookup(&[1, 2, 3, 4], 8), &[] as &[Token]);
        assert_eq!(lookup(&[1, 1], 8), &[] as &[Token]);
        assert_eq!(lookup(&[], 8), &[] as &[Token]);
    }

    #[test]
    fn the_guess_ends_where_the_history_does() {
        // The match runs into the tail itself: what follows it is the
        // tail's own start, a guess that the pattern repeats.
        let history = [5, 5, 5, 5];
        assert_eq!(lookup(&history, 8), &[5]);
        let history = [1, 2, 1, 2, 1, 2];
        assert_eq!(lookup(&history, 8), &[1, 2]);
    }
}
