//! `scripts/fetch-model`: idempotent on a verified file, clear on bad input.

use std::process::Command;

fn fetch(args: &[&str]) -> std::process::Output {
    Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fetch-model"))
        .args(args)
        .output()
        .expect("run scripts/fetch-model")
}

/// A run that succeeded and printed the model file's path (the file was
/// there and verified).
fn prints_the_cached_file(out: &std::process::Output, path: &std::path::Path) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        path.to_str().unwrap()
    );
}

#[test]
fn second_run_verifies_and_keeps_the_file() {
    let path = infill::models::default_model_path();
    assert!(path.exists(), "run scripts/fetch-model first");
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    prints_the_cached_file(&fetch(&[]), &path);
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        before
    );
}

#[test]
fn unknown_model_is_a_clear_error() {
    let out = fetch(&["gpt-17"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown model") && err.contains("qwen2.5-coder-0.5b"),
        "{err}"
    );
}

#[test]
fn a_preset_fetches_its_model() {
    // `fast` names the default model, which is in the cache: a verified
    // no-op that prints the same file.
    prints_the_cached_file(&fetch(&["fast"]), &infill::models::model_path(None, "fast"));
}

#[test]
fn lists_the_manifest() {
    let out = fetch(&["--list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for name in [
        "qwen2.5-coder-0.5b (default) (preset fast)",
        "qwen2.5-coder-1.5b (preset quality)",
        "smollm2-135m",
    ] {
        assert!(text.contains(name), "{text}");
    }
}
