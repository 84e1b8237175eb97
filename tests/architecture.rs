//! The layering that ARCHITECTURE.md states, checked on the source: each
//! module of the library imports only the layers below it, no two modules
//! import each other, and only the protocol layer knows tower-lsp (only it
//! and the session run on tokio). A change that breaks a rule fails here
//! with the file and the import, so the map stays true.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module of `src/` and the modules it may import, bottom
/// layer first (the same table as ARCHITECTURE.md).
const LAYERS: &[(&str, &[&str])] = &[
    ("text", &[]),
    ("config", &[]),
    ("models", &[]),
    ("workspace", &[]),
    ("logging", &[]),
    ("stats", &[]),
    ("retrieval", &["text"]),
    ("prompt", &["text", "config", "retrieval"]),
    ("engine", &["text", "config", "prompt", "models"]),
    ("completion", &["text", "config", "prompt", "engine"]),
    (
        "session",
        &[
            "text",
            "config",
            "models",
            "workspace",
            "retrieval",
            "prompt",
            "engine",
            "completion",
            "stats",
        ],
    ),
    (
        "lsp",
        &["text", "config", "models", "retrieval", "engine", "session"],
    ),
];

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The library's top-level module a file belongs to (`None` for `lib.rs`
/// and the binaries).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    match first {
        "lib.rs" | "bin" => None,
        name => Some(name.trim_end_matches(".rs").to_string()),
    }
}

/// The modules named by `crate::NAME` in `text`.
fn crate_imports(text: &str) -> BTreeSet<String> {
    text.match_indices("crate::")
        .map(|(i, m)| {
            text[i + m.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

struct Source {
    module: String,
    file: PathBuf,
    text: String,
}

fn library_sources() -> (PathBuf, Vec<Source>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    files.sort();
    let sources = files
        .into_iter()
        .filter_map(|file| {
            let module = module_of(&src, &file)?;
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
            Some(Source { module, file, text })
        })
        .collect();
    (src, sources)
}

#[test]
fn every_module_imports_only_the_layers_below_it() {
    let allowed: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let (src, sources) = library_sources();
    assert!(sources.len() > 20, "found only {} files", sources.len());
    let mut wrong = Vec::new();
    for s in &sources {
        let Some(may) = allowed.get(s.module.as_str()) else {
            wrong.push(format!(
                "{}: module `{}` is not in the layer table",
                s.file.display(),
                s.module
            ));
            continue;
        };
        for import in crate_imports(&s.text) {
            if import != s.module && !may.contains(&import.as_str()) {
                wrong.push(format!(
                    "{} imports crate::{import}, which `{}` may not",
                    s.file.strip_prefix(&src).unwrap_or(&s.file).display(),
                    s.module
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn only_the_protocol_layer_knows_lsp_and_only_it_and_the_session_run_async() {
    let (src, sources) = library_sources();
    let mut wrong = Vec::new();
    for s in &sources {
        let rel = s.file.strip_prefix(&src).unwrap_or(&s.file).display();
        if s.text.contains("tower_lsp") && s.module != "lsp" {
            wrong.push(format!("{rel} uses tower-lsp"));
        }
        if s.text.contains("tokio") && !["lsp", "session"].contains(&s.module.as_str()) {
            wrong.push(format!("{rel} uses tokio"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_shipped_binary_carries_no_evaluation_code() {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin/infill");
    let mut files = Vec::new();
    source_files(&bin, &mut files);
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        for word in [
            "CARGO_MANIFEST_DIR",
            "python3",
            "humaneval",
            "eval_cross",
            "bench_index",
        ] {
            assert!(
                !text.contains(word),
                "{} mentions `{word}`: evaluation and benchmarks live in eval/",
                file.display()
            );
        }
    }
}
