//! End-to-end: the real `infill serve` binary, over stdio, with the real
//! default model (Qwen2.5-Coder-0.5B, fetched by `scripts/fetch-model`).

mod common;

use std::time::{Duration, Instant};

use common::{inline_params, model_lock, Server};
use serde_json::{json, Value};

/// Whether `code` contains `call`, ignoring spaces (`n-1` or `n - 1`).
fn calls(code: &str, call: &str) -> bool {
    let squash = |s: &str| s.replace(' ', "");
    squash(code).contains(&squash(call))
}

fn utf16_client() -> Value {
    json!({})
}

fn ready_server() -> Server {
    let (mut s, _) = Server::initialized(&[], utf16_client(), Value::Null);
    let status = s.wait_model();
    assert_eq!(status["model"], "ready", "{status}");
    s
}

#[test]
fn python_recursive_fibonacci_calls_itself() {
    let _g = model_lock();
    let mut s = ready_server();
    let uri = "file:///work/fib.py";
    let text = "def fibonacci(n):\n    if n < 2:\n        return n\n    return \n";
    s.open(uri, "python", text);
    let (insert, range) = s.inline(uri, 3, 11).expect("a completion");
    assert!(calls(&insert, "fibonacci(n - 1)"), "got {insert:?}");
    assert_eq!(range["start"], json!({"line": 3, "character": 11}));
    assert_eq!(range["end"], json!({"line": 3, "character": 11}));
    assert!(s.shutdown().success());
}

#[test]
fn typing_through_a_suggestion_is_answered_without_the_model() {
    let _g = model_lock();
    let mut s = ready_server();
    let uri = "file:///work/fib.py";
    s.open(
        uri,
        "python",
        "def fibonacci(n):\n    if n < 2:\n        return n\n    return \n",
    );
    let (first, _) = s.inline(uri, 3, 11).expect("a completion");
    assert!(first.len() > 3, "got {first:?}");
    // Type the first three characters of the suggestion.
    let typed = &first[..3];
    s.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2},
               "contentChanges": [{"range": {"start": {"line": 3, "character": 11},
                                              "end": {"line": 3, "character": 11}},
                                   "text": typed}]}),
    );
    let (rest, range) = s.inline(uri, 3, 14).expect("the rest");
    assert_eq!(format!("{typed}{rest}"), first);
    assert_eq!(range["start"], json!({"line": 3, "character": 14}));
    let status = s.request_ok("infill/status", json!({}));
    assert_eq!(
        (
            status["modelAnswers"].clone(),
            status["reusedAnswers"].clone()
        ),
        (json!(1), json!(1)),
        "{status}"
    );
    // Typing something else asks the model again.
    s.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 3},
               "contentChanges": [{"range": {"start": {"line": 3, "character": 14},
                                              "end": {"line": 3, "character": 14}},
                                   "text": "Q"}]}),
    );
    let _ = s.inline(uri, 3, 15);
    assert_eq!(s.request_ok("infill/status", json!({}))["modelAnswers"], 2);
}

fn change(s: &mut Server, uri: &str, version: i32, range: [u32; 4], text: &str) {
    s.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": version},
               "contentChanges": [{"range": {"start": {"line": range[0], "character": range[1]},
                                              "end": {"line": range[2], "character": range[3]}},
                                   "text": text}]}),
    );
}

#[test]
fn a_typo_and_its_backspace_are_answered_from_the_result_cache() {
    let _g = model_lock();
    let mut s = ready_server();
    let uri = "file:///work/add.py";
    s.open(uri, "python", "def add(a, b):\n    return \n");
    let first = s.inline(uri, 1, 11).map(|(t, _)| t);
    change(&mut s, uri, 2, [1, 11, 1, 11], "Z");
    let _ = s.inline(uri, 1, 12);
    change(&mut s, uri, 3, [1, 11, 1, 12], "");
    let again = s.inline(uri, 1, 11).map(|(t, _)| t);
    assert_eq!(again, first);
    let status = s.request_ok("infill/status", json!({}));
    assert_eq!(
        (
            status["modelAnswers"].clone(),
            status["cachedAnswers"].clone()
        ),
        (json!(2), json!(1)),
        "{status}"
    );
}

/// While a suggestion is shown, the one after it is computed as if it were
/// accepted (`completion.computeAhead`); accepting it is then answered
/// without the model.
#[test]
fn accepting_a_suggestion_is_answered_from_what_was_computed_ahead() {
    let _g = model_lock();
    let mut s = ready_server();
    let uri = "file:///work/area.py";
    s.open(
        uri,
        "python",
        "import math\n\n\ndef circle_area(radius):\n    return \n",
    );
    let (first, _) = s.inline(uri, 4, 11).expect("a completion");
    assert!(!first.contains('\n'), "a single line: {first:?}");
    let deadline = Instant::now() + Duration::from_secs(120);
    while s.request_ok("infill/status", json!({}))["computedAhead"] != 1 {
        assert!(Instant::now() < deadline, "nothing computed ahead");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The editor inserts the accepted suggestion and asks at its end.
    change(&mut s, uri, 2, [4, 11, 4, 11], &first);
    let end = 11 + first.encode_utf16().count() as u32;
    let _ = s.inline(uri, 4, end);
    let status = s.request_ok("infill/status", json!({}));
    assert_eq!(
        (
            status["modelAnswers"].clone(),
            status["cachedAnswers"].clone()
        ),
        (json!(1), json!(1)),
        "{status}"
    );
}

/// A pause at the end of a line of code computes the suggestion for the
/// line Enter begins (with the editor's auto-indent); pressing Enter is
/// then answered without the model.
#[test]
fn after_a_pause_at_a_line_end_enter_is_answered_from_what_was_computed_ahead() {
    let _g = model_lock();
    let mut s = ready_server();
    let uri = "file:///work/box.py";
    s.open(uri, "python", "def box_volume(w, h, d):\n    area = w * \n");
    // The line's last keystroke, then the pause.
    change(&mut s, uri, 2, [1, 15, 1, 15], "h");
    let deadline = Instant::now() + Duration::from_secs(120);
    while s.request_ok("infill/status", json!({}))["computedAhead"] != 1 {
        assert!(Instant::now() < deadline, "nothing computed ahead");
        std::thread::sleep(Duration::from_millis(100));
    }
    change(&mut s, uri, 3, [1, 16, 1, 16], "\n    ");
    let answer = s.inline(uri, 2, 4).map(|(t, _)| t);
    let status = s.request_ok("infill/status", json!({}));
    assert_eq!(
        (
            status["modelAnswers"].clone(),
            status["cachedAnswers"].clone()
        ),
        (json!(0), json!(1)),
        "{status}"
    );
    let answer = answer.expect("a suggestion on the new line");
    assert!(
        answer.contains('d'),
        "the volume uses the depth: {answer:?}"
    );
}

#[test]
fn a_pause_after_typing_warms_the_prompt_for_the_next_keystroke() {
    let _g = model_lock();
    let mut s = ready_server();
    let uri = "file:///work/warm.py";
    let text = "def add(a, b):\n    return a + b\n";
    s.open(uri, "python", text);
    let _ = s.inline(uri, 1, 16);
    // The user writes a new function and pauses inside its body.
    change(
        &mut s,
        uri,
        2,
        [2, 0, 2, 0],
        "\n\ndef scale(values, factor):\n    ",
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while s.request_ok("infill/status", json!({}))["warmStarts"] != 1 {
        assert!(Instant::now() < deadline, "no warm start");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The prompt is already evaluated: only its last token is left.
    let _ = s.inline(uri, 5, 4);
    let status = s.request_ok("infill/status", json!({}));
    let last = &status["lastRequest"];
    assert!(last["promptTokens"].as_u64().unwrap() > 20, "{status}");
    assert!(last["evaluatedTokens"].as_u64().unwrap() <= 1, "{status}");
}

#[test]
fn half_typed_name_is_completed_without_repeating_it() {
    let _g = model_lock();
    let mut s = ready_server();
    let uri = "file:///work/fib.py";
    s.open(
        uri,
        "python",
        "def fibonacci(n):\n    if n < 2:\n        return n\n    return fib\n",
    );
    let (insert, _) = s.inline(uri, 3, 14).expect("a completion");
    assert!(insert.starts_with("onacci("), "got {insert:?}");
}

#[test]
fn warm_cache_gives_the_same_completion_as_a_cold_one() {
    let _g = model_lock();
    let mut s = ready_server();
    let uri = "file:///work/area.py";
    let text = "import math\n\n\ndef circle_area(radius):\n    return \n";
    s.open(uri, "python", text);
    let cold = s.inline(uri, 4, 11).expect("a completion").0;
    // Change the end of the file so that the next prompt shares a prefix
    // with this one, then restore it: the third request reuses the cache.
    let edit = |s: &mut Server, version: i32, text: &str| {
        s.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version},
                   "contentChanges": [{"text": text}]}),
        );
    };
    edit(&mut s, 2, "import math\n\n\ndef circle_area(radius):\n    return \n\n\ndef square_area(side):\n    return side * side\n");
    let _ = s.inline(uri, 4, 11);
    edit(&mut s, 3, text);
    let warm = s.inline(uri, 4, 11).expect("a completion").0;
    assert_eq!(warm, cold);
    assert!(calls(&cold, "math.pi"), "got {cold:?}");
}

#[test]
fn java_method_gets_its_return() {
    let _g = model_lock();
    let mut s = ready_server();
    let uri = "file:///work/Geometry.java";
    let text = "public class Geometry {\n    public static int area(int width, int height) {\n        int result = width * height;\n        \n    }\n}\n";
    s.open(uri, "java", text);
    let (insert, _) = s.inline(uri, 3, 8).expect("a completion");
    assert!(
        insert.trim_start().starts_with("return result;"),
        "got {insert:?}"
    );
}

#[test]
fn positions_after_non_ascii_text_use_the_negotiated_encoding() {
    let _g = model_lock();
    // Line 2 holds an emoji (2 UTF-16 units, 4 UTF-8 bytes) before the cursor.
    let text = "names = [\"Zoë\", \"李雷\", \"Ana\"]\nfor name in names:\n    print(\"👋 \" + na";
    let line = "    print(\"👋 \" + na";
    let utf16 = line.encode_utf16().count() as u32;
    let utf8 = line.len() as u32;
    assert_ne!(utf16, utf8);

    for (caps, col, enc) in [
        (json!({}), utf16, "utf-16"),
        (
            json!({"general": {"positionEncodings": ["utf-8", "utf-16"]}}),
            utf8,
            "utf-8",
        ),
    ] {
        let (mut s, init) = Server::initialized(&[], caps, Value::Null);
        assert_eq!(init["capabilities"]["positionEncoding"], enc);
        assert_eq!(s.wait_model()["model"], "ready");
        let uri = "file:///work/greet.py";
        // Open without the last two characters, then type them with an
        // incremental edit positioned in the negotiated encoding.
        s.open(uri, "python", &text[..text.len() - 2]);
        s.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": 2},
                   "contentChanges": [{"range": {"start": {"line": 2, "character": col - 2},
                                                  "end": {"line": 2, "character": col - 2}},
                                       "text": "na"}]}),
        );
        assert_eq!(s.document_text(uri), text);
        let (insert, range) = s.inline(uri, 2, col).expect("a completion");
        assert_eq!(
            range["start"],
            json!({"line": 2, "character": col}),
            "{enc}"
        );
        assert!(insert.starts_with("me"), "{enc}: got {insert:?}");
    }
}

#[test]
fn completion_request_returns_one_filterable_item() {
    let _g = model_lock();
    let mut s = ready_server();
    let uri = "file:///work/fib.py";
    s.open(
        uri,
        "python",
        "def fibonacci(n):\n    if n < 2:\n        return n\n    return fib",
    );
    let result = s.request_ok(
        "textDocument/completion",
        json!({"textDocument": {"uri": uri}, "position": {"line": 3, "character": 14}}),
    );
    let items = result["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{result}");
    let item = &items[0];
    let edit = &item["textEdit"];
    assert_eq!(edit["range"]["start"], json!({"line": 3, "character": 11}));
    assert_eq!(edit["range"]["end"], json!({"line": 3, "character": 14}));
    let new_text = edit["newText"].as_str().unwrap();
    assert!(new_text.starts_with("fibonacci("), "got {new_text:?}");
    assert_eq!(item["filterText"], edit["newText"]);
}

/// A prompt long enough that evaluating it takes seconds on two cores.
fn long_python_file() -> String {
    let mut text = String::new();
    for i in 0..120 {
        text.push_str(&format!(
            "def helper_{i}(values, factor={i}):\n    \"\"\"Scale the values by {i}.\"\"\"\n    return [v * factor + {i} for v in values]\n\n"
        ));
    }
    text.push_str("def total(values):\n    ");
    text
}

#[test]
fn cancel_request_is_answered_and_frees_the_engine() {
    let _g = model_lock();
    let mut s = ready_server();
    let uri = "file:///work/long.py";
    let text = long_python_file();
    let last = text.lines().count() as u32 - 1;
    s.open(uri, "python", &text);

    let id = s.request_async("textDocument/inlineCompletion", inline_params(uri, last, 4));
    std::thread::sleep(Duration::from_millis(300));
    s.notify("$/cancelRequest", json!({"id": id}));
    let resp = s.response(id);
    assert_eq!(resp["error"]["code"], -32800, "{resp}");

    // A newer request for the same document supersedes one in flight.
    let old = s.request_async("textDocument/inlineCompletion", inline_params(uri, last, 4));
    std::thread::sleep(Duration::from_millis(300));
    let small = "file:///work/small.py";
    s.open(small, "python", "def add(a, b):\n    return ");
    let newer = s.request_async("textDocument/inlineCompletion", inline_params(uri, last, 4));
    let old_resp = s.response(old);
    assert_eq!(old_resp["error"]["code"], -32800, "{old_resp}");
    let newer_resp = s.response(newer);
    assert!(newer_resp.get("result").is_some(), "{newer_resp}");

    // The engine is free: a small request is served promptly.
    let started = Instant::now();
    let (insert, _) = s.inline(small, 1, 11).expect("a completion");
    assert!(
        insert.contains('a') && insert.contains('b'),
        "got {insert:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn missing_model_is_reported_once_and_answers_are_empty() {
    let (mut s, _) = Server::initialized(
        &["--model", "/nonexistent/model.gguf"],
        json!({}),
        Value::Null,
    );
    let msg = s
        .wait_for(|m| m["method"] == "window/showMessage")
        .expect("a showMessage");
    assert_eq!(msg["params"]["type"], 1, "{msg}");
    let text = msg["params"]["message"].as_str().unwrap();
    assert!(
        text.contains("/nonexistent/model.gguf") && text.contains("fetch-model"),
        "{text}"
    );

    let uri = "file:///work/a.py";
    s.open(uri, "python", "def f():\n    return ");
    for _ in 0..2 {
        assert_eq!(s.inline(uri, 1, 11), None);
        let r = s.request_ok(
            "textDocument/completion",
            json!({"textDocument": {"uri": uri}, "position": {"line": 1, "character": 11}}),
        );
        assert_eq!(r["items"], json!([]));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        s.drain_notifications("window/showMessage").is_empty(),
        "told only once"
    );
    assert_eq!(s.request_ok("infill/status", json!({}))["model"], "failed");
    assert!(s.shutdown().success());
}

#[test]
fn a_file_that_is_not_gguf_is_reported() {
    let dir = std::env::temp_dir().join(format!("infill-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fake = dir.join("weights.gguf");
    std::fs::write(&fake, b"<html>not a model</html>").unwrap();
    let (mut s, _) =
        Server::initialized(&["--model", fake.to_str().unwrap()], json!({}), Value::Null);
    let msg = s
        .wait_for(|m| m["method"] == "window/showMessage")
        .expect("a showMessage");
    assert!(
        msg["params"]["message"]
            .as_str()
            .unwrap()
            .contains("not a GGUF"),
        "{msg}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn invalid_utf8_and_odd_text_do_not_break_the_server() {
    let _g = model_lock();
    let mut s = ready_server();
    // A didOpen whose body is not UTF-8: a parse error, nothing else.
    let mut body = br#"{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":{"uri":"file:///work/bad.py","languageId":"python","version":1,"text":"x = '"#.to_vec();
    body.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    body.extend_from_slice(br#"'"}}}"#);
    s.send_raw(&body);
    // Malformed messages get JSON-RPC errors, and the server reads on.
    s.send_raw(b"{this is not json");
    let err = s
        .wait_for(|m| m["error"]["code"] == -32700)
        .expect("a parse error");
    assert_eq!(err["id"], Value::Null);
    s.send_raw(br#"{"jsonrpc":"2.0","id":77}"#);
    let err = s
        .wait_for(|m| m["id"] == 77)
        .expect("an invalid request error");
    assert_eq!(err["error"]["code"], -32600);
    let r = s.request("textDocument/inlineCompletion", json!({"textDocument": 5}));
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let r = s.request("no/suchMethod", json!({}));
    assert_eq!(r["error"]["code"], -32601, "{r}");
    // The repaired didOpen went through, with U+FFFD where the bytes were bad.
    assert!(s.document_text("file:///work/bad.py").contains('\u{fffd}'));
    // A file as an editor decodes non-UTF-8 bytes: replacement characters, NULs.
    let uri = "file:///work/latin1.py";
    let text = "name = 'caf\u{fffd}'\u{0}\ndef greet(who):\n    return 'hello ' + ";
    s.open(uri, "python", text);
    assert_eq!(s.document_text(uri), text);
    let r = s.request("textDocument/inlineCompletion", inline_params(uri, 2, 22));
    assert!(r.get("result").is_some(), "{r}");
    assert_eq!(s.request_ok("infill/status", json!({}))["model"], "ready");
    // Requests about documents never opened get a clear error.
    let r = s.request(
        "textDocument/inlineCompletion",
        inline_params("file:///nope.py", 0, 0),
    );
    assert!(
        r["error"]["message"].as_str().unwrap().contains("not open"),
        "{r}"
    );
    assert!(s.shutdown().success());
}

#[test]
fn bad_settings_are_reported_and_good_ones_applied() {
    let (mut s, _) = Server::initialized(
        &["--model", "/nonexistent/x.gguf"],
        json!({}),
        json!({"model": {"contextSize": "huge", "favouriteColour": "blue"}, "completion": {"maxTokens": 16}}),
    );
    let msg = s
        .show_message_containing("contextSize")
        .expect("an error about contextSize");
    assert_eq!(msg["params"]["type"], 1);
    s.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"completion": {"maxTokens": -3}}}),
    );
    let msg = s
        .show_message_containing("maxTokens")
        .expect("an error about maxTokens");
    assert_eq!(msg["params"]["type"], 1);
    // Still serving.
    assert!(s
        .request("infill/status", json!({}))
        .get("result")
        .is_some());
    // A second initialize is an error.
    let r = s.request("initialize", json!({"capabilities": {}}));
    assert!(r.get("error").is_some(), "{r}");
    assert!(s.shutdown().success());
}

#[test]
fn headless_complete_uses_the_same_pipeline() {
    let _g = model_lock();
    let dir = std::env::temp_dir().join(format!("infill-headless-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("fib.py");
    let text = "def fibonacci(n):\n    if n < 2:\n        return n\n    return \n";
    std::fs::write(&file, text).unwrap();
    let model = common::model_path();
    let run = |extra: &[&str], stdin: Option<&str>| {
        use std::io::Write;
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_infill"));
        cmd.arg("complete")
            .arg(format!("{}:4:12", file.display()))
            .args(["--threads", "2", "--model"])
            .arg(&model)
            .args(extra)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        } else {
            drop(child.stdin.take());
        }
        child.wait_with_output().unwrap()
    };
    let out = run(&[], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(calls(&first, "fibonacci(n - 1)"), "got {first:?}");
    let out = run(&["--stdin"], Some(text));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        first,
        "stdin and file agree"
    );
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_infill"))
        .args(["complete", &format!("{}:99:1", file.display())])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("past the end"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn moved_cache_tokens_are_shifted_and_made_exact_again_when_moves_are_turned_off() {
    let _g = model_lock();
    let (mut s, _) = Server::initialized(
        &[],
        utf16_client(),
        // Without anchors, so that the new line moves the suffix.
        json!({"completion": {"moveCachedTokens": true, "anchoredLines": 0}, "context": {"crossFile": false}}),
    );
    assert_eq!(s.wait_model()["model"], "ready");
    let uri = "file:///work/shapes.py";
    // A suffix long enough (well over `reuse::MIN_MOVED_RUN` tokens) to be moved.
    let rest = "\n\ndef square_area(side):\n    \"\"\"The area of a square.\"\"\"\n    return side * side\n\n\ndef rectangle_area(width, height):\n    \"\"\"The area of a rectangle.\"\"\"\n    return width * height\n\n\ndef triangle_area(base, height):\n    \"\"\"The area of a triangle.\"\"\"\n    return base * height / 2\n";
    let text = format!(
        "import math\n\n\ndef circle_area(radius):\n    area = math.pi * radius ** 2\n    {rest}"
    );
    s.open(uri, "python", &text);
    let _ = s.inline(uri, 5, 4);
    // Enter after the assignment: a new line, the suffix moves right.
    change(&mut s, uri, 2, [5, 4, 5, 4], "print(area)\n    ");
    let moved = s.inline(uri, 6, 4).map(|a| a.0);
    let last = s.request_ok("infill/status", json!({}))["lastRequest"].clone();
    assert!(last["movedTokens"].as_u64().unwrap_or(0) > 32, "{last}");
    assert!(
        last["evaluatedTokens"].as_u64().unwrap_or(999) < 32,
        "{last}"
    );
    assert!(
        moved.is_some_and(|m| !m.trim().is_empty()),
        "an answer after the move"
    );
    // Moves off: the moved tokens are evaluated again, and the answer is
    // the one a cache that never moved gives.
    s.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"completion": {"moveCachedTokens": false}}}),
    );
    let exact = s.inline(uri, 6, 4).map(|a| a.0);
    let last = s.request_ok("infill/status", json!({}))["lastRequest"].clone();
    assert!(last["evaluatedTokens"].as_u64().unwrap_or(0) > 32, "{last}");
    // Change the first line and restore it: everything after it is
    // evaluated from scratch.
    change(&mut s, uri, 3, [0, 0, 0, 0], "#");
    let _ = s.inline(uri, 6, 4);
    change(&mut s, uri, 4, [0, 0, 0, 1], "");
    s.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"completion": {"maxTokens": 63}}}),
    );
    s.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"completion": {"maxTokens": 64}}}),
    );
    let fresh = s.inline(uri, 6, 4).map(|a| a.0);
    assert_eq!(exact, fresh);
    assert!(s.shutdown().success());
}

/// A new line below the prompt's anchor evaluates only the lines since
/// it, not the suffix again (`session::anchor`), and answers as a cold
/// cache does for the same prompt.
#[test]
fn a_new_line_below_the_anchor_evaluates_only_the_lines_since_it() {
    let _g = model_lock();
    let mut s = ready_server();
    let uri = "file:///work/anchored.py";
    let rest = "\n\ndef square_area(side):\n    \"\"\"The area of a square.\"\"\"\n    return side * side\n\n\ndef rectangle_area(width, height):\n    \"\"\"The area of a rectangle.\"\"\"\n    return width * height\n\n\ndef triangle_area(base, height):\n    \"\"\"The area of a triangle.\"\"\"\n    return base * height / 2\n";
    let text = format!(
        "import math\n\n\ndef circle_area(radius):\n    area = math.pi * radius ** 2{rest}"
    );
    s.open(uri, "python", &text);
    // Asked at the end of the line: the anchor is its start.
    let _ = s.inline(uri, 4, 32);
    // Enter, and asked on the new line.
    change(&mut s, uri, 2, [4, 32, 4, 32], "\n    ");
    let anchored = s.inline(uri, 5, 4).map(|a| a.0);
    let last = s.request_ok("infill/status", json!({}))["lastRequest"].clone();
    assert!(last["promptTokens"].as_u64().unwrap_or(0) > 60, "{last}");
    assert!(
        last["evaluatedTokens"].as_u64().unwrap_or(999) < 24,
        "only the lines since the anchor: {last}"
    );
    // The model loaded again (a cold KV cache), the anchor kept: the same
    // prompt evaluated whole gives the same answer.
    s.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"model": {"keptPrompts": 1}}}),
    );
    assert_eq!(s.wait_model()["model"], "ready");
    let cold = s.inline(uri, 5, 4).map(|a| a.0);
    let last = s.request_ok("infill/status", json!({}))["lastRequest"].clone();
    assert_eq!(last["evaluatedTokens"], last["promptTokens"], "{last}");
    assert_eq!(anchored, cold);
    // Without anchors a new line evaluates the suffix again.
    s.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"completion": {"anchoredLines": 0}}}),
    );
    change(&mut s, uri, 3, [5, 4, 5, 4], "pass\n    ");
    let _ = s.inline(uri, 6, 4);
    let last = s.request_ok("infill/status", json!({}))["lastRequest"].clone();
    assert!(
        last["evaluatedTokens"].as_u64().unwrap_or(0) > 40,
        "the suffix again: {last}"
    );
    assert!(s.shutdown().success());
}

/// The in-process engine on the test model and two threads, with
/// `adjust`'s settings, once it is ready.
fn ready_engine(
    adjust: impl FnOnce(&mut infill::config::Config),
) -> (
    infill::config::Config,
    std::sync::Arc<dyn infill::engine::Engine>,
) {
    let mut config = infill::config::Config::default();
    config.model.path = Some(common::model_path());
    config.model.threads = Some(2);
    adjust(&mut config);
    let engine = infill::engine::start(&config);
    assert!(matches!(
        engine.wait_ready(Duration::from_secs(300)),
        infill::engine::EngineState::Ready { .. }
    ));
    (config, engine)
}

/// The cursor's context at char `cursor` of the Python file `text`.
fn python_cursor(
    text: &str,
    cursor: usize,
    config: &infill::config::Config,
) -> infill::completion::CursorContext {
    cursor_in(infill::text::syntax::Language::Python, text, cursor, config)
}

/// The cursor's context at char `cursor` of `text`, a `language` file.
fn cursor_in(
    language: infill::text::syntax::Language,
    text: &str,
    cursor: usize,
    config: &infill::config::Config,
) -> infill::completion::CursorContext {
    let rope = ropey::Rope::from_str(text);
    let syntax = infill::text::syntax::SyntaxTree::new(language, &rope);
    infill::completion::cursor_context(&rope, syntax.as_ref(), cursor, config)
}

/// The blanks an answer starts with before its text, which must be on the
/// cursor's line.
fn blanks_before_text_on_the_line(answer: &str) -> usize {
    let line = answer.lines().next().unwrap_or("");
    assert!(!line.trim().is_empty(), "no text on the line: {answer:?}");
    line.len() - line.trim_start().len()
}

/// The engine's side of the second try (`completion.secondTry`): told to
/// avoid the line it chose, the real model chooses another start and still
/// answers.
#[test]
fn the_model_takes_another_start_when_told_to_avoid_one() {
    use infill::engine::CancelFlag;
    let _g = model_lock();
    let (config, engine) = ready_engine(|_| {});
    let text = "def mean(values):\n    total = 0\n    \n    for v in values:\n        total += v\n    return total / len(values)\n";
    let ctx = python_cursor(text, 36, &config);
    assert_eq!(ctx.line_prefix, "    ");
    let req = ctx.engine_request(&config);
    let first = engine.complete(req.clone(), CancelFlag::default()).unwrap();
    let chosen = first.text.lines().map(str::trim).find(|l| !l.is_empty());
    let chosen = chosen.unwrap_or_else(|| panic!("no answer: {:?}", first.text));
    let mut again = req;
    again.avoid = Some(chosen.to_string());
    let second = engine.complete(again, CancelFlag::default()).unwrap();
    let answer = second.text.trim_start();
    assert!(
        !answer.is_empty(),
        "the answer may not end before it has text"
    );
    assert!(
        !answer.starts_with(chosen),
        "{chosen:?} was to be avoided, got {answer:?}"
    );
}

/// The engine's side of the second try after blanks alone
/// (`EngineRequest::require_content` with `indent_to_type`): at a blank
/// line's start, the real model writes the line's indentation and then
/// text on that line, not a line break and not blanks to no end.
#[test]
fn the_model_writes_text_after_the_indentation_it_may_type() {
    use infill::engine::CancelFlag;
    let _g = model_lock();
    let (config, engine) = ready_engine(|_| {});
    let text = "def mean(values):\n    total = 0\n\n    for v in values:\n        total += v\n    return total / len(values)\n";
    let ctx = python_cursor(text, 32, &config);
    assert_eq!((ctx.line_prefix.as_str(), ctx.indent_to_type()), ("", 4));
    let mut req = ctx.engine_request(&config);
    req.require_content = true;
    req.indent_to_type = ctx.indent_to_type();
    let answer = engine.complete(req, CancelFlag::default()).unwrap().text;
    let blanks = blanks_before_text_on_the_line(&answer);
    assert_eq!(blanks, 4, "the body's indentation first: {answer:?}");
}

/// The engine's side of a second try at a fitting indentation
/// (`EngineRequest::indents`, from `CursorContext::indents_to_type`): at a
/// blank line's start after `if x < low:`, the real model's text starts
/// at the body's indentation, the one level Python accepts there.
#[test]
fn the_model_writes_at_an_indentation_the_code_around_allows() {
    use infill::engine::CancelFlag;
    let _g = model_lock();
    let (config, engine) = ready_engine(|_| {});
    let text = "def clamp(x, low, high):\n    if x < low:\n\n    if x > high:\n        return high\n    return x\n";
    let ctx = python_cursor(text, 41, &config);
    assert_eq!(
        (ctx.line_prefix.as_str(), ctx.indents_to_type()),
        ("", vec![8])
    );
    let mut req = ctx.engine_request(&config);
    req.require_content = true;
    req.indents = ctx.indents_to_type();
    req.indent_to_type = 8;
    let answer = engine.complete(req, CancelFlag::default()).unwrap().text;
    let blanks = blanks_before_text_on_the_line(&answer);
    assert_eq!(blanks, 8, "the body's indentation: {answer:?}");
}

/// The engine's side of a second try barring comments
/// (`EngineRequest::code_first`, every second try): on the blank line
/// between two methods the real model's first choice is a comment about
/// the next one; barred from comments, it writes code there.
#[test]
fn a_request_for_code_first_gets_code_where_the_model_would_comment() {
    use infill::engine::CancelFlag;
    let _g = model_lock();
    let (config, engine) = ready_engine(|_| {});
    let text = "class Shapes {\n    // The area of a circle of radius r.\n    static double circleArea(double r) {\n        return Math.PI * r * r;\n    }\n\n    \n    static double squareArea(double side) {\n        return side * side;\n    }\n}\n";
    let cursor = text
        .find("\n    \n")
        .map(|at| at + 5)
        .expect("the blank line");
    let ctx = cursor_in(infill::text::syntax::Language::Java, text, cursor, &config);
    assert_eq!(ctx.line_prefix, "    ");
    let req = ctx.engine_request(&config);
    let first = engine.complete(req.clone(), CancelFlag::default()).unwrap();
    assert!(
        first.text.trim_start().starts_with("//"),
        "the model's own choice is a comment: {:?}",
        first.text
    );
    let mut again = req;
    again.code_first = true;
    let second = engine.complete(again, CancelFlag::default()).unwrap();
    let answer = second.text.trim_start();
    assert!(
        !answer.is_empty() && !answer.starts_with("//") && !answer.starts_with("/*"),
        "code first: {:?}",
        second.text
    );
}

/// Prompts of other documents are kept in the KV cache
/// (`model.keptPrompts`): returning to a document evaluates only its last
/// token and gives the answer it gave before; switching among more
/// documents than are kept evicts the one kept longest, which is then
/// evaluated afresh with the answer a cold cache gives.
#[test]
fn returning_to_a_document_reuses_its_kept_prompt_and_the_oldest_is_evicted() {
    use infill::engine::{CancelFlag, EngineRequest};
    let _g = model_lock();
    let (config, engine) = ready_engine(|c| c.model.kept_prompts = 1);
    // Each more than `parked::MIN_KEPT` tokens.
    let preamble = "import math\n\n\ndef square(x):\n    \"\"\"x times itself.\"\"\"\n    return x * x\n\n\ndef cube(x):\n    \"\"\"x times itself, times itself.\"\"\"\n    return x * x * x\n\n\n";
    let documents = [
        ("a.py", format!("{preamble}def mean(values):\n    \"\"\"The arithmetic mean of a list of numbers.\"\"\"\n    total = 0\n    for v in values:\n        total += v\n    return ")),
        ("b.py", format!("{preamble}class Stack:\n    \"\"\"A last-in, first-out stack of items.\"\"\"\n\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n        self.items.append(item)\n\n    def pop(self):\n        return ")),
        ("c.py", format!("{preamble}def read_lines(path):\n    \"\"\"The lines of the text file at path, without line ends.\"\"\"\n    with open(path) as f:\n        return ")),
    ];
    let request = |i: usize| -> EngineRequest {
        let (name, text) = &documents[i];
        let rope = ropey::Rope::from_str(text);
        let syntax =
            infill::text::syntax::SyntaxTree::new(infill::text::syntax::Language::Python, &rope);
        let ctx =
            infill::completion::cursor_context(&rope, syntax.as_ref(), rope.len_chars(), &config);
        let mut req = ctx.engine_request(&config);
        req.document = Some(name.to_string());
        req
    };
    let ask = |i: usize| {
        let out = engine
            .complete(request(i), CancelFlag::default())
            .expect("an answer");
        (out.text.clone(), out.evaluated_tokens, out.prompt_tokens)
    };
    let (a, evaluated, prompt) = ask(0);
    assert!(
        prompt > 64 && evaluated == prompt,
        "{evaluated} of {prompt}"
    );
    let (b, evaluated, _) = ask(1);
    assert!(evaluated > 32, "b is new: {evaluated}");
    // Back to a: its prompt was kept.
    let (again, evaluated, _) = ask(0);
    assert!(evaluated <= 1, "a was kept: {evaluated} evaluated");
    assert_eq!(again, a);
    // c: a is kept, b (kept longest) goes.
    let _ = ask(2);
    let (again, evaluated, _) = ask(0);
    assert!(evaluated <= 1, "a was kept: {evaluated} evaluated");
    assert_eq!(again, a);
    let (again, evaluated, _) = ask(1);
    assert!(evaluated > 32, "b was evicted: {evaluated} evaluated");
    assert_eq!(again, b, "evaluated afresh, as the first time");
}
