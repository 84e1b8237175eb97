//! LSP position ↔ char index on arbitrary text: never panics, clamps as
//! documented (`src/text/position.rs`), agrees with the reference model,
//! keeps order, and round-trips.

#![no_main]

use arbitrary::Arbitrary;
use infill::text::position::{from_char_index, to_char_index, LinePosition};
use infill_fuzz::{line_content, line_starts, offset, Encoding, Pos, Text};
use libfuzzer_sys::fuzz_target;
use ropey::Rope;

#[derive(Arbitrary, Debug)]
struct Input {
    text: Text,
    encoding: Encoding,
    positions: Vec<Pos>,
    char_indices: Vec<u16>,
}

fuzz_target!(|input: Input| {
    let text = input.text.build();
    let rope = Rope::from_str(&text);
    let enc = input.encoding;
    let starts = line_starts(&text);
    assert_eq!(
        rope.len_lines(),
        starts.len(),
        "lines end only at \\n, \\r\\n, \\r"
    );

    let mut previous: Option<(LinePosition, usize)> = None;
    for p in &input.positions {
        let pos = p.lsp();
        let idx = to_char_index(&rope, pos, enc.lsp());
        assert!(idx <= rope.len_chars());
        // The same place as the reference model's byte offset.
        let expected = offset(&text, pos, enc);
        assert_eq!(rope.char_to_byte(idx), expected, "{pos:?} in {text:?}");
        // Clamping: past the last line is the end of the document; otherwise
        // the index stays within the line's content.
        let line = pos.line as usize;
        if line >= starts.len() {
            assert_eq!(idx, rope.len_chars());
        } else {
            let (start, end) = line_content(&text, &starts, line);
            assert!((start..=end).contains(&expected));
            // Back to a position: the same one when `pos` fell on a code point
            // boundary within the line, else the clamped one (never past it).
            let back = from_char_index(&rope, idx, enc.lsp());
            assert_eq!(back.line, pos.line);
            assert!(back.character <= pos.character);
            let units: usize = text[start..end].chars().map(|c| enc.units(c)).sum();
            let on_boundary = text[start..end]
                .chars()
                .scan(0usize, |u, c| {
                    *u += enc.units(c);
                    Some(*u)
                })
                .chain([0])
                .any(|u| u == pos.character as usize);
            if on_boundary && (pos.character as usize) <= units {
                assert_eq!(back, pos, "round trip in {text:?}");
            }
        }
        // Order is kept: a later position never maps before an earlier one.
        if let Some((q, qi)) = previous {
            if (q.line, q.character) <= (pos.line, pos.character) {
                assert!(qi <= idx, "{q:?} -> {qi}, {pos:?} -> {idx}");
            }
        }
        previous = Some((pos, idx));
    }

    for &i in &input.char_indices {
        let i = i as usize;
        let pos = from_char_index(&rope, i, enc.lsp());
        let clamped = i.min(rope.len_chars());
        let idx = to_char_index(&rope, pos, enc.lsp());
        // Round trip, except inside a line break (between \r and \n), which
        // no position can name: that maps to the break's start.
        let inside_crlf = clamped > 0
            && clamped < rope.len_chars()
            && rope.char(clamped - 1) == '\r'
            && rope.char(clamped) == '\n';
        if inside_crlf {
            assert_eq!(idx, clamped - 1);
        } else {
            assert_eq!(idx, clamped, "{i} -> {pos:?} in {text:?}");
        }
    }
});
