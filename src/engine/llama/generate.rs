//! Step three of a request: the answer decoded token by token from the
//! evaluated prompt (greedy), healing the prefix's last token, keeping off
//! the avoided text, and stopping on the stop rule, the time budget or
//! cancellation.
//!
//! With prompt lookup (`EngineRequest::draft_tokens`), a chosen token is
//! evaluated together with a draft of the tokens that may follow it
//! (`draft`), with logits for each: every drafted token the model would
//! have chosen anyway (by the very rules above, applied token by token) is
//! then taken without a decode of its own, and the draft's rest leaves
//! the cache at the first token the model chooses otherwise. The choices
//! are those of plain decoding; only the batches they are evaluated in
//! differ (see `EngineRequest::draft_tokens` for what that may change).

use std::collections::VecDeque;
use std::time::Instant;

use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;

use super::cache_sync::EVAL_CHUNK;
use super::draft;
use super::session::Session;
use crate::engine::{healing, takes_start, CancelFlag, EngineError, EngineRequest};
use crate::prompt::Token;

/// The answer and how it came about.
pub(super) struct Generated {
    pub(super) text: String,
    /// Tokens generated (those of the healed text included).
    pub(super) generated: usize,
    /// Whether the time budget ended the answer.
    pub(super) cut_by_time: bool,
    /// Tokens drafted by prompt lookup, and how many of them the model
    /// chose (`EngineRequest::draft_tokens`).
    pub(super) drafted: usize,
    pub(super) accepted: usize,
}

impl Session<'_> {
    /// Generates the answer after the prompt whose last token `batch` holds
    /// the logits of; `healed` is the text the answer must start with (and
    /// is then removed).
    pub(super) fn generate(
        &mut self,
        req: &EngineRequest,
        cancel: &CancelFlag,
        started: Instant,
        healed: &[u8],
        batch: &mut LlamaBatch,
    ) -> Result<Generated, EngineError> {
        let vocab = self.model.vocab();
        // Bytes of the healed token not yet matched by generated tokens.
        let mut pending: &[u8] = healed;
        let mut bytes: Vec<u8> = Vec::new();
        let mut text_len = 0;
        let mut generated = 0;
        let mut cut_by_time = false;
        let start_rule = StartRule::of(req);
        let mut has_content = false;
        // Batch index of the logits the next token is chosen by.
        let mut at = batch.n_tokens() - 1;
        // Drafted tokens evaluated after the last chosen one (in the cache
        // and in `cached`), not yet chosen by the model.
        let mut unchecked: VecDeque<Token> = VecDeque::new();
        let mut drafted = 0;
        let mut accepted = 0;
        let mut pacer = draft::Pacer::new(req.draft_tokens.min(EVAL_CHUNK - 1));
        // Length of the draft last evaluated.
        let mut draft_len = 0;
        while generated < req.max_tokens {
            if cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            let logits = self.ctx.get_logits_ith(at);
            let rule_now = start_rule.after(bytes.get(healed.len()..).unwrap_or(&[]));
            let starting = (!has_content && start_rule.applies()).then_some(&rule_now);
            let Some(next) = self.next_token(logits, pending, starting) else {
                break;
            };
            if tracing::enabled!(tracing::Level::TRACE) {
                // How near the choice was: a flip between two runs whose
                // logits differ in their last digits (batches) happens
                // where this is tiny.
                let (runner_up, margin) = runner_up(logits, next);
                tracing::trace!(
                    position = generated,
                    token = next,
                    piece = ?valid_utf8(self.piece(next)),
                    runner_up,
                    runner_up_piece = ?valid_utf8(self.piece(runner_up)),
                    margin,
                    "chosen"
                );
            }
            let token = LlamaToken(next);
            if vocab.is_eog(token)
                || vocab.is_control(token)
                || self.template.stop_tokens.contains(&next)
            {
                break;
            }
            // The model chose the drafted token: it is evaluated already,
            // and the logits after it are the batch's next row. Else the
            // rest of the draft is wrong, and leaves the cache.
            let drafted_next = unchecked.front() == Some(&next);
            if drafted_next {
                unchecked.pop_front();
                accepted += 1;
                at += 1;
                if unchecked.is_empty() {
                    pacer.checked(draft_len, draft_len);
                }
            } else if !unchecked.is_empty() {
                pacer.checked(draft_len, draft_len - unchecked.len());
                self.forget_from(self.cached.len() - unchecked.len())?;
                unchecked.clear();
            }
            generated += 1;
            let piece = self.piece(next);
            pending = &pending[piece.len().min(pending.len())..];
            bytes.extend_from_slice(piece);
            // The answer is what follows the healed text.
            let answer = bytes.get(healed.len()..).unwrap_or(&[]);
            let valid = valid_utf8(answer);
            text_len = valid.len();
            has_content = !valid.trim().is_empty();
            if let Some(cut) = req.stop.cut(valid) {
                text_len = cut;
                break;
            }
            let over_time = req.time_budget.is_some_and(|b| started.elapsed() > b);
            if over_time
                && valid.trim_end_matches([' ', '\t']).ends_with('\n')
                && !valid.trim().is_empty()
            {
                text_len = valid.trim_end().len();
                cut_by_time = true;
                break;
            }
            if drafted_next {
                continue;
            }
            // No more drafted tokens than tokens still to generate, so that
            // the cache never holds more than plain decoding's room.
            let limit = pacer.allowance().min(req.max_tokens - generated);
            let draft = self.draft(next, limit);
            if draft.is_empty() {
                let timer = Instant::now();
                self.decode(batch, &[next])?;
                tracing::trace!(
                    tokens = 1,
                    ms = timer.elapsed().as_secs_f64() * 1000.0,
                    "draft decode"
                );
                at = batch.n_tokens() - 1;
            } else {
                let mut step = Vec::with_capacity(draft.len() + 1);
                step.push(next);
                step.extend_from_slice(&draft);
                let timer = Instant::now();
                self.decode_all(batch, &step)?;
                // What a draft's batch costs against one token's decode
                // decides whether drafts pay on a machine.
                tracing::trace!(
                    tokens = step.len(),
                    ms = timer.elapsed().as_secs_f64() * 1000.0,
                    "draft decode"
                );
                drafted += draft.len();
                draft_len = draft.len();
                unchecked.extend(draft);
                at = 0;
            }
        }
        // Drafted tokens past the answer's end leave the cache, which then
        // holds the prompt and the answer as plain decoding leaves it.
        if !unchecked.is_empty() {
            self.forget_from(self.cached.len() - unchecked.len())?;
        }
        let answer = bytes.get(healed.len()..).unwrap_or(&[]);
        tracing::debug!(
            generated,
            raw = %String::from_utf8_lossy(&bytes),
            kept = text_len,
            required = req.require_content,
            "generated"
        );
        let answer = &answer[..text_len.min(answer.len())];
        Ok(Generated {
            text: String::from_utf8_lossy(answer).into_owned(),
            generated,
            cut_by_time,
            drafted,
            accepted,
        })
    }

    /// A draft of at most `limit` tokens to follow `next` (prompt lookup
    /// over the cached prompt and answer, `draft::lookup`), cut before the
    /// first special token: the model never writes one within an answer.
    fn draft(&self, next: Token, limit: usize) -> Vec<Token> {
        if limit == 0 {
            return Vec::new();
        }
        let mut history = Vec::with_capacity(self.cached.len() + 1);
        history.extend_from_slice(&self.cached);
        history.push(next);
        draft::lookup(&history, limit)
            .iter()
            .copied()
            .take_while(|t| self.pieces.get(*t as usize).is_some_and(|p| !p.is_empty()))
            .collect()
    }

    /// The next token by `logits`: the most likely, or, while healed bytes
    /// are `pending` or the answer's start is ruled (`starting`), the most
    /// likely that allows it.
    pub(super) fn next_token(
        &self,
        logits: &[f32],
        pending: &[u8],
        starting: Option<&StartRule>,
    ) -> Option<Token> {
        if pending.is_empty() && starting.is_none() {
            argmax(logits)
        } else {
            argmax_where(logits, |t| self.may_come(t, pending, starting))
        }
    }

    /// Token `t`'s bytes (none for a token out of range).
    pub(super) fn piece(&self, t: Token) -> &[u8] {
        self.pieces
            .get(t as usize)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Whether token `t` may come next while healed bytes are `pending`
    /// and the answer's start is ruled by `starting`.
    pub(super) fn may_come(&self, t: Token, pending: &[u8], starting: Option<&StartRule>) -> bool {
        self.pieces.get(t as usize).is_some_and(|p| {
            // Only tokens that agree with the healed text may come next.
            let heals = pending.is_empty() || healing::agrees(p, pending);
            // The answer may not end yet: no special token (they
            // have no bytes) and no template stop token (a model
            // may give those text).
            heals
                && starting.is_none_or(|rule| {
                    !p.is_empty()
                        && !self.template.stop_tokens.contains(&t)
                        && rule.allows(p.get(pending.len()..).unwrap_or(&[]))
                })
        })
    }
}

/// What the answer's first tokens must respect until its first non-blank
/// text: a start to avoid (a second try), no comment first, whether that
/// text must come on the cursor's line (`EngineRequest::require_content`)
/// and at which indentations. While any holds, the answer may not end.
#[derive(Clone, Copy, Default)]
pub(super) struct StartRule<'a> {
    pub(super) avoid: Option<&'a [u8]>,
    pub(super) on_this_line: bool,
    /// Blanks the answer may still take before its text, where
    /// `on_this_line` (`EngineRequest::indent_to_type`).
    pub(super) blanks_left: usize,
    /// No comment first (`EngineRequest::code_first`).
    pub(super) code_first: bool,
    /// The blanks after which text may start, where any are given
    /// (`EngineRequest::indents`).
    pub(super) indents: &'a [usize],
    /// Blanks the answer has begun with.
    pub(super) blanks_typed: usize,
}

impl<'a> StartRule<'a> {
    /// The rule `req` sets: its avoided start (trimmed; none if blank) and
    /// whether it requires text on the cursor's line.
    pub(super) fn of(req: &'a EngineRequest) -> StartRule<'a> {
        StartRule {
            avoid: req
                .avoid
                .as_deref()
                .map(|a| a.trim().as_bytes())
                .filter(|a| !a.is_empty()),
            on_this_line: req.require_content,
            blanks_left: req.indent_to_type,
            code_first: req.code_first,
            indents: &req.indents,
            blanks_typed: 0,
        }
    }

    /// The rule once the answer has begun with `blanks` (the answer so
    /// far, past the healed text: nothing but blanks while a rule holds).
    pub(super) fn after(self, blanks: &[u8]) -> StartRule<'a> {
        StartRule {
            blanks_left: self.blanks_left.saturating_sub(blanks.len()),
            blanks_typed: self.blanks_typed + blanks.len(),
            ..self
        }
    }

    pub(super) fn applies(&self) -> bool {
        self.avoid.is_some() || self.on_this_line || self.code_first || !self.indents.is_empty()
    }

    /// Whether answer bytes `part`, coming after nothing but blanks, may
    /// come next.
    pub(super) fn allows(&self, part: &[u8]) -> bool {
        self.avoid.is_none_or(|a| !takes_start(part, a))
            && (!self.on_this_line || brings_text_on_this_line(part, self.blanks_left))
            && !(self.code_first && crate::engine::starts_comment(part))
            && self.text_at_an_allowed_indent(part)
    }

    /// Whether `part` brings no text on the cursor's line, or brings it
    /// after one of the `indents` (counting the blanks typed before it).
    /// The indents are spaces: a tab before the text is refused (else a
    /// model short of a level fills it with tabs, a byte each).
    fn text_at_an_allowed_indent(&self, part: &[u8]) -> bool {
        if self.indents.is_empty() {
            return true;
        }
        let blanks = part.iter().take_while(|b| b.is_ascii_whitespace()).count();
        let line_break = part[..blanks]
            .iter()
            .position(|&b| b == b'\n' || b == b'\r');
        let on_this_line = &part[..line_break.unwrap_or(blanks)];
        if on_this_line.contains(&b'\t') || has_form_feed(on_this_line) {
            return false;
        }
        blanks == part.len()
            || line_break.is_some()
            || self.indents.contains(&(self.blanks_typed + blanks))
    }
}

/// Whether `part` (a token's bytes after any healed ones) is nothing, or
/// brings text with no line break before it, or is blanks alone within
/// the `blanks_left` of indentation still to type. More blanks are
/// refused: a model that would have ended the answer goes on with blanks
/// to no end when it may not.
fn brings_text_on_this_line(part: &[u8], blanks_left: usize) -> bool {
    let blanks = part.iter().take_while(|b| b.is_ascii_whitespace()).count();
    let breaks = part[..blanks].iter().any(|&b| b == b'\n' || b == b'\r');
    part.is_empty()
        || (!breaks
            && !has_form_feed(&part[..blanks])
            && (blanks < part.len() || blanks <= blanks_left))
}

/// Whether `blanks` hold a form feed: whitespace to Rust's
/// `is_ascii_whitespace` and so to the blank counts here, never
/// indentation. Allowed, a model kept from its text at one indentation
/// filled the blanks to another with form feeds, then wrote
/// `.foundation` (a HumanEval-FIM second try where `even_count += 1` was
/// due one level deeper).
fn has_form_feed(blanks: &[u8]) -> bool {
    blanks.contains(&0x0c)
}

/// The longest start of `bytes` that is valid UTF-8.
pub(super) fn valid_utf8(bytes: &[u8]) -> &str {
    match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
    }
}

/// The best token other than `chosen`, and how far `chosen`'s logit is
/// above it.
fn runner_up(logits: &[f32], chosen: Token) -> (Token, f32) {
    let at = chosen as usize;
    let (other, best_other) = logits
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != at)
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or((0, f32::NEG_INFINITY), |(i, l)| (i, *l));
    let margin = logits.get(at).map_or(0.0, |l| l - best_other);
    (Token::try_from(other).unwrap_or(0), margin)
}

fn argmax(logits: &[f32]) -> Option<Token> {
    argmax_where(logits, |_| true)
}

/// The most likely token among those `allowed`.
fn argmax_where(logits: &[f32], allowed: impl Fn(Token) -> bool) -> Option<Token> {
    logits
        .iter()
        .enumerate()
        .filter_map(|(i, l)| Token::try_from(i).ok().map(|t| (t, l)))
        .filter(|(t, _)| allowed(*t))
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(t, _)| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_avoided_start_is_recognised_after_blanks() {
        let avoid = b"for (IKey c : map.keySet()) {";
        assert!(takes_start(b"for", avoid));
        assert!(takes_start(b"  f", avoid));
        assert!(takes_start(b"\n    for (", avoid));
        assert!(!takes_start(b"  ", avoid));
        assert!(!takes_start(b"", avoid));
        assert!(!takes_start(b"Map", avoid));
        assert!(!takes_start(b"fore", avoid));
        assert!(takes_start(b"x = 1\n", b"x = 1"));
    }

    #[test]
    fn text_required_on_this_line_allows_only_the_indentation_to_type_before_it() {
        let rule = StartRule {
            avoid: None,
            on_this_line: true,
            blanks_left: 0,
            code_first: false,
            ..StartRule::default()
        };
        assert!(rule.applies());
        assert!(rule.allows(b""));
        assert!(!rule.allows(b"    "));
        assert!(!rule.allows(b"\t"));
        assert!(rule.allows(b"return"));
        assert!(rule.allows(b"  return"));
        assert!(rule.allows(b" x\n"));
        assert!(rule.allows(b")\n\n"));
        assert!(!rule.allows(b"\n"));
        assert!(!rule.allows(b"  \n    x"));
        assert!(!rule.allows(b"\r\n"));
        // A line-start cursor: the indentation still to type may come
        // first, token by token, and no more of it.
        let rule = StartRule {
            avoid: None,
            on_this_line: true,
            blanks_left: 8,
            code_first: false,
            ..StartRule::default()
        };
        assert!(rule.allows(b"    "));
        assert!(rule.allows(b"        "));
        assert!(!rule.allows(b"         "));
        assert!(!rule.allows(b"    \n"));
        assert!(rule.allows(b"    return"));
        let typed = rule.after(b"        ");
        assert!(!typed.allows(b" "));
        assert!(typed.allows(b"return"));
        assert!(!rule.allows(b"\x0c"));
        assert!(!rule.allows(b"  \x0cx"));
        assert!(rule.after(b"    ").allows(b"    "));
        // Only at the indentations given: text after 4 or 8 blanks, not 6.
        let levels = [4, 8];
        let rule = StartRule {
            on_this_line: true,
            blanks_left: 8,
            indents: &levels,
            ..StartRule::default()
        };
        assert!(rule.allows(b"    return"));
        assert!(rule.allows(b"   "));
        assert!(!rule.allows(b"   return"));
        assert!(rule.after(b"   ").allows(b" return"));
        assert!(!rule.after(b"   ").allows(b"   return"));
        assert!(rule.after(b"      ").allows(b"  x"));
        assert!(!rule.after(b"      ").allows(b"x"));
        assert!(!rule.allows(b"return"));
        assert!(!rule.allows(b"\t"));
        assert!(!rule.after(b"  ").allows(b"\t\tx"));
        // Nor form feeds (they count as blanks).
        assert!(!rule.after(b"    ").allows(b"\x0c\x0c\x0c\x0c"));
        assert!(!rule.after(b"    ").allows(b"\x0c\x0c\x0c\x0cx"));
        // A second try's avoided start holds as well.
        let rule = StartRule {
            avoid: Some(b"return x"),
            on_this_line: true,
            blanks_left: 0,
            code_first: false,
            ..StartRule::default()
        };
        assert!(!rule.allows(b"return"));
        assert!(rule.allows(b"x = 1"));
        let none = StartRule {
            avoid: None,
            on_this_line: false,
            blanks_left: 0,
            code_first: false,
            ..StartRule::default()
        };
        assert!(!none.applies());
        assert!(none.allows(b"\n"));
        // No comment first: no token that starts one, or may.
        let code = StartRule {
            avoid: None,
            on_this_line: false,
            blanks_left: 0,
            code_first: true,
            ..StartRule::default()
        };
        assert!(code.applies());
        for comment in [
            &b"#"[..],
            b"  # x",
            b"//",
            b"/",
            b"/**",
            b" * @param",
            b"*/",
        ] {
            assert!(
                !code.allows(comment),
                "{:?}",
                String::from_utf8_lossy(comment)
            );
        }
        for code_part in [&b"return"[..], b"  x = 1", b"  ", b"", b"if (a / b) {"] {
            assert!(
                code.allows(code_part),
                "{:?}",
                String::from_utf8_lossy(code_part)
            );
        }
    }

    #[test]
    fn argmax_picks_the_largest() {
        assert_eq!(argmax(&[0.1, 3.0, -1.0]), Some(1));
        assert_eq!(argmax(&[]), None);
    }
}
