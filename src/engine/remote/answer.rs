//! The answer as it streams in, token by token (llama-server gives token
//! ids) or piece by piece (OpenAI-style servers give text): the same rules
//! as the local decode loop (`engine::llama::generate`) applied to what
//! the server chose greedily: the healed text first, the stop rule, stop
//! tokens, the most tokens, and the time budget ending the answer at a
//! line end.
//!
//! What a server cannot be asked to do, this checks afterwards: where the
//! local engine constrains the choice (the healed text, an avoided start),
//! the server's greedy choice either agrees (then the answer is the same)
//! or the answer is given up (`Step::Diverged`, `avoided`).

use std::time::{Duration, Instant};

use crate::engine::{healing, EngineRequest};
use crate::prompt::Token;

/// What the caller does after a token or piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    More,
    /// The answer is complete: close the stream.
    Done,
    /// The server's answer does not start with the healed text: this
    /// prompt cannot give the answer (the caller asks again without
    /// healing).
    Diverged,
}

pub(crate) struct Answer<'a> {
    req: &'a EngineRequest,
    healed: &'a [u8],
    started: Instant,
    bytes: Vec<u8>,
    text_len: usize,
    pub(crate) generated: usize,
    pub(crate) cut_by_time: bool,
    done: bool,
}

impl<'a> Answer<'a> {
    pub(crate) fn new(req: &'a EngineRequest, healed: &'a [u8], started: Instant) -> Answer<'a> {
        Answer {
            req,
            healed,
            started,
            bytes: Vec::new(),
            text_len: 0,
            generated: 0,
            cut_by_time: false,
            done: false,
        }
    }

    /// A generated token, by its bytes: `None` for a token that ends the
    /// answer (end of generation, a control or template stop token).
    pub(crate) fn push_token(&mut self, piece: Option<&[u8]>) -> Step {
        match piece {
            Some(p) if !p.is_empty() => self.push_bytes(p),
            _ => self.end(),
        }
    }

    /// Generated text of one or more tokens (OpenAI-style servers). Any
    /// template marker in it ends the answer there (a server that renders
    /// special tokens as text).
    pub(crate) fn push_text(&mut self, text: &str, markers: &[&str]) -> Step {
        let cut = markers
            .iter()
            .filter_map(|m| text.find(m))
            .min()
            .unwrap_or(text.len());
        let step = if cut > 0 {
            self.push_bytes(&text.as_bytes()[..cut])
        } else {
            Step::More
        };
        if cut < text.len() && step == Step::More {
            return self.end();
        }
        step
    }

    /// The server ended the answer (or a token did).
    pub(crate) fn end(&mut self) -> Step {
        self.done = true;
        if self.bytes.len() < self.healed.len() {
            // Ended before the healed text was given back: the local
            // engine would have chosen another token.
            return Step::Diverged;
        }
        Step::Done
    }

    fn push_bytes(&mut self, piece: &[u8]) -> Step {
        if self.done {
            return Step::Done;
        }
        self.generated += 1;
        // A first token of blanks over healed indentation is one the local
        // engine does not choose (`healing::covers_indentation`).
        if self.bytes.is_empty() && healing::covers_indentation(piece, self.healed) {
            return Step::Diverged;
        }
        self.bytes.extend_from_slice(piece);
        let n = self.bytes.len().min(self.healed.len());
        if self.bytes[..n] != self.healed[..n] {
            return Step::Diverged;
        }
        let answer = self.bytes.get(self.healed.len()..).unwrap_or(&[]);
        let valid = valid_utf8(answer);
        self.text_len = valid.len();
        if let Some(cut) = self.req.stop.cut(valid) {
            self.text_len = cut;
            self.done = true;
            return Step::Done;
        }
        let over_time = self
            .req
            .time_budget
            .is_some_and(|b| self.started.elapsed() > b);
        if over_time
            && valid.trim_end_matches([' ', '\t']).ends_with('\n')
            && !valid.trim().is_empty()
        {
            self.text_len = valid.trim_end().len();
            self.cut_by_time = true;
            self.done = true;
            return Step::Done;
        }
        if self.generated >= self.req.max_tokens {
            self.done = true;
            return Step::Done;
        }
        Step::More
    }

    /// The answer: what follows the healed text, cut by the stop rule.
    pub(crate) fn text(&self) -> String {
        let answer = self.bytes.get(self.healed.len()..).unwrap_or(&[]);
        let kept = &answer[..self.text_len.min(answer.len())];
        String::from_utf8_lossy(kept).into_owned()
    }

    /// Whether the answer takes the start the request avoids (a second
    /// try): the local engine bans it token by token, a server cannot be
    /// asked to, so such an answer is given up.
    pub(crate) fn avoided(&self) -> bool {
        let text = self.text();
        let text = text.as_bytes();
        (self.req.code_first && crate::engine::starts_comment(text))
            || self
                .req
                .avoid
                .as_deref()
                .map(str::trim)
                .is_some_and(|a| !a.is_empty() && crate::engine::takes_start(text, a.as_bytes()))
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// The bytes of `token` by `pieces`, `None` where it ends the answer: no
/// bytes (end of generation, control) or one of the template's stop tokens.
pub(crate) fn piece_of<'p>(
    pieces: &'p [Vec<u8>],
    stops: &[Token],
    token: Token,
) -> Option<&'p [u8]> {
    if stops.contains(&token) {
        return None;
    }
    usize::try_from(token)
        .ok()
        .and_then(|i| pieces.get(i))
        .map(Vec::as_slice)
        .filter(|p| !p.is_empty())
}

/// The longest start of `bytes` that is valid UTF-8.
fn valid_utf8(bytes: &[u8]) -> &str {
    match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::StopRule;

    fn request(multiline: bool) -> EngineRequest {
        EngineRequest {
            prefix: String::new(),
            suffix: String::new(),
            prompt_budget: 100,
            max_tokens: 8,
            stop: StopRule {
                multiline,
                max_lines: 3,
                min_indent: 0,
            },
            context: None,
            time_budget: None,
            shape: crate::prompt::Shape::default(),
            evaluate_only: false,
            move_cache: false,
            fresh: false,
            draft_tokens: 0,
            candidates: 1,
            alternatives_to_their_end: false,
            branch_at_near_ties: false,
            avoid: None,
            code_first: false,
            require_content: false,
            indent_to_type: 0,
            indents: Vec::new(),
            definition_start: None,
            document: None,
        }
    }

    #[test]
    fn the_healed_text_is_taken_off_and_the_stop_rule_cuts() {
        let req = request(false);
        let mut a = Answer::new(&req, b"re", Instant::now());
        assert_eq!(a.push_token(Some(b"ret")), Step::More);
        assert_eq!(a.push_token(Some(b"urn x")), Step::More);
        assert_eq!(a.push_token(Some(b"\n    y")), Step::Done);
        assert_eq!(a.text(), "turn x");
        assert_eq!(a.generated, 3);
    }

    #[test]
    fn an_answer_off_the_healed_text_diverges() {
        let req = request(false);
        let mut a = Answer::new(&req, b"re", Instant::now());
        assert_eq!(a.push_token(Some(b"r")), Step::More);
        assert_eq!(a.push_token(Some(b"x")), Step::Diverged);
        let mut a = Answer::new(&req, b"re", Instant::now());
        assert_eq!(a.push_token(None), Step::Diverged);
    }

    #[test]
    fn a_first_token_of_blanks_over_healed_indentation_diverges() {
        let req = request(false);
        let mut a = Answer::new(&req, b"    ", Instant::now());
        assert_eq!(a.push_token(Some(b"    ")), Step::Diverged);
        let mut a = Answer::new(&req, b"    ", Instant::now());
        assert_eq!(a.push_token(Some(b"   ")), Step::More);
        assert_eq!(a.push_token(Some(b" x")), Step::More);
        assert_eq!(a.text(), "x");
    }

    #[test]
    fn a_stop_token_or_marker_ends_the_answer() {
        let req = request(true);
        let mut a = Answer::new(&req, b"", Instant::now());
        assert_eq!(a.push_token(Some(b"x = 1")), Step::More);
        assert_eq!(a.push_token(None), Step::Done);
        assert_eq!(a.text(), "x = 1");
        let mut a = Answer::new(&req, b"", Instant::now());
        assert_eq!(
            a.push_text("y = 2<|fim_pad|>z", &["<|fim_pad|>"]),
            Step::Done
        );
        assert_eq!(a.text(), "y = 2");
        assert_eq!(piece_of(&[b"a".to_vec(), vec![]], &[0], 0), None);
        assert_eq!(piece_of(&[b"a".to_vec(), vec![]], &[], 1), None);
        assert_eq!(piece_of(&[b"a".to_vec()], &[], 0), Some(&b"a"[..]));
        assert_eq!(piece_of(&[b"a".to_vec()], &[], -1), None);
    }

    #[test]
    fn max_tokens_and_an_avoided_start() {
        let mut req = request(true);
        req.max_tokens = 2;
        req.avoid = Some("  return x".into());
        let mut a = Answer::new(&req, b"", Instant::now());
        assert_eq!(a.push_token(Some(b"return")), Step::More);
        assert_eq!(a.push_token(Some(b" x")), Step::Done);
        assert!(a.avoided());
        let mut a = Answer::new(&req, b"", Instant::now());
        a.push_token(Some(b"y"));
        assert!(!a.avoided());
        // No comment first (after a dropped comment): a server cannot be
        // asked that either, so an answer starting with one is given up.
        req.avoid = Some("*/".into());
        req.code_first = true;
        let mut a = Answer::new(&req, b"", Instant::now());
        a.push_token(Some(b"  // x"));
        assert!(a.avoided());
        let mut a = Answer::new(&req, b"", Instant::now());
        a.push_token(Some(b"return y;"));
        assert!(!a.avoided());
    }
}
