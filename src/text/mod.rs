//! Document text: ropes, LSP positions, syntax trees. No I/O.

pub mod document;
pub mod position;
pub mod syntax;

/// Columns of a line's indentation (a tab counts 4).
pub fn indent_width(line: &str) -> usize {
    line.chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .map(|c| if c == '\t' { 4 } else { 1 })
        .sum()
}
