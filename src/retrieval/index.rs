//! The index of the workspace's files: each file's chunks (in BM25) and
//! symbols (in a table by name), kept current file by file from disk
//! texts and from open buffers with their syntax trees.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::bm25::{Bm25, DocId};
use super::outline::{self, Chunk, Lines, Outline, Parsed, Symbol, TextDiff};
use crate::text::syntax::Language;
use tree_sitter::Tree;

/// A workspace folder.
#[derive(Debug, Clone)]
pub struct Root {
    pub path: PathBuf,
    /// Shown to models with repository tokens.
    pub name: String,
}

/// What the index keeps for one file.
pub(super) struct FileEntry {
    root: usize,
    pub(super) rel: Arc<str>,
    /// The text the chunks are cut from.
    pub(super) text: Arc<str>,
    /// In file order.
    chunks: Vec<(Chunk, DocId)>,
    pub(super) symbols: Vec<Symbol>,
    /// For open buffers: the tree and definitions the next update starts from.
    parsed: Option<Parsed>,
}

/// What the index keeps for one BM25 document (a chunk).
pub(super) struct DocInfo {
    pub(super) file: Arc<Path>,
    pub(super) chunk: Chunk,
    /// Its file's language, and whether the file is a test (for filtering
    /// candidates without hashing paths).
    pub(super) language: Option<Language>,
    pub(super) test: bool,
}

/// The index of all workspace files.
#[derive(Default)]
pub struct Index {
    roots: Vec<Root>,
    pub(super) bm25: Bm25,
    pub(super) files: HashMap<Arc<Path>, FileEntry>,
    /// By doc id (ids are never reused; removed ones are `None`).
    pub(super) docs: Vec<Option<DocInfo>>,
    /// Name → files that define it (a set: common names like `__init__`
    /// are defined in thousands of files, and removal must stay O(1)).
    pub(super) defined_in: HashMap<String, HashSet<Arc<Path>>>,
    /// Bumped on every change, so callers can tell whether it moved.
    pub generation: u64,
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
        locate(&self.roots, path)
    }

    /// (Re)indexes `path` with `text` (read from disk); a path outside
    /// every root is ignored. Returns whether it was indexed.
    pub fn update(&mut self, path: &Path, text: &str) -> bool {
        self.update_inner(path, text, None, false, None)
    }

    /// Adds a file outlined by [`prepare`] (outside the index's lock). A
    /// file that got into the index meanwhile is updated as usual.
    pub fn add_prepared(&mut self, file: PreparedFile) -> bool {
        let outline = (!self.files.contains_key(file.path.as_path())).then_some(file.outline);
        self.update_inner(&file.path, &file.text, None, false, outline)
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
        self.update_inner(path, text, tree, true, None)
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
        outlined: Option<Outline>,
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
        let (o, parsed) = match outlined {
            Some(o) if old.is_none() => (o, None),
            _ => outline::update(language, text, &lines, tree, previous),
        };
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

    /// The text `path`'s chunks were cut from, if it is indexed.
    pub fn text(&self, path: &Path) -> Option<&str> {
        self.files.get(path).map(|f| &*f.text)
    }

    /// Each indexed file and the text its chunks were cut from.
    pub fn texts(&self) -> impl Iterator<Item = (&Path, &str)> {
        self.files.iter().map(|(path, f)| (&**path, &*f.text))
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
        repo_and_path(&self.roots, path)
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

/// The root of `roots` holding `path` (the deepest, for nested folders) and
/// the path relative to it, `/`-separated.
pub fn locate(roots: &[Root], path: &Path) -> Option<(usize, String)> {
    roots
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

/// The repository name and relative path of `path`, if in one of `roots`.
pub fn repo_and_path(roots: &[Root], path: &Path) -> Option<(String, String)> {
    let (root, rel) = locate(roots, path)?;
    Some((roots[root].name.clone(), rel))
}

/// A file read from disk and outlined, ready for [`Index::add_prepared`]:
/// the parse, the costly part, happens without the index.
pub struct PreparedFile {
    path: PathBuf,
    text: String,
    outline: Outline,
}

/// Outlines `text` of `path` for the index of `roots`; `None` outside them.
pub fn prepare(roots: &[Root], path: &Path, text: String) -> Option<PreparedFile> {
    let (_, rel) = locate(roots, path)?;
    let outline = outline::outline(Language::detect(None, &rel), &text);
    Some(PreparedFile {
        path: path.to_path_buf(),
        text,
        outline,
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retrieval::fixtures::{index, query};

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
        use crate::retrieval::outline::fuzz::*;
        use crate::text::document::{Document, TextChange};
        use crate::text::position::PositionEncoding;
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
