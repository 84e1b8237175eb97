//! The client byte stream's framing (`src/lsp/framing.rs`): on any input it
//! never panics and keeps its buffer bounded; and every well-formed frame
//! that follows garbage (stray bytes, torn headers, blank lines), arriving in
//! reads of any size, is delivered exactly, in order.

#![no_main]

use arbitrary::Arbitrary;
use infill::lsp::framing::{Event, FrameParser, MAX_HEADER};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum HeaderStyle {
    Plain,
    LowerCase,
    ContentTypeFirst,
    ContentTypeAfter,
    LineFeedsOnly,
    Blanks,
}

#[derive(Arbitrary, Debug)]
struct Piece {
    /// Bytes before the frame: anything but a header name of their own.
    garbage: Vec<u8>,
    /// The text a JSON-RPC message carries (any string; JSON-escaped).
    text: String,
    style: HeaderStyle,
}

#[derive(Arbitrary, Debug)]
struct Input {
    pieces: Vec<Piece>,
    /// Sizes of the reads the stream arrives in (0 stands for 1).
    reads: Vec<u8>,
    /// Anything at all after the last frame.
    tail: Vec<u8>,
}

/// A JSON-RPC notification carrying `text`, escaped as serde_json would.
fn message(text: &str) -> Vec<u8> {
    let mut s = String::from(r#"{"jsonrpc":"2.0","method":"m","params":{"t":""#);
    for c in text.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c if (c as u32) < 0x20 => s.push_str(&format!("\\u{:04x}", c as u32)),
            c => s.push(c),
        }
    }
    s.push_str("\"}}");
    s.into_bytes()
}

fn header(style: &HeaderStyle, len: usize) -> String {
    match style {
        HeaderStyle::Plain => format!("Content-Length: {len}\r\n\r\n"),
        HeaderStyle::LowerCase => format!("content-length:{len}\r\n\r\n"),
        HeaderStyle::ContentTypeFirst => format!(
            "Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nContent-Length: {len}\r\n\r\n"
        ),
        HeaderStyle::ContentTypeAfter => {
            format!("Content-Length: {len}\r\nContent-Type: application/json\r\n\r\n")
        }
        HeaderStyle::LineFeedsOnly => format!("Content-Length: {len}\n\n"),
        HeaderStyle::Blanks => format!("CONTENT-LENGTH \t:  {len} \r\n\r\n"),
    }
}

/// `bytes` with every (case-insensitive) `content-length` broken, so that
/// garbage never holds a header of its own.
fn without_header_names(mut bytes: Vec<u8>) -> Vec<u8> {
    const KEY: &[u8] = b"content-length";
    let mut i = 0;
    while i + KEY.len() <= bytes.len() {
        if bytes[i..i + KEY.len()].eq_ignore_ascii_case(KEY) {
            bytes[i] = b'x';
        }
        i += 1;
    }
    bytes
}

fuzz_target!(|input: Input| {
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    for piece in &input.pieces {
        stream.extend(without_header_names(piece.garbage.clone()));
        let body = message(&piece.text);
        stream.extend(header(&piece.style, body.len()).into_bytes());
        stream.extend_from_slice(&body);
        expected.push(body);
    }
    stream.extend_from_slice(&input.tail);

    let mut parser = FrameParser::new();
    let mut frames = Vec::new();
    let mut reads = input.reads.iter().cycle();
    let mut at = 0;
    while at < stream.len() {
        let size = reads
            .next()
            .map_or(stream.len(), |&n| usize::from(n.max(1)));
        let end = (at + size).min(stream.len());
        parser.push(&stream[at..end]);
        at = end;
        while let Some(event) = parser.next_event() {
            if let Event::Frame(body) = event {
                frames.push(body);
            }
        }
        // Bounded: at most a pending frame (these are short) and a header's worth.
        assert!(
            parser.buffered() <= MAX_HEADER + stream.len(),
            "buffer grew to {}",
            parser.buffered()
        );
    }
    if let Some(Event::Frame(_)) = parser.finish() {
        panic!("finish only reports what is left");
    }
    assert!(parser.next_event().is_none(), "nothing after finish");
    assert!(
        frames.len() >= expected.len(),
        "{} of {} frames delivered",
        frames.len(),
        expected.len()
    );
    for (i, (got, want)) in frames.iter().zip(&expected).enumerate() {
        assert_eq!(
            String::from_utf8_lossy(got),
            String::from_utf8_lossy(want),
            "frame {i}"
        );
    }
});
