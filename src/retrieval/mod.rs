//! Cross-file retrieval: an in-memory index of the workspace's chunks
//! (BM25) and symbols, kept current file by file, and the choice of what
//! to show the model for one cursor position.
//!
//! Pure: the index is given file texts (by `workspace` or by the editor's
//! buffers) and never reads the disk itself.

pub mod bm25;
pub mod tokens;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::prompt::repo::Snippet;
use crate::text::syntax::Language;
use crate::workspace::outline::{outline, Symbol, SymbolKind};
use bm25::{Bm25, DocId};

/// Lines of code before the cursor that make the query.
const QUERY_LINES_BEFORE: usize = 12;
/// Lines after the cursor's line added to the query.
const QUERY_LINES_AFTER: usize = 3;
/// BM25 candidates considered before de-duplication.
const CANDIDATES: usize = 24;
/// Snippets returned (the prompt's budget takes what fits).
const MAX_SNIPPETS: usize = 16;
/// Definitions returned, nearest identifiers first.
const MAX_DEFINITIONS: usize = 8;
/// A name defined in more files than this is too common to point anywhere.
const MAX_DEFINING_FILES: usize = 3;
/// Term-set overlap (Jaccard) above which two pieces count as duplicates.
const DUPLICATE: f64 = 0.7;
/// Lines of a class outline (header plus member signatures).
const MAX_OUTLINE_LINES: usize = 24;
/// Rough tokens per line, to guess which lines of the current file the
/// prompt already shows.
const TOKENS_PER_LINE: usize = 10;

/// A workspace folder.
#[derive(Debug, Clone)]
pub struct Root {
    pub path: PathBuf,
    /// Shown to models with repository tokens.
    pub name: String,
}

struct FileEntry {
    root: usize,
    rel: Arc<str>,
    docs: Vec<DocId>,
    symbols: Vec<Symbol>,
}

struct DocInfo {
    file: Arc<Path>,
    start_line: usize,
    end_line: usize,
    text: String,
}

/// The index of all workspace files.
#[derive(Default)]
pub struct Index {
    roots: Vec<Root>,
    bm25: Bm25,
    files: HashMap<Arc<Path>, FileEntry>,
    docs: HashMap<DocId, DocInfo>,
    /// Name → files that define it (a set: common names like `__init__`
    /// are defined in thousands of files, and removal must stay O(1)).
    defined_in: HashMap<String, HashSet<Arc<Path>>>,
    /// Bumped on every change, so callers can tell whether it moved.
    pub generation: u64,
}

/// Where the cursor is, and the text around it.
#[derive(Debug, Clone)]
pub struct Query<'a> {
    pub path: &'a Path,
    /// The cursor's 0-based line.
    pub line: usize,
    /// The file's text before and after the cursor (or their parts nearest it).
    pub prefix: &'a str,
    pub suffix: &'a str,
    /// The FIM prompt's budget, to guess which lines of this file it shows.
    pub prompt_tokens: usize,
}

impl Query<'_> {
    /// The code around the cursor that retrieval matches against.
    pub fn text(&self) -> String {
        let before = last_lines(self.prefix, QUERY_LINES_BEFORE + 1);
        let after: String = self
            .suffix
            .split_inclusive('\n')
            .take(QUERY_LINES_AFTER + 1)
            .collect();
        format!("{before}{after}")
    }

    /// Lines of the current file the FIM prompt probably shows.
    fn window(&self) -> (usize, usize) {
        let line = self.line;
        let lines = self.prompt_tokens / TOKENS_PER_LINE;
        (
            line.saturating_sub(lines * 3 / 4),
            line + lines / 4 + QUERY_LINES_AFTER,
        )
    }
}

fn last_lines(text: &str, n: usize) -> &str {
    let mut start = text.len();
    for _ in 0..n {
        match text[..start].rfind('\n') {
            Some(i) if start > 0 => start = i,
            _ => return text,
        }
    }
    // `start` is at a newline: skip it.
    &text[(start + 1).min(text.len())..]
}

fn term_set(text: &str) -> HashSet<String> {
    let mut set = HashSet::new();
    tokens::for_each_term(text, |t| {
        set.insert(t.to_string());
    });
    set
}

fn jaccard(a: &HashSet<String>, b: &HashSet<String>) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let inter = a.intersection(b).count();
    inter as f64 / (a.len() + b.len() - inter) as f64
}

impl Index {
    pub fn new(roots: Vec<Root>) -> Index {
        Index {
            roots,
            ..Default::default()
        }
    }

    pub fn roots(&self) -> &[Root] {
        &self.roots
    }

    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    pub fn chunk_count(&self) -> usize {
        self.bm25.live_docs()
    }

    pub fn contains(&self, path: &Path) -> bool {
        self.files.contains_key(path)
    }

    /// The root holding `path` (the deepest, for nested folders) and the
    /// path relative to it, `/`-separated.
    pub fn locate(&self, path: &Path) -> Option<(usize, String)> {
        self.roots
            .iter()
            .enumerate()
            .filter(|(_, r)| path.starts_with(&r.path))
            .max_by_key(|(_, r)| r.path.as_os_str().len())
            .and_then(|(i, r)| {
                let rel = path.strip_prefix(&r.path).ok()?;
                let parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                Some((i, parts.join("/")))
            })
    }

    /// (Re)indexes `path` with `text`; a path outside every root is ignored.
    /// Returns whether it was indexed.
    pub fn update(&mut self, path: &Path, text: &str) -> bool {
        let Some((root, rel)) = self.locate(path) else {
            return false;
        };
        self.remove(path);
        let language = Language::detect(None, &rel);
        let o = outline(language, text);
        let file: Arc<Path> = Arc::from(path);
        let mut docs = Vec::with_capacity(o.chunks.len());
        for c in o.chunks {
            // The path is part of what a chunk is about (`auth/session.py`).
            let id = self.bm25.add(&format!("{rel}\n{}", c.text));
            self.docs.insert(
                id,
                DocInfo {
                    file: file.clone(),
                    start_line: c.start_line,
                    end_line: c.end_line,
                    text: c.text,
                },
            );
            docs.push(id);
        }
        let mut names: Vec<&str> = o.symbols.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            self.defined_in
                .entry(name.to_string())
                .or_default()
                .insert(file.clone());
        }
        self.files.insert(
            file,
            FileEntry {
                root,
                rel: Arc::from(rel.as_str()),
                docs,
                symbols: o.symbols,
            },
        );
        self.generation += 1;
        true
    }

    /// Forgets `path`.
    pub fn remove(&mut self, path: &Path) {
        let Some(entry) = self.files.remove(path) else {
            return;
        };
        for id in entry.docs {
            self.bm25.remove(id);
            self.docs.remove(&id);
        }
        for s in &entry.symbols {
            if let Some(files) = self.defined_in.get_mut(&s.name) {
                files.remove(path);
                if files.is_empty() {
                    self.defined_in.remove(&s.name);
                }
            }
        }
        if self.bm25.needs_compaction() {
            self.bm25.compact();
        }
        self.generation += 1;
    }

    /// The repository name and relative path for `path`, if in a root.
    pub fn repo_and_path(&self, path: &Path) -> Option<(String, String)> {
        let (root, rel) = self.locate(path)?;
        Some((self.roots[root].name.clone(), rel))
    }

    /// What to show the model for `q`, best first: definitions of the
    /// identifiers near the cursor that live in other files, then BM25
    /// chunks, without the current file's visible window and without
    /// near-duplicates.
    pub fn retrieve(&mut self, q: &Query) -> Vec<Snippet> {
        let query = q.text();
        let mut out: Vec<Snippet> = Vec::new();
        // Chunks are compared with the query and each other, not with the
        // definitions: a definition is a signature, its chunk the body.
        let mut seen: Vec<HashSet<String>> = vec![term_set(&query)];
        for s in self.definitions(q, &query) {
            if !out.iter().any(|o| o.text == s.text) {
                out.push(s);
            }
        }
        let (lo, hi) = q.window();
        let current: &Path = q.path;
        let docs = &self.docs;
        let hits = self.bm25.search(&query, CANDIDATES, |id| {
            docs.get(&id)
                .is_some_and(|d| *d.file != *current || d.end_line < lo || d.start_line > hi)
        });
        for (id, _) in hits {
            if out.len() >= MAX_SNIPPETS {
                break;
            }
            let Some(d) = self.docs.get(&id) else {
                continue;
            };
            let terms = term_set(&d.text);
            if seen.iter().any(|s| jaccard(s, &terms) >= DUPLICATE) {
                continue;
            }
            let Some(f) = self.files.get(&d.file) else {
                continue;
            };
            seen.push(terms);
            out.push(Snippet {
                path: f.rel.to_string(),
                text: d.text.clone(),
            });
        }
        out
    }

    /// Definitions, from other files, of identifiers in `query_text`
    /// (nearest the cursor first) that the current file does not define.
    fn definitions(&self, q: &Query, query_text: &str) -> Vec<Snippet> {
        let here: HashSet<&str> = self
            .files
            .get(q.path)
            .map(|f| f.symbols.iter().map(|s| s.name.as_str()).collect())
            .unwrap_or_default();
        let ids: Vec<&str> = tokens::identifiers(query_text).collect();
        let mut done: HashSet<&str> = HashSet::new();
        let mut out = Vec::new();
        for name in ids.into_iter().rev() {
            if out.len() >= MAX_DEFINITIONS {
                break;
            }
            if name.len() < 3 || here.contains(name) || !done.insert(name) {
                continue;
            }
            let Some(files) = self.defined_in.get(name) else {
                continue;
            };
            if files.len() > MAX_DEFINING_FILES + 1 {
                continue;
            }
            let mut others: Vec<&Arc<Path>> = files.iter().filter(|f| ***f != *q.path).collect();
            if others.is_empty() || others.len() > MAX_DEFINING_FILES {
                continue;
            }
            others.sort();
            for file in others {
                let Some(entry) = self.files.get(file) else {
                    continue;
                };
                for (i, s) in entry.symbols.iter().enumerate() {
                    if s.name == name && out.len() < MAX_DEFINITIONS {
                        out.push(Snippet {
                            path: entry.rel.to_string(),
                            text: definition_text(&entry.symbols, i),
                        });
                    }
                }
            }
        }
        out
    }

    /// Approximate heap bytes (for the benchmark).
    pub fn heap_bytes(&self) -> usize {
        let docs: usize = self.docs.values().map(|d| d.text.capacity() + 64).sum();
        let files: usize = self
            .files
            .values()
            .map(|f| {
                f.rel.len()
                    + 96
                    + f.symbols
                        .iter()
                        .map(|s| s.name.capacity() + s.signature.capacity() + 64)
                        .sum::<usize>()
            })
            .sum();
        self.bm25.heap_bytes() + docs + files
    }

    /// Number of root `i`'s files (for progress messages and tests).
    pub fn files_in_root(&self, i: usize) -> usize {
        self.files.values().filter(|f| f.root == i).count()
    }
}

/// A symbol as the model should see it: a class as its header and member
/// signatures; a member under its class's header; anything else its signature.
fn definition_text(symbols: &[Symbol], i: usize) -> String {
    let s = &symbols[i];
    match s.kind {
        SymbolKind::Class => {
            let mut lines = vec![s.signature.clone()];
            for m in symbols.iter().filter(|m| m.parent == Some(i)) {
                if lines.len() >= MAX_OUTLINE_LINES {
                    lines.push("    ...".into());
                    break;
                }
                lines.push(format!("    {}", first_line(&m.signature)));
            }
            lines.join("\n")
        }
        _ => match s.parent.and_then(|p| symbols.get(p)) {
            Some(class) => format!("{}\n    {}", first_line(&class.signature), s.signature),
            None => s.signature.clone(),
        },
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// Keeps the retrieved set fixed while the user types on one line: the
/// snippets sit at the start of the prompt, so changing them would throw
/// away the engine's whole KV cache. A new line, another file, or a query
/// that has really changed (little overlap with the last) retrieves again.
#[derive(Default)]
pub struct Stable {
    last: Option<Last>,
}

struct Last {
    path: PathBuf,
    line: usize,
    terms: HashSet<String>,
    snippets: Arc<Vec<Snippet>>,
}

/// Below this overlap with the last query, the query has really changed.
const SAME_QUERY: f64 = 0.6;

impl Stable {
    /// The last snippets if they still stand for `q`, else `fetch()`'s.
    pub fn get(
        &mut self,
        q: &Query,
        fetch: impl FnOnce() -> Vec<Snippet>,
    ) -> (Arc<Vec<Snippet>>, bool) {
        let line = q.line;
        let terms = term_set(&q.text());
        if let Some(last) = &self.last {
            if last.path == q.path
                && last.line == line
                && jaccard(&last.terms, &terms) >= SAME_QUERY
            {
                return (last.snippets.clone(), true);
            }
        }
        let snippets = Arc::new(fetch());
        self.last = Some(Last {
            path: q.path.to_path_buf(),
            line,
            terms,
            snippets: snippets.clone(),
        });
        (snippets, false)
    }

    /// Forgets the kept set (the index changed under it in a way that matters).
    pub fn clear(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Index {
        let mut ix = Index::new(vec![Root {
            path: PathBuf::from("/ws"),
            name: "ws".into(),
        }]);
        ix.update(
            Path::new("/ws/geo/shapes.py"),
            "class Circle:\n    def __init__(self, radius):\n        self.radius = radius\n\n    def circumference(self):\n        return 2 * 3.14159 * self.radius\n",
        );
        ix.update(
            Path::new("/ws/util/strings.py"),
            "def slugify(title):\n    return title.lower().replace(' ', '-')\n",
        );
        ix
    }

    fn query<'a>(path: &'a Path, prefix: &'a str) -> Query<'a> {
        Query {
            path,
            line: prefix.matches('\n').count(),
            prefix,
            suffix: "",
            prompt_tokens: 1536,
        }
    }

    #[test]
    fn finds_definitions_and_chunks_of_other_files() {
        let mut ix = index();
        let p = Path::new("/ws/app.py");
        let got = ix.retrieve(&query(
            p,
            "from geo.shapes import Circle\nc = Circle(2)\nprint(c.circumference",
        ));
        assert_eq!(got[0].path, "geo/shapes.py");
        // The nearest identifier first: the method under its class header.
        assert_eq!(got[0].text, "class Circle:\n    def circumference(self):");
        assert!(got
            .iter()
            .any(|s| s.text.starts_with("class Circle:\n    def __init__")));
        assert!(got.iter().any(|s| s.text.contains("return 2 * 3.14159")));
        assert!(got.iter().all(|s| s.path != "util/strings.py"));
    }

    #[test]
    fn the_current_files_window_is_not_retrieved_but_the_rest_may_be() {
        let mut ix = index();
        let p = Path::new("/ws/geo/shapes.py");
        let got = ix.retrieve(&query(p, "class Circle:\n    def circumference(self):\n"));
        assert!(got.iter().all(|s| s.path != "geo/shapes.py"), "{got:?}");
        assert_eq!(ix.locate(Path::new("/elsewhere/x.py")), None);
        assert!(!ix.update(Path::new("/elsewhere/x.py"), "def x(): pass"));
    }

    #[test]
    fn updates_replace_and_removals_forget() {
        let mut ix = index();
        let p = Path::new("/ws/app.py");
        let q = query(p, "s = slugify(");
        assert_eq!(ix.retrieve(&q)[0].text, "def slugify(title):");
        ix.update(
            Path::new("/ws/util/strings.py"),
            "def slugify(title, sep):\n    return sep.join(title.split())\n",
        );
        assert_eq!(ix.retrieve(&q)[0].text, "def slugify(title, sep):");
        ix.remove(Path::new("/ws/util/strings.py"));
        assert!(ix.retrieve(&q).is_empty());
        assert_eq!(ix.file_count(), 1);
    }

    #[test]
    fn stable_within_a_line() {
        let mut st = Stable::default();
        let p = Path::new("/ws/a.py");
        let body = "import os\nfrom util import load_config, parse\nconfig = load_config(path)\nvalues = parse(config";
        let (a, reused) = st.get(&query(p, body), Vec::new);
        assert!(!reused && a.is_empty());
        let typed = format!("{body}, stri");
        let (_, reused) = st.get(&query(p, &typed), || unreachable!());
        assert!(reused);
        let next_line = format!("{body})\n");
        let (_, reused) = st.get(&query(p, &next_line), std::vec::Vec::new);
        assert!(!reused);
    }
}
