//! The server's real handlers, driven as a client drives them: a sequence
//! of LSP messages (decoded from the input) goes through `lsp::serve_with_
//! engine` — the transport guard, tower-lsp's `LspService` with infill's
//! custom methods, `LspServer` and the session — exactly as `serve_stdio`
//! serves them, with the scripted engine in place of the model.
//!
//! Messages: `initialize` (once, twice, back to back, with malformed
//! parameters, or never; offering any encodings), `initialized`, `didOpen`,
//! `didChange` (full and incremental, positions anywhere, surrogate pairs,
//! in the encoding negotiated), `didClose`, `didSave`, `inlineCompletion`,
//! `completion`, `infill/context`, `$/cancelRequest` (of pending and
//! unknown ids), `didChangeConfiguration` (valid and wrongly typed
//! settings), `didChangeWatchedFiles`, `infill/status`,
//! `infill/documentText`, `shutdown`, `exit`, unknown methods (`$/` ones
//! too), known methods with parameters of the wrong type or none, requests
//! sent as notifications, bursts of typing (an edit and a completion
//! request per character, none awaited); documents never opened, URIs of
//! any shape. The client answers the server's own requests at once, with
//! an error, or only at the end. The engine can be held, so that requests
//! are pending when they are cancelled, superseded or shut down.
//!
//! Properties (a violation panics):
//! - no panic anywhere (libFuzzer aborts on any panic, caught or not) and
//!   no hang: each run is bounded, and the server ends after `exit`;
//! - every request is answered exactly once (once at most after an `exit`
//!   of the sequence's own), nothing else is answered, and each answer is
//!   one LSP allows for the server's state (not initialized, running, shut
//!   down) — never an internal error; a completion is placed at the
//!   position asked at, as the server clamps it;
//! - `infill/documentText` of each document equals a reference model that
//!   applies the same edits to a plain string (`infill_fuzz::apply`, as
//!   `apply_edits` does), at any point of the sequence and at its end;
//! - at the end the server still answers `infill/status` (an error as LSP
//!   asks when not initialized or shut down), then `shutdown` and `exit`.

#![no_main]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use infill::config::Config;
use infill::engine::scripted::Scripted;
use infill::engine::Engine;
use infill::session::EngineStarter;
use infill::text::position::LinePosition;
use infill_fuzz::{apply, line_starts, offset, Encoding, Pos, Text};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, watch};

/// Longest a run may take once its pauses are subtracted: far above what
/// a run needs (milliseconds), far below libFuzzer's own timeout.
const RUN_LIMIT: Duration = Duration::from_secs(5);
/// Most time a run spends in `Pause` (a millisecond each). Runs do not wait for the session's
/// timers (warm starts and re-indexing 300 ms after the last edit): that
/// would make them a hundred times slower. Those run anyway, after the run
/// that scheduled them, on the same process-wide runtime (a panic there
/// aborts the process too, but under a later input).
const MAX_PAUSES: Duration = Duration::from_millis(5);

// JSON-RPC and LSP error codes.
const NOT_INITIALIZED: i64 = -32002;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;
const CANCELLED: i64 = -32800;

// ---------------------------------------------------------------------------
// The input.

#[derive(Arbitrary, Debug)]
struct Input {
    /// Settings the server starts with.
    compute_ahead: bool,
    cross_file: bool,
    /// Request ids as strings instead of numbers.
    string_ids: bool,
    /// How the client answers the server's requests.
    replies: Replies,
    /// What the model answers, in turn.
    answers: Vec<Answer>,
    /// What happens before `ops`.
    start: Start,
    ops: Vec<Op>,
}

/// Most of what a server does needs it initialized with a document open:
/// runs start so unless the input says otherwise.
#[derive(Arbitrary, Debug)]
enum Start {
    /// `initialize` (well-formed), `initialized`, `didOpen`.
    Ready {
        init: Init,
        doc: Doc,
        language: Lang,
        text: Text,
    },
    Bare,
}

#[derive(Arbitrary, Debug)]
enum Answer {
    Known(u8),
    Free(Text),
}

/// Answers a model could give (the pipeline cleans them: some are cut,
/// some dropped).
const ANSWERS: &[&str] = &[
    "x + 1",
    "return n * fib(n - 1)",
    "print(\"done\")\n",
    "helper(41)\n    y = 2\n",
    "(a, b):\n    return a + b\n",
    "; }",
    "int z = 0;\n",
    "é😀世界",
    "\r\n    pass",
    "\n\n\n",
    " ",
    "",
];

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
enum Replies {
    /// A null result, at once.
    Accept,
    /// An error, at once.
    Refuse,
    /// Only at the end of the sequence (a slow client; never, if the
    /// sequence sends `exit` first).
    Late,
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// `initialize`, then its answer is awaited (as LSP asks).
    Initialize(Init),
    /// Two `initialize` requests back to back, then both answers.
    InitializeTwice(Init, Init),
    Initialized,
    Open {
        doc: Doc,
        language: Lang,
        version: i32,
        text: Text,
    },
    Change {
        doc: Doc,
        version: i32,
        changes: Vec<Change>,
    },
    Close(Doc),
    Save(Doc),
    Inline {
        doc: Doc,
        at: Pos,
        automatic: bool,
    },
    Completion {
        doc: Doc,
        at: Pos,
    },
    Context {
        doc: Doc,
        at: Pos,
    },
    Cancel(CancelTarget),
    Configure(Settings),
    WatchedFiles(Vec<(WorkspaceFile, u8)>),
    Status,
    DocumentText(Doc),
    Shutdown,
    Exit,
    Unknown {
        name: UnknownName,
        request: bool,
    },
    /// A known method with parameters of the wrong type, or none.
    BadParams(Known, BadParams),
    /// Typing: each character a `didChange` that inserts it at the cursor,
    /// then an automatic `inlineCompletion` and, sometimes, a `completion`
    /// after it, none of them awaited (a burst of keystrokes).
    Typing {
        doc: Doc,
        at: Pos,
        text: Text,
        lists: bool,
    },
    /// A request method without an id.
    AsNotification {
        method: Known,
        doc: Doc,
        at: Pos,
    },
    HoldEngine,
    ReleaseEngine,
    /// Waits until every request sent so far is answered (skipped while
    /// the engine is held).
    Settle,
    /// Lets the server's tasks run for a millisecond.
    Pause,
}

#[derive(Arbitrary, Debug)]
struct Init {
    encodings: Vec<Offered>,
    work_done_progress: bool,
    watch_files: bool,
    /// Sends this process's id: the server watches it (and must stop
    /// watching when it ends).
    process_id: bool,
    root: RootChoice,
    options: Option<Settings>,
    /// Parameters that do not deserialize.
    malformed: bool,
}

#[derive(Arbitrary, Debug)]
enum Offered {
    Known(Encoding),
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum RootChoice {
    None,
    Folder,
    RootUri,
    Missing,
}

#[derive(Arbitrary, Debug, Clone)]
enum Doc {
    /// A file of the temporary workspace (some exist on disk).
    InRoot(u8),
    /// Any path under the workspace, as is (`..`, `%`, spaces).
    UnderRoot(String),
    Untitled,
    Outside,
    /// `file://` and anything.
    File(String),
    Free(String),
}

const IN_ROOT: &[&str] = &["a.py", "B.java", "sub/c.py", "notes.txt", "with space.py"];

#[derive(Arbitrary, Debug)]
enum Lang {
    Python,
    Java,
    Plain,
    Empty,
    Other(String),
}

#[derive(Arbitrary, Debug)]
struct Change {
    /// `None`: replace the whole document.
    range: Option<(Pos, Pos)>,
    text: Text,
}

#[derive(Arbitrary, Debug)]
enum CancelTarget {
    /// The n-th latest request sent (0: the last).
    Sent(u8),
    /// An id never used.
    Unknown(u16),
}

#[derive(Arbitrary, Debug)]
enum Settings {
    Sections {
        /// Under an `infill` key, as editors send them.
        wrapped: bool,
        entries: Vec<(Key, Json)>,
    },
    /// A section that is not an object.
    BadSection(u8, Json),
    /// Settings that are not an object.
    NotAnObject(Json),
}

const KEYS: &[&str] = infill::config::Config::KEYS;

#[derive(Arbitrary, Debug)]
enum Key {
    Known(u8),
    Other(String, String),
}

#[derive(Arbitrary, Debug)]
enum Json {
    Null,
    Bool(bool),
    Small(u16),
    Big(u64),
    Negative(i64),
    Float(f64),
    Word(u8),
    Str(String),
    Array(Vec<u8>),
    Object(String, u16),
}

const WORDS: &[&str] = &[
    "auto",
    "always",
    "never",
    "repo",
    "comments",
    "",
    "/no/model.gguf",
];

#[derive(Arbitrary, Debug)]
enum WorkspaceFile {
    InRoot(u8),
    Missing,
    Outside,
    NotAFileUri,
}

#[derive(Arbitrary, Debug)]
enum UnknownName {
    Plain,
    Dollar,
    Infill,
    Free(String),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum BadParams {
    WrongTypes,
    Null,
    Missing,
    Array,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Known {
    DidOpen,
    DidChange,
    DidClose,
    DidSave,
    WatchedFiles,
    Inline,
    Completion,
    DocumentText,
    Context,
}

// ---------------------------------------------------------------------------
// Conversions to JSON.

impl Json {
    fn value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => json!(b),
            Json::Small(n) => json!(n),
            Json::Big(n) => json!(n),
            Json::Negative(n) => json!(n),
            Json::Float(f) => json!(f),
            Json::Word(i) => json!(WORDS[*i as usize % WORDS.len()]),
            Json::Str(s) => json!(s),
            Json::Array(a) => json!(a),
            Json::Object(k, v) => json!({ k: v }),
        }
    }
}

impl Settings {
    fn value(&self) -> Value {
        match self {
            Settings::Sections { wrapped, entries } => {
                let mut top = serde_json::Map::new();
                for (key, v) in entries {
                    let (section, name) = match key {
                        Key::Known(i) => {
                            let k = KEYS[*i as usize % KEYS.len()];
                            let (s, n) = k.split_once('.').unwrap_or((k, k));
                            (s.to_string(), n.to_string())
                        }
                        Key::Other(s, n) => (s.clone(), n.clone()),
                    };
                    let section = top.entry(section).or_insert_with(|| json!({}));
                    if let Some(fields) = section.as_object_mut() {
                        fields.insert(name, v.value());
                    }
                }
                let top = Value::Object(top);
                if *wrapped {
                    json!({ "infill": top })
                } else {
                    top
                }
            }
            Settings::BadSection(i, v) => {
                let k = KEYS[*i as usize % KEYS.len()];
                let section = k.split_once('.').map_or(k, |(s, _)| s);
                json!({ section: v.value() })
            }
            Settings::NotAnObject(v) => v.value(),
        }
    }
}

fn lsp_position(p: Pos) -> Value {
    let p = p.lsp();
    json!({ "line": p.line, "character": p.character })
}

fn language_id(lang: &Lang) -> String {
    match lang {
        Lang::Python => "python".into(),
        Lang::Java => "java".into(),
        Lang::Plain => "plaintext".into(),
        Lang::Empty => String::new(),
        Lang::Other(s) => s.clone(),
    }
}

fn encoding_name(e: &Offered) -> String {
    match e {
        Offered::Known(Encoding::Utf8) => "utf-8".into(),
        Offered::Known(Encoding::Utf16) => "utf-16".into(),
        Offered::Known(Encoding::Utf32) => "utf-32".into(),
        Offered::Other(s) => s.clone(),
    }
}

/// A `file:` URI of `path`, spaces percent-encoded.
fn file_uri(path: &Path) -> String {
    format!("file://{}", path.display()).replace(' ', "%20")
}

// ---------------------------------------------------------------------------
// The process-wide runtime and workspace.

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// A tiny workspace folder, made once per process.
fn workspace() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("infill-fuzz-lsp-{}", std::process::id()));
        let files = [
            ("a.py", "import os\n\ndef helper(x):\n    return x + 1\n"),
            (
                "B.java",
                "class B {\n  int twice(int x) { return 2 * x; }\n}\n",
            ),
            ("sub/c.py", "from a import helper\n\nVALUE = helper(41)\n"),
            ("notes.txt", "plain text\n"),
        ];
        for (name, text) in files {
            let path = root.join(name);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).expect("a temporary folder");
            }
            std::fs::write(&path, text).expect("a temporary file");
        }
        root
    })
}

fn doc_uri(doc: &Doc) -> String {
    match doc {
        Doc::InRoot(i) => file_uri(&workspace().join(IN_ROOT[*i as usize % IN_ROOT.len()])),
        Doc::UnderRoot(s) => format!("file://{}/{s}", workspace().display()),
        Doc::Untitled => "untitled:Untitled-1".into(),
        Doc::Outside => "file:///nonexistent/elsewhere/x.py".into(),
        Doc::File(s) => format!("file://{s}"),
        Doc::Free(s) => s.clone(),
    }
}

fn file_event_uri(f: &WorkspaceFile) -> String {
    match f {
        WorkspaceFile::InRoot(i) => {
            file_uri(&workspace().join(IN_ROOT[*i as usize % IN_ROOT.len()]))
        }
        WorkspaceFile::Missing => file_uri(&workspace().join("gone.py")),
        WorkspaceFile::Outside => "file:///nonexistent/elsewhere/y.py".into(),
        WorkspaceFile::NotAFileUri => "https://example.com/z.py".into(),
    }
}

// ---------------------------------------------------------------------------
// The client's side of the connection.

/// What the client has received.
#[derive(Default)]
struct Received {
    /// Responses by id (its JSON text).
    by_id: HashMap<String, Vec<Value>>,
    /// Responses to no request of ours (a null id, an unknown one).
    stray: Vec<Value>,
    /// The server's requests the client has not answered yet (`Late`).
    withheld: Vec<Value>,
    /// The server closed its output.
    eof: bool,
    /// A frame that was not a JSON-RPC message.
    garbled: Vec<String>,
}

struct Client {
    to_server: Option<mpsc::UnboundedSender<Vec<u8>>>,
    received: Arc<Mutex<Received>>,
    changed: watch::Receiver<u64>,
}

fn frame(message: &Value) -> Vec<u8> {
    let body = message.to_string();
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads one frame's body; `None` at the end of the stream.
async fn read_frame<R: AsyncBufReadExt + Unpin>(r: &mut R) -> Option<Result<Vec<u8>, String>> {
    let mut length = None;
    loop {
        let mut line = String::new();
        match r.read_line(&mut line).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length:") {
            length = v.trim().parse::<usize>().ok();
        }
    }
    let Some(len) = length else {
        return Some(Err("a frame without Content-Length".into()));
    };
    let mut body = vec![0; len];
    match r.read_exact(&mut body).await {
        Ok(_) => Some(Ok(body)),
        Err(_) => None,
    }
}

impl Client {
    /// Connects to a server that reads `to_server` and writes `from_server`.
    fn start(
        to_server: tokio::io::DuplexStream,
        from_server: tokio::io::DuplexStream,
        replies: Replies,
    ) -> Client {
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let mut writer = to_server;
        tokio::spawn(async move {
            while let Some(bytes) = rx.recv().await {
                if writer.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            // Dropping the writer closes the server's input.
        });
        let received = Arc::new(Mutex::new(Received::default()));
        let (changed_tx, changed) = watch::channel(0u64);
        let for_reader = received.clone();
        let answer = tx.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(from_server);
            while let Some(body) = read_frame(&mut reader).await {
                {
                    let mut got = locked(&for_reader);
                    match body.map(|b| serde_json::from_slice::<Value>(&b)) {
                        Ok(Ok(message)) => receive(&mut got, message, replies, &answer),
                        Ok(Err(e)) => got.garbled.push(e.to_string()),
                        Err(e) => got.garbled.push(e),
                    }
                }
                changed_tx.send_modify(|n| *n += 1);
            }
            locked(&for_reader).eof = true;
            changed_tx.send_modify(|n| *n += 1);
        });
        Client {
            to_server: Some(tx),
            received,
            changed,
        }
    }

    fn send(&self, message: Value) {
        if let Some(tx) = &self.to_server {
            let _ = tx.send(frame(&message));
        }
    }

    /// Closes the server's input.
    fn close(&mut self) {
        self.to_server = None;
    }

    /// Answers the server's requests held back so far.
    fn answer_withheld(&self) {
        let withheld = std::mem::take(&mut locked(&self.received).withheld);
        for request in withheld {
            self.send(json!({ "jsonrpc": "2.0", "id": request["id"], "result": null }));
        }
    }

    /// Waits until `done` holds of what was received; `false` past `deadline`.
    async fn wait_until(&mut self, deadline: Instant, done: impl Fn(&Received) -> bool) -> bool {
        loop {
            if done(&locked(&self.received)) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.changed.changed()).await {
                Ok(Ok(())) => {}
                // The reader ended: nothing more will come.
                Ok(Err(_)) => return done(&locked(&self.received)),
                Err(_) => return false,
            }
        }
    }
}

/// Files one message from the server.
fn receive(
    got: &mut Received,
    message: Value,
    replies: Replies,
    answer: &mpsc::UnboundedSender<Vec<u8>>,
) {
    let is_request = message.get("method").is_some() && message.get("id").is_some();
    if is_request {
        let reply = match replies {
            Replies::Accept => json!({ "jsonrpc": "2.0", "id": message["id"], "result": null }),
            Replies::Refuse => json!({
                "jsonrpc": "2.0",
                "id": message["id"],
                "error": { "code": -32603, "message": "refused by the fuzz client" },
            }),
            Replies::Late => {
                got.withheld.push(message);
                return;
            }
        };
        let _ = answer.send(frame(&reply));
    } else if message.get("method").is_some() {
        // A notification (a message, a log line, progress).
    } else if message.get("result").is_some() || message.get("error").is_some() {
        match message.get("id") {
            Some(id) if !id.is_null() => got.by_id.entry(id.to_string()).or_default().push(message),
            _ => got.stray.push(message),
        }
    } else {
        got.garbled
            .push(format!("neither request nor response: {message}"));
    }
}

// ---------------------------------------------------------------------------
// The reference model and what each answer may be.

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// No successful `initialize` yet.
    Uninitialized,
    Running,
    /// `shutdown` was sent.
    ShutDown,
    /// `exit` was sent.
    Exited,
}

/// What a request may be answered with.
#[derive(Debug)]
struct Expect {
    what: String,
    /// A result is allowed, checked thus.
    result: Option<Check>,
    /// Error codes allowed.
    errors: Vec<i64>,
    /// A completion at this document: also "not open" once it is closed.
    completion_of: Option<String>,
}

#[derive(Debug)]
enum Check {
    Any,
    Null,
    /// Inline items (`list`: false) or a completion list; an item is
    /// placed at `cursor` (line, character), the position asked at as the
    /// server clamps it, unless the document changed since.
    Items {
        list: bool,
        cursor: Option<(u32, u32)>,
    },
    Text {
        text: String,
        version: i32,
    },
    Status {
        started: bool,
    },
}

impl Expect {
    fn result(what: String, check: Check, errors: &[i64]) -> Expect {
        Expect {
            what,
            result: Some(check),
            errors: errors.to_vec(),
            completion_of: None,
        }
    }

    fn error(what: String, errors: &[i64]) -> Expect {
        Expect {
            what,
            result: None,
            errors: errors.to_vec(),
            completion_of: None,
        }
    }

    fn check(&self, response: &Value) {
        if let Some(error) = response.get("error") {
            let code = error["code"].as_i64().unwrap_or(0);
            assert!(
                self.errors.contains(&code),
                "{}: answered with error {error} (allowed: {:?}, result: {:?})",
                self.what,
                self.errors,
                self.result
            );
            return;
        }
        let result = &response["result"];
        match &self.result {
            None => panic!(
                "{}: answered with a result {result} (expected one of the errors {:?})",
                self.what, self.errors
            ),
            Some(Check::Any) => {}
            Some(Check::Null) => assert!(result.is_null(), "{}: {result}", self.what),
            Some(Check::Items { list, cursor }) => {
                assert!(result["items"].is_array(), "{}: {result}", self.what);
                if *list {
                    assert!(
                        result["isIncomplete"].is_boolean(),
                        "{}: {result}",
                        self.what
                    );
                }
                let (Some((line, character)), Some(item)) = (cursor, result["items"].get(0)) else {
                    return;
                };
                let at = |p: &Value| (p["line"].as_u64(), p["character"].as_u64());
                let expected = (Some(u64::from(*line)), Some(u64::from(*character)));
                let range = if *list {
                    &item["textEdit"]["range"]
                } else {
                    &item["range"]
                };
                assert_eq!(at(&range["end"]), expected, "{}: {result}", self.what);
                if *list {
                    // From the start of the word typed, on the same line.
                    let (start_line, start_character) = at(&range["start"]);
                    assert_eq!(start_line, expected.0, "{}: {result}", self.what);
                    assert!(start_character <= expected.1, "{}: {result}", self.what);
                } else {
                    assert_eq!(at(&range["start"]), expected, "{}: {result}", self.what);
                }
            }
            Some(Check::Text { text, version }) => {
                assert_eq!(
                    result["text"].as_str(),
                    Some(text.as_str()),
                    "{}: the server's text differs from the reference model's",
                    self.what
                );
                assert_eq!(
                    result["version"].as_i64(),
                    Some(i64::from(*version)),
                    "{}",
                    self.what
                );
            }
            Some(Check::Status { started }) => {
                let model = result["model"].as_str();
                let expected = if *started { "ready" } else { "none" };
                assert_eq!(model, Some(expected), "{}: {result}", self.what);
            }
        }
    }
}

struct Driver {
    client: Client,
    engine: Arc<Scripted>,
    string_ids: bool,
    next_id: i64,
    /// Request ids sent (their JSON text), in order.
    sent: Vec<String>,
    expects: HashMap<String, Expect>,
    phase: Phase,
    /// `initialized` reached the server while it ran: the engine exists.
    started: bool,
    encoding: Encoding,
    /// The reference model: open documents' text and version.
    docs: HashMap<String, (String, i32)>,
    held: bool,
    paused: Duration,
    deadline: Instant,
}

impl Driver {
    fn id(&mut self) -> Value {
        self.next_id += 1;
        if self.string_ids {
            json!(format!("r{}", self.next_id))
        } else {
            json!(self.next_id)
        }
    }

    fn request(&mut self, method: &str, params: Value, expect: Expect) -> String {
        let id = self.id();
        let key = id.to_string();
        self.client
            .send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        self.sent.push(key.clone());
        self.expects.insert(key.clone(), expect);
        key
    }

    fn notify(&self, method: &str, params: Value) {
        self.client
            .send(json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    /// The errors any request may get in this phase instead of its answer.
    fn refused(&self) -> Option<i64> {
        match self.phase {
            Phase::Uninitialized => Some(NOT_INITIALIZED),
            Phase::ShutDown | Phase::Exited => Some(INVALID_REQUEST),
            Phase::Running => None,
        }
    }

    /// A request answered as the phase allows: by `expect` while running.
    fn normal_request(&mut self, method: &str, params: Value, expect: Expect) -> String {
        let expect = match self.refused() {
            Some(code) => Expect::error(expect.what, &[code]),
            None => expect,
        };
        self.request(method, params, expect)
    }

    fn running(&self) -> bool {
        self.phase == Phase::Running
    }

    async fn wait_for(&mut self, key: &str) -> Value {
        let deadline = self.deadline;
        let k = key.to_string();
        let answered = self
            .client
            .wait_until(deadline, |r| r.by_id.contains_key(&k) || r.eof)
            .await;
        let got = locked(&self.client.received);
        assert!(answered, "hang: request {key} was not answered in time");
        match got.by_id.get(key).and_then(|v| v.first()) {
            Some(v) => v.clone(),
            None => panic!("the server ended without answering request {key}"),
        }
    }

    /// Waits until every request sent so far is answered.
    async fn settle(&mut self) {
        let deadline = self.deadline;
        let sent: Vec<String> = self.sent.clone();
        let all = self
            .client
            .wait_until(deadline, |r| {
                r.eof || sent.iter().all(|k| r.by_id.contains_key(k))
            })
            .await;
        let got = locked(&self.client.received);
        let missing: Vec<&String> = sent
            .iter()
            .filter(|k| !got.by_id.contains_key(*k))
            .collect();
        assert!(
            all && missing.is_empty(),
            "hang: requests never answered: {}",
            describe(&missing, &self.expects)
        );
    }

    fn initialize_params(&self, init: &Init) -> Value {
        if init.malformed {
            return json!({ "capabilities": 5, "processId": "x" });
        }
        let encodings: Vec<String> = init.encodings.iter().map(encoding_name).collect();
        let root = file_uri(workspace());
        let process_id = init.process_id.then(std::process::id);
        let mut params = json!({
            "processId": process_id,
            "capabilities": {
                "general": { "positionEncodings": encodings },
                "window": { "workDoneProgress": init.work_done_progress },
                "workspace": {
                    "didChangeWatchedFiles": { "dynamicRegistration": init.watch_files }
                },
            },
        });
        match init.root {
            RootChoice::None => {}
            RootChoice::Folder => {
                params["workspaceFolders"] = json!([{ "uri": root, "name": "ws" }]);
                params["rootUri"] = json!(root);
            }
            RootChoice::RootUri => params["rootUri"] = json!(root),
            RootChoice::Missing => {
                params["rootUri"] = json!("file:///nonexistent/infill-fuzz-root");
            }
        }
        if let Some(options) = &init.options {
            params["initializationOptions"] = options.value();
        }
        params
    }

    /// Sends `initialize`; returns its id and whether it should succeed.
    fn send_initialize(&mut self, init: &Init) -> String {
        let params = self.initialize_params(init);
        // Checked by `after_initialize`.
        let expect = Expect::result(
            "initialize".into(),
            Check::Any,
            &[INVALID_REQUEST, INVALID_PARAMS, NOT_INITIALIZED],
        );
        self.request("initialize", params, expect)
    }

    /// Learns the phase and the encoding from an `initialize` answer.
    fn after_initialize(&mut self, response: &Value, malformed: bool, phase_before: Phase) {
        if let Some(result) = response.get("result") {
            assert_eq!(
                phase_before,
                Phase::Uninitialized,
                "initialize succeeded in phase {phase_before:?}: {response}"
            );
            assert!(!malformed, "malformed initialize succeeded: {response}");
            self.encoding = match result["capabilities"]["positionEncoding"].as_str() {
                Some("utf-8") => Encoding::Utf8,
                Some("utf-32") => Encoding::Utf32,
                Some("utf-16") | None => Encoding::Utf16,
                Some(other) => panic!("negotiated an unknown encoding {other}"),
            };
            if self.phase == Phase::Uninitialized {
                self.phase = Phase::Running;
            }
        } else {
            let code = response["error"]["code"].as_i64().unwrap_or(0);
            let expected = match phase_before {
                Phase::Uninitialized if malformed => INVALID_PARAMS,
                Phase::Uninitialized => panic!("initialize failed: {response}"),
                _ => INVALID_REQUEST,
            };
            assert_eq!(
                code, expected,
                "initialize in phase {phase_before:?}: {response}"
            );
        }
    }

    async fn step(&mut self, op: &Op) {
        match op {
            Op::Initialize(init) => {
                let before = self.phase;
                let key = self.send_initialize(init);
                if before == Phase::ShutDown {
                    self.expects.insert(
                        key,
                        Expect::error("initialize after shutdown".into(), &[INVALID_REQUEST]),
                    );
                    return;
                }
                let response = self.wait_for(&key).await;
                self.after_initialize(&response, init.malformed, before);
            }
            Op::InitializeTwice(first, second) => {
                let before = self.phase;
                if before == Phase::ShutDown {
                    return;
                }
                let a = self.send_initialize(first);
                let b = self.send_initialize(second);
                let ra = self.wait_for(&a).await;
                let rb = self.wait_for(&b).await;
                let ok = [&ra, &rb]
                    .iter()
                    .filter(|r| r.get("result").is_some())
                    .count();
                assert!(ok <= 1, "both initialize requests succeeded: {ra} {rb}");
                if before == Phase::Running {
                    assert_eq!(ok, 0, "initialize succeeded again: {ra} {rb}");
                } else if !first.malformed || !second.malformed {
                    assert_eq!(ok, 1, "neither initialize succeeded: {ra} {rb}");
                }
                if let Some(r) = [&ra, &rb].into_iter().find(|r| r.get("result").is_some()) {
                    let r = r.clone();
                    self.after_initialize(&r, false, before);
                }
                // The server must be running now, whatever the order.
                if self.phase == Phase::Running {
                    let key = self.normal_request(
                        "infill/status",
                        Value::Null,
                        Expect::result(
                            "infill/status after two initialize requests".into(),
                            Check::Status {
                                started: self.started,
                            },
                            &[],
                        ),
                    );
                    let status = self.wait_for(&key).await;
                    assert!(
                        status.get("result").is_some(),
                        "the server is not initialized after two back-to-back initialize \
                         requests, one of which succeeded: {status}"
                    );
                }
            }
            Op::Initialized => {
                self.notify("initialized", json!({}));
                if self.running() {
                    self.started = true;
                }
            }
            Op::Open {
                doc,
                language,
                version,
                text,
            } => {
                let uri = doc_uri(doc);
                let text = text.build();
                self.edited(&uri);
                self.notify(
                    "textDocument/didOpen",
                    json!({ "textDocument": {
                        "uri": uri, "languageId": language_id(language),
                        "version": version, "text": text,
                    }}),
                );
                if self.running() {
                    self.docs.insert(uri, (text, *version));
                }
            }
            Op::Change {
                doc,
                version,
                changes,
            } => {
                let uri = doc_uri(doc);
                let built: Vec<(Option<(Pos, Pos)>, String)> =
                    changes.iter().map(|c| (c.range, c.text.build())).collect();
                let json_changes: Vec<Value> = built
                    .iter()
                    .map(|(range, text)| match range {
                        Some((a, b)) => json!({
                            "range": { "start": lsp_position(*a), "end": lsp_position(*b) },
                            "text": text,
                        }),
                        None => json!({ "text": text }),
                    })
                    .collect();
                self.edited(&uri);
                self.notify(
                    "textDocument/didChange",
                    json!({
                        "textDocument": { "uri": uri, "version": version },
                        "contentChanges": json_changes,
                    }),
                );
                if self.running() {
                    if let Some((text, v)) = self.docs.get_mut(&uri) {
                        for (range, new) in &built {
                            apply(
                                text,
                                range.map(|(a, b)| (a.lsp(), b.lsp())),
                                new,
                                self.encoding,
                            );
                        }
                        *v = *version;
                    }
                }
            }
            Op::Close(doc) => {
                let uri = doc_uri(doc);
                self.edited(&uri);
                self.notify(
                    "textDocument/didClose",
                    json!({ "textDocument": { "uri": uri } }),
                );
                if self.running() {
                    self.docs.remove(&uri);
                    for e in self.expects.values_mut() {
                        if e.completion_of.as_deref() == Some(uri.as_str()) {
                            e.errors.push(INVALID_PARAMS);
                        }
                    }
                }
            }
            Op::Save(doc) => {
                let uri = doc_uri(doc);
                self.notify(
                    "textDocument/didSave",
                    json!({ "textDocument": { "uri": uri } }),
                );
            }
            Op::Inline { doc, at, automatic } => {
                let uri = doc_uri(doc);
                let params = json!({
                    "textDocument": { "uri": uri },
                    "position": lsp_position(*at),
                    "context": { "triggerKind": if *automatic { 2 } else { 1 } },
                });
                let expect =
                    self.completion_expect("textDocument/inlineCompletion", &uri, at.lsp(), false);
                self.normal_request("textDocument/inlineCompletion", params, expect);
            }
            Op::Completion { doc, at } => {
                let uri = doc_uri(doc);
                let params = json!({
                    "textDocument": { "uri": uri },
                    "position": lsp_position(*at),
                });
                let expect =
                    self.completion_expect("textDocument/completion", &uri, at.lsp(), true);
                self.normal_request("textDocument/completion", params, expect);
            }
            Op::Context { doc, at } => {
                let uri = doc_uri(doc);
                let params = json!({
                    "textDocument": { "uri": uri },
                    "position": lsp_position(*at),
                });
                let what = format!("infill/context of {uri}");
                let expect = if self.docs.contains_key(&uri) {
                    Expect::result(what, Check::Any, &[CANCELLED])
                } else {
                    Expect::error(what, &[INVALID_PARAMS])
                };
                self.normal_request("infill/context", params, expect);
            }
            Op::Cancel(target) => {
                let id = match target {
                    CancelTarget::Sent(n) if !self.sent.is_empty() => {
                        let i = self.sent.len() - 1 - (*n as usize % self.sent.len());
                        serde_json::from_str::<Value>(&self.sent[i]).unwrap_or(Value::Null)
                    }
                    CancelTarget::Sent(_) => json!(0),
                    CancelTarget::Unknown(n) => json!(1_000_000 + i64::from(*n)),
                };
                self.notify("$/cancelRequest", json!({ "id": id }));
                if let Some(e) = self.expects.get_mut(&id.to_string()) {
                    // Cancelled before or after it was answered.
                    e.errors.push(CANCELLED);
                }
            }
            Op::Configure(settings) => {
                self.notify(
                    "workspace/didChangeConfiguration",
                    json!({ "settings": settings.value() }),
                );
            }
            Op::WatchedFiles(files) => {
                let changes: Vec<Value> = files
                    .iter()
                    .map(|(f, kind)| json!({ "uri": file_event_uri(f), "type": 1 + kind % 3 }))
                    .collect();
                self.notify(
                    "workspace/didChangeWatchedFiles",
                    json!({ "changes": changes }),
                );
            }
            Op::Status => {
                let expect = Expect::result(
                    "infill/status".into(),
                    Check::Status {
                        started: self.started,
                    },
                    &[],
                );
                self.normal_request("infill/status", Value::Null, expect);
            }
            Op::DocumentText(doc) => {
                let uri = doc_uri(doc);
                let expect = self.text_expect(&uri);
                self.normal_request("infill/documentText", json!({ "uri": uri }), expect);
            }
            Op::Shutdown => {
                let expect = match self.phase {
                    Phase::Uninitialized => Expect::error("shutdown".into(), &[NOT_INITIALIZED]),
                    Phase::Running => Expect::result("shutdown".into(), Check::Null, &[]),
                    _ => Expect::error("shutdown again".into(), &[INVALID_REQUEST]),
                };
                self.request("shutdown", Value::Null, expect);
                if self.running() {
                    self.phase = Phase::ShutDown;
                    // The session stops what is in flight.
                    for e in self.expects.values_mut() {
                        if e.completion_of.is_some() {
                            e.errors.push(CANCELLED);
                        }
                    }
                }
            }
            Op::Exit => {
                self.notify("exit", Value::Null);
                self.phase = Phase::Exited;
                // `exit` cancels whatever is pending (tower-lsp answers it
                // as cancelled), `shutdown` too if it was not waited for.
                for e in self.expects.values_mut() {
                    e.errors.push(CANCELLED);
                }
            }
            Op::Unknown { name, request } => {
                let method = match name {
                    UnknownName::Plain => "textDocument/unknownThing".to_string(),
                    UnknownName::Dollar => "$/unknownThing".to_string(),
                    UnknownName::Infill => "infill/unknownThing".to_string(),
                    UnknownName::Free(s) => format!("x/{s}"),
                };
                if *request {
                    let expect =
                        Expect::error(format!("unknown request {method}"), &[METHOD_NOT_FOUND]);
                    self.request(&method, json!({}), expect);
                } else {
                    self.notify(&method, json!({}));
                }
            }
            Op::BadParams(known, how) => {
                let bad = match how {
                    BadParams::WrongTypes => {
                        Some(json!({ "textDocument": 5, "position": "x", "uri": [], "changes": 7 }))
                    }
                    BadParams::Null => Some(Value::Null),
                    BadParams::Missing => None,
                    BadParams::Array => Some(json!([1, "two"])),
                };
                let (method, request) = known.method();
                let mut message = json!({ "jsonrpc": "2.0", "method": method });
                if let Some(params) = bad {
                    message["params"] = params;
                }
                if request {
                    let id = self.id();
                    let key = id.to_string();
                    message["id"] = id;
                    let what = format!("{method} with parameters {how:?}");
                    let expect = match self.refused() {
                        Some(code) => Expect::error(what, &[code]),
                        None => Expect::error(what, &[INVALID_PARAMS]),
                    };
                    self.client.send(message);
                    self.sent.push(key.clone());
                    self.expects.insert(key, expect);
                } else {
                    self.client.send(message);
                }
            }
            Op::Typing {
                doc,
                at,
                text,
                lists,
            } => {
                let uri = doc_uri(doc);
                let typed = text.build();
                let mut pos = at.lsp();
                let mut version = self.docs.get(&uri).map_or(1, |d| d.1);
                for c in typed.chars().take(64) {
                    let here = json!({ "line": pos.line, "character": pos.character });
                    version = version.wrapping_add(1);
                    self.edited(&uri);
                    self.notify(
                        "textDocument/didChange",
                        json!({
                            "textDocument": { "uri": uri, "version": version },
                            "contentChanges": [
                                { "range": { "start": here, "end": here }, "text": c.to_string() }
                            ],
                        }),
                    );
                    if self.running() {
                        if let Some((text, v)) = self.docs.get_mut(&uri) {
                            apply(text, Some((pos, pos)), &c.to_string(), self.encoding);
                            *v = version;
                        }
                    }
                    if c == '\n' || c == '\r' {
                        pos.line = pos.line.saturating_add(1);
                        pos.character = 0;
                    } else {
                        pos.character = pos.character.saturating_add(self.encoding.units(c) as u32);
                    }
                    let here = json!({ "line": pos.line, "character": pos.character });
                    let params = json!({
                        "textDocument": { "uri": uri },
                        "position": here,
                        "context": { "triggerKind": 2 },
                    });
                    let expect =
                        self.completion_expect("textDocument/inlineCompletion", &uri, pos, false);
                    self.normal_request("textDocument/inlineCompletion", params, expect);
                    if *lists {
                        let params = json!({ "textDocument": { "uri": uri }, "position": here });
                        let expect =
                            self.completion_expect("textDocument/completion", &uri, pos, true);
                        self.normal_request("textDocument/completion", params, expect);
                    }
                }
            }
            Op::AsNotification { method, doc, at } => {
                let uri = doc_uri(doc);
                let (method, request) = method.method();
                let params = json!({
                    "uri": uri,
                    "textDocument": { "uri": uri },
                    "position": lsp_position(*at),
                    "context": { "triggerKind": 1 },
                });
                if request {
                    self.notify(method, params);
                    // It may supersede a request of the same kind.
                    for e in self.expects.values_mut() {
                        if e.completion_of.is_some() {
                            e.errors.push(CANCELLED);
                        }
                    }
                }
            }
            Op::HoldEngine => {
                self.engine.hold();
                self.held = true;
            }
            Op::ReleaseEngine => {
                self.engine.release();
                self.held = false;
            }
            Op::Settle => {
                if !self.held && !matches!(self.phase, Phase::Exited) {
                    self.client.answer_withheld();
                    self.settle().await;
                }
            }
            Op::Pause => {
                let wanted = Duration::from_millis(1);
                if self.paused + wanted <= MAX_PAUSES {
                    self.paused += wanted;
                    self.deadline += wanted;
                    tokio::time::sleep(wanted).await;
                }
            }
        }
    }

    fn completion_expect(&self, method: &str, uri: &str, at: LinePosition, list: bool) -> Expect {
        let what = format!("{method} at {uri} {}:{}", at.line, at.character);
        match self.docs.get(uri) {
            Some((text, _)) => {
                let cursor = lsp_of_offset(text, offset(text, at, self.encoding), self.encoding);
                let check = Check::Items {
                    list,
                    cursor: Some(cursor),
                };
                let mut e = Expect::result(what, check, &[CANCELLED]);
                e.completion_of = Some(uri.to_string());
                e
            }
            None => Expect::error(what, &[INVALID_PARAMS]),
        }
    }

    /// `uri` is about to change: completions asked before may be answered
    /// on the new text (after waiting for what is computed ahead).
    fn edited(&mut self, uri: &str) {
        if !self.running() {
            return;
        }
        for e in self.expects.values_mut() {
            if e.completion_of.as_deref() == Some(uri) {
                if let Some(Check::Items { cursor, .. }) = &mut e.result {
                    *cursor = None;
                }
            }
        }
    }

    fn text_expect(&self, uri: &str) -> Expect {
        let what = format!("infill/documentText of {uri}");
        match self.docs.get(uri) {
            Some((text, version)) => Expect::result(
                what,
                Check::Text {
                    text: text.clone(),
                    version: *version,
                },
                &[],
            ),
            None => Expect::error(what, &[INVALID_PARAMS]),
        }
    }

    /// The end of the sequence: every document and the status checked, then
    /// `shutdown` and `exit`; the server must end.
    async fn finish(&mut self) {
        self.engine.release();
        self.held = false;
        if self.phase != Phase::Exited {
            self.client.answer_withheld();
            self.settle().await;
            let mut uris: Vec<String> = self.docs.keys().cloned().collect();
            uris.extend((0..IN_ROOT.len() as u8).map(|i| doc_uri(&Doc::InRoot(i))));
            uris.push(doc_uri(&Doc::Untitled));
            uris.sort();
            uris.dedup();
            for uri in uris {
                let expect = self.text_expect(&uri);
                self.normal_request("infill/documentText", json!({ "uri": uri }), expect);
            }
            let expect = Expect::result(
                "infill/status at the end".into(),
                Check::Status {
                    started: self.started,
                },
                &[],
            );
            let status = self.normal_request("infill/status", Value::Null, expect);
            self.wait_for(&status).await;
            // As clients do: `exit` once `shutdown` is answered.
            self.step(&Op::Shutdown).await;
            if let Some(shutdown) = self.sent.last().cloned() {
                self.wait_for(&shutdown).await;
            }
            self.step(&Op::Exit).await;
        }
        // Anything the server asks from now on is answered, so that it can end.
        self.client.answer_withheld();
        let deadline = self.deadline;
        let ended = self.client.wait_until(deadline, |r| r.eof).await;
        assert!(ended, "hang: the server did not end after exit");
        self.client.close();
    }

    /// Every request answered exactly once (at most once when the sequence
    /// itself sent `exit`), as allowed; nothing else answered.
    fn check_answers(&self, exited_early: bool) {
        let got = locked(&self.client.received);
        assert!(got.garbled.is_empty(), "garbled output: {:?}", got.garbled);
        assert!(
            got.stray.is_empty(),
            "answers to no request: {:?}",
            got.stray
        );
        let sent: HashSet<&String> = self.sent.iter().collect();
        for (id, answers) in &got.by_id {
            assert!(
                sent.contains(id),
                "an answer to id {id}, never sent: {answers:?}"
            );
            assert_eq!(
                answers.len(),
                1,
                "request {id} answered {} times: {answers:?}",
                answers.len()
            );
            if let Some(e) = self.expects.get(id) {
                e.check(&answers[0]);
            }
        }
        if !exited_early {
            let missing: Vec<&String> = self
                .sent
                .iter()
                .filter(|k| !got.by_id.contains_key(*k))
                .collect();
            assert!(
                missing.is_empty(),
                "requests never answered: {}",
                describe(&missing, &self.expects)
            );
        }
    }
}

/// The LSP position of byte `offset` of `text`.
fn lsp_of_offset(text: &str, offset: usize, enc: Encoding) -> (u32, u32) {
    let starts = line_starts(text);
    let line = starts.partition_point(|&s| s <= offset).saturating_sub(1);
    let units: usize = text[starts[line]..offset]
        .chars()
        .map(|c| enc.units(c))
        .sum();
    (line as u32, units as u32)
}

fn describe(keys: &[&String], expects: &HashMap<String, Expect>) -> String {
    keys.iter()
        .map(|k| format!("{k} ({})", expects.get(*k).map_or("?", |e| e.what.as_str())))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Known {
    /// The method, and whether it is a request.
    fn method(self) -> (&'static str, bool) {
        match self {
            Known::DidOpen => ("textDocument/didOpen", false),
            Known::DidChange => ("textDocument/didChange", false),
            Known::DidClose => ("textDocument/didClose", false),
            Known::DidSave => ("textDocument/didSave", false),
            Known::WatchedFiles => ("workspace/didChangeWatchedFiles", false),
            Known::Inline => ("textDocument/inlineCompletion", true),
            Known::Completion => ("textDocument/completion", true),
            Known::DocumentText => ("infill/documentText", true),
            Known::Context => ("infill/context", true),
        }
    }
}

async fn run(input: Input) {
    let started = Instant::now();
    let mut config = Config::default();
    config.completion.compute_ahead = input.compute_ahead;
    config.context.cross_file = input.cross_file;
    let mut answers: Vec<String> = input
        .answers
        .iter()
        .map(|a| match a {
            Answer::Known(i) => ANSWERS[*i as usize % ANSWERS.len()].to_string(),
            Answer::Free(text) => text.build(),
        })
        .collect();
    if answers.is_empty() {
        answers = ANSWERS.iter().map(|a| a.to_string()).collect();
    }
    // In turn, for as many requests as a run makes.
    let answers: Vec<&str> = answers
        .iter()
        .map(String::as_str)
        .cycle()
        .take(256)
        .collect();
    let engine = Arc::new(Scripted::new(&answers));
    let for_server = engine.clone();
    let start_engine: EngineStarter =
        Arc::new(move |_: &Config| for_server.clone() as Arc<dyn Engine>);

    let (client_out, server_in) = tokio::io::duplex(1 << 16);
    let (server_out, client_in) = tokio::io::duplex(1 << 16);
    let server = tokio::spawn(infill::lsp::serve_with_engine(
        config,
        start_engine,
        server_in,
        server_out,
    ));
    let client = Client::start(client_out, client_in, input.replies);
    let mut driver = Driver {
        client,
        engine,
        string_ids: input.string_ids,
        next_id: 0,
        sent: Vec::new(),
        expects: HashMap::new(),
        phase: Phase::Uninitialized,
        started: false,
        encoding: Encoding::Utf16,
        docs: HashMap::new(),
        held: false,
        paused: Duration::ZERO,
        deadline: started + RUN_LIMIT,
    };
    if let Start::Ready {
        mut init,
        doc,
        language,
        text,
    } = input.start
    {
        init.malformed = false;
        driver.step(&Op::Initialize(init)).await;
        driver.step(&Op::Initialized).await;
        let open = Op::Open {
            doc,
            language,
            version: 1,
            text,
        };
        driver.step(&open).await;
    }
    let mut exited_early = false;
    for op in &input.ops {
        driver.step(op).await;
        if driver.phase == Phase::Exited {
            exited_early = true;
            break;
        }
    }
    driver.finish().await;
    let left = driver.deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(left, server).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("the server task failed: {e}"),
        Err(_) => panic!("hang: serve did not return after exit"),
    }
    driver.check_answers(exited_early);
}

fuzz_target!(|input: Input| {
    workspace();
    runtime().block_on(run(input));
});
