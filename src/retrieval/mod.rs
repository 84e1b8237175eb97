//! Cross-file retrieval: an in-memory index of the workspace's chunks
//! (BM25) and symbols, kept current file by file, and the choice of what
//! to show the model for one cursor position.
//!
//! Pure: the index is given file texts (by `workspace` or by the editor's
//! buffers) and never reads the disk itself.

pub mod bm25;
pub mod imports;
pub mod tokens;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::prompt::repo::Snippet;
use crate::text::syntax::Language;
use crate::workspace::outline::{self, Chunk, Lines, Parsed, Symbol, SymbolKind, TextDiff};
use bm25::{Bm25, DocId};
use tree_sitter::Tree;

/// Lines of code before the cursor that make the query.
const QUERY_LINES_BEFORE: usize = 12;
/// Lines after the cursor's line added to the query.
const QUERY_LINES_AFTER: usize = 3;
/// BM25 candidates considered before de-duplication.
const CANDIDATES: usize = 24;
/// BM25 chunks returned (the prompt's budget takes what fits).
const MAX_CHUNKS: usize = 12;
/// Chunks ranked before the definitions of imported names.
const LEADING_CHUNKS: usize = 2;
/// Definitions returned for names near the cursor, nearest first.
const MAX_DEFINITIONS: usize = 8;
/// Definitions returned for the names the current file imports.
const MAX_IMPORTED_DEFINITIONS: usize = 12;
/// A name defined in more files than this is too common to point anywhere.
const MAX_DEFINING_FILES: usize = 3;
/// Term-set overlap (Jaccard) above which two pieces count as duplicates.
const DUPLICATE: f64 = 0.7;
/// Lines of a class outline (header plus member signatures).
const MAX_OUTLINE_LINES: usize = 24;
/// The same for a class the file imports (many of them compete).
const MAX_IMPORTED_OUTLINE_LINES: usize = 12;
/// Lines of a chunk shown (the window that best matches the query).
const MAX_CHUNK_LINES_SHOWN: usize = 20;
/// Most members shown around a member's definition (its neighbours that
/// the query names in part).
const MAX_MEMBER_LINES: usize = 6;

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
    /// The text the chunks are cut from.
    text: Arc<str>,
    /// In file order.
    chunks: Vec<(Chunk, DocId)>,
    symbols: Vec<Symbol>,
    /// For open buffers: the tree and definitions the next update starts from.
    parsed: Option<Parsed>,
}

struct DocInfo {
    file: Arc<Path>,
    chunk: Chunk,
    /// Its file's language, and whether the file is a test (for filtering
    /// candidates without hashing paths).
    language: Option<Language>,
    test: bool,
}

/// The index of all workspace files.
#[derive(Default)]
pub struct Index {
    roots: Vec<Root>,
    bm25: Bm25,
    files: HashMap<Arc<Path>, FileEntry>,
    /// By doc id (ids are never reused; removed ones are `None`).
    docs: Vec<Option<DocInfo>>,
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

/// The distinct terms of a text, as sorted 64-bit hashes (no string is
/// kept: these sets are built for every candidate of every query).
fn term_set(text: &str) -> Vec<u64> {
    let mut set = Vec::new();
    tokens::for_each_term(text, |t| set.push(tokens::hash(t)));
    set.sort_unstable();
    set.dedup();
    set
}

fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut inter) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
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

    /// (Re)indexes `path` with `text` (read from disk); a path outside
    /// every root is ignored. Returns whether it was indexed.
    pub fn update(&mut self, path: &Path, text: &str) -> bool {
        self.update_inner(path, text, None, false)
    }

    /// (Re)indexes an open buffer: `tree` is its syntax tree, kept current
    /// by its edits (it spares a parse), and the index keeps what the next
    /// update of the buffer needs, so that it redoes only what changed.
    pub fn update_buffer(
        &mut self,
        path: &Path,
        text: &str,
        tree: Option<(Language, Tree)>,
    ) -> bool {
        self.update_inner(path, text, tree, true)
    }

    /// Only chunks whose text changed are taken out of BM25 and put back;
    /// the rest keep their place (lines may move). The result equals
    /// indexing `text` from scratch (tested).
    fn update_inner(
        &mut self,
        path: &Path,
        text: &str,
        tree: Option<(Language, Tree)>,
        keep_parse: bool,
    ) -> bool {
        let Some((root, rel)) = self.locate(path) else {
            return false;
        };
        let language = Language::detect(None, &rel);
        let test = is_test(&rel);
        let (file, mut old) = match self.files.remove_entry(path) {
            Some((file, entry)) => (file, Some(entry)),
            None => (Arc::from(path), None),
        };
        let tree = tree.filter(|(l, _)| Some(*l) == language).map(|(_, t)| t);
        let lines = Lines::new(text);
        let diff = old.as_ref().map(|f| TextDiff::new(&f.text, text, &lines));
        let previous = match (&diff, old.as_mut().and_then(|f| f.parsed.take())) {
            (Some(d), Some(p)) => Some((d, p)),
            _ => None,
        };
        let (o, parsed) = outline::update(language, text, &lines, tree, previous);
        // Old chunks whose text is unchanged keep their BM25 documents.
        let mut used = vec![false; old.as_ref().map_or(0, |f| f.chunks.len())];
        let mut chunks = Vec::with_capacity(o.chunks.len());
        for c in o.chunks {
            let reused = match (&old, &diff) {
                (Some(f), Some(d)) => d.old_start(c.start_byte, c.end_byte).and_then(|at| {
                    let i = f.chunks.partition_point(|(oc, _)| oc.start_byte < at);
                    let (oc, id) = f.chunks.get(i)?;
                    (oc.start_byte == at
                        && oc.end_byte - oc.start_byte == c.end_byte - c.start_byte
                        && !used[i])
                        .then(|| {
                            used[i] = true;
                            *id
                        })
                }),
                _ => None,
            };
            let id = match reused {
                Some(id) => id,
                // The path is part of what a chunk is about (`auth/session.py`).
                None => self.bm25.add_parts(&[&rel, c.text(text)]),
            };
            let slot = id as usize;
            if self.docs.len() <= slot {
                self.docs.resize_with(slot + 1, || None);
            }
            self.docs[slot] = Some(DocInfo {
                file: file.clone(),
                chunk: c,
                language,
                test,
            });
            chunks.push((c, id));
        }
        if let Some(f) = &old {
            for (&(_, id), used) in f.chunks.iter().zip(&used) {
                if !used {
                    self.bm25.remove(id);
                    if let Some(d) = self.docs.get_mut(id as usize) {
                        *d = None;
                    }
                }
            }
        }
        // Names: only the ones that came or went change the table.
        let names = |symbols: &[Symbol]| {
            let mut n: Vec<String> = symbols.iter().map(|s| s.name.clone()).collect();
            n.sort_unstable();
            n.dedup();
            n
        };
        let new_names = names(&o.symbols);
        let old_names = old.as_ref().map(|f| names(&f.symbols)).unwrap_or_default();
        for name in &old_names {
            if new_names.binary_search(name).is_err() {
                self.forget_name(name, path);
            }
        }
        for name in new_names {
            if old_names.binary_search(&name).is_err() {
                self.defined_in
                    .entry(name)
                    .or_default()
                    .insert(file.clone());
            }
        }
        self.files.insert(
            file,
            FileEntry {
                root,
                rel: Arc::from(rel.as_str()),
                text: Arc::from(text),
                chunks,
                symbols: o.symbols,
                parsed: parsed.filter(|_| keep_parse),
            },
        );
        if self.bm25.needs_compaction() {
            self.bm25.compact();
        }
        self.generation += 1;
        true
    }

    /// Whether what is indexed for `path` is what indexing `text` from
    /// scratch gives (for the benchmark's check).
    pub fn matches_fresh_outline(&self, path: &Path, text: &str) -> bool {
        let Some(f) = self.files.get(path) else {
            return false;
        };
        let fresh = outline::outline(Language::detect(None, &f.rel), text);
        *f.text == *text
            && f.symbols == fresh.symbols
            && f.chunks.len() == fresh.chunks.len()
            && f.chunks.iter().zip(&fresh.chunks).all(|((c, id), fc)| {
                c == fc
                    && self
                        .docs
                        .get(*id as usize)
                        .and_then(Option::as_ref)
                        .is_some_and(|d| d.chunk == *c && *d.file == *path)
            })
    }

    /// Drops what `update_buffer` kept for `path`: its next update parses afresh.
    pub fn forget_parse(&mut self, path: &Path) {
        if let Some(f) = self.files.get_mut(path) {
            f.parsed = None;
        }
    }

    fn forget_name(&mut self, name: &str, path: &Path) {
        if let Some(files) = self.defined_in.get_mut(name) {
            files.remove(path);
            if files.is_empty() {
                self.defined_in.remove(name);
            }
        }
    }

    /// Forgets `path`.
    pub fn remove(&mut self, path: &Path) {
        let Some(entry) = self.files.remove(path) else {
            return;
        };
        for (_, id) in entry.chunks {
            self.bm25.remove(id);
            if let Some(d) = self.docs.get_mut(id as usize) {
                *d = None;
            }
        }
        for s in &entry.symbols {
            self.forget_name(&s.name, path);
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
        let current = self.files.get(q.path);
        let language = current.and_then(|f| Language::detect(None, &f.rel));
        let in_tests = current.is_some_and(|f| is_test(&f.rel));
        let imported = match (current, language) {
            (Some(f), Some(l)) => imports::imports(l, &f.text),
            _ => Vec::new(),
        };
        let terms = term_set(&query);
        let mut near = self.definitions(q, &query, &terms, in_tests, &imported);
        near.extend(self.inherited(q, &terms, in_tests, &imported));
        let imported = self.imported_definitions(q, &terms, &near, in_tests, &imported);
        // Chunks are compared with the query and each other, not with the
        // definitions: a definition is a signature, its chunk the body.
        let mut seen: Vec<Vec<u64>> = vec![terms];
        let here: &Path = q.path;
        let docs = &self.docs;
        let hits = self.bm25.search(&query, CANDIDATES, |id| {
            docs.get(id as usize)
                .and_then(Option::as_ref)
                .is_some_and(|d| {
                    // Other files' code of the same language, tests only for
                    // tests. Not the current file: its text near the cursor
                    // is in the prompt already, and a second block under its
                    // path would stand for another file of the same name.
                    *d.file != *here
                        && (language.is_none() || d.language == language)
                        && (in_tests || !d.test)
                })
        });
        let mut chunks = Vec::new();
        for (id, _) in hits {
            if chunks.len() >= MAX_CHUNKS {
                break;
            }
            let Some(d) = self.docs.get(id as usize).and_then(Option::as_ref) else {
                continue;
            };
            let Some(f) = self.files.get(&d.file) else {
                continue;
            };
            let text = d.chunk.text(&f.text);
            let terms = term_set(text);
            if seen.iter().any(|s| jaccard(s, &terms) >= DUPLICATE) {
                continue;
            }
            seen.push(terms);
            let (skipped, shown) = best_window(text, &seen[0], MAX_CHUNK_LINES_SHOWN);
            chunks.push(Snippet {
                path: f.rel.to_string(),
                text: shown.to_string(),
                line: d.chunk.start_line + skipped,
            });
        }
        // Best first: definitions of names near the cursor, the best
        // chunks, definitions of the file's imports, the other chunks.
        let lead = chunks.len().min(LEADING_CHUNKS);
        let rest = chunks.split_off(lead);
        let mut out: Vec<Snippet> = Vec::new();
        for s in near.into_iter().chain(chunks).chain(imported).chain(rest) {
            if !out.iter().any(|o| o.text == s.text) {
                out.push(s);
            }
        }
        out
    }

    /// The definitions of `name` to show: from files other than `q`'s, not
    /// from tests unless `in_tests`, and only where few files define it.
    /// `module` (where an import says it comes from) picks among them.
    fn definitions_of(
        &self,
        name: &str,
        q: &Query,
        terms: &[u64],
        in_tests: bool,
        module: Option<&str>,
        outline_lines: usize,
    ) -> Vec<Snippet> {
        let Some(files) = self.defined_in.get(name) else {
            return Vec::new();
        };
        if files.len() > 2 * MAX_DEFINING_FILES + 1 {
            return Vec::new();
        }
        let mut others: Vec<(&Arc<Path>, &FileEntry)> = files
            .iter()
            .filter(|f| ***f != *q.path)
            .filter_map(|f| Some((f, self.files.get(f)?)))
            .filter(|(_, e)| in_tests || !is_test(&e.rel))
            .collect();
        if let Some(m) = module {
            if others
                .iter()
                .any(|(_, e)| imports::module_matches(m, &e.rel))
            {
                others.retain(|(_, e)| imports::module_matches(m, &e.rel));
            }
        }
        if others.is_empty() || others.len() > MAX_DEFINING_FILES {
            return Vec::new();
        }
        others.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = Vec::new();
        for (_, entry) in others {
            // One per file: the class (in Java its constructors share its
            // name), else the last (of overloads, the implementation).
            let class = entry
                .symbols
                .iter()
                .position(|s| s.name == name && s.kind == SymbolKind::Class);
            if let Some(i) = class.or_else(|| entry.symbols.iter().rposition(|s| s.name == name)) {
                out.push(Snippet {
                    path: entry.rel.to_string(),
                    text: definition_text(&entry.symbols, i, outline_lines, terms),
                    line: entry.symbols[i].line,
                });
            }
        }
        out
    }

    /// Definitions, from other files, of identifiers in `query_text`
    /// (nearest the cursor first) that the current file does not define.
    fn definitions(
        &self,
        q: &Query,
        query_text: &str,
        terms: &[u64],
        in_tests: bool,
        imported: &[imports::Import],
    ) -> Vec<Snippet> {
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
            let module = imports::module_of(imported, name);
            for s in self.definitions_of(name, q, terms, in_tests, module, MAX_OUTLINE_LINES) {
                if out.len() < MAX_DEFINITIONS {
                    out.push(s);
                }
            }
        }
        out
    }

    /// Outlines of the classes that the class around the cursor extends
    /// (from its header: `class A(B):`, `class A extends B implements C`),
    /// defined in other files: its code calls their members unqualified
    /// (`isThresholdExceeded()`), and nothing near the cursor names them.
    fn inherited(
        &self,
        q: &Query,
        terms: &[u64],
        in_tests: bool,
        imported: &[imports::Import],
    ) -> Vec<Snippet> {
        let Some(f) = self.files.get(q.path) else {
            return Vec::new();
        };
        // The class around the cursor: the last definition that starts
        // before it, or that definition's class.
        let class = f
            .symbols
            .iter()
            .rposition(|s| s.line <= q.line)
            .and_then(|i| match f.symbols[i].kind {
                SymbolKind::Class => Some(i),
                _ => f.symbols[i].parent,
            });
        let Some(class) = class.and_then(|c| f.symbols.get(c)) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut done: HashSet<&str> = HashSet::new();
        for base in tokens::identifiers(first_line(&class.signature)) {
            let is_type = base.starts_with(|c: char| c.is_uppercase());
            if !is_type || base == class.name || base == "Object" || !done.insert(base) {
                continue;
            }
            let module = imports::module_of(imported, base);
            out.extend(self.definitions_of(
                base,
                q,
                terms,
                in_tests,
                module,
                MAX_IMPORTED_OUTLINE_LINES,
            ));
        }
        out
    }

    /// Definitions of the names the current file imports (for Java, also
    /// the classes of its own package that it uses, which need no import),
    /// the ones not used before the cursor first: the line being written
    /// may call one that appears nowhere near the cursor, and in a long
    /// file the imports themselves are outside the prompt's window.
    fn imported_definitions(
        &self,
        q: &Query,
        terms: &[u64],
        near: &[Snippet],
        in_tests: bool,
        imported: &[imports::Import],
    ) -> Vec<Snippet> {
        let Some(f) = self.files.get(q.path) else {
            return Vec::new();
        };
        let Some(language) = Language::detect(None, &f.rel) else {
            return Vec::new();
        };
        // (name, module it is imported from, whether an import names it)
        let mut names: Vec<(&str, Option<&str>, bool)> = Vec::new();
        for i in imported {
            names.push((&i.name, Some(&i.module), true));
        }
        if language == Language::Java {
            let dir = f.rel.rsplit_once('/').map_or("", |(d, _)| d);
            let mut taken: HashSet<&str> = names.iter().map(|n| n.0).collect();
            taken.extend(f.symbols.iter().map(|s| s.name.as_str()));
            for id in tokens::identifiers(&f.text) {
                if !id.starts_with(|c: char| c.is_uppercase()) || taken.contains(id) {
                    continue;
                }
                taken.insert(id);
                let same_package = self.defined_in.get(id).is_some_and(|files| {
                    files.iter().any(|p| {
                        **p != *q.path
                            && self.files.get(p).is_some_and(|e| {
                                e.rel.rsplit_once('/').map_or("", |(d, _)| d) == dir
                            })
                    })
                });
                if same_package {
                    names.push((id, None, false));
                }
            }
        }
        if names.is_empty() {
            return Vec::new();
        }
        // Uses before the cursor (an import itself aside) and after it.
        let count = |text: &str| {
            let mut uses: HashMap<&str, usize> = names.iter().map(|n| (n.0, 0)).collect();
            for id in tokens::identifiers(text) {
                if let Some(n) = uses.get_mut(id) {
                    *n += 1;
                }
            }
            uses
        };
        let (before, after) = (count(q.prefix), count(q.suffix));
        let key = |&(name, _, explicit): &(&str, Option<&str>, bool)| {
            let b = before[name].saturating_sub(usize::from(explicit));
            let a = after[name];
            // A name imported but not used yet is the likeliest next one;
            // of those, one used further down more so.
            (b > 0, std::cmp::Reverse(if b == 0 { a } else { a + b }))
        };
        // Stable: equal keys keep the order of the imports.
        names.sort_by_key(key);
        let mut out: Vec<Snippet> = Vec::new();
        for (name, module, _) in names {
            if out.len() >= MAX_IMPORTED_DEFINITIONS {
                break;
            }
            let lines = MAX_IMPORTED_OUTLINE_LINES;
            for s in self.definitions_of(name, q, terms, in_tests, module, lines) {
                if out.len() < MAX_IMPORTED_DEFINITIONS && !near.contains(&s) && !out.contains(&s) {
                    out.push(s);
                }
            }
        }
        out
    }

    /// Approximate heap bytes (for the benchmark).
    pub fn heap_bytes(&self) -> usize {
        let docs = self.docs.capacity() * std::mem::size_of::<Option<DocInfo>>();
        let files: usize = self
            .files
            .values()
            .map(|f| {
                f.rel.len()
                    + f.text.len()
                    + f.chunks.capacity() * std::mem::size_of::<(Chunk, DocId)>()
                    + 128
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

/// Whether a workspace-relative path is test code (`tests/`, `test_x.py`,
/// `FooTest.java`, `src/test/java`).
pub fn is_test(rel: &str) -> bool {
    rel.split('/').any(|part| {
        let p = part.to_ascii_lowercase();
        p == "test"
            || p == "tests"
            || p.starts_with("test_")
            || p.ends_with("_test.py")
            || p.ends_with("test.java")
            || p.ends_with("tests.java")
            || p == "conftest.py"
    })
}

/// A symbol as the model should see it: a class as its header and member
/// signatures; a member under its class's header, with the members beside
/// it that the query names in part; anything else its signature.
/// Members are chosen by how many terms of their names the query (`terms`,
/// sorted) has, and shown in file order: the line being written calls a
/// member that its own context names in part (`consumeTo` where the code
/// around says `reader.consume()`), rarely one of a class's first.
fn definition_text(symbols: &[Symbol], i: usize, max_lines: usize, terms: &[u64]) -> String {
    let s = &symbols[i];
    let (class, pinned, room) = match (s.kind, s.parent) {
        (SymbolKind::Class, _) => (i, None, max_lines.saturating_sub(1)),
        (_, Some(p)) if p < symbols.len() => (p, Some(i), MAX_MEMBER_LINES.min(max_lines)),
        _ => return s.signature.clone(),
    };
    // How many of a member's name terms are in `among` (sorted).
    let shared = |m: usize, among: &[u64]| {
        let mut n = 0;
        tokens::for_each_term(&symbols[m].name, |t| {
            n += usize::from(among.binary_search(&tokens::hash(t)).is_ok());
        });
        n
    };
    let members: Vec<usize> = (0..symbols.len())
        .filter(|&m| symbols[m].parent == Some(class))
        .collect();
    let mut shown = members.clone();
    if let Some(p) = pinned {
        // Beside a member, its name's family (`consumeTo` beside `consume`).
        let mut family = Vec::new();
        tokens::for_each_term(&symbols[p].name, |t| family.push(tokens::hash(t)));
        family.sort_unstable();
        shown.retain(|&m| m == p || shared(m, &family) > 0);
    }
    if shown.len() > room {
        // The member asked for first, then by relevance; stable, so
        // equally relevant members keep file order.
        shown.sort_by_cached_key(|&m| (Some(m) != pinned, std::cmp::Reverse(shared(m, terms))));
        shown.truncate(room.max(1));
        shown.sort_unstable();
    }
    let mut lines = vec![match pinned {
        Some(_) => first_line(&symbols[class].signature).to_string(),
        None => symbols[class].signature.clone(),
    }];
    for &m in &shown {
        let sig = &symbols[m].signature;
        // The member asked for in full, the others by their first line.
        let sig = if Some(m) == pinned {
            sig.as_str()
        } else {
            first_line(sig)
        };
        lines.push(format!("    {sig}"));
    }
    if pinned.is_none() && shown.len() < members.len() {
        lines.push("    ...".into());
    }
    lines.join("\n")
}

/// The `max` consecutive lines of `text` that share the most terms with
/// `query` (all of it if it is short enough), after how many lines.
fn best_window<'a>(text: &'a str, query: &[u64], max: usize) -> (usize, &'a str) {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    if lines.len() <= max {
        return (0, text);
    }
    let score: Vec<usize> = lines
        .iter()
        .map(|l| {
            let mut n = 0;
            tokens::for_each_term(l, |t| {
                if query.binary_search(&tokens::hash(t)).is_ok() {
                    n += 1;
                }
            });
            n
        })
        .collect();
    let mut sum: usize = score[..max].iter().sum();
    let (mut best, mut at) = (sum, 0);
    for start in 1..=lines.len() - max {
        sum = sum + score[start + max - 1] - score[start - 1];
        if sum > best {
            (best, at) = (sum, start);
        }
    }
    let from: usize = lines[..at].iter().map(|l| l.len()).sum();
    let len: usize = lines[at..at + max].iter().map(|l| l.len()).sum();
    (at, &text[from..from + len])
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
    terms: Vec<u64>,
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
    fn imported_names_not_used_yet_come_first_and_tests_stay_out() {
        let mut ix = index();
        ix.update(
            Path::new("/ws/util/paths.py"),
            "def normalize(path):\n    return path\n\ndef slugify(x):\n    pass\n",
        );
        ix.update(
            Path::new("/ws/tests/test_strings.py"),
            "def check_title(t):\n    assert t\n",
        );
        let app = Path::new("/ws/app.py");
        let text = "from util.strings import slugify\nfrom util.paths import normalize\nfrom tests.test_strings import check_title\n\nx = normalize(a)\n\n\n";
        ix.update(app, text);
        let cut = text.len() - 2;
        let q = Query {
            path: app,
            line: 5,
            prefix: &text[..cut],
            suffix: &text[cut..],
        };
        let got = ix.retrieve(&q);
        // `normalize` is near the cursor; `slugify` is imported, unused so
        // far, and comes from the module the import names; a test's
        // definitions are not shown to code outside tests.
        let defs: Vec<(&str, &str)> = got
            .iter()
            .filter(|s| s.text.starts_with("def ") && !s.text.contains('\n'))
            .map(|s| (s.path.as_str(), s.text.as_str()))
            .collect();
        assert_eq!(
            defs,
            vec![
                ("util/paths.py", "def normalize(path):"),
                ("util/strings.py", "def slugify(title):"),
            ]
        );
        assert!(got.iter().all(|s| !s.path.starts_with("tests/")));
    }

    #[test]
    fn large_classes_show_the_members_the_query_names_in_part() {
        let mut ix = index();
        let mut reader = String::from(
            "package p;\n\npublic class CharReader {\n    public CharReader(String input) {\n    }\n\n",
        );
        for m in ["mark", "rewind", "pos", "current", "advance", "unconsume"] {
            reader.push_str(&format!("    public void {m}() {{\n    }}\n\n"));
        }
        reader.push_str("    public char consume() {\n        return 'a';\n    }\n\n");
        for m in [
            "matches",
            "matchesAny",
            "isEmpty",
            "toString",
            "nextIndexOf",
            "rangeEquals",
        ] {
            reader.push_str(&format!(
                "    public boolean {m}() {{\n        return true;\n    }}\n\n"
            ));
        }
        reader.push_str("    public String consumeTo(char c) {\n        return \"\";\n    }\n}\n");
        ix.update(Path::new("/ws/p/CharReader.java"), &reader);
        let tok = Path::new("/ws/p/Tok.java");
        let text = "package p;\n\nclass Tok {\n    CharReader reader;\n\n    String run() {\n        StringBuilder b = new StringBuilder();\n        reader.consume();\n";
        ix.update(tok, text);
        let got = ix.retrieve(&query(tok, text));
        let texts: Vec<&str> = got.iter().map(|s| s.text.as_str()).collect();
        // The method near the cursor, with the member that shares its name's
        // terms, and none of the unrelated ones.
        assert!(
            texts.contains(&"public class CharReader\n    public char consume()\n    public String consumeTo(char c)"),
            "{texts:#?}"
        );
        // The class itself (not its constructor, which has its name) with
        // the members the query names before the others.
        let class = texts
            .iter()
            .find(|t| {
                t.starts_with("public class CharReader\n    public CharReader")
                    && t.ends_with("...")
            })
            .expect("the class outline");
        assert!(
            class.contains("consumeTo") && !class.contains("rangeEquals"),
            "{class}"
        );
    }

    #[test]
    fn the_classes_the_current_class_extends_are_shown() {
        let mut ix = index();
        ix.update(
            Path::new("/ws/base/stream.py"),
            "class ThresholdStream:\n    def is_threshold_exceeded(self):\n        return False\n",
        );
        let app = Path::new("/ws/app/deferred.py");
        let mut text = String::from("from base import stream\n\n\nclass Deferred(stream.ThresholdStream):\n    def close(self):\n");
        // The class header is far above the cursor, out of the query.
        for i in 0..20 {
            text.push_str(&format!("        step_{i} = {i}\n"));
        }
        text.push_str("        return ");
        ix.update(app, &text);
        let got = ix.retrieve(&query(app, &text));
        assert!(
            got.iter().any(|s| s.path == "base/stream.py"
                && s.text == "class ThresholdStream:\n    def is_threshold_exceeded(self):"),
            "{got:#?}"
        );
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

    /// Everything retrieval depends on, without doc ids.
    fn snapshot(ix: &Index) -> Vec<String> {
        let mut out = Vec::new();
        let mut paths: Vec<&Arc<Path>> = ix.files.keys().collect();
        paths.sort();
        for path in paths {
            let f = &ix.files[path];
            out.push(format!("{} {} {}", path.display(), f.root, f.rel));
            for (c, id) in &f.chunks {
                let d = ix.docs[*id as usize].as_ref().unwrap();
                assert_eq!((&*d.file, d.chunk), (&**path, *c));
                out.push(format!(
                    "{c:?} {:?} {:?}",
                    c.text(&f.text),
                    ix.bm25.describe(*id)
                ));
            }
            out.push(format!("{:?}", f.symbols));
        }
        let mut names: Vec<String> = ix
            .defined_in
            .iter()
            .map(|(n, files)| {
                let mut f: Vec<&Arc<Path>> = files.iter().collect();
                f.sort();
                format!("{n} {f:?}")
            })
            .collect();
        names.sort();
        out.extend(names);
        out.push(format!(
            "{:?} {}",
            ix.bm25.totals(),
            ix.docs.iter().flatten().count()
        ));
        out
    }

    #[test]
    fn buffer_updates_equal_indexing_from_scratch() {
        use crate::text::document::{Document, TextChange};
        use crate::text::position::PositionEncoding;
        use crate::workspace::outline::fuzz::*;
        let root = Root {
            path: PathBuf::from("/ws"),
            name: "ws".into(),
        };
        let mut rng = Rng(99991);
        let mut ix = Index::new(vec![root.clone()]);
        let files = [
            ("/ws/a/shape.py", PY_SEED, PY_POOL),
            ("/ws/b/Shape.java", JAVA_SEED, JAVA_POOL),
            ("/ws/notes.txt", "plain words\nmore words\n", PY_POOL),
        ];
        for (path, text, _) in &files {
            ix.update(Path::new(path), text);
        }
        let mut docs: Vec<Document> = files
            .iter()
            .map(|(path, text, _)| Document::new(path, None, 0, text))
            .collect();
        let (mut compared, mut rounds) = (0, 0);
        for round in 1..=300 {
            let k = rng.below(files.len());
            let (path, seed_text, pool) = files[k];
            let doc = &mut docs[k];
            match rng.below(20) {
                // Saved elsewhere and read back from disk.
                0 => {
                    ix.update(Path::new(path), &doc.text().to_string());
                }
                // Deleted and back.
                1 => {
                    ix.remove(Path::new(path));
                    ix.update(Path::new(path), &doc.text().to_string());
                }
                2 => {
                    let reset = TextChange {
                        range: None,
                        text: seed_text.to_string(),
                    };
                    doc.apply_changes(round, &[reset], PositionEncoding::Utf8);
                }
                _ => {
                    for _ in 0..=rng.below(3) {
                        let c = random_change(&mut rng, &doc.text().to_string(), pool);
                        doc.apply_changes(round, &[c], PositionEncoding::Utf8);
                    }
                }
            }
            let text = doc.text().to_string();
            let tree = doc
                .syntax()
                .and_then(|s| Some((s.language(), s.tree()?.clone())));
            let fresh_tree = tree.as_ref().map(|(l, _)| {
                let mut parser = tree_sitter::Parser::new();
                parser.set_language(&l.grammar()).unwrap();
                parser.parse(&text, None).unwrap().root_node().to_sexp()
            });
            let same_tree = tree.as_ref().map(|(_, t)| t.root_node().to_sexp()) == fresh_tree;
            ix.update_buffer(Path::new(path), &text, tree);
            rounds += 1;
            // Tree-sitter's error recovery can leave an incremental tree that
            // is not the fresh parse's; the index follows the tree it is given.
            if !same_tree {
                continue;
            }
            let mut scratch = Index::new(vec![root.clone()]);
            for (i, (p, _, _)) in files.iter().enumerate() {
                scratch.update(Path::new(p), &docs[i].text().to_string());
            }
            assert_eq!(snapshot(&ix), snapshot(&scratch), "round {round}");
            compared += 1;
        }
        assert!(compared > rounds * 9 / 10, "{compared} of {rounds}");
    }
}
