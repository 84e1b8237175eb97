//! Where each line of a text starts: bytes to rows and back.

use tree_sitter::Point;

/// Where each line of a text starts (lines end at `\n`, as tree-sitter counts rows).
#[derive(Debug, Clone, Default)]
pub struct Lines {
    /// 0, then one past every `\n` (so a text ending in `\n` has an empty last entry).
    starts: Vec<usize>,
    len: usize,
    /// Lines as `split_inclusive('\n')` counts them.
    count: usize,
}

impl Lines {
    pub fn new(text: &str) -> Lines {
        let mut starts = Vec::with_capacity(text.len() / 32 + 2);
        starts.push(0);
        // `match_indices` of one ASCII char runs on memchr.
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let count = if text.is_empty() || text.ends_with('\n') {
            starts.len() - 1
        } else {
            starts.len()
        };
        Lines {
            starts,
            len: text.len(),
            count,
        }
    }

    /// Number of lines (a last line without `\n` counts).
    pub fn count(&self) -> usize {
        self.count
    }

    /// First byte of `line` (the text's length past the end).
    pub fn start(&self, line: usize) -> usize {
        self.starts.get(line).copied().unwrap_or(self.len)
    }

    /// The row and byte column of `byte`.
    pub fn point(&self, byte: usize) -> Point {
        let byte = byte.min(self.len);
        let row = self
            .starts
            .partition_point(|&s| s <= byte)
            .saturating_sub(1);
        Point::new(row, byte - self.start(row))
    }
}
