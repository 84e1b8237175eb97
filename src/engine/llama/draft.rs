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

/// How long the next draft may be, from how the last ones fared. On a CPU
/// a batch costs nearly as much per token as single decodes (9 tokens took
/// 7 single decodes' time on one thread here), so a wrong draft is paid in
/// full: a fully rejected draft makes the next one short and pauses
/// drafting for a while (longer after each miss in a row); a fully
/// accepted one lets the next grow back to the most.
#[derive(Debug, Clone)]
pub(super) struct Pacer {
    max: usize,
    len: usize,
    /// Decodes to make without a draft before the next one.
    wait: usize,
    /// Fully rejected drafts in a row.
    misses: u32,
}

impl Pacer {
    pub(super) fn new(max: usize) -> Pacer {
        Pacer {
            max,
            len: max,
            wait: 0,
            misses: 0,
        }
    }

    /// Most tokens to draft at this decode (0: none now).
    pub(super) fn allowance(&mut self) -> usize {
        if self.wait > 0 {
            self.wait -= 1;
            0
        } else {
            self.len
        }
    }

    /// A draft of `drafted` tokens was checked: the model chose the first
    /// `accepted`.
    pub(super) fn checked(&mut self, drafted: usize, accepted: usize) {
        if accepted >= drafted {
            self.misses = 0;
            self.len = (self.len * 2).min(self.max);
        } else if accepted == 0 {
            self.misses += 1;
            self.wait = 1 << self.misses.min(5);
            self.len = (self.len / 2).max(1);
        } else {
            self.misses = 0;
            self.len = (accepted + 1).min(self.max);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missed_draft_pauses_drafting_longer_each_time_and_a_hit_grows_it() {
        let mut pacer = Pacer::new(8);
        assert_eq!(pacer.allowance(), 8);
        pacer.checked(8, 0);
        // Two decodes without a draft, then a draft of 4.
        assert_eq!(pacer.allowance(), 0);
        assert_eq!(pacer.allowance(), 0);
        assert_eq!(pacer.allowance(), 4);
        pacer.checked(4, 0);
        for _ in 0..4 {
            assert_eq!(pacer.allowance(), 0);
        }
        assert_eq!(pacer.allowance(), 2);
        pacer.checked(2, 2);
        assert_eq!(pacer.allowance(), 4);
        pacer.checked(4, 4);
        pacer.checked(8, 8);
        assert_eq!(pacer.allowance(), 8, "never past the most");
        // Part accepted: as long as what was accepted, and one more.
        pacer.checked(8, 2);
        assert_eq!(pacer.allowance(), 3);
        // A miss after a hit pauses briefly again.
        pacer.checked(3, 0);
        assert_eq!(pacer.allowance(), 0);
        assert_eq!(pacer.allowance(), 0);
        assert_eq!(pacer.allowance(), 1);
        assert_eq!(Pacer::new(0).allowance(), 0);
    }

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
