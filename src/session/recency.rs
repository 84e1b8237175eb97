//! Recency context (`context.recency`): a ring of chunks of code around the
//! places the user edited (`didChange`) or asked a completion in lately,
//! across documents, most recent first, which retrieval ranks with the BM25
//! chunks (`retrieval::Index::retrieve_with`). llama.vim keeps such a ring
//! too (it also adds yanked text: copying is invisible to a language
//! server, so copied code is not in it).
//!
//! The place being worked on is the *spot*: the lines edited or asked at
//! since the user came there. An event within `NEAR` lines of it extends
//! it; an event elsewhere (another document, another part of the same one,
//! or a spot grown past `MAX_SPOT_LINES`) commits it: its lines, with
//! `AROUND` lines either side, are read from the document as they are then
//! and put in front of the ring, merged with the chunks they overlap.
//!
//! KV-cache discipline: the snippets open the prompt, so a change of them
//! makes the engine evaluate the whole prompt again. The ring's texts
//! change only when the user moves elsewhere: while one place is being
//! written (every keystroke, new lines, requests there) nothing is added,
//! and the place itself never reaches the ring before the user leaves it.
//! (Retrieval also leaves out a chunk of the current document that
//! overlaps the prompt's window, and `SnippetMemo` and the prompt anchor
//! keep a line's set as before.)

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use ropey::Rope;

use crate::retrieval::RecentChunk;

/// Chunks kept.
const RING: usize = 16;
/// An event this many lines from the spot (or fewer) extends it.
const NEAR: usize = 8;
/// A spot that grew larger than this is committed at the next event
/// outside its lines.
const MAX_SPOT_LINES: usize = 24;
/// Lines above and below a spot that go into its chunk.
const AROUND: usize = 4;
/// Most chars of one chunk (long lines).
const MAX_CHUNK_CHARS: usize = 4096;

/// The place being worked on.
#[derive(Debug, Clone)]
struct Spot {
    path: PathBuf,
    /// Its first and last lines (0-based, inclusive).
    lo: usize,
    hi: usize,
    edited: bool,
}

impl Spot {
    fn extends_to(&self, path: &std::path::Path, line: usize) -> bool {
        self.path == path
            && line + NEAR >= self.lo
            && line <= self.hi + NEAR
            && line.max(self.hi) - line.min(self.lo) < MAX_SPOT_LINES
    }
}

/// The ring and the spot.
#[derive(Debug, Default)]
pub(super) struct Recency {
    spot: Option<Spot>,
    ring: VecDeque<RecentChunk>,
    /// The ring as requests take it, made again when it changes.
    shared: Arc<Vec<RecentChunk>>,
}

impl Recency {
    /// The chunks, most recent first.
    pub(super) fn chunks(&self) -> Arc<Vec<RecentChunk>> {
        self.shared.clone()
    }

    /// Lines `lo..=hi` of `path` were edited, and its line count changed by
    /// `delta` at line `lo` (lines after it moved). `text` gives a
    /// document's text as it is now.
    pub(super) fn edited(
        &mut self,
        path: &std::path::Path,
        (lo, hi): (usize, usize),
        delta: isize,
        text: impl Fn(&std::path::Path) -> Option<Rope>,
    ) {
        if delta != 0 {
            self.shift(path, lo, delta);
        }
        self.event(path, lo, hi, true, text);
    }

    /// A completion was asked at `line` of `path`.
    pub(super) fn viewed(
        &mut self,
        path: &std::path::Path,
        line: usize,
        text: impl Fn(&std::path::Path) -> Option<Rope>,
    ) {
        self.event(path, line, line, false, text);
    }

    /// `path` is being closed (its text is `text`): the spot in it is
    /// committed now, while the text is there.
    pub(super) fn closing(&mut self, path: &std::path::Path, text: &Rope) {
        if self.spot.as_ref().is_some_and(|s| s.path == path) {
            if let Some(spot) = self.spot.take() {
                self.commit(&spot, text);
            }
        }
    }

    fn event(
        &mut self,
        path: &std::path::Path,
        lo: usize,
        hi: usize,
        edited: bool,
        text: impl Fn(&std::path::Path) -> Option<Rope>,
    ) {
        match &mut self.spot {
            Some(s) if s.extends_to(path, lo) && s.extends_to(path, hi) => {
                s.lo = s.lo.min(lo);
                s.hi = s.hi.max(hi);
                s.edited |= edited;
                return;
            }
            _ => {}
        }
        if let Some(spot) = self.spot.take() {
            if let Some(rope) = text(&spot.path) {
                self.commit(&spot, &rope);
            }
        }
        self.spot = Some(Spot {
            path: path.to_path_buf(),
            lo,
            hi,
            edited,
        });
    }

    /// Lines after `at` of `path` moved by `delta`: so do the spot and the
    /// chunks below it.
    fn shift(&mut self, path: &std::path::Path, at: usize, delta: isize) {
        let moved = |line: usize| line.saturating_add_signed(delta).max(at);
        if let Some(s) = self.spot.as_mut().filter(|s| s.path == path) {
            if s.lo > at {
                s.lo = moved(s.lo);
            }
            if s.hi > at {
                s.hi = moved(s.hi);
            }
        }
        let mut changed = false;
        for c in self
            .ring
            .iter_mut()
            .filter(|c| c.path == path && c.line > at)
        {
            c.line = moved(c.line);
            changed = true;
        }
        if changed {
            self.share();
        }
    }

    /// Puts `spot`'s lines (with `AROUND` more either side) of `text` in
    /// front of the ring, merged with the chunks of the same document they
    /// overlap.
    fn commit(&mut self, spot: &Spot, text: &Rope) {
        let lines = text.len_lines();
        if lines == 0 {
            return;
        }
        let mut start = spot.lo.saturating_sub(AROUND).min(lines - 1);
        let mut end = (spot.hi + AROUND + 1).min(lines);
        let mut edited = spot.edited;
        // Merged with the chunks it overlaps or touches (their text read
        // again: it is the document's as it is now).
        self.ring.retain(|c| {
            let r = c.lines();
            let overlaps = c.path == spot.path && r.start <= end && start <= r.end;
            if overlaps {
                start = start.min(r.start);
                end = end.max(r.end).min(lines);
                edited |= c.edited;
            }
            !overlaps
        });
        let mut chunk = String::new();
        for line in text.lines_at(start).take(end.saturating_sub(start)) {
            if chunk.len() >= MAX_CHUNK_CHARS {
                break;
            }
            chunk.extend(line.chunks());
        }
        if let Some((cut, _)) = chunk.char_indices().nth(MAX_CHUNK_CHARS) {
            chunk.truncate(cut);
        }
        if chunk.chars().any(char::is_alphanumeric) {
            self.ring.push_front(RecentChunk {
                path: spot.path.clone(),
                line: start,
                text: chunk,
                edited,
            });
            self.ring.truncate(RING);
        }
        self.share();
    }

    fn share(&mut self) {
        self.shared = Arc::new(self.ring.iter().cloned().collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn numbered(n: usize) -> Rope {
        Rope::from_str(&(0..n).map(|i| format!("line_{i}\n")).collect::<String>())
    }

    #[test]
    fn typing_in_one_place_adds_nothing_until_the_user_moves() {
        let a = numbered(100);
        let text = |_: &Path| Some(a.clone());
        let mut r = Recency::default();
        let pa = Path::new("/ws/a.py");
        // Keystrokes, new lines and requests around line 40.
        for line in [40, 40, 41, 41, 42, 43, 39] {
            r.edited(pa, (line, line), 0, text);
            r.viewed(pa, line, text);
        }
        assert!(r.chunks().is_empty());
        let before = r.chunks();
        r.edited(pa, (44, 44), 1, text);
        assert!(Arc::ptr_eq(&before, &r.chunks()));
        // Elsewhere in the file: the spot 39..=44 is committed.
        r.edited(pa, (90, 90), 0, text);
        let c = r.chunks();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].line, 35);
        assert_eq!(c[0].lines(), 35..49);
        assert!(c[0].text.starts_with("line_35\n") && c[0].text.ends_with("line_48\n"));
        assert!(c[0].edited);
    }

    #[test]
    fn the_ring_is_bounded_most_recent_first_and_merges_overlaps() {
        let a = numbered(1000);
        let text = |_: &Path| Some(a.clone());
        let mut r = Recency::default();
        let pa = Path::new("/ws/a.py");
        let pb = Path::new("/ws/b.py");
        for i in 0..(RING + 5) {
            r.viewed(pa, i * 40, text);
        }
        r.viewed(pb, 0, text);
        let c = r.chunks();
        assert_eq!(c.len(), RING);
        assert_eq!(c[0].line, (RING + 4) * 40 - AROUND);
        assert!(!c[0].edited);
        // Back near line 40 (kept), then away: one chunk there, merged.
        let kept = c
            .iter()
            .filter(|c| c.lines().contains(&(RING * 40)))
            .count();
        assert_eq!(kept, 1);
        r.edited(pa, (RING * 40 + 3, RING * 40 + 3), 0, text);
        r.viewed(pb, 0, text);
        let c = r.chunks();
        assert_eq!(c.len(), RING);
        assert_eq!(c[0].path, pa);
        assert_eq!(c[0].lines(), RING * 40 - AROUND..RING * 40 + 3 + AROUND + 1);
        assert!(c[0].edited);
        assert_eq!(
            c.iter()
                .filter(|c| c.lines().contains(&(RING * 40)))
                .count(),
            1
        );
    }

    #[test]
    fn lines_entered_above_a_chunk_move_it() {
        let a = numbered(100);
        let text = |_: &Path| Some(a.clone());
        let mut r = Recency::default();
        let pa = Path::new("/ws/a.py");
        r.edited(pa, (50, 50), 0, text);
        r.edited(pa, (10, 10), 0, text);
        assert_eq!(r.chunks()[0].line, 46);
        // Three lines entered at line 10: the chunk at 46 is now at 49.
        r.edited(pa, (10, 13), 3, text);
        assert_eq!(r.chunks()[0].line, 49);
        // Lines deleted below it leave it.
        r.edited(pa, (12, 12), -2, text);
        r.edited(pa, (80, 80), -1, text);
        assert_eq!(r.chunks()[1].line, 47);
    }

    #[test]
    fn a_growing_spot_is_committed_and_closing_commits_its_spot() {
        let a = numbered(200);
        let text = |_: &Path| Some(a.clone());
        let mut r = Recency::default();
        let pa = Path::new("/ws/a.py");
        for line in 0..MAX_SPOT_LINES + 2 {
            r.edited(pa, (100 + line, 100 + line), 1, text);
        }
        assert_eq!(r.chunks().len(), 1);
        assert_eq!(r.chunks()[0].lines(), 96..128);
        // The spot left (lines 124 and 125) touches it: merged.
        r.closing(pa, &a);
        assert_eq!(r.chunks().len(), 1);
        assert_eq!(r.chunks()[0].lines(), 96..130);
        // Nothing left to commit.
        let before = r.chunks();
        r.closing(pa, &a);
        assert!(Arc::ptr_eq(&before, &r.chunks()));
    }
}
