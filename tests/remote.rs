//! Remote engines end to end: the real `infill serve` against llama.cpp's
//! real `llama-server` (built by `scripts/build-llama-server`, which
//! `scripts/setup` runs) serving the default model on a loopback port,
//! through both the `llama-server` and the `openai` kinds; faults injected
//! by a small proxy this test runs in front of it, which can also play a
//! server of text prompts only (no token ids, no `/tokenize`). No mocks of
//! the model.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{inline_params, model_lock, model_path, Server};
use serde_json::{json, Value};

/// llama.cpp's server: `INFILL_LLAMA_SERVER`, else where
/// `scripts/build-llama-server` puts it. Missing, the test fails: a
/// remote engine untested is not a remote engine tested.
fn llama_server_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("INFILL_LLAMA_SERVER") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("INFILL_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/infill")))
        .expect("HOME or INFILL_CACHE is set");
    let bin = cache.join("llama-server-avx2/build/bin/llama-server");
    assert!(
        bin.exists(),
        "llama-server is missing at {}: run `scripts/build-llama-server` (scripts/setup does), or set INFILL_LLAMA_SERVER to a llama-server binary",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A real llama-server with the default model, killed when dropped.
struct LlamaServer {
    child: Child,
    port: u16,
}

impl LlamaServer {
    fn start() -> LlamaServer {
        let port = free_port();
        let child = Command::new(llama_server_binary())
            .arg("-m")
            .arg(model_path())
            .args([
                "-t",
                "2",
                "-tb",
                "2",
                "-c",
                "4096",
                "-np",
                "1",
                "--no-webui",
            ])
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start llama-server");
        let mut server = LlamaServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let up = ureq::get(&format!("{}/health", server.url()))
                .call()
                .is_ok_and(|r| r.status() == 200);
            if up {
                // One generation first: the weights are mapped lazily, and
                // the first prompt on a cold, busy machine can take seconds.
                let warm = ureq::post(&format!("{}/completion", server.url()))
                    .header("Content-Type", "application/json")
                    .send(json!({"prompt": "def f():", "n_predict": 1}).to_string());
                assert!(
                    warm.is_ok(),
                    "llama-server's first completion failed: {warm:?}"
                );
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("llama-server exited at start: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "llama-server did not start within 120 s"
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the proxy does with the next connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forward,
    /// Not listening: connections are refused.
    Down,
    /// Reads the request and never answers (until the client closes).
    Hold,
    /// Answers HTTP 500.
    Status500,
    /// Answers an event stream of invalid JSON.
    Garbage,
    /// Forwards, then breaks the connection after the first event.
    ResetMidStream,
    /// A server of text prompts only (as Ollama or TGI): a prompt of token
    /// ids is refused with HTTP 400, `/tokenize` is not found (404); the
    /// rest is forwarded.
    TextOnly,
}

/// One connection the proxy took.
#[derive(Debug, Clone)]
struct Seen {
    request: String,
    /// When the client closed its side (the proxy read its end).
    closed: Option<Instant>,
}

/// A loopback proxy in front of llama-server that forwards or misbehaves.
struct Proxy {
    port: u16,
    mode: Arc<Mutex<Mode>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        let port = free_port();
        let proxy = Proxy {
            port,
            mode: Arc::new(Mutex::new(Mode::Forward)),
            seen: Arc::new(Mutex::new(Vec::new())),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (mode, seen, stop) = (proxy.mode.clone(), proxy.seen.clone(), proxy.stop.clone());
        thread::spawn(move || {
            let mut listener: Option<TcpListener> = None;
            while !stop.load(Ordering::Relaxed) {
                let now = *mode.lock().unwrap();
                if now == Mode::Down {
                    listener = None;
                    thread::sleep(Duration::from_millis(5));
                    continue;
                }
                if listener.is_none() {
                    let l = TcpListener::bind(("127.0.0.1", port)).expect("proxy bind");
                    l.set_nonblocking(true).expect("nonblocking");
                    listener = Some(l);
                }
                match listener.as_ref().unwrap().accept() {
                    Ok((conn, _)) => {
                        conn.set_nonblocking(false).expect("blocking");
                        let seen = seen.clone();
                        thread::spawn(move || handle(conn, now, upstream, seen));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        proxy
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
        // The accept loop takes the new mode within a few ms.
        thread::sleep(Duration::from_millis(30));
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Reads one HTTP request (headers and a Content-Length body).
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<String> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(head + &String::from_utf8_lossy(&body))
}

fn handle(conn: TcpStream, mode: Mode, upstream: u16, seen: Arc<Mutex<Vec<Seen>>>) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let Some(request) = read_request(&mut reader) else {
        return;
    };
    let index = {
        let mut s = seen.lock().unwrap();
        s.push(Seen {
            request: request.clone(),
            closed: None,
        });
        s.len() - 1
    };
    // Watches for the client's close: the moment the engine let go.
    let watcher = {
        let seen = seen.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 256];
            while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
            seen.lock().unwrap()[index].closed = Some(Instant::now());
        })
    };
    let mut out = conn;
    let mode = match mode {
        Mode::TextOnly if request.starts_with("POST /tokenize") => {
            let body = r#"{"detail":"Not Found"}"#;
            let _ = write!(
                out,
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = out.shutdown(Shutdown::Both);
            return;
        }
        Mode::TextOnly if token_prompt(&request) => {
            let body = r#"{"error":{"message":"[{'type': 'string_type', 'loc': ('body', 'prompt'), 'msg': 'Input should be a valid string'}]","type":"BadRequestError","code":400}}"#;
            let _ = write!(
                out,
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = out.shutdown(Shutdown::Both);
            return;
        }
        Mode::TextOnly => Mode::Forward,
        other => other,
    };
    match mode {
        Mode::Forward | Mode::ResetMidStream | Mode::TextOnly => {
            let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)) else {
                return;
            };
            // One request per connection: the engine opens a new one each time.
            let request = request.replacen("\r\n", "\r\nConnection: close\r\n", 1);
            if up.write_all(request.as_bytes()).is_err() {
                return;
            }
            let mut buf = [0u8; 4096];
            let mut sent = Vec::new();
            loop {
                let n = match up.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if out.write_all(&buf[..n]).is_err() {
                    break;
                }
                sent.extend_from_slice(&buf[..n]);
                if mode == Mode::ResetMidStream
                    && String::from_utf8_lossy(&sent).contains("data: ")
                    && String::from_utf8_lossy(&sent).matches("\n\n").count() >= 1
                {
                    break;
                }
            }
            let _ = out.shutdown(Shutdown::Both);
            let _ = up.shutdown(Shutdown::Both);
        }
        Mode::Hold | Mode::Down => {
            let _ = watcher.join();
        }
        Mode::Status500 => {
            let body = r#"{"error":{"code":500,"message":"injected failure"}}"#;
            let _ = write!(
                out,
                "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = out.shutdown(Shutdown::Both);
        }
        Mode::Garbage => {
            let body = "data: {\"content\": \"x\", this is not json\n\n";
            let _ = write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = out.shutdown(Shutdown::Both);
        }
    }
}

/// The request's JSON body, if any.
fn body_of(request: &str) -> Option<Value> {
    let (_, body) = request.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}

/// Whether the request sends its prompt as token ids.
fn token_prompt(request: &str) -> bool {
    body_of(request).is_some_and(|b| b["prompt"].is_array())
}

fn remote_server(kind: &str, url: &str, extra: Value) -> Server {
    remote_server_with_env(kind, url, extra, &[])
}

fn remote_server_with_env(kind: &str, url: &str, extra: Value, env: &[(&str, &str)]) -> Server {
    remote_server_with_options(kind, url, extra, json!({}), env)
}

/// `infill serve` with a remote engine (`extra`: more `engine` settings)
/// and other settings (`options`).
fn remote_server_with_options(
    kind: &str,
    url: &str,
    extra: Value,
    options: Value,
    env: &[(&str, &str)],
) -> Server {
    let mut engine = json!({"kind": kind, "url": url});
    if let Some(fields) = extra.as_object() {
        for (k, v) in fields {
            engine[k] = v.clone();
        }
    }
    let mut options = options;
    options["engine"] = engine;
    let mut s = Server::start_with_env(&[], &[], env);
    s.request_ok(
        "initialize",
        json!({"processId": null, "rootUri": null, "capabilities": {},
               "initializationOptions": options}),
    );
    s.notify("initialized", json!({}));
    s
}

fn ready(s: &mut Server) -> Value {
    let status = s.wait_model();
    assert_eq!(status["model"], "ready", "{status}");
    status
}

fn calls(code: &str, call: &str) -> bool {
    let squash = |s: &str| s.replace(' ', "");
    squash(code).contains(&squash(call))
}

/// The completion cases of the end-to-end suite, as the local engine
/// passes them.
const CASES: &[(&str, &str, &str, u32, u32)] = &[
    (
        "file:///work/fib.py",
        "python",
        "def fibonacci(n):\n    if n < 2:\n        return n\n    return \n",
        3,
        11,
    ),
    (
        "file:///work/half.py",
        "python",
        "def fibonacci(n):\n    if n < 2:\n        return n\n    return fib\n",
        3,
        14,
    ),
    (
        "file:///work/Geometry.java",
        "java",
        "public class Geometry {\n    public static int area(int width, int height) {\n        int result = width * height;\n        \n    }\n}\n",
        3,
        8,
    ),
    (
        "file:///work/area.py",
        "python",
        "import math\n\n\ndef circle_area(radius):\n    return \n",
        4,
        11,
    ),
    (
        "file:///work/small.py",
        "python",
        "def add(a, b):\n    return ",
        1,
        11,
    ),
];

fn answers(s: &mut Server) -> Vec<String> {
    CASES
        .iter()
        .map(|(uri, language, text, line, ch)| {
            s.open(uri, language, text);
            s.inline(uri, *line, *ch).map(|a| a.0).unwrap_or_default()
        })
        .collect()
}

fn check_cases(kind: &str, got: &[String]) {
    assert!(calls(&got[0], "fibonacci(n - 1)"), "{kind}: {got:?}");
    assert!(got[1].starts_with("onacci("), "{kind}: {got:?}");
    assert!(
        got[2].trim_start().starts_with("return result;"),
        "{kind}: {got:?}"
    );
    assert!(calls(&got[3], "math.pi"), "{kind}: {got:?}");
    assert!(
        got[4].contains('a') && got[4].contains('b'),
        "{kind}: {got:?}"
    );
}

#[test]
fn both_remote_kinds_pass_the_completion_cases_with_the_local_answers() {
    let _g = model_lock();
    let llama = LlamaServer::start();
    let local = {
        let (mut s, _) = Server::initialized(&[], json!({}), Value::Null);
        ready(&mut s);
        let got = answers(&mut s);
        assert!(s.shutdown().success());
        got
    };
    check_cases("local", &local);
    // The openai kind once more through a proxy that plays a server of
    // text prompts only: the first prompt of token ids is refused, and
    // infill sends the same prompt as text from then on, special tokens
    // written out; llama-server parses them back into the same tokens.
    let text_only = Proxy::start(llama.port);
    text_only.set(Mode::TextOnly);
    for (kind, url, text) in [
        ("llama-server", llama.url(), false),
        ("openai", llama.url(), false),
        ("openai", text_only.url(), true),
    ] {
        // Patient: this machine's two cores are shared, and an empty
        // answer after a timeout would fail the comparison for nothing.
        let mut s = remote_server(kind, &url, json!({"timeoutMs": 60000}));
        let status = ready(&mut s);
        let detail = status["detail"].as_str().unwrap_or("").to_string();
        assert!(detail.contains(kind), "{status}");
        // llama-server has `/tokenize`: both kinds checked the
        // vocabulary; the text-only server has none.
        assert_eq!(detail.contains("vocabulary unchecked"), text, "{status}");
        let got = answers(&mut s);
        check_cases(kind, &got);
        // Greedy on the same prompt: the same answers as in process.
        let equal = got.iter().zip(&local).filter(|(a, b)| a == b).count();
        eprintln!(
            "{kind}{}: {equal} of {} answers equal the local engine's",
            if text { " (text prompts)" } else { "" },
            local.len()
        );
        assert_eq!(got, local, "{kind} (text prompts: {text}) against local");
        let status = s.request_ok("infill/status", json!({}));
        let last = &status["lastRequest"];
        assert!(last["promptTokens"].as_u64().unwrap_or(0) > 5, "{status}");
        let detail = status["detail"].as_str().unwrap_or("");
        assert_eq!(detail.contains("prompts sent as text"), text, "{status}");
        assert!(s.shutdown().success());
    }
    // One prompt of token ids (refused), every later one as text, with
    // the template's markers written out.
    let completions: Vec<Seen> = text_only
        .seen()
        .into_iter()
        .filter(|c| c.request.starts_with("POST /v1/completions"))
        .collect();
    assert!(completions.len() > CASES.len(), "{completions:?}");
    assert!(token_prompt(&completions[0].request));
    for c in &completions[1..] {
        let body = body_of(&c.request).unwrap_or_default();
        let prompt = body["prompt"].as_str().unwrap_or_default();
        assert!(prompt.contains("<|fim_middle|>"), "{body}");
        assert!(!prompt.contains('\u{fffd}'), "{body}");
    }
}

/// The GGUF of another model than the default one (another vocabulary):
/// SmolLM2-135M, which `scripts/setup` fetches. Missing, the test fails.
fn other_model_path() -> PathBuf {
    let file = infill::models::model_file_name(Some("smollm2-135m"))
        .expect("smollm2-135m is in models/manifest.json");
    let path = infill::models::cache_dir()
        .expect("HOME or XDG_CACHE_HOME is set")
        .join(file);
    assert!(
        path.exists(),
        "the second model is missing at {}: run `scripts/fetch-model smollm2-135m` (scripts/setup does)",
        path.display()
    );
    path
}

#[test]
fn a_server_running_another_model_than_model_path_is_told_once_and_never_asked() {
    let _g = model_lock();
    let llama = LlamaServer::start();
    let other = other_model_path();
    let other = other.to_string_lossy();
    // Both kinds check the vocabulary: llama-server's `/tokenize`, and the
    // openai kind's (llama-server serves it, as vLLM does).
    for kind in ["llama-server", "openai"] {
        let proxy = Proxy::start(llama.port);
        let mut s = remote_server_with_options(
            kind,
            &proxy.url(),
            json!({}),
            json!({"model": {"path": other}}),
            &[],
        );
        let status = s.wait_model();
        assert_eq!(status["model"], "failed", "{kind}: {status}");
        let detail = status["detail"].as_str().unwrap_or("");
        assert!(detail.contains("misconfigured"), "{kind}: {status}");
        assert!(detail.contains("tokenizes differently"), "{kind}: {status}");
        assert!(detail.contains("smollm2"), "{kind}: {status}");
        let uri = "file:///work/small.py";
        let mut expected = "def add(a, b):\n    return ".to_string();
        s.open(uri, "python", &expected);
        let probes = proxy.seen().len();
        for version in 2..6 {
            expected = format!("# edit {version}\ndef add(a, b):\n    return ");
            s.notify(
                "textDocument/didChange",
                json!({"textDocument": {"uri": uri, "version": version},
                       "contentChanges": [{"text": expected}]}),
            );
            let answer = s.inline(uri, 2, 11);
            assert!(
                answer.as_ref().is_none_or(|a| a.0.is_empty()),
                "{kind}: {answer:?}"
            );
            thread::sleep(Duration::from_millis(300));
        }
        assert_eq!(s.document_text(uri), expected);
        // No completion reached the server: the probe's exchanges only.
        let seen = proxy.seen();
        assert_eq!(seen.len(), probes, "{kind}: {seen:?}");
        assert!(
            seen.iter().all(|c| !c.request.contains("completion")),
            "{kind}: {seen:?}"
        );
        let messages: Vec<String> = s
            .drain_notifications("window/showMessage")
            .iter()
            .filter_map(|m| m["params"]["message"].as_str().map(str::to_string))
            .filter(|m| m.contains("tokenizes differently"))
            .collect();
        assert_eq!(messages.len(), 1, "{kind}: {messages:?}");
        let status = s.request_ok("infill/status", json!({}));
        assert_eq!(status["model"], "failed", "{kind}: {status}");
        assert!(s.shutdown().success());
    }
}

/// Requests at the cursor until one is answered with text (a backoff may
/// answer the first ones empty at once), at most `within`.
fn answered_within(s: &mut Server, uri: &str, line: u32, ch: u32, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        if let Some((text, _)) = s.inline(uri, line, ch) {
            if !text.is_empty() {
                return text;
            }
        }
        assert!(Instant::now() < deadline, "no answer within {within:?}");
        thread::sleep(Duration::from_millis(200));
    }
}

fn fault_messages(s: &mut Server) -> Vec<String> {
    s.drain_notifications("window/showMessage")
        .iter()
        .filter_map(|m| m["params"]["message"].as_str().map(str::to_string))
        .filter(|m| m.contains("inference server"))
        .collect()
}

#[test]
fn faults_are_told_once_each_and_the_server_and_documents_stay_whole() {
    let _g = model_lock();
    let llama = LlamaServer::start();
    let proxy = Proxy::start(llama.port);
    let key = "sk-test-0123456789";
    let mut s = remote_server_with_env(
        "llama-server",
        &proxy.url(),
        json!({"timeoutMs": 3000, "apiKeyEnv": "INFILL_TEST_KEY"}),
        &[("INFILL_TEST_KEY", key)],
    );
    ready(&mut s);
    let uri = "file:///work/small.py";
    let text = "def add(a, b):\n    return ";
    s.open(uri, "python", text);
    let first = answered_within(&mut s, uri, 1, 11, Duration::from_secs(60));
    assert!(first.contains('a'), "{first:?}");
    // A first answer slower than `timeoutMs` on a busy machine is an
    // episode of its own, over by now: the injected faults start afresh.
    let _ = fault_messages(&mut s);
    // The key goes to the configured server, and nowhere in the status.
    assert!(proxy
        .seen()
        .iter()
        .all(|c| c.request.contains(&format!("Bearer {key}"))));

    let mut version = 1;
    for (mode, said) in [
        (Mode::Status500, "HTTP 500"),
        (Mode::Garbage, "garbled"),
        (Mode::ResetMidStream, "broke"),
        (Mode::Hold, "did not answer within"),
        (Mode::Down, "cannot reach"),
    ] {
        proxy.set(mode);
        // Several keystrokes into the fault: each answered (empty), the
        // document kept exact, one message for the episode.
        let mut expected = text.to_string();
        for _ in 0..4 {
            version += 1;
            // A text never asked about: no recent answer serves it.
            expected = format!("# edit {version}\ndef add(a, b):\n    return ");
            s.notify(
                "textDocument/didChange",
                json!({"textDocument": {"uri": uri, "version": version},
                       "contentChanges": [{"text": expected}]}),
            );
            let started = Instant::now();
            let answer = s.inline(uri, 2, 11);
            assert!(
                answer.as_ref().is_none_or(|a| a.0.is_empty()),
                "{mode:?}: {answer:?}"
            );
            // At worst `engine.timeoutMs` (a server that holds the request).
            assert!(
                started.elapsed() < Duration::from_millis(4500),
                "{mode:?}: the editor waited {:?}",
                started.elapsed()
            );
            thread::sleep(Duration::from_millis(300));
        }
        assert_eq!(s.document_text(uri), expected);
        let status = s.request_ok("infill/status", json!({}));
        assert_eq!(status["model"], "failed", "{mode:?}: {status}");
        assert!(!status.to_string().contains(key), "{status}");
        let messages = fault_messages(&mut s);
        assert_eq!(messages.len(), 1, "{mode:?}: {messages:?}");
        assert!(messages[0].contains(said), "{mode:?}: {messages:?}");
        assert!(!messages[0].contains(key));
        // Back up: answers come again (after the backoff), no message.
        proxy.set(Mode::Forward);
        if mode != Mode::ResetMidStream {
            // The background probe met the fault too (a broken stream
            // spares the probe's endpoints): it sees the end of it.
            ready_without_requests(&mut s, Duration::from_secs(15));
        }
        let back = answered_within(&mut s, uri, 2, 11, Duration::from_secs(20));
        assert!(!back.is_empty());
        assert_eq!(s.request_ok("infill/status", json!({}))["model"], "ready");
        assert!(fault_messages(&mut s).is_empty());
    }
    assert!(s.shutdown().success());
}

#[test]
fn a_server_down_at_start_and_a_wrong_model_name_are_told_once() {
    let _g = model_lock();
    let llama = LlamaServer::start();
    let proxy = Proxy::start(llama.port);
    proxy.set(Mode::Down);
    let mut s = remote_server("llama-server", &proxy.url(), json!({}));
    let status = s.wait_model();
    assert_eq!(status["model"], "failed", "{status}");
    let uri = "file:///work/small.py";
    s.open(uri, "python", "def add(a, b):\n    return ");
    for _ in 0..3 {
        assert!(s.inline(uri, 1, 11).is_none_or(|a| a.0.is_empty()));
        thread::sleep(Duration::from_millis(300));
    }
    let messages: Vec<Value> = s.drain_notifications("window/showMessage");
    assert_eq!(messages.len(), 1, "{messages:?}");
    proxy.set(Mode::Forward);
    // Ready again without a keystroke (the background probe).
    ready_without_requests(&mut s, Duration::from_secs(10));
    let answer = answered_within(&mut s, uri, 1, 11, Duration::from_secs(20));
    assert!(answer.contains('a'), "{answer:?}");
    assert!(s.shutdown().success());

    let mut s = remote_server("openai", &llama.url(), json!({"model": "no-such-model"}));
    let status = s.wait_model();
    assert_eq!(status["model"], "failed", "{status}");
    assert!(
        status["detail"]
            .as_str()
            .unwrap_or("")
            .contains("no-such-model"),
        "{status}"
    );
    s.open(uri, "python", "def add(a, b):\n    return ");
    for _ in 0..3 {
        assert!(s.inline(uri, 1, 11).is_none_or(|a| a.0.is_empty()));
    }
    let messages: Vec<Value> = s.drain_notifications("window/showMessage");
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(s.shutdown().success());
}

/// Waits, sending no request, until `infill/status` says `ready`.
fn ready_without_requests(s: &mut Server, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let status = s.request_ok("infill/status", json!({}));
        if status["model"] == "ready" {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "not ready within {within:?} without requests: {status}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

fn logged(s: &mut Server, needle: &str) -> usize {
    s.drain_notifications("window/logMessage")
        .iter()
        .filter(|m| {
            m["params"]["message"]
                .as_str()
                .unwrap_or("")
                .contains(needle)
        })
        .count()
}

#[test]
fn a_fault_episode_is_probed_in_the_background_until_the_engine_goes() {
    let _g = model_lock();
    let llama = LlamaServer::start();
    let proxy = Proxy::start(llama.port);
    proxy.set(Mode::Status500);
    let mut s = remote_server("llama-server", &proxy.url(), json!({"timeoutMs": 3000}));
    assert_eq!(s.wait_model()["model"], "failed");
    // No request: one thread probes on the backoff's schedule (250 ms,
    // doubling to 4 s), each probe one connection (its first call fails).
    let start = proxy.seen().len();
    thread::sleep(Duration::from_secs(8));
    let probes = proxy.seen().len() - start;
    eprintln!("background probes in 8 s of a fault: {probes}");
    assert!((3..=7).contains(&probes), "{probes} probes in 8 s");
    // The server answers again: status and news without a keystroke.
    proxy.set(Mode::Forward);
    let status = ready_without_requests(&mut s, Duration::from_secs(10));
    assert!(status["detail"]
        .as_str()
        .unwrap_or("")
        .contains("llama-server"));
    thread::sleep(Duration::from_millis(600));
    assert_eq!(logged(&mut s, "answers again"), 1);
    let messages: Vec<Value> = s.drain_notifications("window/showMessage");
    assert_eq!(messages.len(), 1, "{messages:?}");
    // Probing ended with the episode.
    let after = proxy.seen().len();
    thread::sleep(Duration::from_secs(2));
    assert_eq!(proxy.seen().len(), after);

    // Another episode, then the engine is replaced (another URL): its
    // probe stops with it.
    proxy.set(Mode::Status500);
    let uri = "file:///work/small.py";
    s.open(uri, "python", "def add(a, b):\n    return ");
    assert!(s.inline(uri, 1, 11).is_none_or(|a| a.0.is_empty()));
    thread::sleep(Duration::from_secs(1));
    assert_eq!(fault_messages(&mut s).len(), 1);
    assert_eq!(s.request_ok("infill/status", json!({}))["model"], "failed");
    let probing = proxy.seen().len();
    thread::sleep(Duration::from_secs(2));
    assert!(proxy.seen().len() > probing, "no background probe");
    s.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"engine": {"url": llama.url()}}}),
    );
    ready_without_requests(&mut s, Duration::from_secs(30));
    // At most a probe already under way, then none.
    thread::sleep(Duration::from_millis(500));
    let gone = proxy.seen().len();
    thread::sleep(Duration::from_secs(6));
    assert_eq!(proxy.seen().len(), gone, "the old engine still probes");
    let answer = answered_within(&mut s, uri, 1, 11, Duration::from_secs(30));
    assert!(answer.contains('a'), "{answer:?}");
    assert!(s.shutdown().success());
}

/// The completion connection (not a warm start's) opened last.
fn last_completion(proxy: &Proxy) -> Option<Seen> {
    proxy.seen().into_iter().rev().find(|c| {
        c.request.starts_with("POST /completion") && !c.request.contains("\"n_predict\":0")
    })
}

fn wait_closed(proxy: &Proxy, within: Duration) -> Option<Instant> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(closed) = last_completion(proxy).and_then(|c| c.closed) {
            return Some(closed);
        }
        if Instant::now() > deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_cancelled_or_superseded_request_closes_its_connection_within_100_ms() {
    let _g = model_lock();
    let llama = LlamaServer::start();
    let proxy = Proxy::start(llama.port);
    let mut s = remote_server("llama-server", &proxy.url(), json!({"timeoutMs": 20000}));
    ready(&mut s);
    let uri = "file:///work/small.py";
    s.open(uri, "python", "def add(a, b):\n    return ");
    answered_within(&mut s, uri, 1, 11, Duration::from_secs(30));
    proxy.set(Mode::Hold);

    // $/cancelRequest (another document: the answer above is kept).
    let uri = "file:///work/mul.py";
    s.open(uri, "python", "def mul(a, b):\n    return ");
    let before = proxy.seen().len();
    let id = s.request_async("textDocument/inlineCompletion", inline_params(uri, 1, 11));
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.seen().len() == before || last_completion(&proxy).is_none_or(|c| c.closed.is_some())
    {
        assert!(
            Instant::now() < deadline,
            "the request never reached the server"
        );
        thread::sleep(Duration::from_millis(2));
    }
    let cancelled = Instant::now();
    s.notify("$/cancelRequest", json!({"id": id}));
    let closed = wait_closed(&proxy, Duration::from_secs(5)).expect("the connection closed");
    let took = closed.saturating_duration_since(cancelled);
    eprintln!(
        "cancel: connection closed {} ms after $/cancelRequest",
        took.as_millis()
    );
    assert!(took < Duration::from_millis(100), "closed after {took:?}");
    assert_eq!(s.response(id)["error"]["code"], -32800);

    // An edit supersedes the request in flight.
    let uri = "file:///work/sub.py";
    s.open(uri, "python", "def sub(a, b):\n    return ");
    let before = proxy.seen().len();
    let id = s.request_async("textDocument/inlineCompletion", inline_params(uri, 1, 11));
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.seen().len() == before || last_completion(&proxy).is_none_or(|c| c.closed.is_some())
    {
        assert!(
            Instant::now() < deadline,
            "the request never reached the server"
        );
        thread::sleep(Duration::from_millis(2));
    }
    let edited = Instant::now();
    s.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2},
               "contentChanges": [{"text": "def sub(a, b):\n    return a"}]}),
    );
    let closed = wait_closed(&proxy, Duration::from_secs(5)).expect("the connection closed");
    let took = closed.saturating_duration_since(edited);
    eprintln!(
        "edit: connection closed {} ms after didChange",
        took.as_millis()
    );
    assert!(took < Duration::from_millis(100), "closed after {took:?}");
    let _ = s.response(id);
    proxy.set(Mode::Forward);
    assert!(s.shutdown().success());
}
