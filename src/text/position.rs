//! Conversion between LSP positions (line + offset in the negotiated
//! encoding) and char indices in a rope.
//!
//! Invariant: the rope is built with ropey's `cr_lines` feature only, so its
//! lines end exactly where LSP's do (`\n`, `\r\n`, `\r`). Positions past the
//! end of a line or of the document are clamped, as the LSP spec asks.

use ropey::Rope;

/// The unit in which a position's `character` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PositionEncoding {
    Utf8,
    #[default]
    Utf16,
    Utf32,
}

impl PositionEncoding {
    pub fn lsp_name(self) -> &'static str {
        match self {
            PositionEncoding::Utf8 => "utf-8",
            PositionEncoding::Utf16 => "utf-16",
            PositionEncoding::Utf32 => "utf-32",
        }
    }

    /// Chooses from the encodings a client offers: UTF-8 when offered (no
    /// conversion needed for our byte-oriented tools), else the mandatory UTF-16.
    pub fn negotiate<'a>(offered: impl IntoIterator<Item = &'a str>) -> Self {
        if offered.into_iter().any(|e| e == "utf-8") {
            PositionEncoding::Utf8
        } else {
            PositionEncoding::Utf16
        }
    }

    fn units(self, c: char) -> usize {
        match self {
            PositionEncoding::Utf8 => c.len_utf8(),
            PositionEncoding::Utf16 => c.len_utf16(),
            PositionEncoding::Utf32 => 1,
        }
    }
}

/// A position as LSP sends it: zero-based line and offset in code units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinePosition {
    pub line: u32,
    pub character: u32,
}

/// Number of chars of `line` that are content, not the line break.
fn line_content_chars(rope: &Rope, line: usize) -> usize {
    let slice = rope.line(line);
    let mut len = slice.len_chars();
    // A line ends in at most "\r\n"; strip it from the end.
    if len > 0 && slice.char(len - 1) == '\n' {
        len -= 1;
    }
    if len > 0 && slice.char(len - 1) == '\r' {
        len -= 1;
    }
    len
}

/// Char index of an LSP position, clamped to the document.
///
/// A line past the end maps to the end of the document; a character past the
/// end of its line maps to the end of that line (before its break); an offset
/// that falls inside a character (e.g. between UTF-16 surrogates) maps to the
/// start of that character.
pub fn to_char_index(rope: &Rope, pos: LinePosition, enc: PositionEncoding) -> usize {
    let line = pos.line as usize;
    if line >= rope.len_lines() {
        return rope.len_chars();
    }
    let line_start = rope.line_to_char(line);
    let content = line_content_chars(rope, line);
    let target = pos.character as usize;
    let mut units = 0usize;
    for (i, c) in rope.line(line).chars().take(content).enumerate() {
        let next = units + enc.units(c);
        if next > target {
            return line_start + i;
        }
        units = next;
    }
    line_start + content
}

/// LSP position of a char index (clamped to the document end).
pub fn from_char_index(rope: &Rope, char_idx: usize, enc: PositionEncoding) -> LinePosition {
    let char_idx = char_idx.min(rope.len_chars());
    let line = rope.char_to_line(char_idx);
    let line_start = rope.line_to_char(line);
    let character: usize = rope
        .slice(line_start..char_idx)
        .chars()
        .map(|c| enc.units(c))
        .sum();
    LinePosition {
        line: line as u32,
        character: character as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(line: u32, character: u32) -> LinePosition {
        LinePosition { line, character }
    }

    #[test]
    fn utf16_counts_surrogate_pairs_as_two() {
        let rope = Rope::from_str("a😀b\nx");
        let enc = PositionEncoding::Utf16;
        assert_eq!(to_char_index(&rope, pos(0, 3), enc), 2); // after the emoji
        assert_eq!(to_char_index(&rope, pos(0, 2), enc), 1); // inside the pair: start of emoji
        assert_eq!(from_char_index(&rope, 2, enc), pos(0, 3));
        assert_eq!(to_char_index(&rope, pos(0, 3), PositionEncoding::Utf8), 1);
        assert_eq!(to_char_index(&rope, pos(0, 5), PositionEncoding::Utf8), 2);
    }

    #[test]
    fn only_lf_crlf_and_cr_end_lines() {
        let rope = Rope::from_str("a\u{2028}b\u{85}c\u{c}d\r\ne\rf");
        assert_eq!(rope.len_lines(), 3);
        assert_eq!(to_char_index(&rope, pos(1, 0), PositionEncoding::Utf16), 9);
        assert_eq!(to_char_index(&rope, pos(2, 1), PositionEncoding::Utf16), 12);
    }

    #[test]
    fn clamps_past_line_end_and_document_end() {
        let rope = Rope::from_str("abc\r\ndef");
        let enc = PositionEncoding::Utf16;
        assert_eq!(to_char_index(&rope, pos(0, 99), enc), 3); // before \r\n
        assert_eq!(to_char_index(&rope, pos(7, 0), enc), 8);
        assert_eq!(from_char_index(&rope, 100, enc), pos(1, 3));
    }

    #[test]
    fn negotiates_utf8_only_when_offered() {
        assert_eq!(
            PositionEncoding::negotiate(["utf-16", "utf-8"]),
            PositionEncoding::Utf8
        );
        assert_eq!(
            PositionEncoding::negotiate(["utf-32"]),
            PositionEncoding::Utf16
        );
    }
}
