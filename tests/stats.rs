//! Acceptance statistics end to end with the real server and model: an
//! accept (whole and in part) is recorded, a checkpoint after an edit
//! measures the right similarity, kill -9 while writing leaves a readable
//! store, and `infill stats` prints the figures of a store written here.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{model_lock, Server};
use infill::session::stats_store;
use infill::stats::{Event, Lines, Meta, Source, Trigger, What, VERSION};
use serde_json::{json, Value};

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("infill-stats-{name}-{}", stats_store::random_hex()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn server(state: &Path) -> Server {
    let state = state.to_str().unwrap();
    let mut s = Server::start_with_env(
        &[],
        &["--context-size", "1024"],
        &[
            ("XDG_STATE_HOME", state),
            ("INFILL_STATS_CHECKPOINTS", "1,2"),
        ],
    );
    s.request_ok(
        "initialize",
        json!({"processId": null, "rootUri": null, "capabilities": {},
               "initializationOptions": {"completion": {"maxTokens": 16}}}),
    );
    s.notify("initialized", json!({}));
    assert_eq!(s.wait_model()["model"], "ready");
    s
}

/// The first inline item at (line, character), whole.
fn item(s: &mut Server, uri: &str, line: u32, character: u32) -> Value {
    let r = s.request_ok(
        "textDocument/inlineCompletion",
        common::inline_params(uri, line, character),
    );
    r["items"][0].clone()
}

fn insert(s: &mut Server, uri: &str, version: i32, line: u32, character: u32, text: &str) {
    s.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": version},
               "contentChanges": [{"range": {"start": {"line": line, "character": character},
                                             "end": {"line": line, "character": character}},
                                   "text": text}]}),
    );
}

fn events(state: &Path) -> (Vec<Event>, usize) {
    stats_store::read(&state.join("infill")).unwrap()
}

#[test]
fn accepts_and_checkpoints_are_recorded() {
    let _lock = model_lock();
    let state = scratch("accept");
    let mut s = server(&state);
    let uri = "file:///tmp/infill-stats-test/calc.py";
    let text = "def add(a, b):\n    return ";
    s.open(uri, "python", text);
    let item = item(&mut s, uri, 1, 11);
    let suggestion = item["insertText"].as_str().unwrap_or("").to_string();
    let chars: Vec<char> = suggestion.chars().collect();
    assert!(
        chars.len() >= 4,
        "need a suggestion of 4 chars or more: {item}"
    );
    assert_eq!(item["command"]["command"], "infill.accepted", "{item}");
    let id = item["command"]["arguments"][0]["id"].as_u64().unwrap();

    // Accept two chars (a partial accept), then the rest (the item's command).
    let first: String = chars[..2].iter().collect();
    let rest: String = chars[2..].iter().collect();
    insert(&mut s, uri, 2, 1, 11, &first);
    s.request_ok(
        "workspace/executeCommand",
        json!({"command": "infill.accepted", "arguments": [{"id": id, "length": 2}]}),
    );
    insert(&mut s, uri, 3, 1, 13, &rest);
    s.request_ok("workspace/executeCommand", item["command"].clone());
    // An unknown suggestion is refused with a clear error; the server stays.
    let bad = s.request(
        "workspace/executeCommand",
        json!({"command": "infill.accepted", "arguments": [{"id": 987654}]}),
    );
    assert!(bad["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("987654"));
    // Delete the accepted text's last char.
    let end = 11 + chars.len() as u32;
    s.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 4},
               "contentChanges": [{"range": {"start": {"line": 1, "character": end - 1},
                                             "end": {"line": 1, "character": end}},
                                   "text": ""}]}),
    );
    std::thread::sleep(Duration::from_millis(2600));
    let status = s.request_ok("infill/status", json!({}));
    assert!(status["today"]["accepted"].as_u64() >= Some(1), "{status}");
    assert!(s.shutdown().success());

    let (events, skipped) = events(&state);
    assert_eq!(skipped, 0);
    let accepted: Vec<(u64, bool)> = events
        .iter()
        .filter_map(|e| match e.what {
            What::Accepted {
                accepted_chars,
                partial,
            } => Some((accepted_chars, partial)),
            _ => None,
        })
        .collect();
    assert_eq!(
        accepted,
        vec![(2, true), (chars.len() as u64 - 2, false)],
        "{events:?}"
    );
    // The first part stands whole; the second lost one char.
    let mut persisted: Vec<(u64, u64, f64)> = events
        .iter()
        .filter_map(|e| match e.what {
            What::Persisted {
                checkpoint_secs,
                similarity,
                early: None,
                ..
            } => Some((checkpoint_secs, e.n, similarity)),
            _ => None,
        })
        .collect();
    persisted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let second = 1.0 - 1.0 / (chars.len() - 2) as f64;
    let sims: Vec<(u64, f64)> = persisted.iter().map(|p| (p.0, p.2)).collect();
    assert_eq!(sims.len(), 4, "{events:?}");
    for secs in [1, 2] {
        let mut at: Vec<f64> = sims.iter().filter(|p| p.0 == secs).map(|p| p.1).collect();
        at.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert!((at[0] - second).abs() < 1e-9 && at[1] == 1.0, "{sims:?}");
    }
    let e = events.iter().find(|e| e.what == What::Shown).unwrap();
    assert_eq!(e.meta.language, "python");
    assert_eq!(e.meta.source, Source::Model);
    assert_eq!(e.meta.trigger, Trigger::Invoked);
    // No file text and no file name in the store.
    let stored = std::fs::read_to_string(state.join("infill").join(stats_store::FILE)).unwrap();
    assert!(
        !stored.contains("calc") && !stored.contains(&suggestion),
        "{stored}"
    );
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn kill_9_while_writing_leaves_a_readable_store() {
    let _lock = model_lock();
    let state = scratch("kill");
    let uris = [
        "file:///tmp/infill-stats-test/add.py",
        "file:///tmp/infill-stats-test/mul.py",
    ];
    let mut written = 0;
    for round in 0..2 {
        let mut s = server(&state);
        s.open(uris[0], "python", "def add(a, b):\n    return ");
        s.open(uris[1], "python", "def mul(a, b):\n    return ");
        // Two answers by the model, then a storm of the same two questions:
        // each answer from the recent answers is a shown event written.
        let a = item(&mut s, uris[0], 1, 11);
        let b = item(&mut s, uris[1], 1, 11);
        assert!(
            a["insertText"].is_string() && b["insertText"].is_string(),
            "{a} {b}"
        );
        for i in 0..3000 {
            s.request_async(
                "textDocument/inlineCompletion",
                common::inline_params(uris[i % 2], 1, 11),
            );
        }
        std::thread::sleep(Duration::from_millis(300 + 200 * round));
        s.kill9();
        let (events, skipped) = events(&state);
        assert!(skipped <= round as usize + 1, "{skipped} lines unreadable");
        assert!(events.len() > written, "round {round}: nothing written");
        written = events.len();
    }
    // The command reads it too.
    let out = Command::new(env!("CARGO_BIN_EXE_infill"))
        .args(["stats", "--json", "--dir"])
        .arg(state.join("infill"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["events"].as_u64(), Some(written as u64));
    let _ = std::fs::remove_dir_all(&state);
}

fn event(t: u64, n: u64, what: What, trigger: Trigger, latency_ms: u64, source: Source) -> Event {
    Event {
        v: VERSION,
        t,
        session: "s".into(),
        n,
        what,
        meta: Meta {
            language: "python".into(),
            model: "m.gguf".into(),
            engine: "llama.cpp".into(),
            trigger,
            lines: Lines::Single,
            latency_ms,
            evaluated_tokens: 3,
            chars: 10,
            cross_file: false,
            source,
            file: "0123456789abcdef".into(),
        },
    }
}

#[test]
fn the_stats_command_prints_the_figures_of_a_store() {
    let dir = scratch("command").join("infill");
    std::fs::create_dir_all(&dir).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let (auto, inv) = (Trigger::Automatic, Trigger::Invoked);
    let old = now - 30 * 24 * 3600 * 1000;
    let events = [
        event(old, 1, What::Shown, auto, 500, Source::Model),
        event(now - 9000, 2, What::Shown, auto, 100, Source::Model),
        event(now - 8000, 3, What::Shown, inv, 300, Source::Model),
        event(now - 7000, 4, What::Shown, auto, 0, Source::Cache),
        event(now - 6000, 5, What::Shown, auto, 200, Source::Model),
        event(
            now - 5000,
            3,
            What::Accepted {
                accepted_chars: 10,
                partial: false,
            },
            inv,
            300,
            Source::Model,
        ),
        event(
            now - 4000,
            3,
            What::Persisted {
                checkpoint_secs: 30,
                similarity: 0.8,
                deleted: false,
                early: None,
            },
            inv,
            300,
            Source::Model,
        ),
    ];
    let mut text: String = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect();
    text.push_str("{\"v\":1,\"t\":12"); // a torn last line
    std::fs::write(dir.join(stats_store::FILE), text).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_infill"))
            .arg("stats")
            .args(args)
            .arg("--dir")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let all = run(&["--since", "7d"]);
    assert!(all.contains("skipped 1 unreadable lines"), "{all}");
    assert!(
        all.contains("all: 4 shown, 1 accepted (25.0%; 0 in part only, 10 chars), 0 dismissed"),
        "{all}"
    );
    assert!(
        all.contains("30s 80.0% (1 measured, 0.0% deleted)"),
        "{all}"
    );
    assert!(all.contains("p50 200 ms, p90 300 ms"), "{all}");
    assert!(all.contains("from cache: 25.0% of shown"), "{all}");
    let everything = run(&[]);
    assert!(everything.contains("all: 5 shown"), "{everything}");
    let json: Value =
        serde_json::from_str(&run(&["--since", "7d", "--by", "trigger", "--json"])).unwrap();
    let groups = json["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["key"], "automatic");
    assert_eq!(groups[0]["shown"], 3);
    assert_eq!(groups[1]["key"], "invoked");
    assert_eq!(groups[1]["acceptanceRate"], 1.0);
    let report = dir.join("report.html");
    run(&["--html", report.to_str().unwrap()]);
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.matches("<svg").count() >= 2, "{html}");
    assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("href="));
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}
