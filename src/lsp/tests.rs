//! The protocol layer as a client sees it: messages in, answers out, through
//! `serve` (the transport guard, tower-lsp, `LspServer`, the session) with a
//! scripted engine. Regression tests for what the `lsp_session` fuzz target
//! found; the target itself covers the rest.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};

use super::serve;
use crate::config::Config;
use crate::engine::scripted::Scripted;
use crate::engine::Engine;
use crate::session::EngineStarter;

/// A server on in-memory pipes; the client's ends.
fn start() -> (DuplexStream, BufReader<DuplexStream>) {
    start_answering(&[])
}

/// A server whose engine gives `answers` in order.
fn start_answering(answers: &[&str]) -> (DuplexStream, BufReader<DuplexStream>) {
    let engine = Arc::new(Scripted::new(answers));
    let start_engine: EngineStarter = Arc::new(move |_: &Config| engine.clone() as Arc<dyn Engine>);
    let (client_out, server_in) = tokio::io::duplex(1 << 16);
    let (server_out, client_in) = tokio::io::duplex(1 << 16);
    tokio::spawn(serve(
        Config::default(),
        start_engine,
        server_in,
        server_out,
    ));
    (client_out, BufReader::new(client_in))
}

async fn send(to: &mut DuplexStream, message: Value) {
    let body = message.to_string();
    let frame = format!("Content-Length: {}\r\n\r\n{body}", body.len());
    to.write_all(frame.as_bytes())
        .await
        .expect("the server reads");
}

async fn read(from: &mut BufReader<DuplexStream>) -> Value {
    let mut length = 0;
    loop {
        let mut line = String::new();
        from.read_line(&mut line).await.expect("the server writes");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(n) = line.strip_prefix("Content-Length:") {
            length = n.trim().parse().expect("a length");
        }
    }
    let mut body = vec![0; length];
    from.read_exact(&mut body).await.expect("a body");
    serde_json::from_slice(&body).expect("JSON")
}

/// The answers to the requests `ids`, by id, in that order (5 s at most).
async fn answers(from: &mut BufReader<DuplexStream>, ids: &[i64]) -> Vec<Value> {
    let mut got: Vec<Option<Value>> = vec![None; ids.len()];
    tokio::time::timeout(Duration::from_secs(5), async {
        while got.iter().any(Option::is_none) {
            let message = read(from).await;
            if message.get("method").is_some() {
                continue; // a notification or request of the server's
            }
            let i = ids.iter().position(|id| message["id"] == json!(id));
            got[i.expect("an answer to a request sent")] = Some(message);
        }
    })
    .await
    .expect("every request answered in time");
    got.into_iter().flatten().collect()
}

fn request(id: i64, method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })
}

/// Found by the fuzz target: a second `initialize` read before the first
/// was answered left tower-lsp "not initialized" for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_initialize_sent_at_once_is_refused_and_the_server_stays_initialized() {
    let (mut to, mut from) = start();
    send(
        &mut to,
        request(1, "initialize", json!({ "capabilities": {} })),
    )
    .await;
    send(
        &mut to,
        request(2, "initialize", json!({ "capabilities": {} })),
    )
    .await;
    send(&mut to, request(3, "infill/status", Value::Null)).await;
    let got = answers(&mut from, &[1, 2, 3]).await;
    assert!(got[0]["result"]["capabilities"].is_object(), "{}", got[0]);
    assert_eq!(got[1]["error"]["code"], json!(-32600), "{}", got[1]);
    assert_eq!(got[2]["result"]["model"], json!("none"), "{}", got[2]);
}

/// LSP: a request whose method starts with `$/` and that the server does
/// not know is answered with `MethodNotFound` (tower-lsp answered nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_dollar_request_is_answered() {
    let (mut to, mut from) = start();
    send(
        &mut to,
        request(1, "initialize", json!({ "capabilities": {} })),
    )
    .await;
    send(&mut to, request(2, "$/unknownThing", json!({}))).await;
    send(&mut to, request(3, "infill/status", Value::Null)).await;
    let got = answers(&mut from, &[1, 2, 3]).await;
    assert_eq!(got[1]["error"]["code"], json!(-32601), "{}", got[1]);
}

/// Reads until the server closes its output (5 s at most); what it sent.
async fn until_end(from: &mut BufReader<DuplexStream>) -> Vec<Value> {
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match from.fill_buf().await {
                Ok([]) | Err(_) => break,
                Ok(_) => {}
            }
            got.push(read(from).await);
        }
    })
    .await
    .expect("the server ends after exit");
    got
}

/// A folder of its own with one file, as a workspace.
fn workspace(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("infill-lsp-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    std::fs::write(dir.join("a.py"), "x = 1\n").expect("a temporary file");
    dir
}

/// Found by the fuzz target: `initialized` waited for the client to accept
/// the file watcher; a client that sent `exit` first (or never answered)
/// kept the server from ever ending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_ends_the_server_while_the_client_has_not_answered_its_request() {
    let root = workspace("exit");
    let (mut to, mut from) = start();
    let capabilities = json!({
        "workspace": { "didChangeWatchedFiles": { "dynamicRegistration": true } }
    });
    let uri = format!("file://{}", root.display());
    let params = json!({ "capabilities": capabilities, "rootUri": uri });
    send(&mut to, request(1, "initialize", params)).await;
    answers(&mut from, &[1]).await;
    let initialized = json!({ "jsonrpc": "2.0", "method": "initialized", "params": {} });
    send(&mut to, initialized).await;
    let asked = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let message = read(&mut from).await;
            if message["method"] == json!("client/registerCapability") {
                return message;
            }
        }
    })
    .await
    .expect("the server asks to watch files");
    assert!(asked.get("id").is_some());
    send(&mut to, request(2, "shutdown", Value::Null)).await;
    answers(&mut from, &[2]).await;
    send(&mut to, json!({ "jsonrpc": "2.0", "method": "exit" })).await;
    until_end(&mut from).await;
    let _ = std::fs::remove_dir_all(root);
}

/// `completion.candidates`: the answer and its alternatives come as
/// several inline items (and list items), in their order, repeats and
/// empty ones dropped; the accepted command only on the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_candidates_are_several_inline_items() {
    use crate::engine::scripted::ALTERNATIVES;
    let script =
        ["return x", "return x + 1", "return x", "", "return -x"].join(&ALTERNATIVES.to_string());
    let (mut to, mut from) = start_answering(&[&script, &script]);
    let params = json!({
        "capabilities": {},
        "initializationOptions": { "completion": { "candidates": 5 } }
    });
    send(&mut to, request(1, "initialize", params)).await;
    answers(&mut from, &[1]).await;
    send(
        &mut to,
        json!({ "jsonrpc": "2.0", "method": "initialized", "params": {} }),
    )
    .await;
    let uri = "file:///work/several.py";
    send(
        &mut to,
        json!({ "jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": { "uri": uri, "languageId": "python", "version": 1,
                              "text": "def f(x):\n    \n" }
        }}),
    )
    .await;
    let at = json!({
        "textDocument": { "uri": uri },
        "position": { "line": 1, "character": 4 },
        "context": { "triggerKind": 1 }
    });
    send(
        &mut to,
        request(2, "textDocument/inlineCompletion", at.clone()),
    )
    .await;
    let got = answers(&mut from, &[2]).await;
    let items = got[0]["result"]["items"].as_array().expect("items").clone();
    let texts: Vec<&str> = items
        .iter()
        .map(|i| i["insertText"].as_str().expect("a text"))
        .collect();
    assert_eq!(
        texts,
        ["return x", "return x + 1", "return -x"],
        "{}",
        got[0]
    );
    assert!(items[1..].iter().all(|i| i.get("command").is_none()));
    // Asked again at the same place: from the recent answers, all of them.
    send(
        &mut to,
        request(3, "textDocument/inlineCompletion", at.clone()),
    )
    .await;
    let got = answers(&mut from, &[3]).await;
    assert_eq!(
        got[0]["result"]["items"].as_array().map(Vec::len),
        Some(3),
        "{}",
        got[0]
    );
    send(&mut to, request(4, "textDocument/completion", at)).await;
    let got = answers(&mut from, &[4]).await;
    let items = got[0]["result"]["items"]
        .as_array()
        .expect("list items")
        .clone();
    assert_eq!(items.len(), 3, "{}", got[0]);
    assert_eq!(items[0]["preselect"], json!(true));
    assert_eq!(items[2]["preselect"], json!(false));
}
