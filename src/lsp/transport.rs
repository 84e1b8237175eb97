//! A guard between the client's byte stream and tower-lsp.
//!
//! Why by hand: tower-lsp-server's reader stops serving for good after the
//! first message it cannot decode (invalid UTF-8, malformed JSON, a JSON
//! value that is not a JSON-RPC message, an unknown charset): its read loop
//! ends when the framed stream reports an error. An editor must never lose
//! its server to one bad message, so frames are read and checked here first:
//! invalid UTF-8 is replaced (U+FFFD, as editors decode such files), and a
//! message that is still unusable is answered here with the proper JSON-RPC
//! error and never reaches tower-lsp. Good frames pass through re-framed
//! with a plain `Content-Length` header. Framing itself, and finding the
//! next frame after garbage, is `framing`'s job.

use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::framing::{Event, FrameParser};

/// What to do with one frame from the client.
#[derive(Debug, PartialEq)]
pub enum Checked {
    /// Forward this body to the server.
    Forward(Vec<u8>),
    /// Answer the client with this error response instead.
    Reject(Value),
}

/// Checks one message body.
pub fn check_body(body: &[u8]) -> Checked {
    // A JSON string may hold a lone UTF-16 surrogate escape (`\ud83d`),
    // which JavaScript clients send when a string was cut inside a pair;
    // serde_json refuses it, and losing a `didChange` would put the
    // document out of step. Such escapes become U+FFFD, as invalid UTF-8
    // does.
    let mut text = String::from_utf8_lossy(body);
    let mut parsed = serde_json::from_str::<Value>(&text);
    if parsed.is_err() {
        if let Some(fixed) = replace_lone_surrogates(&text) {
            parsed = serde_json::from_str(&fixed);
            text = std::borrow::Cow::Owned(fixed);
        }
    }
    let value: Value = match parsed {
        Ok(v) => v,
        Err(e) => {
            return Checked::Reject(error_response(
                Value::Null,
                -32700,
                &format!("parse error: {e}"),
            ))
        }
    };
    let id = value.get("id").cloned().unwrap_or(Value::Null);
    let valid_id = matches!(id, Value::Null | Value::Number(_) | Value::String(_));
    let is_request = value.get("method").is_some_and(Value::is_string)
        && value
            .get("params")
            .is_none_or(|p| p.is_object() || p.is_array() || p.is_null());
    let is_response = value.get("id").is_some()
        && (value.get("result").is_some() || value.get("error").is_some());
    if value.get("jsonrpc") != Some(&json!("2.0")) || !valid_id || !(is_request || is_response) {
        let id = if valid_id { id } else { Value::Null };
        return Checked::Reject(error_response(
            id,
            -32600,
            "invalid request: not a JSON-RPC 2.0 message",
        ));
    }
    match text {
        std::borrow::Cow::Borrowed(_) => Checked::Forward(body.to_vec()),
        std::borrow::Cow::Owned(fixed) => Checked::Forward(fixed.into_bytes()),
    }
}

/// `text` with every `\uXXXX` escape of a lone surrogate replaced by
/// `\ufffd`; `None` where there is none.
fn replace_lone_surrogates(text: &str) -> Option<String> {
    fn escape_at(b: &[u8], i: usize) -> Option<u16> {
        let hex = b.get(i + 2..i + 6)?;
        (b[i] == b'\\' && b[i + 1] == b'u')
            .then(|| u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok())
            .flatten()
    }
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let (mut i, mut copied) = (0, 0);
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        match escape_at(b, i) {
            Some(0xD800..=0xDBFF)
                if escape_at(b, i + 6).is_some_and(|low| (0xDC00..=0xDFFF).contains(&low)) =>
            {
                i += 12;
            }
            Some(0xD800..=0xDFFF) => {
                out.push_str(&text[copied..i]);
                out.push_str("\\ufffd");
                i += 6;
                copied = i;
                changed = true;
            }
            // Any other escape, `\\` included, is two characters or more:
            // step over its backslash and the next byte.
            _ => i += 2,
        }
    }
    out.push_str(&text[copied..]);
    changed.then_some(out)
}

fn error_response(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// Frames read from an async stream (cancel-safe: a frame is never half
/// taken when the future is dropped, as `select!` does).
pub struct FrameReader<R> {
    inner: R,
    parser: FrameParser,
    chunk: Vec<u8>,
    ended: bool,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R) -> FrameReader<R> {
        FrameReader {
            inner,
            parser: FrameParser::new(),
            chunk: vec![0; 64 * 1024],
            ended: false,
        }
    }

    /// The next frame or dropped stretch; `Ok(None)` at the end of input.
    pub async fn next(&mut self) -> std::io::Result<Option<Event>> {
        loop {
            if let Some(event) = self.parser.next_event() {
                return Ok(Some(event));
            }
            if self.ended {
                return Ok(None);
            }
            let n = self.inner.read(&mut self.chunk).await?;
            if n == 0 {
                self.ended = true;
                return Ok(self.parser.finish());
            }
            self.parser.push(&self.chunk[..n]);
        }
    }
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// Copies checked frames from `client` to `server`; rejections go to `replies`.
pub async fn relay_input<R, W>(client: R, mut server: W, replies: mpsc::UnboundedSender<Vec<u8>>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = FrameReader::new(client);
    loop {
        let body = match reader.next().await {
            Ok(None) | Err(_) => break,
            Ok(Some(Event::Dropped(why))) => {
                tracing::warn!("dropping a malformed frame: {why}");
                let resp = error_response(Value::Null, -32700, &format!("parse error: {why}"));
                let _ = replies.send(frame(resp.to_string().as_bytes()));
                continue;
            }
            Ok(Some(Event::Frame(body))) => body,
        };
        match check_body(&body) {
            Checked::Forward(body) => {
                if server.write_all(&frame(&body)).await.is_err() || server.flush().await.is_err() {
                    break;
                }
            }
            Checked::Reject(resp) => {
                tracing::warn!("rejected a malformed message: {}", resp["error"]["message"]);
                let _ = replies.send(frame(resp.to_string().as_bytes()));
            }
        }
    }
    // End of input: closing the pipe lets the server wind down.
    let _ = server.shutdown().await;
}

/// Copies whole frames from the server, and the relay's own replies, to
/// the client, never interleaving two frames.
pub async fn merge_output<R, W>(
    server: R,
    mut client: W,
    mut replies: mpsc::UnboundedReceiver<Vec<u8>>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = FrameReader::new(server);
    let mut replies_open = true;
    loop {
        let out = tokio::select! {
            f = reader.next() => match f {
                Ok(Some(Event::Frame(body))) => frame(&body),
                Ok(Some(Event::Dropped(_))) => continue,
                Ok(None) | Err(_) => break,
            },
            r = replies.recv(), if replies_open => match r {
                Some(bytes) => bytes,
                None => { replies_open = false; continue; }
            },
        };
        if client.write_all(&out).await.is_err() || client.flush().await.is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repairs_invalid_utf8_and_rejects_non_messages() {
        let mut body = br#"{"jsonrpc":"2.0","method":"m","params":{"t":""#.to_vec();
        body.push(0xff);
        body.extend_from_slice(br#""}}"#);
        match check_body(&body) {
            Checked::Forward(b) => assert!(String::from_utf8(b).unwrap().contains('\u{fffd}')),
            other => panic!("{other:?}"),
        }
        let Checked::Reject(r) = check_body(b"{not json") else {
            panic!()
        };
        assert_eq!(r["error"]["code"], -32700);
        let Checked::Reject(r) = check_body(br#"{"jsonrpc":"2.0","id":7}"#) else {
            panic!()
        };
        assert_eq!(
            (r["id"].clone(), r["error"]["code"].clone()),
            (json!(7), json!(-32600))
        );
        let Checked::Reject(r) = check_body(br#"[1,2]"#) else {
            panic!()
        };
        assert_eq!(r["error"]["code"], -32600);
        // Lone surrogate escapes become U+FFFD; pairs and `\\u` stay.
        let body = br#"{"jsonrpc":"2.0","method":"m","params":{"t":"a\ud83d b\udc00 \ud83d\ude00 \\ud83d"}}"#;
        let b = match check_body(body) {
            Checked::Forward(b) => b,
            other => panic!("{other:?}"),
        };
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["params"]["t"], "a\u{fffd} b\u{fffd} \u{1f600} \\ud83d");
        let ok = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#;
        assert_eq!(check_body(ok), Checked::Forward(ok.to_vec()));
    }
}
