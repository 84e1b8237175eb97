//! A short fixed slice of the replay of real development
//! (`scripts/bench-replay`): the difference between marshmallow 3.23.1 and
//! 3.23.2 (PyPI; `scripts/setup` fetches both with `scripts/fetch-replay
//! marshmallow`) made in the older one against the real binary and model:
//! typed keystroke by keystroke with automatic completion requests and
//! cancellations, pasted, saved, closed, deleted and changed on disk. Fails
//! if any of the replay's end checks fails: the open documents, the files
//! on disk and the workspace index must equal the new version, every
//! request must be answered, none with an error, and the server must log
//! no error and exit cleanly.

mod common;

use std::process::Command;

use serde_json::Value;

#[test]
fn a_short_replay_of_marshmallow_ends_at_the_new_version() {
    let _model = common::model_lock();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bench-replay");
    let out = Command::new("python3")
        .arg(script)
        .args(["--pair", "marshmallow", "--seed", "7", "--seconds", "15"])
        .args(["--max-files", "3", "--max-keystrokes", "120"])
        .args(["--pause-scale", "0.15"])
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_infill"))
        .arg("--model")
        .arg(common::model_path())
        .arg("--json")
        .output()
        .expect("run python3 scripts/bench-replay");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/bench-replay failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // What it did, so that a replay that did nothing cannot pass.
    let report: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON report in the output:\n{stdout}\n{stderr}"));
    let r = &report[0];
    assert_eq!(r["failures"], serde_json::json!([]), "{stdout}");
    for (what, value) in [
        ("keystrokes", &r["keystrokes"]),
        ("completion requests", &r["requests"]["requests"]),
        ("saves", &r["editor"]["saved"]),
        ("files indexed", &r["index"]["indexedFiles"]),
    ] {
        assert!(
            value.as_u64().is_some_and(|n| n > 0),
            "the replay made no {what}: {stdout}"
        );
    }
}
