//! When generation ends: a rule on the text generated so far, decided by
//! the caller (the answer's shape) and applied by the engine between tokens.

use crate::text::indent_width;

/// When generation ends, decided on the text generated so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StopRule {
    pub multiline: bool,
    pub max_lines: usize,
    /// In multi-line mode, a later line indented less than this ends the
    /// suggestion: it belongs to an enclosing block the user already has.
    pub min_indent: usize,
}

impl StopRule {
    /// Byte length to keep if generation must stop now, `None` to go on.
    pub fn cut(&self, text: &str) -> Option<usize> {
        let mut line_start = 0;
        let mut lines = 0;
        for (i, _) in text.match_indices('\n') {
            let line = &text[line_start..i];
            if lines > 0 && !line.trim().is_empty() && indent_width(line) < self.min_indent {
                return Some(line_start.saturating_sub(1));
            }
            lines += 1;
            let content_so_far = !text[..i].trim().is_empty();
            if !self.multiline && content_so_far {
                return Some(i);
            }
            if lines >= self.max_lines {
                return Some(i);
            }
            line_start = i + 1;
        }
        None
    }
}
