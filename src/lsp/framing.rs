//! `Content-Length` framing of a byte stream, that finds its footing again
//! after any malformed input.
//!
//! Why by hand: a framed codec (tokio-util's, tower-lsp's) reads header
//! lines in order and trusts the length it finds. A few stray bytes (a torn
//! or interleaved write) glue onto the next header line, the
//! `Content-Length` is never recognised again, and every later message is
//! lost while the process lives on, deaf. Here the parser looks for the
//! `Content-Length` header wherever it stands, so the next well-formed frame
//! after any garbage is delivered.
//!
//! Invariants:
//! - A frame whose body holds what can only be a new header (the header
//!   name, `:`, digits and a raw line end) was cut short: it is dropped
//!   there and the new header is read. Valid JSON never holds that pattern
//!   (line ends inside strings are escaped, and a header name outside a
//!   string is not JSON), so no well-formed message is ever split.
//! - Memory stays bounded: stray bytes are dropped as they come, a body
//!   larger than [`MAX_BODY`] is refused at its header (and its bytes are
//!   then dropped as stray), and header lines are at most [`MAX_HEADER`].
//! - Pure: no I/O, so it is fuzzed directly (`fuzz/fuzz_targets/framing.rs`).

/// Largest message accepted (a 10 MB file as JSON, with room to spare).
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// Longest header block after the `Content-Length` line, and the most
/// bytes kept while looking for a header.
pub const MAX_HEADER: usize = 8 * 1024;

const KEY: &[u8] = b"content-length";

/// What the stream held next.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A frame's body.
    Frame(Vec<u8>),
    /// Bytes that were not a usable frame, dropped; why, for the log and the
    /// client.
    Dropped(String),
}

/// Splits a byte stream into frames: `push` what arrives, then take
/// `next_event` until it says it needs more.
#[derive(Debug, Default)]
pub struct FrameParser {
    buf: Vec<u8>,
    /// Where the unread bytes start in `buf`.
    start: usize,
    /// Stray bytes dropped and not yet reported.
    stray: usize,
    /// For a body still arriving: how far (from the body's start) it has
    /// been searched for an embedded header, so each byte is searched once.
    scanned: usize,
}

/// A parsed `Content-Length` header block at the start of the unread bytes.
enum Header {
    /// Complete: the body's length and the header block's length.
    Complete { length: usize, header_len: usize },
    /// Not all there yet.
    Incomplete,
    /// Malformed: drop this many bytes, and why.
    Bad { skip: usize, why: String },
}

impl FrameParser {
    pub fn new() -> FrameParser {
        FrameParser::default()
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held (for tests of the memory bound).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next frame or dropped stretch; `None` when more input is needed.
    pub fn next_event(&mut self) -> Option<Event> {
        let data = &self.buf[self.start..];
        let Some(at) = find_key(data, 0) else {
            // Keep a possible header name's beginning and anything short
            // enough to be header lines still arriving.
            if data.len() > MAX_HEADER {
                let drop = data.len() - (KEY.len() - 1);
                self.stray += drop;
                self.advance(drop);
            }
            return None;
        };
        if at > 0 {
            let prefix_is_headers = other_header_lines(&data[..at]);
            if !prefix_is_headers {
                self.stray += at;
            }
            self.advance(at);
        }
        if self.stray > 0 {
            let n = std::mem::take(&mut self.stray);
            return Some(Event::Dropped(format!(
                "{n} stray byte{} before a header",
                if n == 1 { "" } else { "s" }
            )));
        }
        match parse_header(&self.buf[self.start..]) {
            Header::Incomplete => None,
            Header::Bad { skip, why } => {
                self.advance(skip);
                Some(Event::Dropped(why))
            }
            Header::Complete { length, header_len } => {
                if length > MAX_BODY {
                    // Its body will be dropped as stray bytes, so that a
                    // lying length cannot swallow the frames after it.
                    self.advance(header_len);
                    return Some(Event::Dropped(format!(
                        "message of {length} bytes exceeds the {MAX_BODY}-byte limit"
                    )));
                }
                let body_start = self.start + header_len;
                let available = (self.buf.len() - body_start).min(length);
                let body = &self.buf[body_start..body_start + available];
                match embedded_header(body, self.scanned) {
                    Embedded::At(q) => {
                        self.advance(header_len + q);
                        return Some(Event::Dropped(format!(
                            "message shorter than its Content-Length ({length}): \
                             a new header began after {q} bytes"
                        )));
                    }
                    Embedded::NoneBefore(p) => self.scanned = p,
                }
                if available < length {
                    return None;
                }
                let frame = body.to_vec();
                self.advance(header_len + length);
                Some(Event::Frame(frame))
            }
        }
    }

    /// At the end of the stream: what is left, reported once.
    pub fn finish(&mut self) -> Option<Event> {
        let rest = &self.buf[self.start..];
        let meaningful = rest.iter().filter(|b| !b.is_ascii_whitespace()).count();
        let stray = std::mem::take(&mut self.stray);
        self.advance(rest.len());
        (meaningful + stray > 0).then(|| {
            Event::Dropped(format!(
                "the input ended inside a message ({} bytes unread)",
                stray + meaningful
            ))
        })
    }

    fn advance(&mut self, n: usize) {
        self.start += n;
        self.scanned = 0;
    }
}

/// The first case-insensitive `content-length` in `data` from `from`.
fn find_key(data: &[u8], from: usize) -> Option<usize> {
    if data.len() < KEY.len() {
        return None;
    }
    (from..=data.len() - KEY.len()).find(|&i| {
        // Cheap first-byte test before the full comparison.
        data[i] | 0x20 == b'c' && data[i..i + KEY.len()].eq_ignore_ascii_case(KEY)
    })
}

/// Whether `prefix` (the bytes before a `Content-Length` header) is only
/// other header lines of the same block (`Content-Type: …`), so that it is
/// not reported as stray.
fn other_header_lines(prefix: &[u8]) -> bool {
    if prefix.last() != Some(&b'\n') {
        return false;
    }
    let mut lines = prefix[..prefix.len() - 1].split(|&b| b == b'\n');
    lines.all(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                colon > 0
                    && line[..colon]
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            }
            None => false,
        }
    })
}

/// Parses `Content-Length: N` and the rest of its header block (more
/// header lines, then a blank line) at the start of `data`.
fn parse_header(data: &[u8]) -> Header {
    let bad = |why: &str| Header::Bad {
        skip: KEY.len(),
        why: why.to_string(),
    };
    let (digits, mut i) = match value_line(data) {
        ValueLine::Incomplete => return Header::Incomplete,
        ValueLine::Not(why) => return bad(&why),
        ValueLine::Line { digits, end } => (digits, end),
    };
    let Some(length) = std::str::from_utf8(&data[digits])
        .ok()
        .and_then(|d| d.parse::<usize>().ok())
    else {
        return bad("a Content-Length that is not a number");
    };
    // The block's other lines, up to the blank line that ends it.
    loop {
        if i > MAX_HEADER {
            return bad("a header block without its blank line");
        }
        let Some(eol) = data[i..].iter().position(|&b| b == b'\n') else {
            return if data.len() - i > MAX_HEADER {
                bad("a header line too long")
            } else {
                Header::Incomplete
            };
        };
        let line = &data[i..i + eol];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Header::Complete {
                length,
                header_len: i + eol + 1,
            };
        }
        if find_key(line, 0).is_some() {
            // A second Content-Length before the blank line: this block was
            // torn; the next one starts on that line.
            return Header::Bad {
                skip: i,
                why: "a header block without its blank line".into(),
            };
        }
        i += eol + 1;
    }
}

enum Embedded {
    /// A header starts this far into the body.
    At(usize),
    /// None starts before this offset (search on from there).
    NoneBefore(usize),
}

/// Looks in `body` (from `from`) for what can only be a new frame's header:
/// the header name, `:`, digits and a raw line end.
fn embedded_header(body: &[u8], from: usize) -> Embedded {
    let mut at = from;
    while let Some(q) = find_key(body, at) {
        match value_line(&body[q..]) {
            ValueLine::Line { .. } => return Embedded::At(q),
            ValueLine::Not(_) => at = q + 1,
            // Cut off by the end of what has arrived: look again later.
            ValueLine::Incomplete => return Embedded::NoneBefore(q),
        }
    }
    Embedded::NoneBefore(body.len().saturating_sub(KEY.len() - 1).max(at))
}

/// What follows the header name at the start of `s`.
enum ValueLine {
    /// Not all there yet.
    Incomplete,
    /// Not a `Content-Length: N` line; why.
    Not(String),
    /// A whole line: where its digits are, and the offset past its line end.
    Line {
        digits: std::ops::Range<usize>,
        end: usize,
    },
}

/// Reads `: N` and the line end after the header name at the start of `s`
/// (blanks allowed around the colon and after the number). Shared by the
/// header parser and the search for a header inside a body.
fn value_line(s: &[u8]) -> ValueLine {
    let blanks = |mut i: usize| {
        while s.get(i).is_some_and(|b| *b == b' ' || *b == b'\t') {
            i += 1;
        }
        i
    };
    let mut i = blanks(KEY.len());
    match s.get(i) {
        None => return ValueLine::Incomplete,
        Some(b':') => i = blanks(i + 1),
        Some(_) => return ValueLine::Not("a Content-Length header without `:`".into()),
    }
    let start = i;
    while s.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    if i == s.len() {
        return if i - start > 20 {
            ValueLine::Not("a Content-Length too long".into())
        } else {
            ValueLine::Incomplete
        };
    }
    let digits = start..i;
    i = blanks(i);
    if s.get(i) == Some(&b'\r') {
        i += 1;
    }
    match s.get(i) {
        None => ValueLine::Incomplete,
        Some(b'\n') if !digits.is_empty() => ValueLine::Line { digits, end: i + 1 },
        Some(b'\n') => ValueLine::Not("a Content-Length that is not a number".into()),
        Some(_) => {
            let rest = &s[start..];
            let shown = &rest[..rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len())];
            let shown = String::from_utf8_lossy(&shown[..shown.len().min(40)]);
            ValueLine::Not(format!("bad Content-Length `{}`", shown.trim()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &str) -> Vec<u8> {
        format!("Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
    }

    /// Everything the parser makes of `input`, fed in pieces of `step` bytes.
    fn events(input: &[u8], step: usize) -> Vec<Event> {
        let mut p = FrameParser::new();
        let mut out = Vec::new();
        for piece in input.chunks(step.max(1)) {
            p.push(piece);
            while let Some(e) = p.next_event() {
                out.push(e);
            }
        }
        out.extend(p.finish());
        out
    }

    fn frames(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Frame(b) => Some(String::from_utf8_lossy(b).into_owned()),
                Event::Dropped(_) => None,
            })
            .collect()
    }

    const A: &str = r#"{"jsonrpc":"2.0","id":1,"method":"infill/status"}"#;
    const B: &str = r#"{"jsonrpc":"2.0","id":2,"method":"infill/status"}"#;
    const C: &str = r#"{"jsonrpc":"2.0","method":"x","params":{"t":"Content-Length: 5\r\n\r\n"}}"#;

    #[test]
    fn stray_bytes_after_a_body_lose_nothing_after_them() {
        // The reported case: 12 stray bytes glue onto the next header line.
        let mut input = frame(A);
        input.extend_from_slice(b"garbage12345");
        for _ in 0..4 {
            input.extend(frame(B));
        }
        for step in [1, 3, 7, input.len()] {
            let ev = events(&input, step);
            assert_eq!(frames(&ev), [A, B, B, B, B], "step {step}");
            assert_eq!(
                ev[1],
                Event::Dropped("12 stray bytes before a header".into())
            );
        }
    }

    #[test]
    fn a_short_body_is_dropped_and_the_next_frame_served() {
        let mut input = format!("Content-Length: {}\r\n\r\n{A}", A.len() + 30).into_bytes();
        input.extend(frame(B));
        input.extend(frame(B));
        for step in [1, 5, input.len()] {
            let ev = events(&input, step);
            assert_eq!(frames(&ev), [B, B], "step {step}");
            assert!(matches!(&ev[0], Event::Dropped(w) if w.contains("shorter")));
        }
    }

    #[test]
    fn headers_split_across_reads_and_frames_glued_together() {
        let mut input = b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n".to_vec();
        input.extend(frame(A));
        input.extend(frame(C));
        input.extend(b"content-length:2\n\n{}");
        for step in 1..=9 {
            let ev = events(&input, step);
            assert_eq!(frames(&ev), [A, C, "{}"], "step {step}");
            assert_eq!(ev.len(), 3, "nothing reported as dropped: {ev:?}");
        }
    }

    #[test]
    fn bad_headers_are_reported_and_skipped() {
        for bad in [
            &b"Content-Length: -5\r\n\r\n{}"[..],
            b"Content-Length: 99999999999999999999999999\r\n\r\n",
            b"Content-Length: x\r\n\r\n",
            b"Content-Length 5\r\n\r\nhello",
            b"\r\n\r\n{\"jsonrpc\":\"2.0\"}\r\n\r\n",
            b"Content-Type: a\r\n\r\n",
            b"\xff\xfe\x00Content-Length: \xff\r\n\r\n",
        ] {
            let mut input = bad.to_vec();
            input.extend(frame(A));
            let ev = events(&input, 4);
            assert_eq!(frames(&ev), [A], "after {:?}", String::from_utf8_lossy(bad));
            assert!(matches!(ev[0], Event::Dropped(_)), "{ev:?}");
        }
    }

    #[test]
    fn a_huge_length_cannot_swallow_the_frames_after_it() {
        let mut input = format!("Content-Length: {}\r\n\r\n", MAX_BODY + 1).into_bytes();
        input.extend(b"{\"x\":1}");
        input.extend(frame(A));
        let ev = events(&input, 16);
        assert_eq!(frames(&ev), [A]);
        assert!(matches!(&ev[0], Event::Dropped(w) if w.contains("exceeds")));
        // And a lying length under the limit: the next header is found
        // inside the body that never comes.
        let mut input = b"Content-Length: 1000000\r\n\r\n{".to_vec();
        input.extend(frame(A));
        assert_eq!(frames(&events(&input, 16)), [A]);
    }

    #[test]
    fn garbage_without_headers_is_dropped_in_bounded_memory() {
        let mut p = FrameParser::new();
        let junk = vec![b'x'; 100 * 1024];
        for _ in 0..20 {
            p.push(&junk);
            assert_eq!(p.next_event(), None);
            assert!(p.buffered() <= MAX_HEADER + junk.len());
        }
        p.push(&frame(A));
        assert!(matches!(p.next_event(), Some(Event::Dropped(_))));
        assert_eq!(p.next_event(), Some(Event::Frame(A.as_bytes().to_vec())));
        assert_eq!(p.next_event(), None);
        assert_eq!(p.finish(), None);
    }

    #[test]
    fn a_large_body_arriving_in_pieces_is_searched_once() {
        let text = "a".repeat(4 * 1024 * 1024);
        let body = format!(r#"{{"jsonrpc":"2.0","method":"x","params":{{"t":"{text}"}}}}"#);
        let input = frame(&body);
        let start = std::time::Instant::now();
        assert_eq!(frames(&events(&input, 4096)), [body]);
        // Quadratic rescanning would take minutes here.
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
    }
}
