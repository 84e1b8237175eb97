//! What to show the model for one cursor position: the query (the code
//! around the cursor) and `Index::retrieve`, which ranks definitions of the
//! names near the cursor, outlines of the classes the cursor's class
//! extends, BM25 chunks and definitions of the file's imports, and drops
//! near-duplicates.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use super::imports;
use super::index::{is_test, FileEntry, Index};
use super::outline::SymbolKind;
use super::recent::RecentChunk;
use super::render::{best_window, definition_text, first_line};
use super::snippet::Snippet;
use super::tokens::{self, jaccard, term_set};
use crate::text::syntax::Language;

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

/// How much a recent chunk's BM25 score counts against an indexed chunk's:
/// code the user just worked on is likelier to be used next.
const RECENT_BOOST: f32 = 1.5;

/// A chunk to rank: one of the index, or one of the recent chunks given.
#[derive(Debug, Clone, Copy)]
enum Candidate {
    Indexed(super::bm25::DocId),
    Recent(usize),
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

/// Lines of the prompt's window before and after the cursor's line: those
/// that the last `window_chars` chars of the prefix and the first of the
/// suffix reach.
fn window_lines(q: &Query, window_chars: usize) -> (usize, usize) {
    let cut_before = q.prefix.len().saturating_sub(window_chars);
    let cut_before = (cut_before..=q.prefix.len())
        .find(|&i| q.prefix.is_char_boundary(i))
        .unwrap_or(q.prefix.len());
    let cut_after = (window_chars.min(q.suffix.len())..=q.suffix.len())
        .find(|&i| q.suffix.is_char_boundary(i))
        .unwrap_or(q.suffix.len());
    (
        q.prefix[cut_before..].matches('\n').count() + 1,
        q.suffix[..cut_after].matches('\n').count() + 1,
    )
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

impl Index {
    /// What to show the model for `q`, best first: definitions of the
    /// identifiers near the cursor that live in other files, then BM25
    /// chunks, without the current file's visible window and without
    /// near-duplicates.
    pub fn retrieve(&mut self, q: &Query) -> Vec<Snippet> {
        self.retrieve_with(q, &[], 0)
    }

    /// `retrieve`, with `recent` (the code around the user's recent edits
    /// and requests) ranked among the BM25 chunks: each scored as a chunk
    /// of the index would be, times `RECENT_BOOST`. Those of files the
    /// index does not hold, whose text is no longer in their file (edited
    /// since, a closed buffer's unsaved text), of another language, tests
    /// outside tests, and
    /// of the current file where they overlap the prompt's window (the
    /// last `window_chars` of `q.prefix` and the first of `q.suffix`: a
    /// bound on what the prompt's token budget keeps) are left out.
    pub fn retrieve_with(
        &mut self,
        q: &Query,
        recent: &[RecentChunk],
        window_chars: usize,
    ) -> Vec<Snippet> {
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
        // The recent chunks worth showing, scored on the BM25 scale.
        let (before, after) = window_lines(q, window_chars);
        let mut ranked: Vec<(Candidate, f32)> = hits
            .into_iter()
            .map(|(id, score)| (Candidate::Indexed(id), score))
            .collect();
        for (i, r) in recent.iter().enumerate() {
            let Some(f) = self.files.get(r.path.as_path()) else {
                continue;
            };
            let fits = (language.is_none() || Language::detect(None, &f.rel) == language)
                && (in_tests || !is_test(&f.rel))
                && (r.path != *here || !r.overlaps_window(q.line, before, after))
                // Still the file's text (as the index holds it: an open
                // buffer's, else the disk's).
                && f.text.contains(r.text.as_str());
            let score = self.bm25.score_text(&query, &r.text) * RECENT_BOOST;
            if fits && score > 0.0 {
                ranked.push((Candidate::Recent(i), score));
            }
        }
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut chunks = Vec::new();
        for (candidate, _) in ranked {
            if chunks.len() >= MAX_CHUNKS {
                break;
            }
            let (text, rel, line) = match candidate {
                Candidate::Indexed(id) => {
                    let Some(d) = self.docs.get(id as usize).and_then(Option::as_ref) else {
                        continue;
                    };
                    let Some(f) = self.files.get(&d.file) else {
                        continue;
                    };
                    (d.chunk.text(&f.text), &f.rel, d.chunk.start_line)
                }
                Candidate::Recent(i) => {
                    let r = &recent[i];
                    let Some(f) = self.files.get(r.path.as_path()) else {
                        continue;
                    };
                    (r.text.as_str(), &f.rel, r.line)
                }
            };
            let terms = term_set(text);
            if seen.iter().any(|s| jaccard(s, &terms) >= DUPLICATE) {
                continue;
            }
            seen.push(terms);
            let (skipped, shown) = best_window(text, &seen[0], MAX_CHUNK_LINES_SHOWN);
            chunks.push(Snippet {
                path: rel.to_string(),
                text: shown.to_string(),
                line: line + skipped,
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retrieval::fixtures::{index, query};

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
    fn recent_chunks_rank_with_the_bm25_chunks_outside_the_window() {
        let mut ix = index();
        let helper = "def normalize_whitespace(text):\n    return ' '.join(text.split())\n";
        let strings = Path::new("/ws/util/strings.py");
        ix.update(
            strings,
            &format!("def slugify(title):\n    return title.lower()\n\n{helper}"),
        );
        let app = Path::new("/ws/app/page.py");
        let filler: String = (1..200).map(|i| format!("v_{i} = {i}\n")).collect();
        ix.update(app, &format!("def title():\n{filler}{helper}"));
        let recent = |path: &Path, line: usize, text: &str| RecentChunk {
            path: path.to_path_buf(),
            line,
            text: text.into(),
            edited: true,
        };
        let prefix = "def render(text):\n    cleaned = normalize_whitespace(text)\n    return ";
        let q = query(app, prefix);
        let shown = |got: &[Snippet], path: &str, line: usize| {
            got.iter().any(|s| s.path == path && s.line == line)
        };
        // Of another file: ranked in.
        let got = ix.retrieve_with(&q, &[recent(strings, 3, helper)], 1000);
        assert!(shown(&got, "util/strings.py", 3), "{got:#?}");
        // Not where its text is no longer in the file (edited since, or a
        // closed buffer's unsaved text), nor of files outside the index.
        let gone = "def squash(text):\n    return text.replace(' ', '')\n";
        let got = ix.retrieve_with(&q, &[recent(strings, 3, gone)], 1000);
        assert!(got.iter().all(|s| !s.text.contains("squash")), "{got:#?}");
        let outside = Path::new("/elsewhere/x.py");
        let got = ix.retrieve_with(&q, &[recent(outside, 3, helper)], 1000);
        assert!(got.iter().all(|s| s.path != "x.py"), "{got:#?}");
        // Of the current file: only outside the prompt's window.
        let got = ix.retrieve_with(&q, &[recent(app, 200, helper)], 1000);
        assert!(shown(&got, "app/page.py", 200), "{got:#?}");
        let got = ix.retrieve_with(&q, &[recent(app, 1, helper)], 1000);
        assert!(got.iter().all(|s| s.path != "app/page.py"), "{got:#?}");
        // The window is what the prompt's budget keeps, not all the prefix.
        let long: String = (0..100)
            .map(|i| format!("x_{i} = {i}\n"))
            .collect::<String>()
            + prefix;
        let got = ix.retrieve_with(&query(app, &long), &[recent(app, 5, helper)], 100);
        assert!(shown(&got, "app/page.py", 5), "{got:#?}");
        let got = ix.retrieve_with(&query(app, &long), &[recent(app, 5, helper)], 10_000);
        assert!(got.iter().all(|s| s.path != "app/page.py"), "{got:#?}");
    }
}
