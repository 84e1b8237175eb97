//! One HTTP exchange with the inference server: a JSON POST whose answer
//! is a server-sent event stream (or a plain GET), read on a thread of its
//! own while the caller watches its cancel flag and deadline.
//!
//! Why a reader thread and a watcher: a blocking read cannot look at a
//! flag, and a short read timeout would end ureq's stream. Each exchange
//! has its own ureq agent (so no connection is shared, pooled or reused
//! after it), and the watcher shuts that agent down when the request is
//! cancelled, superseded, past its deadline or has the answer it needs:
//! ureq then shuts the socket down, the blocked read returns at once, and
//! the server sees the connection close and stops generating.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::engine::CancelFlag;

/// How often the watcher looks at the cancel flag: a cancelled request's
/// connection is closed within this (plus the socket shutdown).
const WATCH: Duration = Duration::from_millis(5);

/// Most bytes of an error answer kept for the message.
const ERROR_BODY_BYTES: u64 = 2048;

/// Lines of the event stream waiting for the caller; the reader blocks
/// (and so reads no further) when the caller is this far behind.
const QUEUE: usize = 256;

/// Why an exchange gave no (full) answer: a fault of the server or the
/// network, told to the user once per episode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    /// No connection (refused, no route, unknown host, TLS failure).
    Unreachable(String),
    /// No answer, or no progress in it, within `engine.timeoutMs`.
    Slow(Duration),
    /// An HTTP error status, with what the server said.
    Status(u16, String),
    /// The connection broke before the answer ended.
    Broken(String),
    /// An answer that is not what the protocol says.
    Garbage(String),
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Unreachable(why) => write!(f, "cannot reach the inference server: {why}"),
            Fault::Slow(after) => write!(
                f,
                "the inference server did not answer within {} ms (engine.timeoutMs, per wait)",
                after.as_millis()
            ),
            Fault::Status(code, said) if said.is_empty() => {
                write!(f, "the inference server answered HTTP {code}")
            }
            Fault::Status(code, said) => {
                write!(f, "the inference server answered HTTP {code}: {said}")
            }
            Fault::Broken(why) => write!(
                f,
                "the connection to the inference server broke mid-answer: {why}"
            ),
            Fault::Garbage(what) => write!(f, "the inference server's answer is garbled: {what}"),
        }
    }
}

/// How an exchange ended without its full answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ended {
    Cancelled,
    Fault(Fault),
}

/// What the caller wants after an event of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    More,
    /// The answer is complete: close the connection (the server stops).
    Stop,
}

/// The address and credentials of one server.
#[derive(Clone)]
pub(crate) struct Client {
    /// Bearer token, from the environment variable the settings name.
    /// Never logged: `Client`'s Debug leaves it out.
    api_key: Option<String>,
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("api_key", &self.api_key.as_ref().map(|_| "(set)"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Client {
    pub(crate) fn new(api_key: Option<String>, timeout: Duration) -> Client {
        Client { api_key, timeout }
    }

    fn agent(&self) -> ureq::Agent {
        let config = ureq::Agent::config_builder()
            // Error statuses are read like any answer, for what the server said.
            .http_status_as_error(false)
            // Only the configured URL is ever contacted: no proxy from
            // the environment.
            .proxy(None)
            // `engine.timeoutMs` bounds each wait (connecting, each read
            // and write), not a whole answer: a long answer streaming
            // steadily is not slow.
            .timeout_connect(Some(self.timeout))
            .timeout_per_read(Some(self.timeout))
            .timeout_per_write(Some(self.timeout))
            .max_idle_connections(0)
            .build();
        ureq::Agent::new_with_config(config)
    }

    fn with_key<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.api_key {
            Some(key) => req.header("Authorization", format!("Bearer {key}")),
            None => req,
        }
    }

    /// GET `url`, its JSON answer (for probes: health, models, tokenize).
    pub(crate) fn get_json(&self, url: &str) -> Result<serde_json::Value, Fault> {
        let agent = self.agent();
        let response = self
            .with_key(agent.get(url))
            .header("Accept", "application/json")
            .call()
            .map_err(|e| transport_fault(e, self.timeout))?;
        json_answer(response, self.timeout)
    }

    /// POST `body` to `url`, its JSON answer.
    pub(crate) fn post_json(
        &self,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, Fault> {
        let agent = self.agent();
        let response = self
            .with_key(agent.post(url))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .map_err(|e| transport_fault(e, self.timeout))?;
        json_answer(response, self.timeout)
    }

    /// POST `body` to `url` and hand each event of the answer's stream
    /// (the text after `data:`) to `on_event`, until it says `Stop`, the
    /// stream ends, `cancel` is set or `engine.timeoutMs` passes without
    /// an event. The
    /// connection is closed on return in every case.
    pub(crate) fn post_stream(
        &self,
        url: &str,
        body: &serde_json::Value,
        cancel: &CancelFlag,
        mut on_event: impl FnMut(&str) -> Result<Flow, Fault>,
    ) -> Result<(), Ended> {
        let agent = self.agent();
        let watcher = agent.clone();
        let (tx, rx) = mpsc::sync_channel::<Read_>(QUEUE);
        let request = self
            .with_key(agent.post(url))
            .header("Content-Type", "application/json")
            .header("Accept", "text/event-stream");
        let body = body.to_string();
        let timeout = self.timeout;
        let spawned = thread::Builder::new()
            .name("infill-remote".into())
            .spawn(move || read_stream(request, body, timeout, tx));
        if let Err(e) = spawned {
            return Err(Ended::Fault(Fault::Unreachable(format!(
                "cannot start a thread: {e}"
            ))));
        }
        // The last sign of progress: the request sent, or an event.
        let mut progress = Instant::now();
        let result = loop {
            if cancel.is_cancelled() {
                break Err(Ended::Cancelled);
            }
            if progress.elapsed() > self.timeout {
                break Err(Ended::Fault(Fault::Slow(self.timeout)));
            }
            match rx.recv_timeout(WATCH) {
                Ok(Read_::Event(data)) => {
                    progress = Instant::now();
                    match on_event(&data) {
                        Ok(Flow::More) => {}
                        Ok(Flow::Stop) => break Ok(()),
                        Err(fault) => break Err(Ended::Fault(fault)),
                    }
                }
                Ok(Read_::Failed(fault)) => break Err(Ended::Fault(fault)),
                Ok(Read_::End) => break Ok(()),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    break Err(Ended::Fault(Fault::Broken(
                        "the reader stopped without a word".into(),
                    )))
                }
            }
        };
        // Closes the socket now, also while the reader is blocked on it.
        watcher.shutdown();
        result
    }
}

/// What the reader thread passes on.
enum Read_ {
    Event(String),
    /// The stream ended where the server ended it.
    End,
    Failed(Fault),
}

fn read_stream(
    request: ureq::RequestBuilder<ureq::typestate::WithBody>,
    body: String,
    timeout: Duration,
    tx: mpsc::SyncSender<Read_>,
) {
    let response = match request.send(body) {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.send(Read_::Failed(transport_fault(e, timeout)));
            return;
        }
    };
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        let _ = tx.send(Read_::Failed(status_fault(status, response)));
        return;
    }
    let reader = BufReader::new(response.into_body().into_reader());
    for line in reader.split(b'\n') {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                let _ = tx.send(Read_::Failed(read_fault(&e, timeout)));
                return;
            }
        };
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_end_matches('\r');
        // Server-sent events: `data:` lines carry the payload; comments
        // (`:`), `event:` and blank separators carry none for us.
        let Some(data) = line.strip_prefix("data:") else {
            if let Some(err) = line.strip_prefix("error:") {
                let _ = tx.send(Read_::Failed(Fault::Status(500, err.trim().to_string())));
                return;
            }
            continue;
        };
        // A send fails once the caller stopped listening: stop reading.
        if tx.send(Read_::Event(data.trim().to_string())).is_err() {
            return;
        }
    }
    let _ = tx.send(Read_::End);
}

fn json_answer(
    response: ureq::http::Response<ureq::Body>,
    timeout: Duration,
) -> Result<serde_json::Value, Fault> {
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(status_fault(status, response));
    }
    let mut text = String::new();
    response
        .into_body()
        .into_reader()
        .take(64 << 20)
        .read_to_string(&mut text)
        .map_err(|e| read_fault(&e, timeout))?;
    serde_json::from_str(&text).map_err(|e| Fault::Garbage(format!("not JSON ({e})")))
}

/// An error status with the server's own words: OpenAI-style servers say
/// `{"error": {"message": ...}}`, llama-server `{"error": {"message"...}}`
/// too, others plain text.
fn status_fault(status: u16, response: ureq::http::Response<ureq::Body>) -> Fault {
    let mut text = String::new();
    let _ = response
        .into_body()
        .into_reader()
        .take(ERROR_BODY_BYTES)
        .read_to_string(&mut text);
    let said = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| {
            let e = v.get("error")?;
            e.get("message")
                .and_then(|m| m.as_str())
                .or_else(|| e.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| text.trim().chars().take(200).collect());
    Fault::Status(status, said)
}

fn transport_fault(e: ureq::Error, timeout: Duration) -> Fault {
    match e {
        ureq::Error::Timeout(_) => Fault::Slow(timeout),
        // Before any answer, a connection closed or reset means nobody
        // serves there (a server going down, a port with no server).
        ureq::Error::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            Fault::Unreachable(io.to_string())
        }
        ureq::Error::Io(io) => read_fault(&io, timeout),
        ureq::Error::HostNotFound => Fault::Unreachable("host not found".into()),
        ureq::Error::ConnectionFailed => Fault::Unreachable("connection failed".into()),
        ureq::Error::Protocol(p) => Fault::Garbage(format!("not HTTP ({p})")),
        other => Fault::Unreachable(other.to_string()),
    }
}

fn read_fault(e: &std::io::Error, timeout: Duration) -> Fault {
    use std::io::ErrorKind::*;
    // ureq's own timeouts reach a body reader as an I/O error around it.
    let ureq_timeout = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<ureq::Error>())
        .is_some_and(|inner| matches!(inner, ureq::Error::Timeout(_)));
    if ureq_timeout {
        return Fault::Slow(timeout);
    }
    match e.kind() {
        ConnectionRefused | HostUnreachable | NetworkUnreachable | NetworkDown
        | AddrNotAvailable => Fault::Unreachable(e.to_string()),
        TimedOut | WouldBlock => Fault::Slow(timeout),
        _ => Fault::Broken(e.to_string()),
    }
}

/// `base` joined with `path` (`base` has no trailing slash: the settings
/// strip it).
pub(crate) fn endpoint(base: &str, path: &str) -> String {
    format!("{base}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    /// A server that sends one event, then holds the stream open; returns
    /// its URL and when it saw the client close.
    fn holding_server() -> (String, mpsc::Receiver<Instant>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            // Headers, then the body (a few bytes of JSON, read below).
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            conn.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n8\r\ndata: 1\n\r\n",
            )
            .unwrap();
            let mut buf = [0u8; 64];
            while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
            let _ = tx.send(Instant::now());
        });
        (url, rx)
    }

    #[test]
    fn a_cancelled_stream_closes_its_connection_at_once() {
        let (url, closed) = holding_server();
        let client = Client::new(None, Duration::from_secs(10));
        let cancel = CancelFlag::default();
        let flag = cancel.clone();
        let mut events = Vec::new();
        let mut cancelled_at = None;
        let result = client.post_stream(&url, &serde_json::json!({}), &cancel, |data| {
            events.push(data.to_string());
            // Cancelled from elsewhere while the stream is held open.
            let flag = flag.clone();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(50));
                flag.cancel();
            });
            cancelled_at = Some(Instant::now() + Duration::from_millis(50));
            Ok(Flow::More)
        });
        assert_eq!(result, Err(Ended::Cancelled));
        assert_eq!(events, vec!["1"]);
        let closed = closed.recv_timeout(Duration::from_secs(5)).unwrap();
        let took = closed.saturating_duration_since(cancelled_at.unwrap());
        assert!(took < Duration::from_millis(100), "closed after {took:?}");
    }

    #[test]
    fn a_held_stream_is_slow_after_the_timeout_and_no_server_is_unreachable() {
        let (url, _closed) = holding_server();
        let client = Client::new(None, Duration::from_millis(200));
        let result =
            client.post_stream(&url, &serde_json::json!({}), &CancelFlag::default(), |_| {
                Ok(Flow::More)
            });
        assert_eq!(
            result,
            Err(Ended::Fault(Fault::Slow(Duration::from_millis(200))))
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let result = client.post_stream(
            &format!("http://127.0.0.1:{port}"),
            &serde_json::json!({}),
            &CancelFlag::default(),
            |_| Ok(Flow::More),
        );
        assert!(
            matches!(result, Err(Ended::Fault(Fault::Unreachable(_)))),
            "{result:?}"
        );
    }
}
