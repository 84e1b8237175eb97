//! Definitions into chunks: each definition whole while it is short, a
//! large class as its header and its members, anything else in windows.

use super::definitions::{symbols, Def};
use super::{Chunk, Lines, Outline, SymbolKind, MAX_CHUNK_LINES, WINDOW_LINES};

/// Chunks and symbols from the (ordered) definitions.
pub(super) fn cut(defs: &[Def], text: &str, lines: &Lines) -> Outline {
    let symbols = symbols(defs, text);
    let mut chunks = Vec::new();
    let blocks: Vec<&Def> = defs
        .iter()
        .filter(|d| d.kind != SymbolKind::Field)
        .collect();
    let roots = children_of(&blocks, None);
    let cutter = Cutter { text, lines };
    cutter.cover(
        &blocks,
        &roots,
        0,
        lines.count().saturating_sub(1),
        &mut chunks,
    );
    Outline { chunks, symbols }
}

struct Cutter<'a> {
    text: &'a str,
    lines: &'a Lines,
}

impl Cutter<'_> {
    /// Chunks for lines `from..=to`, holding the blocks `items` (in order).
    fn cover(
        &self,
        blocks: &[&Def],
        items: &[usize],
        from: usize,
        to: usize,
        out: &mut Vec<Chunk>,
    ) {
        let mut next = from;
        for &i in items {
            let b = blocks[i];
            if b.start_line > next {
                self.windows(next, b.start_line - 1, out);
            }
            self.block(blocks, i, out);
            next = b.end_line + 1;
        }
        if next <= to && self.lines.count() > 0 {
            self.windows(next, to, out);
        }
    }

    fn block(&self, blocks: &[&Def], i: usize, out: &mut Vec<Chunk>) {
        let b = blocks[i];
        let len = b.end_line - b.start_line + 1;
        let members = children_of(blocks, Some(i));
        if len <= MAX_CHUNK_LINES || members.is_empty() {
            if len <= MAX_CHUNK_LINES {
                self.push(b.start_line, b.end_line, out);
            } else {
                self.windows(b.start_line, b.end_line, out);
            }
            return;
        }
        // A large class: its header (up to the first member), then its members.
        let first = blocks[members[0]].start_line;
        let header_end = (first - 1).min(b.start_line + MAX_CHUNK_LINES - 1);
        self.push(b.start_line, header_end, out);
        self.cover(blocks, &members, first, b.end_line, out);
    }

    fn windows(&self, from: usize, to: usize, out: &mut Vec<Chunk>) {
        let mut start = from;
        while start <= to {
            let end = (start + WINDOW_LINES - 1).min(to);
            self.push(start, end, out);
            start = end + 1;
        }
    }

    /// Adds lines `from..=to` as a chunk unless they hold no word at all.
    fn push(&self, from: usize, to: usize, out: &mut Vec<Chunk>) {
        let to = to.min(self.lines.count().saturating_sub(1));
        if from > to || self.lines.count() == 0 {
            return;
        }
        let chunk = Chunk {
            start_line: from,
            end_line: to,
            start_byte: self.lines.start(from),
            end_byte: self.lines.start(to + 1),
        };
        if !chunk.text(self.text).chars().any(char::is_alphanumeric) {
            return;
        }
        out.push(chunk);
    }
}

/// Indices of the blocks directly inside `parent` (all top-level ones for `None`).
fn children_of(blocks: &[&Def], parent: Option<usize>) -> Vec<usize> {
    let (lo, hi, from) = match parent {
        Some(p) => (blocks[p].start_line, blocks[p].end_line, p + 1),
        None => (0, usize::MAX, 0),
    };
    let mut out = Vec::new();
    let mut covered_to: Option<usize> = None;
    for (i, b) in blocks.iter().enumerate().skip(from) {
        if b.start_line > hi {
            break;
        }
        if b.start_line < lo || covered_to.is_some_and(|c| b.start_line <= c) {
            continue;
        }
        // A block on its parent's first line (a one-line class) is not a child.
        if parent.is_some() && b.start_line == lo {
            continue;
        }
        out.push(i);
        covered_to = Some(b.end_line);
    }
    out
}
