//! The anchor of a document's prompt: the line start from which the text
//! goes after the FIM middle marker (`prompt::Shape::middle_from`).
//!
//! Without it only the cursor line goes there, so a new line (Enter, or a
//! multi-line suggestion accepted) changes the prompt before the suffix,
//! and the suffix (hundreds of tokens) is evaluated again: seconds on a
//! laptop's CPU, right where a multi-line suggestion is worth most. With
//! it, while the user writes lines below the anchor, every prompt keeps
//! the same tokens up to the middle marker (the file above the anchor, the
//! cross-file snippets found when it was set, the suffix), and a new line
//! costs only the tokens of the lines since the anchor.
//!
//! It moves to the cursor's line when it no longer serves (the cursor went
//! above it or far below it, or the lines since it outgrew
//! `completion.anchoredLines`), and before that during a pause in typing
//! (a warm start, `warm_start`), once the lines since it are half that: the
//! move costs one evaluation of the suffix, best spent while the user
//! reads.

use std::sync::{Arc, OnceLock};

use ropey::Rope;

use crate::prompt::repo::CrossFileContext;

/// Most chars from the anchor to the cursor: the lines after the middle
/// marker stay within the prompt's reserve for them
/// (`prompt::ANCHORED_RESERVE`, 192 tokens), so that they never change the
/// budget of the prefix and suffix.
const MAX_CHARS: usize = 480;

#[derive(Debug, Clone)]
pub(super) struct Anchor {
    /// Char index of a line start in the document.
    pub(super) at: usize,
    /// What the first request at the anchor found, used while it holds:
    /// empty until then. Shared by the anchor's clones, and set as soon as
    /// that request has found it: a request that begins while another is
    /// still evaluating (a warm start it cancels) uses the same, and so
    /// goes on from what the other evaluated.
    pub(super) pinned: Arc<OnceLock<Pinned>>,
}

/// What stays the same for every request at an anchor, so that the prompt
/// before the middle marker stays the same tokens.
#[derive(Debug, Clone)]
pub(super) struct Pinned {
    /// The cross-file context (retrieval at each new line would find other
    /// snippets); `None`: none (cross-file context off, or nothing found).
    pub(super) context: Option<CrossFileContext>,
    /// Where the comments of that context go: the char index of the start
    /// of the definition around the cursor (`CursorContext::
    /// definition_start`). A blank line after a function's last statement
    /// is outside it for the syntax tree, and a typo makes the tree
    /// recover another way: either would move the comments and with them
    /// everything after.
    pub(super) definition: Option<usize>,
}

impl Anchor {
    /// A new anchor at the start of `cursor`'s line.
    pub(super) fn at_line_of(text: &Rope, cursor: usize) -> Anchor {
        let cursor = cursor.min(text.len_chars());
        Anchor {
            at: text.line_to_char(text.char_to_line(cursor)),
            pinned: Arc::default(),
        }
    }

    /// The anchor moved to the start of `cursor`'s line, keeping what is
    /// pinned unless it was found before the start of the definition the
    /// cursor is in now (`definition`, a char index): in another function.
    /// Within the same one it is kept, also where the syntax tree saw a
    /// statement then (a line being typed, recovered as a statement of its
    /// own) or sees none now (a blank line after a function's last
    /// statement is outside it). The cross-file snippets stay, so only the
    /// prompt from the old anchor's line on is evaluated again, not all of
    /// it.
    pub(super) fn moved_to(&self, text: &Rope, cursor: usize, definition: Option<usize>) -> Anchor {
        let moved = Anchor::at_line_of(text, cursor);
        tracing::debug!(
            from = self.at,
            to = moved.at,
            found_in = ?self.pinned.get().map(|p| p.definition),
            now_in = ?definition,
            "anchor moved"
        );
        if let Some(pinned) = self.pinned.get().filter(|p| {
            p.definition
                .is_some_and(|found| definition.is_none_or(|now| found >= now))
        }) {
            let _ = moved.pinned.set(pinned.clone());
        }
        moved
    }

    /// Whether the anchor serves a request at char `cursor` of `text`: it
    /// is still a line start at or above the cursor's line, at most
    /// `max_lines` lines and `MAX_CHARS` chars before the cursor.
    pub(super) fn serves(&self, text: &Rope, cursor: usize, max_lines: usize) -> bool {
        if self.at > cursor || cursor > text.len_chars() {
            return false;
        }
        let line = text.char_to_line(self.at);
        text.line_to_char(line) == self.at
            && text.char_to_line(cursor) - line <= max_lines
            && cursor - self.at <= MAX_CHARS
    }

    /// Whether a pause should move the anchor to the cursor's line: the
    /// lines since it are half of `max_lines` or more (or it no longer
    /// serves).
    pub(super) fn worth_moving(&self, text: &Rope, cursor: usize, max_lines: usize) -> bool {
        if !self.serves(text, cursor, max_lines) {
            return true;
        }
        let lines = text.char_to_line(cursor) - text.char_to_line(self.at);
        lines >= (max_lines / 2).max(1) || 2 * (cursor - self.at) >= MAX_CHARS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_anchor_serves_the_lines_below_it_up_to_the_limits() {
        let text = Rope::from_str("a\nbb\ncc\ndd\nee\n");
        let anchor = Anchor::at_line_of(&text, 3);
        assert_eq!(anchor.at, 2);
        // Its own line and the lines below, up to two.
        assert!(anchor.serves(&text, 2, 2));
        assert!(anchor.serves(&text, 4, 2));
        assert!(anchor.serves(&text, 7, 2));
        assert!(anchor.serves(&text, 10, 2));
        assert!(!anchor.serves(&text, 11, 2));
        // Not above it.
        assert!(!anchor.serves(&text, 1, 2));
        // Not once its line start moved (text inserted above it).
        let edited = Rope::from_str("ax\nbb\ncc\n");
        assert!(!anchor.serves(&edited, 5, 2));
        // Nor past the end of a shorter text.
        assert!(!anchor.serves(&Rope::from_str("a\n"), 3, 2));
        // Not beyond MAX_CHARS.
        let long = Rope::from_str(&format!("a\n{}\n", "x".repeat(MAX_CHARS + 1)));
        let anchor = Anchor::at_line_of(&long, 2);
        assert!(anchor.serves(&long, 2 + MAX_CHARS, 2));
        assert!(!anchor.serves(&long, 3 + MAX_CHARS, 2));
    }

    #[test]
    fn a_pause_moves_the_anchor_once_half_the_lines_are_used() {
        let text = Rope::from_str("a\nbb\ncc\ndd\nee\n");
        let anchor = Anchor::at_line_of(&text, 0);
        assert!(!anchor.worth_moving(&text, 1, 4));
        assert!(!anchor.worth_moving(&text, 3, 4));
        assert!(anchor.worth_moving(&text, 5, 4));
        assert!(anchor.worth_moving(&text, 14, 4));
        // With one line at most, any new line moves it.
        assert!(anchor.worth_moving(&text, 3, 1));
    }

    #[test]
    fn a_moved_anchor_keeps_what_was_pinned_within_the_same_definition() {
        let text = Rope::from_str("def f():\n    a\n    b\n    c\n");
        let anchor = Anchor::at_line_of(&text, 13);
        let pinned = Pinned {
            context: None,
            definition: Some(0),
        };
        // Clones share what is pinned, whoever pins it first.
        let clone = anchor.clone();
        let _ = clone.pinned.set(pinned);
        assert_eq!(anchor.pinned.get().and_then(|p| p.definition), Some(0));
        // Moved within the definition: the same context.
        let moved = anchor.moved_to(&text, 25, Some(0));
        assert_eq!(moved.at, 21);
        assert_eq!(moved.pinned.get().and_then(|p| p.definition), Some(0));
        // Where the syntax tree sees none (a blank line after the last
        // statement): the same.
        assert!(anchor.moved_to(&text, 25, None).pinned.get().is_some());
        // Into a definition that starts after where it was found (another
        // function): found again.
        assert!(anchor.moved_to(&text, 25, Some(9)).pinned.get().is_none());
        // Found at a statement inside the definition the cursor is in now.
        let inner = Anchor::at_line_of(&text, 13);
        let _ = inner.pinned.set(Pinned {
            context: None,
            definition: Some(15),
        });
        assert!(inner.moved_to(&text, 25, Some(0)).pinned.get().is_some());
        // What the moved anchor pins is its own.
        let fresh = Anchor::at_line_of(&text, 25);
        assert!(fresh.pinned.get().is_none());
    }
}
