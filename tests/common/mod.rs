//! A small LSP client that drives the real `infill serve` binary over stdio.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Tests that run the model share two cores: running them one at a time
/// keeps each fast and their timings meaningful.
static MODEL_LOCK: Mutex<()> = Mutex::new(());

pub fn model_lock() -> MutexGuard<'static, ()> {
    MODEL_LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// The real default model: `INFILL_TEST_MODEL`, else the model cache.
pub fn model_path() -> PathBuf {
    if let Some(p) = std::env::var_os("INFILL_TEST_MODEL") {
        return PathBuf::from(p);
    }
    let path = infill::models::default_model_path();
    assert!(
        path.exists(),
        "the default model is missing at {}: run `scripts/fetch-model` first",
        path.display()
    );
    path
}

pub const TIMEOUT: Duration = Duration::from_secs(120);

pub struct Server {
    child: Child,
    stdin: ChildStdin,
    incoming: Receiver<Value>,
    /// Messages received while waiting for something else.
    backlog: VecDeque<Value>,
    next_id: i64,
    /// Whether requests from the server (`window/workDoneProgress/create`)
    /// are answered as they arrive, as an editor does (the default).
    pub answers_server_requests: bool,
}

impl Server {
    /// Starts `infill serve` with `args` (the model is the real default one
    /// unless `args` names another).
    pub fn start(args: &[&str]) -> Server {
        Server::start_wrapped(&[], args)
    }

    /// Starts `infill serve` under a wrapper command (e.g. `unshare -n`).
    pub fn start_wrapped(wrapper: &[&str], args: &[&str]) -> Server {
        Server::start_with_env(wrapper, args, &[])
    }

    /// Starts `infill serve` with environment variables set. Its statistics
    /// store is a scratch folder of this test process unless `env` sets
    /// `XDG_STATE_HOME`, never the user's.
    pub fn start_with_env(wrapper: &[&str], args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(env!("CARGO_BIN_EXE_infill"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_infill")),
        };
        cmd.arg("serve");
        if !args.contains(&"--model") {
            cmd.arg("--model").arg(model_path());
        }
        cmd.args(["--threads", "2"]).args(args);
        cmd.env(
            "XDG_STATE_HOME",
            std::env::temp_dir().join(format!("infill-test-state-{}", std::process::id())),
        );
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start infill serve");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            while let Some(msg) = read_message(&mut reader) {
                if tx.send(msg).is_err() {
                    break;
                }
            }
        });
        Server {
            child,
            stdin,
            incoming: rx,
            backlog: VecDeque::new(),
            next_id: 1,
            answers_server_requests: true,
        }
    }

    /// Starts and initializes with the given extra capabilities and options.
    pub fn initialized(args: &[&str], capabilities: Value, options: Value) -> (Server, Value) {
        let mut s = Server::start(args);
        let result = s.request_ok(
            "initialize",
            json!({
                "processId": null,
                "rootUri": null,
                "capabilities": capabilities,
                "initializationOptions": options,
            }),
        );
        s.notify("initialized", json!({}));
        (s, result)
    }

    /// Kills the server at once (SIGKILL: no shutdown, no flush).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the server has exited.
    pub fn try_exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn send_raw(&mut self, body: &[u8]) {
        let header = format!("Content-Length: {}\r\n\r\n", body.len());
        self.stdin
            .write_all(header.as_bytes())
            .expect("write header");
        self.stdin.write_all(body).expect("write body");
        self.stdin.flush().expect("flush");
    }

    /// Writes `bytes` as they are (framing and all), for tests of torn input.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).expect("write");
        self.stdin.flush().expect("flush");
    }

    fn send(&mut self, msg: &Value) {
        let body = serde_json::to_vec(msg).expect("serialize");
        self.send_raw(&body);
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request and returns its id without waiting.
    pub fn request_async(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// The whole response message (with `result` or `error`) to request `id`.
    pub fn response(&mut self, id: i64) -> Value {
        self.wait_for(|m| m.get("id") == Some(&json!(id)) && m.get("method").is_none())
            .unwrap_or_else(|| panic!("no response to request {id}"))
    }

    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.request_async(method, params);
        self.response(id)
    }

    pub fn request_ok(&mut self, method: &str, params: Value) -> Value {
        let resp = self.request(method, params);
        assert!(resp.get("error").is_none(), "{method} failed: {resp}");
        resp["result"].clone()
    }

    /// Waits for a message matching `pred`; keeps the others for later.
    pub fn wait_for(&mut self, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        self.wait_for_within(TIMEOUT, pred)
    }

    pub fn wait_for_within(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.incoming.recv_timeout(left) {
                Ok(msg) => {
                    self.answer_if_request(&msg);
                    if pred(&msg) {
                        return Some(msg);
                    }
                    self.backlog.push_back(msg);
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return None
                }
            }
        }
    }

    /// Answers a request from the server (progress, etc.) at once, as an
    /// editor does: the server sends its later messages in order after it
    /// (for up to 5 s for a progress token).
    fn answer_if_request(&mut self, msg: &Value) {
        if self.answers_server_requests && msg.get("method").is_some() && msg.get("id").is_some() {
            let id = msg["id"].clone();
            self.send(&json!({"jsonrpc": "2.0", "id": id, "result": null}));
        }
    }

    /// Waits for a `window/showMessage` whose text contains `needle`.
    pub fn show_message_containing(&mut self, needle: &str) -> Option<Value> {
        self.wait_for(|m| {
            m["method"] == "window/showMessage"
                && m["params"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains(needle)
        })
    }

    /// Notifications of `method` received so far (without waiting).
    pub fn drain_notifications(&mut self, method: &str) -> Vec<Value> {
        while let Ok(msg) = self.incoming.try_recv() {
            self.answer_if_request(&msg);
            self.backlog.push_back(msg);
        }
        let (hits, rest): (VecDeque<Value>, VecDeque<Value>) =
            self.backlog.drain(..).partition(|m| m["method"] == method);
        self.backlog = rest;
        hits.into_iter().collect()
    }

    /// Waits until the model is loaded (or failed); returns `infill/status`.
    pub fn wait_model(&mut self) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let status = self.request_ok("infill/status", json!({}));
            if status["model"] != "loading" || Instant::now() > deadline {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn open(&mut self, uri: &str, language: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": language, "version": 1, "text": text}}),
        );
    }

    pub fn document_text(&mut self, uri: &str) -> String {
        let r = self.request_ok("infill/documentText", json!({"uri": uri}));
        r["text"].as_str().expect("text").to_string()
    }

    /// Inline completion at (line, character): the first item's text and
    /// range, or `None` for an empty list.
    pub fn inline(&mut self, uri: &str, line: u32, character: u32) -> Option<(String, Value)> {
        let result = self.request_ok(
            "textDocument/inlineCompletion",
            inline_params(uri, line, character),
        );
        let items = result
            .get("items")
            .or(Some(&result))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let first = items.first()?;
        Some((
            first["insertText"].as_str()?.to_string(),
            first["range"].clone(),
        ))
    }

    pub fn shutdown(mut self) -> std::process::ExitStatus {
        let _ = self.request("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("server did not exit after `exit`");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn inline_params(uri: &str, line: u32, character: u32) -> Value {
    json!({
        "textDocument": {"uri": uri},
        "position": {"line": line, "character": character},
        "context": {"triggerKind": 1}
    })
}

fn read_message(reader: &mut impl BufRead) -> Option<Value> {
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length:") {
            length = v.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0u8; length?];
    reader.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

/// The engine request at `<cursor>` of a Python `document`, with the lines
/// from `anchor_line` (0-based, if given) on after the FIM middle marker,
/// as the server lays out the lines typed since its anchor.
pub fn python_request(
    config: &infill::config::Config,
    document: &str,
    anchor_line: Option<usize>,
) -> infill::engine::EngineRequest {
    let cursor = document.find("<cursor>").expect("a cursor");
    let text = document.replacen("<cursor>", "", 1);
    let rope = ropey::Rope::from_str(&text);
    let syntax =
        infill::text::syntax::SyntaxTree::new(infill::text::syntax::Language::Python, &rope);
    let ctx = infill::completion::cursor_context(
        &rope,
        syntax.as_ref(),
        rope.byte_to_char(cursor),
        config,
    );
    let mut req = ctx.engine_request(config);
    if let Some(line) = anchor_line {
        req.shape.middle_from = ctx.prefix_offset(rope.line_to_char(line));
        assert!(req.shape.middle_from.is_some());
    }
    req
}
