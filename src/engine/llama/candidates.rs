//! Several answers at once (`EngineRequest::candidates`): the greedy
//! answer in sequence 0, chosen by the rules of `generate`, and
//! alternatives that start with the next-best first tokens and go on
//! greedily, each in a sequence of its own that shares the prompt's cells
//! (llama.cpp's sequence copy only labels them: nothing is evaluated
//! again). One token of every unfinished answer is evaluated in one batch
//! per step: on a CPU a batch of a few tokens costs little more than one
//! (the weights are read once for all), so the answers come in about the
//! time of the longest.
//!
//! Why branch at the first token: an alternative is worth showing where
//! it starts otherwise than the greedy answer; after its start it is the
//! model's greedy continuation, as likely as the model can make it. Starts
//! that would give the same text (the same first word with other
//! blanks, or the start of one another) are skipped, so that the few
//! sequences go to answers that differ.
//!
//! After the answers, the alternatives' sequences are removed: the cache
//! holds the prompt and the greedy answer in sequence 0, as `generate`
//! leaves it, so the next request reuses it exactly as after one answer.
//! Prompt lookup drafts are not made while several answers are decoded.

use std::time::Instant;

use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;

use super::cache_sync::kv_failed;
use super::generate::{valid_utf8, Generated, StartRule};
use super::parked::FIRST_KEPT_SEQ;
use super::session::Session;
use crate::config::MAX_CANDIDATES;
use crate::engine::{Alternative, CancelFlag, EngineError, EngineRequest};
use crate::prompt::Token;

/// Alternatives besides the greedy answer, at most.
pub(super) const MAX_ALTERNATIVES: usize = MAX_CANDIDATES as usize - 1;

/// Most tokens of an alternative; the context has this much room for
/// each besides the prompts' (`Session::new`).
pub(super) const ALTERNATIVE_TOKENS: usize = 128;

/// First tokens looked at for alternatives' starts, most likely first.
const STARTS_SEEN: usize = 256;

/// Once the greedy answer is done, the alternatives still unfinished have
/// a quarter of its tokens more (at least this many steps) to reach a line
/// end, where they then end; those that do not are not offered. So the
/// alternatives cost little time beyond the greedy answer's: with 8 steps
/// at least, a short greedy answer (`}`) waited for alternatives several
/// times its length, and generation took 1.4–2.5× as long (11 items).
const STEPS_AFTER_GREEDY: usize = 2;

/// Steps the alternatives have past the greedy answer's end, at least,
/// with `EngineRequest::alternatives_to_their_end`: a line of code (a
/// statement of Java or Python is rarely longer), so that a short greedy
/// answer (`}`) leaves its alternatives room to finish theirs; a longer
/// one is prose (an instruct model's `Here's a breakdown of the code:`,
/// seen at a method's last blank line) and is not worth the wait.
const LINE_STEPS: usize = 24;

/// How far (in logits: a factor e ≈ 2.7 in probability) a token may be
/// behind the greedy choice for the model to count as torn between them
/// (`EngineRequest::branch_at_near_ties`). Where the greedy line is wrong,
/// the first token where it leaves the right one was at most this far
/// ahead of the right token (the runner-up) in 16 of 35 wrong `fim-py`
/// answers traced, at the first text or later in the line.
const NEAR_TIE: f32 = 1.0;

/// Tokens looked at (most likely first) for a fork's: the best one that
/// makes other text than the greedy token is among the first few.
const FORKS_SEEN: usize = 8;

/// The sequence of the first alternative: after the scratch sequence and
/// the kept prompts' (`parked`: one more than `kept`).
pub(super) fn first_alternative_seq(kept: usize) -> i32 {
    FIRST_KEPT_SEQ + i32::try_from(kept).unwrap_or(i32::MAX - 64) + 1
}

/// Alternatives wanted besides the greedy answer.
fn alternatives_wanted(req: &EngineRequest) -> usize {
    req.candidates.clamp(1, MAX_ALTERNATIVES + 1) - 1
}

/// One answer being decoded.
#[derive(Clone)]
struct Branch {
    seq: i32,
    /// The chosen token not yet evaluated; `None` once the answer ended.
    next: Option<Token>,
    bytes: Vec<u8>,
    text_len: usize,
    has_content: bool,
    generated: usize,
    cut_by_time: bool,
    /// Out of steps before its end (an alternative): not offered.
    unfinished: bool,
    first_logprob: f32,
    /// Where its logits are in the last batch.
    row: i32,
}

impl Branch {
    fn new(seq: i32, first_logprob: f32) -> Branch {
        Branch {
            seq,
            next: None,
            bytes: Vec::new(),
            text_len: 0,
            has_content: false,
            generated: 0,
            cut_by_time: false,
            unfinished: false,
            first_logprob,
            row: 0,
        }
    }

    /// Takes token `next` (bytes `piece`) into the answer; whether the
    /// answer goes on. The rules of `generate`: the stop rule, and past
    /// the time budget (or while `wrapping_up`) the end at a line end.
    fn take(
        &mut self,
        next: Token,
        piece: &[u8],
        healed: &[u8],
        req: &EngineRequest,
        started: Instant,
        wrapping_up: bool,
    ) -> bool {
        self.generated += 1;
        self.bytes.extend_from_slice(piece);
        let answer = self.bytes.get(healed.len()..).unwrap_or(&[]);
        let valid = valid_utf8(answer);
        self.text_len = valid.len();
        self.has_content = !valid.trim().is_empty();
        if let Some(cut) = req.stop.cut(valid) {
            self.text_len = cut;
            return false;
        }
        let over_time = req.time_budget.is_some_and(|b| started.elapsed() > b);
        if (over_time || wrapping_up)
            && valid.trim_end_matches([' ', '\t']).ends_with('\n')
            && !valid.trim().is_empty()
        {
            self.text_len = valid.trim_end().len();
            self.cut_by_time = over_time;
            return false;
        }
        self.next = Some(next);
        true
    }

    /// The healed bytes its tokens have not matched yet.
    fn pending<'h>(&self, healed: &'h [u8]) -> &'h [u8] {
        healed.get(self.bytes.len()..).unwrap_or(&[])
    }

    fn text(&self, healed: &[u8]) -> String {
        let answer = self.bytes.get(healed.len()..).unwrap_or(&[]);
        String::from_utf8_lossy(&answer[..self.text_len.min(answer.len())]).into_owned()
    }
}

impl Session<'_> {
    /// The greedy answer and up to `req.candidates - 1` alternatives after
    /// the prompt whose last token `batch` holds the logits of (see the
    /// module's comment); `healed` as for `generate`, whose choices the
    /// greedy answer follows (without drafts).
    pub(super) fn generate_candidates(
        &mut self,
        req: &EngineRequest,
        cancel: &CancelFlag,
        started: Instant,
        healed: &[u8],
        batch: &mut LlamaBatch,
    ) -> Result<(Generated, Vec<Alternative>), EngineError> {
        let start_rule = StartRule::of(req);
        let wanted = alternatives_wanted(req);
        if wanted == 0 || req.max_tokens == 0 {
            let answer = self.generate(req, cancel, started, healed, batch)?;
            return Ok((answer, Vec::new()));
        }
        let mut branches = vec![Branch::new(0, 0.0)];
        // Where the answer's text starts, the alternatives branch off: the
        // first tokens may only re-type the healed indentation, and every
        // start that differs there is blanks.
        let mut at = batch.n_tokens() - 1;
        let (greedy_first, starts) = loop {
            let greedy = &branches[0];
            let pending = greedy.pending(healed);
            let logits = self.ctx.get_logits_ith(at);
            let rule_now = start_rule.after(greedy.bytes.get(healed.len()..).unwrap_or(&[]));
            let starting = (!greedy.has_content && start_rule.applies()).then_some(&rule_now);
            let first = self.next_token(logits, pending, starting);
            let brings_text = first
                .filter(|t| !self.ends_answer(*t))
                .is_some_and(|t| !start_key(self.piece(t), pending).is_empty());
            if greedy.has_content {
                break (first, Vec::new());
            }
            if brings_text {
                let mut starts = self.alternative_starts(logits, pending, starting, first, wanted);
                if req.branch_at_near_ties {
                    // The best other start always; the others only where
                    // the model was torn, leaving the slot to a later one.
                    // (Most likely first: those within are a prefix.)
                    let greedy_logprob = first
                        .and_then(|t| logits.get(t as usize))
                        .map_or(0.0, |l| l - log_sum_exp(logits));
                    let near = starts
                        .iter()
                        .skip(1)
                        .take_while(|(_, logprob)| greedy_logprob - logprob < NEAR_TIE)
                        .count();
                    starts.truncate(1 + near);
                }
                break (first, starts);
            }
            // Where the greedy answer ends with no text, no alternative:
            // with the few steps they have past its end they cannot finish
            // a line (tried: they cost generation time and none was
            // offered). A start of blanks: the greedy answer goes on alone.
            let Some(t) = first.filter(|t| !self.ends_answer(*t)) else {
                break (first, Vec::new());
            };
            if cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            if !branches[0].take(t, self.piece(t), healed, req, started, false) {
                break (None, Vec::new());
            }
            self.decode(batch, &[t])?;
            branches[0].next = None;
            at = batch.n_tokens() - 1;
            if branches[0].generated >= req.max_tokens {
                break (None, Vec::new());
            }
        };
        let first_seq = first_alternative_seq(self.kept.capacity);
        for (i, (token, logprob)) in starts.iter().enumerate() {
            let mut branch = Branch::new(first_seq + i as i32, *logprob);
            branch.bytes = branches[0].bytes.clone();
            branch.generated = branches[0].generated;
            branch.next = Some(*token);
            branches.push(branch);
        }
        for branch in &branches[1..] {
            self.branch_off(branch.seq)?;
        }
        let decoded = self.decode_branches(
            req,
            cancel,
            started,
            healed,
            batch,
            &start_rule,
            greedy_first,
            &mut branches,
        );
        // Whatever happened, the alternatives leave the cache.
        for branch in &branches[1..] {
            self.ctx
                .clear_kv_cache_seq(Some(branch.seq as u32), None, None)
                .map_err(kv_failed)?;
        }
        decoded?;
        let greedy = &branches[0];
        let alternatives: Vec<Alternative> = branches[1..]
            .iter()
            .filter(|b| !b.unfinished)
            .map(|b| Alternative {
                text: b.text(healed),
                first_logprob: b.first_logprob,
            })
            .collect();
        tracing::debug!(
            generated = greedy.generated,
            alternatives = ?alternatives.iter().map(|a| &a.text).collect::<Vec<_>>(),
            "generated candidates"
        );
        Ok((
            Generated {
                text: greedy.text(healed),
                generated: greedy.generated,
                cut_by_time: greedy.cut_by_time,
                drafted: 0,
                accepted: 0,
            },
            alternatives,
        ))
    }

    /// Decodes `branches` (the greedy answer first, its first token
    /// `greedy_first` still to be taken, if any; the alternatives with
    /// their first token chosen) until each has ended; with
    /// `req.branch_at_near_ties`, forks further alternatives off the greedy
    /// answer's first line (as many as the starts left of
    /// `alternatives_wanted`, in the sequences after theirs).
    #[allow(clippy::too_many_arguments)]
    fn decode_branches(
        &mut self,
        req: &EngineRequest,
        cancel: &CancelFlag,
        started: Instant,
        healed: &[u8],
        batch: &mut LlamaBatch,
        start_rule: &StartRule,
        greedy_first: Option<Token>,
        branches: &mut Vec<Branch>,
    ) -> Result<(), EngineError> {
        // Where the answers' tokens go: after the prompt (and the greedy
        // answer's blanks before the branches).
        let prompt_len = self.cached.len() - branches[0].generated;
        // The first tokens, taken by the rules that take every other.
        if let Some(t) = greedy_first.filter(|t| !self.ends_answer(*t)) {
            let piece = self.piece(t);
            branches[0].take(t, piece, healed, req, started, false);
        }
        for branch in branches.iter_mut().skip(1) {
            if let Some(t) = branch.next.take() {
                branch.take(t, self.piece(t), healed, req, started, false);
            }
        }
        let mut forks_left = alternatives_wanted(req).saturating_sub(branches.len() - 1);
        let first_seq = first_alternative_seq(self.kept.capacity);
        let alternative_limit = req
            .max_tokens
            .min(branches[0].generated + ALTERNATIVE_TOKENS);
        // Steps left to the alternatives once the greedy answer is done.
        let mut steps_left: Option<usize> = None;
        loop {
            if branches[0].next.is_none() {
                // To their end: each ends at its next line end (as always
                // once the greedy answer is done), with a line's steps.
                let limit = if req.alternatives_to_their_end {
                    LINE_STEPS.max(branches[0].generated)
                } else {
                    STEPS_AFTER_GREEDY.max(branches[0].generated / 4)
                };
                let left = steps_left.get_or_insert(limit);
                if *left == 0 {
                    for branch in branches.iter_mut().filter(|b| b.next.is_some()) {
                        branch.next = None;
                        branch.unfinished = true;
                    }
                }
                *left = left.saturating_sub(1);
            }
            if branches.iter().all(|b| b.next.is_none()) {
                return Ok(());
            }
            if cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            batch.clear();
            let mut rows = 0;
            for branch in branches.iter_mut() {
                let Some(token) = branch.next else {
                    continue;
                };
                let pos = i32::try_from(prompt_len + branch.generated - 1)
                    .map_err(|_| EngineError::Failed("position overflow".into()))?;
                batch
                    .add(LlamaToken(token), pos, &[branch.seq], true)
                    .map_err(|e| EngineError::Failed(format!("batch: {e}")))?;
                branch.row = rows;
                rows += 1;
            }
            self.ctx
                .decode(batch)
                .map_err(|e| EngineError::Failed(format!("decode: {e}")))?;
            if let Some(token) = branches[0].next {
                self.cached.push(token);
            }
            let wrapping_up = steps_left.is_some();
            let mut fork = None;
            for (i, branch) in branches.iter_mut().enumerate() {
                let Some(_) = branch.next.take() else {
                    continue;
                };
                let limit = if i == 0 {
                    req.max_tokens
                } else {
                    alternative_limit
                };
                if branch.generated >= limit {
                    continue;
                }
                let logits = self.ctx.get_logits_ith(branch.row);
                let rule_now = start_rule.after(branch.bytes.get(healed.len()..).unwrap_or(&[]));
                let starting = (!branch.has_content && start_rule.applies()).then_some(&rule_now);
                let Some(t) = self.next_token(logits, branch.pending(healed), starting) else {
                    continue;
                };
                if self.ends_answer(t) {
                    continue;
                }
                if i == 0 && fork.is_none() && req.branch_at_near_ties && forks_left > 0 {
                    fork = self
                        .near_tie(logits, t, branch, healed)
                        .map(|(other, logprob)| (branch.clone(), other, logprob));
                }
                branch.take(t, self.piece(t), healed, req, started, wrapping_up && i > 0);
            }
            // The fork starts where the greedy answer's token just chosen
            // goes: sequence 0's cells are the prompt and the answer before it.
            if let Some((mut forked, other, logprob)) = fork {
                forked.seq = first_seq + i32::try_from(branches.len() - 1).unwrap_or(0);
                forked.first_logprob = logprob;
                self.branch_off(forked.seq)?;
                tracing::debug!(
                    at = forked.generated,
                    token = ?valid_utf8(self.piece(other)),
                    logprob,
                    "alternative forked at a near tie"
                );
                forked.take(other, self.piece(other), healed, req, started, false);
                branches.push(forked);
                forks_left -= 1;
            }
        }
    }

    /// Makes sequence `seq` hold sequence 0's cells (labels only: nothing
    /// is evaluated again) and nothing else.
    fn branch_off(&mut self, seq: i32) -> Result<(), EngineError> {
        self.ctx
            .clear_kv_cache_seq(Some(seq as u32), None, None)
            .map_err(kv_failed)?;
        self.ctx
            .copy_kv_cache_seq(0, seq, None, None)
            .map_err(kv_failed)
    }

    /// Where the greedy answer (`greedy`, before taking token `chosen`) is
    /// on its first line of text and the model was nearly torn between
    /// `chosen` and a token that makes other text (within `NEAR_TIE`):
    /// that token and its log-probability.
    fn near_tie(
        &self,
        logits: &[f32],
        chosen: Token,
        greedy: &Branch,
        healed: &[u8],
    ) -> Option<(Token, f32)> {
        let answer = valid_utf8(greedy.bytes.get(healed.len()..).unwrap_or(&[]));
        if !greedy.has_content || !greedy.pending(healed).is_empty() {
            return None;
        }
        if answer.trim_start().contains('\n') {
            return None;
        }
        let chosen_logit = *logits.get(chosen as usize)?;
        let mut best: Vec<(usize, f32)> = logits.iter().copied().enumerate().collect();
        if best.len() > FORKS_SEEN {
            best.select_nth_unstable_by(FORKS_SEEN, |a, b| b.1.total_cmp(&a.1));
            best.truncate(FORKS_SEEN);
        }
        best.sort_by(|a, b| b.1.total_cmp(&a.1));
        let (other, logit) = best.into_iter().find_map(|(i, logit)| {
            let t = Token::try_from(i).ok()?;
            (t != chosen
                && !self.ends_answer(t)
                && makes_other_text(self.piece(chosen), self.piece(t)))
            .then_some((t, logit))
        })?;
        (chosen_logit - logit < NEAR_TIE).then(|| (other, logit - log_sum_exp(logits)))
    }

    /// Up to `wanted` tokens to start alternatives with where the greedy
    /// answer's text starts (with token `greedy`), with their
    /// log-probabilities, most likely first: tokens that may come there
    /// (the healed text, the start rule), do not end the answer, bring
    /// text after the same blanks as `greedy` (other blanks would put it
    /// at another indentation), and start otherwise than `greedy` and one
    /// another (neither's text begins the other's).
    fn alternative_starts(
        &self,
        logits: &[f32],
        pending: &[u8],
        starting: Option<&StartRule>,
        greedy: Option<Token>,
        wanted: usize,
    ) -> Vec<(Token, f32)> {
        let (lead, key) =
            greedy.map_or((&[][..], &[][..]), |t| split_start(self.piece(t), pending));
        let mut keys: Vec<&[u8]> = Some(key).filter(|k| !k.is_empty()).into_iter().collect();
        let log_total = log_sum_exp(logits);
        let mut best: Vec<(Token, f32)> = logits
            .iter()
            .enumerate()
            .filter_map(|(i, l)| Token::try_from(i).ok().map(|t| (t, *l)))
            .collect();
        if best.len() > STARTS_SEEN {
            best.select_nth_unstable_by(STARTS_SEEN, |a, b| b.1.total_cmp(&a.1));
            best.truncate(STARTS_SEEN);
        }
        best.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut starts = Vec::new();
        for (t, logit) in best {
            if Some(t) == greedy || self.ends_answer(t) || !self.may_come(t, pending, starting) {
                continue;
            }
            let (their_lead, key) = split_start(self.piece(t), pending);
            if their_lead != lead
                || !starts_with_text(key)
                || keys
                    .iter()
                    .any(|k| k.starts_with(key) || key.starts_with(k))
            {
                continue;
            }
            keys.push(key);
            starts.push((t, logit - log_total));
            if starts.len() == wanted {
                break;
            }
        }
        starts
    }

    /// Whether token `t` ends the answer (as in `generate`).
    fn ends_answer(&self, t: Token) -> bool {
        let token = LlamaToken(t);
        let vocab = self.model.vocab();
        vocab.is_eog(token) || vocab.is_control(token) || self.template.stop_tokens.contains(&t)
    }
}

/// What a first token brings to the answer past the healed text, blanks
/// trimmed: two starts with the same or nested keys make the same answer.
fn start_key<'p>(piece: &'p [u8], healed: &[u8]) -> &'p [u8] {
    split_start(piece, healed).1
}

/// What a token brings past the healed text: its leading blanks, and the
/// rest with trailing blanks trimmed.
fn split_start<'p>(piece: &'p [u8], healed: &[u8]) -> (&'p [u8], &'p [u8]) {
    let brought = piece.get(healed.len().min(piece.len())..).unwrap_or(&[]);
    let blanks = brought
        .iter()
        .take_while(|b| b.is_ascii_whitespace())
        .count();
    (&brought[..blanks], brought[blanks..].trim_ascii_end())
}

/// Whether a fork taking token piece `other` where the greedy answer took
/// `chosen` makes other text: not the same text but for trailing blanks,
/// nor the start of one another (the greedy answer may spell the longer
/// one out next); a line end where the greedy line goes on (or text where
/// it ends) is other text.
fn makes_other_text(chosen: &[u8], other: &[u8]) -> bool {
    let (a, b) = (chosen.trim_ascii_end(), other.trim_ascii_end());
    match (a.is_empty(), b.is_empty()) {
        (true, true) => false,
        (false, true) => other.contains(&b'\n'),
        (true, false) => chosen.contains(&b'\n'),
        (false, false) => !a.starts_with(b) && !b.starts_with(a),
    }
}

/// Whether `key` starts with a visible character (not a blank of another
/// kind, such as a no-break space, nor a control character).
fn starts_with_text(key: &[u8]) -> bool {
    valid_utf8(key)
        .chars()
        .next()
        .is_some_and(|c| !c.is_whitespace() && !c.is_control())
}

fn log_sum_exp(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return max;
    }
    let sum: f64 = logits.iter().map(|l| f64::from(l - max).exp()).sum();
    max + sum.ln() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_key_is_what_the_token_brings_past_the_healed_text() {
        assert_eq!(start_key(b" return", b""), b"return");
        assert_eq!(start_key(b"    x", b"  "), b"x");
        assert_eq!(start_key(b"  ", b"    "), b"");
        assert_eq!(start_key(b"\n", b""), b"");
        assert_eq!(split_start(b" x ", b""), (&b" "[..], &b"x"[..]));
        assert!(starts_with_text(b"if"));
        assert!(!starts_with_text("\u{a0}x".as_bytes()));
        assert!(!starts_with_text(b""));
    }

    #[test]
    fn a_fork_makes_other_text() {
        assert!(makes_other_text(b"(a", b"(b"));
        assert!(makes_other_text(b" +", b")\n"));
        // A line end where the greedy line goes on, and the other way.
        assert!(makes_other_text(b" +", b"\n"));
        assert!(makes_other_text(b"\n", b" +"));
        // The same text but for trailing blanks, or one the start of the other.
        assert!(!makes_other_text(b"):\n", b"):"));
        assert!(!makes_other_text(b" l", b" list"));
        assert!(!makes_other_text(b" list", b" l"));
        assert!(!makes_other_text(b" ", b"\n"));
    }

    #[test]
    fn log_sum_exp_is_the_log_of_the_total() {
        let lse = log_sum_exp(&[0.0, 0.0]);
        assert!((lse - 2f32.ln()).abs() < 1e-6);
        assert_eq!(log_sum_exp(&[]), f32::NEG_INFINITY);
    }

    #[test]
    fn alternative_sequences_follow_the_kept_ones() {
        // Scratch 1, kept 2..=2+kept.
        assert_eq!(first_alternative_seq(0), 3);
        assert_eq!(first_alternative_seq(2), 5);
    }
}
