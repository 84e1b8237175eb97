//! Recency candidates: code around the user's recent edits and requests,
//! kept by the session (`session::recency`) and ranked here with the BM25
//! chunks (`Index::retrieve_with`).

use std::path::PathBuf;

/// A few lines of a document the user edited or asked a completion in
/// lately, as they read when the user moved elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentChunk {
    /// The document's file (absolute): only files the index holds are shown.
    pub path: PathBuf,
    /// Its first line (0-based) in the document.
    pub line: usize,
    pub text: String,
    /// Edited there (else only asked there).
    pub edited: bool,
}

impl RecentChunk {
    /// The lines it covers, `line..end`.
    pub fn lines(&self) -> std::ops::Range<usize> {
        self.line..self.line + self.text.lines().count().max(1)
    }

    /// Whether it overlaps the lines of the prompt's own window around a
    /// cursor on `line`, `before` lines of prefix and `after` of suffix.
    pub fn overlaps_window(&self, line: usize, before: usize, after: usize) -> bool {
        let r = self.lines();
        r.start <= line + after && line.saturating_sub(before) < r.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_with_the_window_counts_every_line_of_both() {
        let c = RecentChunk {
            path: "/a.py".into(),
            line: 10,
            text: "a\nb\nc\n".into(),
            edited: true,
        };
        assert_eq!(c.lines(), 10..13);
        // Cursor on line 20, 5 lines before: the window starts at 15.
        assert!(!c.overlaps_window(20, 5, 3));
        assert!(c.overlaps_window(20, 8, 3));
        assert!(c.overlaps_window(20, 10, 3));
        // Cursor above it, the suffix reaching its first line.
        assert!(c.overlaps_window(5, 0, 5));
        assert!(!c.overlaps_window(5, 0, 4));
    }
}
