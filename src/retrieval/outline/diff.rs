//! The one edit that turns the last text into this one: the common
//! prefix and suffix, and where byte ranges outside the change moved.

use tree_sitter::{InputEdit, Point};

use super::Lines;

/// Where two texts differ: one edit from `start` (the common prefix) to
/// `old_end` in the old text and `new_end` in the new (the common suffix
/// follows both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextDiff {
    pub start: usize,
    pub old_end: usize,
    pub new_end: usize,
    /// New rows minus old rows.
    pub rows_delta: isize,
    edit: InputEditCopy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InputEditCopy {
    start: Point,
    old_end: Point,
    new_end: Point,
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    const BLOCK: usize = 128;
    while i + BLOCK <= n && a[i..i + BLOCK] == b[i..i + BLOCK] {
        i += BLOCK;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

fn common_suffix(a: &[u8], b: &[u8], max: usize) -> usize {
    let (la, lb) = (a.len(), b.len());
    let mut i = 0;
    const BLOCK: usize = 128;
    while i + BLOCK <= max && a[la - i - BLOCK..la - i] == b[lb - i - BLOCK..lb - i] {
        i += BLOCK;
    }
    while i < max && a[la - i - 1] == b[lb - i - 1] {
        i += 1;
    }
    i
}

impl TextDiff {
    /// The one edit that turns `old` into `new` (`new_lines` is `new`'s).
    pub fn new(old: &str, new: &str, new_lines: &Lines) -> TextDiff {
        let (a, b) = (old.as_bytes(), new.as_bytes());
        let start = common_prefix(a, b);
        let suffix = common_suffix(a, b, a.len().min(b.len()) - start);
        let (old_end, new_end) = (a.len() - suffix, b.len() - suffix);
        let start_point = new_lines.point(start);
        let new_end_point = new_lines.point(new_end);
        let removed = &a[start..old_end];
        let old_newlines = removed.iter().filter(|&&c| c == b'\n').count();
        let old_end_point = match removed.iter().rposition(|&c| c == b'\n') {
            None => Point::new(start_point.row, start_point.column + removed.len()),
            Some(i) => Point::new(start_point.row + old_newlines, removed.len() - i - 1),
        };
        TextDiff {
            start,
            old_end,
            new_end,
            rows_delta: (new_end_point.row - start_point.row) as isize - old_newlines as isize,
            edit: InputEditCopy {
                start: start_point,
                old_end: old_end_point,
                new_end: new_end_point,
            },
        }
    }

    pub fn unchanged(&self) -> bool {
        self.start == self.old_end && self.start == self.new_end
    }

    pub(super) fn input_edit(&self) -> InputEdit {
        InputEdit {
            start_byte: self.start,
            old_end_byte: self.old_end,
            new_end_byte: self.new_end,
            start_position: self.edit.start,
            old_end_position: self.edit.old_end,
            new_end_position: self.edit.new_end,
        }
    }

    /// Where an old byte range that lies wholly before or wholly after the
    /// changed bytes starts now, and how far its rows moved; `None` if it
    /// overlaps them.
    pub fn moved(&self, start: usize, end: usize) -> Option<(usize, isize)> {
        if end <= self.start {
            Some((start, 0))
        } else if start >= self.old_end {
            Some((start + self.new_end - self.old_end, self.rows_delta))
        } else {
            None
        }
    }

    /// Where a new byte range that lies wholly before or wholly after the
    /// changed bytes started in the old text (the same bytes are there).
    pub fn old_start(&self, start: usize, end: usize) -> Option<usize> {
        if end <= self.start {
            Some(start)
        } else if start >= self.new_end {
            Some(start - self.new_end + self.old_end)
        } else {
            None
        }
    }

    /// An old byte range in new coordinates, stretched over the change if it touches it.
    pub(super) fn map_range(&self, start: usize, end: usize) -> (usize, usize) {
        let lo = if start < self.start {
            start
        } else if start >= self.old_end {
            start + self.new_end - self.old_end
        } else {
            self.start
        };
        let hi = if end <= self.start {
            end
        } else if end >= self.old_end {
            end + self.new_end - self.old_end
        } else {
            self.new_end
        };
        (lo, hi.max(lo))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_diff_and_lines() {
        let lines = Lines::new("ab\ncd\n");
        assert_eq!((lines.count(), lines.start(1), lines.start(2)), (2, 3, 6));
        assert_eq!(lines.point(4), Point::new(1, 1));
        assert_eq!(Lines::new("ab").count(), 1);
        assert_eq!(Lines::new("").count(), 0);
        let new = "ab\nXY\nZ\ncd\n";
        let d = TextDiff::new("ab\ncd\n", new, &Lines::new(new));
        assert_eq!((d.start, d.old_end, d.new_end, d.rows_delta), (3, 3, 8, 2));
        assert_eq!(d.moved(0, 2), Some((0, 0)));
        assert_eq!(d.moved(3, 5), Some((8, 2)));
        assert_eq!(d.old_start(8, 11), Some(3));
        assert_eq!(d.old_start(4, 6), None);
        let d = TextDiff::new("same", "same", &Lines::new("same"));
        assert!(d.unchanged());
    }
}
