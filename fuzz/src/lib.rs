//! What the fuzz targets share: structured inputs (text built from pieces
//! that matter to LSP positions, positions that are mostly near the text)
//! and a reference model of LSP positions on plain strings.

use arbitrary::Arbitrary;
use infill::text::position::{LinePosition, PositionEncoding};

/// Pieces that stress line breaks and code units: CRLF and lone CR (line
/// ends), U+2028, U+0085 and form feed (not line ends in LSP), surrogate
/// pairs in UTF-16, combining marks, multi-byte UTF-8, code that parses.
pub const PIECES: &[&str] = &[
    "a",
    "é",
    "😀",
    "\r\n",
    "\n",
    "\r",
    "e\u{301}",
    "\u{2028}",
    "\u{85}",
    "\u{c}",
    "\t",
    "世界",
    " ",
    "    ",
    "def f(x):\n    return x\n",
    "class A { int x; }\n",
    "\"\"\"doc",
    "'",
    "#",
    "//",
    "/*",
    "*/",
    "(",
    ")",
    "{",
    "}",
    ":",
    ";",
    "x = [1, 2",
    "if x:\n",
    "\u{0}",
];

#[derive(Arbitrary, Debug, Clone)]
pub enum Piece {
    Known(u8),
    Free(String),
}

/// Text as a sequence of pieces.
#[derive(Arbitrary, Debug, Clone)]
pub struct Text(pub Vec<Piece>);

impl Text {
    pub fn build(&self) -> String {
        let mut s = String::new();
        for p in &self.0 {
            match p {
                Piece::Known(i) => s.push_str(PIECES[*i as usize % PIECES.len()]),
                Piece::Free(f) => s.push_str(f),
            }
        }
        s
    }
}

/// A line or character number: mostly small (inside or just past the
/// text), sometimes anything.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Num {
    Small(u8),
    Any(u32),
}

impl Num {
    pub fn get(self) -> u32 {
        match self {
            Num::Small(n) => n as u32 % 24,
            Num::Any(n) => n,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Pos {
    pub line: Num,
    pub character: Num,
}

impl Pos {
    pub fn lsp(self) -> LinePosition {
        LinePosition {
            line: self.line.get(),
            character: self.character.get(),
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Encoding {
    Utf8,
    Utf16,
    Utf32,
}

impl Encoding {
    pub fn lsp(self) -> PositionEncoding {
        match self {
            Encoding::Utf8 => PositionEncoding::Utf8,
            Encoding::Utf16 => PositionEncoding::Utf16,
            Encoding::Utf32 => PositionEncoding::Utf32,
        }
    }

    pub fn units(self, c: char) -> usize {
        match self {
            Encoding::Utf8 => c.len_utf8(),
            Encoding::Utf16 => c.len_utf16(),
            Encoding::Utf32 => 1,
        }
    }
}

/// Byte offsets where LSP lines start: 0, and after `\n`, `\r\n` and a lone `\r`.
pub fn line_starts(text: &str) -> Vec<usize> {
    let b = text.as_bytes();
    let mut starts = vec![0];
    for i in 0..b.len() {
        if b[i] == b'\n' || (b[i] == b'\r' && b.get(i + 1) != Some(&b'\n')) {
            starts.push(i + 1);
        }
    }
    starts
}

/// Byte range of line `line`'s content (without its line break).
pub fn line_content(text: &str, starts: &[usize], line: usize) -> (usize, usize) {
    let start = starts[line];
    let mut end = starts.get(line + 1).copied().unwrap_or(text.len());
    let b = text.as_bytes();
    if end > start && b[end - 1] == b'\n' {
        end -= 1;
    }
    if end > start && b[end - 1] == b'\r' {
        end -= 1;
    }
    (start, end)
}

/// The reference model of an LSP position: the byte offset it means,
/// clamped as the LSP spec asks (a line past the end: the end of the text;
/// a character past the line's content: the end of the content; a
/// character inside a code point: the start of that code point).
pub fn offset(text: &str, pos: LinePosition, enc: Encoding) -> usize {
    let starts = line_starts(text);
    let line = pos.line as usize;
    if line >= starts.len() {
        return text.len();
    }
    let (start, end) = line_content(text, &starts, line);
    let mut units = 0;
    for (i, c) in text[start..end].char_indices() {
        if units + enc.units(c) > pos.character as usize {
            return start + i;
        }
        units += enc.units(c);
    }
    end
}

/// The reference model of one content change (`None`: the whole text).
pub fn apply(
    text: &mut String,
    range: Option<(LinePosition, LinePosition)>,
    new: &str,
    enc: Encoding,
) {
    match range {
        None => *text = new.to_string(),
        Some((a, b)) => {
            let s = offset(text, a, enc);
            let e = offset(text, b, enc).max(s);
            text.replace_range(s..e, new);
        }
    }
}
