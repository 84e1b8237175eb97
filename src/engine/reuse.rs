//! Which part of the KV cache a new prompt can keep.
//!
//! The common token prefix is always kept: it is exact. Beyond it, a new
//! prompt often holds a long run of the old one at another position: when
//! the user ends a line, that line moves from after the middle marker into
//! the prefix, and the whole suffix behind it moves right by the line's
//! tokens (or left, when a line is deleted). Evaluating the suffix again
//! costs seconds on a CPU; moving its cached keys and values costs a RoPE
//! shift of the cache (llama.cpp's `seq_add`, what llama-server's cache
//! reuse does for deletions).
//!
//! A moved run is an approximation: its keys and values were computed
//! without the inserted text (or with the deleted one) in view. Tokens
//! evaluated after it are exact given the cache. So that the error cannot
//! pile up while the user types line after line, a run is moved again only
//! while the text inserted or removed before it since it was last evaluated
//! stays under a bound; past it the run is evaluated afresh.
//!
//! Pure: plans on token ids; the engine carries the plan out.

use crate::prompt::Token;

/// Shortest run worth moving: below this, evaluating it costs little.
pub const MIN_MOVED_RUN: usize = 32;

/// Farthest a run is looked for from where the prompts first differ, in
/// tokens: a few lines inserted or deleted.
pub const MAX_MOVE: usize = 256;

/// Most tokens inserted or removed before a moved run since it was last
/// evaluated (about a dozen lines of code).
pub const MAX_STALE_TOKENS: usize = 192;

/// A run of cached tokens that reappears in the new prompt elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    /// Where the run starts in the cache.
    pub from: usize,
    /// Where it starts in the new prompt.
    pub to: usize,
    pub len: usize,
}

/// What to keep of the cache for a new prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Tokens kept as they are, from position 0.
    pub common: usize,
    /// A run after them kept at a new position; the tokens between
    /// `common` and `moved.to` are evaluated first, then those after the run.
    pub moved: Option<Moved>,
}

/// How stale the cache's moved tokens are; lives as long as the cache.
#[derive(Debug, Clone, Default)]
pub struct Staleness {
    /// First cache position whose keys and values are approximate.
    from: Option<usize>,
    /// Tokens inserted or removed before it since it was evaluated.
    tokens: usize,
}

impl Staleness {
    /// Plans the reuse of `cached` for `new` (never empty), moving a run
    /// only if `allow_moves`. The last token of `new` is never kept: its
    /// logits start generation. Records the staleness the plan leaves.
    pub fn plan(&mut self, cached: &[Token], new: &[Token], allow_moves: bool) -> Plan {
        let last = new.len().saturating_sub(1);
        let mut common = common_prefix(cached, new).min(last);
        if !allow_moves {
            // Moves turned off: evaluate what was moved again, so that the
            // cache is exact from here on.
            common = common.min(self.from.unwrap_or(common));
        }
        let moved = if allow_moves {
            best_run(cached, new, common)
        } else {
            None
        };
        // Is the run moved (partly) stale already?
        let prior = match (moved, self.from) {
            (Some(m), Some(f)) if f < m.from + m.len => self.tokens,
            _ => 0,
        };
        let moved = moved.filter(|m| prior + m.from.abs_diff(m.to) <= MAX_STALE_TOKENS);
        match moved {
            Some(m) => {
                // Inserted tokens are evaluated exactly; the run is not.
                self.from = Some(m.to);
                self.tokens = prior + m.from.abs_diff(m.to);
            }
            // Everything from `common` on is evaluated afresh.
            None if self.from.is_some_and(|f| f >= common) => *self = Staleness::default(),
            None => {}
        }
        Plan { common, moved }
    }

    /// Forgets all (the cache was cleared).
    pub fn reset(&mut self) {
        *self = Staleness::default();
    }
}

pub fn common_prefix(a: &[Token], b: &[Token]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The longest run of `cached[common..]` that starts `new` within
/// `MAX_MOVE` tokens after `common` (an insertion), or that starts within
/// `MAX_MOVE` tokens after `common` in the cache and begins `new[common..]`
/// (a deletion); at least `MIN_MOVED_RUN` long, ending before `new`'s last token.
fn best_run(cached: &[Token], new: &[Token], common: usize) -> Option<Moved> {
    let last = new.len().saturating_sub(1);
    if common >= cached.len() || common >= last {
        return None;
    }
    let run = |from: usize, to: usize| Moved {
        from,
        to,
        len: common_prefix(&cached[from..], &new[to..last]),
    };
    let inserts = (1..=MAX_MOVE)
        .map(|d| common + d)
        .take_while(|&to| to < last)
        .filter(|&to| new[to] == cached[common])
        .map(|to| run(common, to));
    let deletes = (1..=MAX_MOVE)
        .map(|e| common + e)
        .take_while(|&from| from < cached.len())
        .filter(|&from| cached[from] == new[common])
        .map(|from| run(from, common));
    inserts
        .chain(deletes)
        .filter(|m| m.len >= MIN_MOVED_RUN)
        .max_by_key(|m| (m.len, std::cmp::Reverse(m.from.abs_diff(m.to))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(range: std::ops::Range<i32>) -> Vec<Token> {
        range.collect()
    }

    #[test]
    fn a_line_moved_into_the_prefix_moves_the_suffix_right() {
        // cache: prefix 0..100, suffix 1000..1400, middle 7, line 500..510
        let prefix = seq(0..100);
        let suffix = seq(1000..1400);
        let line = seq(500..510);
        let cached: Vec<Token> = [&prefix[..], &suffix, &[7], &line].concat();
        // new: prefix + line + newline(9), suffix, middle, indentation (8)
        let new: Vec<Token> = [&prefix[..], &line, &[9], &suffix, &[7], &[8]].concat();
        let mut s = Staleness::default();
        let plan = s.plan(&cached, &new, true);
        assert_eq!(plan.common, 100);
        assert_eq!(
            plan.moved,
            Some(Moved {
                from: 100,
                to: 111,
                len: 401
            }),
            "the suffix and the middle marker move by the line's 11 tokens"
        );
        assert_eq!(s.tokens, 11);
        // Without moves only the prefix is kept.
        let plan = Staleness::default().plan(&cached, &new, false);
        assert_eq!((plan.common, plan.moved), (100, None));
    }

    #[test]
    fn a_deleted_line_moves_the_rest_left() {
        let cached: Vec<Token> = [&seq(0..50)[..], &seq(600..620), &seq(1000..1200), &[7]].concat();
        let new: Vec<Token> = [&seq(0..50)[..], &seq(1000..1200), &[7]].concat();
        let plan = Staleness::default().plan(&cached, &new, true);
        assert_eq!(
            plan.moved,
            Some(Moved {
                from: 70,
                to: 50,
                len: 200
            }),
            "the last token is never kept"
        );
    }

    #[test]
    fn short_runs_stay_and_the_last_token_is_always_evaluated() {
        let cached: Vec<Token> = [&seq(0..10)[..], &seq(100..110)].concat();
        let new: Vec<Token> = [&seq(0..10)[..], &[5], &seq(100..110)].concat();
        assert_eq!(Staleness::default().plan(&cached, &new, true).moved, None);
        // Same prompt again: all but the last token kept.
        let plan = Staleness::default().plan(&new, &new, true);
        assert_eq!((plan.common, plan.moved), (new.len() - 1, None));
    }

    #[test]
    fn staleness_is_bounded_and_cleared_by_a_fresh_evaluation() {
        let suffix = seq(1000..1400);
        let mut s = Staleness::default();
        let mut cached: Vec<Token> = [&seq(0..100)[..], &suffix, &[7]].concat();
        let mut prefix = seq(0..100);
        let mut moves = 0;
        // Lines of 20 tokens typed one after another.
        for k in 0..20 {
            prefix.extend(seq(2000 + 20 * k..2020 + 20 * k));
            let new: Vec<Token> = [&prefix[..], &suffix, &[7]].concat();
            let plan = s.plan(&cached, &new, true);
            if plan.moved.is_some() {
                moves += 1;
            } else {
                assert_eq!(s.tokens, 0, "evaluated afresh: nothing stale");
            }
            assert!(s.tokens <= MAX_STALE_TOKENS);
            cached = new;
        }
        assert_eq!(moves, 20 - 20 / (MAX_STALE_TOKENS / 20 + 1));
        // The last line was evaluated afresh; one more is moved.
        prefix.extend(seq(9000..9020));
        let new: Vec<Token> = [&prefix[..], &suffix, &[7]].concat();
        assert!(s.plan(&cached, &new, true).moved.is_some());
        cached = new;
        // Typing within a line (common prefix covers the stale run) keeps it stale.
        let before = s.tokens;
        let plan = s.plan(&cached, &cached, true);
        assert_eq!(plan.moved, None);
        assert_eq!(s.tokens, before);
        // Moves turned off: the stale run is evaluated again.
        let mut off = s.clone();
        let plan = off.plan(&cached, &cached, false);
        assert!(plan.common < cached.len() - 1 && plan.common > 100);
        assert_eq!(off.tokens, 0);
        // A change before the stale run re-evaluates it: fresh.
        let mut edited = cached.clone();
        edited[5] = 99_999;
        let plan = s.plan(&cached, &edited, false);
        assert_eq!(plan.common, 5);
        assert_eq!(s.tokens, 0);
    }
}
