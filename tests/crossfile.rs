//! Cross-file context end to end: the real server indexes a small fixture
//! repository, and `infill/context` shows what retrieval would give the
//! model; one test completes with the real model.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Server;
use serde_json::{json, Value};

/// A fixture workspace in a fresh temp folder, with a folder outside it
/// that links point to.
struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn root(&self) -> PathBuf {
        self.dir.join("repo")
    }
    fn uri(&self, rel: &str) -> String {
        format!("file://{}", self.root().join(rel).display())
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn write(path: &Path, text: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn fixture(name: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!("infill-xfile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let f = Fixture { dir };
    let root = f.root();
    write(
        &root.join("pkg/geometry.py"),
        b"\"\"\"Shapes.\"\"\"\n\n\ndef polygon_area(points):\n    \"\"\"Shoelace formula.\"\"\"\n    total = 0.0\n    for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1]):\n        total += x1 * y2 - x2 * y1\n    return abs(total) / 2\n\n\ndef visible_helper_marker():\n    return 1\n",
    );
    write(
        &root.join("pkg/widgets.py"),
        b"DEFAULT_SCALE_FACTOR_QUUX = 2.5\n\n\ndef frobnicate_widget_quux(widget, scale_factor):\n    return widget.resize(scale_factor)\n",
    );
    write(&root.join(".gitignore"), b"build/\nignored_module.py\n");
    write(
        &root.join("build/generated.py"),
        b"def generated_helper_marker():\n    pass\n",
    );
    write(
        &root.join("ignored_module.py"),
        b"def ignored_helper_marker():\n    pass\n",
    );
    write(&root.join(".env"), b"SECRET_TOKEN_MARKER=hunter2\n");
    write(&root.join("config/server.pem"), b"pem_secret_marker\n");
    write(&root.join("keys/id_rsa"), b"rsa_secret_marker\n");
    let mut big = b"def huge_helper_marker():\n    pass\n".to_vec();
    big.resize(1_100_000, b'#');
    write(&root.join("big_module.py"), &big);
    write(&root.join("blob.dat"), b"binary_blob_marker\0\x01\x02");
    write(
        &f.dir.join("outside/secret_lib.py"),
        b"def outside_helper_marker():\n    pass\n",
    );
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(
            f.dir.join("outside/secret_lib.py"),
            root.join("linked_file.py"),
        )
        .unwrap();
        std::os::unix::fs::symlink(f.dir.join("outside"), root.join("linked_dir")).unwrap();
    }
    f
}

fn start(f: &Fixture, args: &[&str]) -> Server {
    let mut s = Server::start(args);
    s.request_ok(
        "initialize",
        json!({
            "processId": null,
            "rootUri": format!("file://{}", f.root().display()),
            "workspaceFolders": [{"uri": format!("file://{}", f.root().display()), "name": "fixture-repo"}],
            "capabilities": {"window": {"workDoneProgress": true}},
        }),
    );
    s.notify("initialized", json!({}));
    s
}

fn context(s: &mut Server, uri: &str, line: u32, character: u32) -> Value {
    s.request_ok(
        "infill/context",
        json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}),
    )
}

fn wait_indexed(s: &mut Server, uri: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while context(s, uri, 0, 0)["indexingDone"] != true {
        assert!(Instant::now() < deadline, "indexing did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn snippets(v: &Value) -> Vec<(String, String)> {
    v["snippets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["path"].as_str().unwrap().to_string(),
                s["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Waits (up to 5 s: the buffer is re-indexed after a pause) for `pred`.
fn eventually(
    s: &mut Server,
    uri: &str,
    line: u32,
    ch: u32,
    pred: impl Fn(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = snippets(&context(s, uri, line, ch));
        if pred(&got) || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn defining_chunk_of_a_cross_file_call_is_retrieved_with_progress() {
    let f = fixture("call");
    let mut s = start(&f, &["--model", "/nonexistent/model.gguf"]);
    let main = f.uri("app/main.py");
    let text =
        "from pkg.geometry import polygon_area\n\n\ndef room(corners):\n    return polygon_area(";
    s.open(&main, "python", text);
    wait_indexed(&mut s, &main);
    let got = snippets(&context(&mut s, &main, 4, 24));
    // The signature first (a definition), and the function's whole chunk.
    assert_eq!(
        got[0],
        ("pkg/geometry.py".into(), "def polygon_area(points):".into())
    );
    assert!(
        got.iter()
            .any(|(p, t)| p == "pkg/geometry.py" && t.contains("return abs(total) / 2")),
        "{got:?}"
    );
    // Indexing reported begin, percentage and end through $/progress
    // (the end is sent after the index is done: it may still be on its way;
    // the model's token ends too, often first, so only the index's counts).
    let mut progress = s.drain_notifications("$/progress");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !progress
        .iter()
        .any(|p| p["params"]["token"] == "infill/index" && p["params"]["value"]["kind"] == "end")
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
        progress.extend(s.drain_notifications("$/progress"));
    }
    let kinds: Vec<&str> = progress
        .iter()
        .filter(|p| p["params"]["token"] == "infill/index")
        .filter_map(|p| p["params"]["value"]["kind"].as_str())
        .collect();
    assert_eq!(kinds.first(), Some(&"begin"), "{progress:?}");
    assert!(kinds.contains(&"end"), "{kinds:?}");
    assert!(progress
        .iter()
        .any(|p| p["params"]["value"]["percentage"].as_u64() == Some(100)));
    s.shutdown();
}

#[test]
fn unsaved_edits_change_what_is_retrieved() {
    let f = fixture("edit");
    let mut s = start(&f, &["--model", "/nonexistent/model.gguf"]);
    let main = f.uri("app/main.py");
    let geo = f.uri("pkg/geometry.py");
    s.open(
        &main,
        "python",
        "from pkg import geometry\n\nx = geometry.polygon_perimeter(",
    );
    wait_indexed(&mut s, &main);
    let before = snippets(&context(&mut s, &main, 2, 31));
    assert!(!before.iter().any(|(_, t)| t.contains("polygon_perimeter")));
    // Rename the function in an open, unsaved buffer of the other file.
    let disk = std::fs::read_to_string(f.root().join("pkg/geometry.py")).unwrap();
    s.open(&geo, "python", &disk);
    s.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": geo, "version": 2},
            "contentChanges": [{
                "range": {"start": {"line": 3, "character": 4}, "end": {"line": 3, "character": 16}},
                "text": "polygon_perimeter"
            }]
        }),
    );
    let after = eventually(&mut s, &main, 2, 31, |g| {
        g.first()
            .is_some_and(|(_, t)| t == "def polygon_perimeter(points):")
    });
    assert_eq!(
        after[0],
        (
            "pkg/geometry.py".into(),
            "def polygon_perimeter(points):".into()
        ),
        "{after:?}"
    );
    assert!(!after.iter().any(|(_, t)| t.contains("def polygon_area")));
    // The file on disk is untouched; closing the buffer brings the disk version back.
    s.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": geo}}),
    );
    let closed = eventually(&mut s, &main, 2, 31, |g| {
        !g.iter().any(|(_, t)| t.contains("polygon_perimeter"))
    });
    assert!(
        !closed.iter().any(|(_, t)| t.contains("polygon_perimeter")),
        "{closed:?}"
    );
    s.shutdown();
}

#[test]
fn ignored_secret_oversized_binary_and_linked_files_are_never_indexed() {
    let f = fixture("rules");
    let mut s = start(&f, &["--model", "/nonexistent/model.gguf"]);
    let main = f.uri("app/main.py");
    let markers = [
        "visible_helper_marker",
        "generated_helper_marker",
        "ignored_helper_marker",
        "SECRET_TOKEN_MARKER",
        "pem_secret_marker",
        "rsa_secret_marker",
        "huge_helper_marker",
        "binary_blob_marker",
        "outside_helper_marker",
    ];
    let text = format!("x = [{}]\n", markers.join(", "));
    s.open(&main, "python", &text);
    wait_indexed(&mut s, &main);
    let got = snippets(&context(&mut s, &main, 1, 0));
    let paths: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
    // The control: an ordinary file with its marker is found.
    assert!(paths.contains(&"pkg/geometry.py"), "{paths:?}");
    for (p, t) in &got {
        assert_eq!(p, "pkg/geometry.py", "{p} should not be indexed");
        assert!(!t.contains("hunter2"));
    }
    let r = context(&mut s, &main, 1, 0);
    // geometry.py and widgets.py: nothing else (main.py is not on disk).
    assert_eq!(r["indexedFiles"], 2, "{r}");
    s.shutdown();
}

#[test]
fn cross_file_completion_with_the_real_model() {
    let _lock = common::model_lock();
    let f = fixture("model");
    let mut s = start(&f, &[]);
    assert_eq!(s.wait_model()["model"], "ready");
    let main = f.uri("app/main.py");
    let text = "from pkg import widgets\n\n\ndef enlarge(w):\n    return widgets.frobnicate_widget_quux(w, widgets.DEFAULT_";
    s.open(&main, "python", text);
    wait_indexed(&mut s, &main);
    let col = text.lines().last().unwrap().chars().count() as u32;
    let (answer, _) = s.inline(&main, 4, col).expect("a completion");
    // Only the other file has this constant.
    assert!(answer.starts_with("SCALE_FACTOR_QUUX"), "{answer:?}");
    s.shutdown();
}
