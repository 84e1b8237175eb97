//! `infill-eval eval-cross`: a CrossCodeEval-style measure of cross-file context
//! on real code of pinned registry packages (fetched by
//! `scripts/fetch-cross-eval` into a cache outside the repository).
//!
//! An item is a line that uses an identifier defined in another file of the
//! same package and not earlier in its own file (import lines aside), and
//! that can be predicted at all: not part of an import (of any shape), a
//! declaration header, a docstring or comment; not carrying a trailing
//! comment or mostly string text; not a fragment continuing the line
//! before; not in tests, docs or packaging files (`setup.py`). The
//! line is removed from the file's text, the index is given that text (as
//! the server's index is given an unsaved buffer: the line is nowhere in
//! what retrieval sees), and the server's pipeline completes it with
//! `crossFile` off and on, in the same run, on the same engine.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use ropey::Rope;

use infill::completion::cursor_context;
use infill::completion::pipeline::{self, Extras, Mode, Suggestion};
use infill::config::{Config, Multiline};
use infill::engine::{CancelFlag, Engine};
use infill::prompt::repo::CrossFileContext;
use infill::retrieval::{outline::outline, tokens::identifiers, Index, Query, Root};
use infill::text::syntax::{Language, SyntaxTree};
use infill::workspace;

/// Names too common to mean a cross-file dependency.
const COMMON: &[&str] = &[
    "self",
    "None",
    "True",
    "False",
    "this",
    "super",
    "null",
    "true",
    "false",
    "return",
    "print",
    "String",
    "Object",
    "List",
    "Map",
    "Integer",
    "Override",
    "len",
    "str",
    "int",
    "dict",
    "list",
    "isinstance",
    "super",
    "Exception",
    "ValueError",
    "TypeError",
];

/// Name defined in more files than this: ambiguous, not an item.
const MAX_DEFINING_FILES: usize = 3;

#[derive(Debug, Clone)]
pub struct Item {
    pub id: String,
    pub path: PathBuf,
    pub line: usize,
    /// The file's text before the line (with its indentation) and after it.
    pub prefix: String,
    pub suffix: String,
    pub expected: String,
    /// The file as it was.
    pub original: String,
}

/// One package's items, with the index of all its files.
pub struct Package {
    pub name: String,
    pub index: Index,
    pub items: Vec<Item>,
}

pub fn default_data_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("infill/cross-eval")
}

/// Files whose lines are not code the package runs: packaging and
/// build metadata, documentation configuration, tests and their helpers.
fn skipped_file(rel: &str) -> bool {
    const NAMES: &[&str] = &[
        "setup.py",
        "conftest.py",
        "noxfile.py",
        "fabfile.py",
        "tasks.py",
        "__about__.py",
        "__version__.py",
        "_version.py",
        "version.py",
        "package-info.java",
        "module-info.java",
    ];
    let name = rel.rsplit('/').next().unwrap_or(rel);
    NAMES.contains(&name)
        || rel.contains("test")
        || rel.split('/').any(|part| part == "docs" || part == "doc")
}

/// What the syntax tree says about each line of a file.
#[derive(Debug, Clone, Default)]
struct LineFacts {
    /// The line's code starts inside a string or a comment (docstrings, Javadoc).
    in_string_or_comment: bool,
    /// Part of an import or package statement (of any shape: `from x import (`
    /// over several lines too).
    import: bool,
    /// Part of a declaration's header (`def f(a,\n b) -> T:`, a class line
    /// after its annotations): it names something new, or lists parameters.
    declaration: bool,
    /// A comment follows code on the line (no one can predict its words).
    trailing_comment: bool,
    /// Bytes of string literals on the line, and the longest one.
    string_bytes: usize,
    longest_string: usize,
}

const IMPORT_KINDS: &[&str] = &[
    "import_statement",
    "import_from_statement",
    "future_import_statement",
    "import_declaration",
    "package_declaration",
];

const DECLARATION_KINDS: &[&str] = &[
    "function_definition",
    "class_definition",
    "class_declaration",
    "interface_declaration",
    "enum_declaration",
    "record_declaration",
    "annotation_type_declaration",
    "annotation_type_element_declaration",
    "method_declaration",
    "constructor_declaration",
    "compact_constructor_declaration",
];

fn is_string(kind: &str) -> bool {
    matches!(
        kind,
        "string" | "string_literal" | "text_block" | "character_literal"
    )
}

fn is_comment(kind: &str) -> bool {
    kind.contains("comment")
}

/// Facts per line (0-based) of `text`, from one walk of its tree.
fn line_facts(language: Language, text: &str) -> Vec<LineFacts> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut facts = vec![LineFacts::default(); lines.len()];
    let mut parser = tree_sitter::Parser::new();
    if parser.set_language(&language.grammar()).is_err() {
        return facts;
    }
    let Some(tree) = parser.parse(text, None) else {
        return facts;
    };
    // Column of each line's first non-blank character.
    let lead: Vec<usize> = lines
        .iter()
        .map(|l| l.len() - l.trim_start().len())
        .collect();
    let mut cursor = tree.walk();
    loop {
        let node = cursor.node();
        let kind = node.kind();
        let (r0, r1) = (node.start_position().row, node.end_position().row);
        let rows = r0..=r1.min(facts.len().saturating_sub(1));
        let mut descend = true;
        if IMPORT_KINDS.contains(&kind) {
            for r in rows.clone() {
                facts[r].import = true;
            }
            descend = false;
        } else if DECLARATION_KINDS.contains(&kind) {
            // Up to the end of what precedes the body (`:`, `{`'s line).
            let end = node.child_by_field_name("body").map_or(r1, |b| {
                b.prev_sibling()
                    .map_or(b.start_position().row, |p| p.end_position().row)
            });
            for r in r0..=end.min(facts.len().saturating_sub(1)) {
                facts[r].declaration = true;
            }
        } else if is_string(kind) || is_comment(kind) {
            descend = false;
            let (c0, c1) = (node.start_position().column, node.end_position().column);
            for r in rows.clone() {
                // Inside the node from `from` to `to` (columns) on row r.
                let from = if r == r0 { c0 } else { 0 };
                let to = if r == r1 { c1 } else { usize::MAX };
                if (from..to).contains(&lead[r]) {
                    facts[r].in_string_or_comment = true;
                }
                if is_comment(kind) && r == r0 && lead[r] < c0 {
                    facts[r].trailing_comment = true;
                }
                if is_string(kind) {
                    let len = to.min(lines[r].trim_end().len()).saturating_sub(from);
                    facts[r].string_bytes += len;
                    facts[r].longest_string = facts[r].longest_string.max(len);
                }
            }
        }
        if descend && cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return facts;
            }
        }
    }
}

/// Whether a line can be an item at all: code that runs, not an import,
/// not a declaration, not mostly words in strings or comments, not a
/// fragment continuing the expression of the line before.
fn predictable(facts: &LineFacts, trimmed: &str) -> bool {
    !facts.in_string_or_comment
        && !facts.import
        && !facts.declaration
        && !facts.trailing_comment
        && facts.longest_string <= 16
        && facts.string_bytes * 3 <= trimmed.len()
        && (8..=120).contains(&trimmed.len())
        && !trimmed.starts_with('@')
        && !trimmed.starts_with(|c: char| ")]}+-*/|&.?:,=<>".contains(c))
}

/// Loads every package under `dir/<language>/`, with at most `per_package` items each.
pub fn load(dir: &Path, language: Language, per_package: usize) -> Result<Vec<Package>> {
    let lang_dir = dir.join(language.name());
    let mut roots: Vec<PathBuf> = std::fs::read_dir(&lang_dir)
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot read {} ({e}); run scripts/fetch-cross-eval first",
                lang_dir.display()
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && !p.to_string_lossy().ends_with(".part"))
        .collect();
    roots.sort();
    if roots.is_empty() {
        bail!("no packages in {}", lang_dir.display());
    }
    let mut out = Vec::new();
    for root in roots {
        out.push(load_package(&root, language, per_package));
    }
    Ok(out)
}

fn load_package(root: &Path, language: Language, per_package: usize) -> Package {
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut index = Index::new(vec![Root {
        path: root.to_path_buf(),
        name: name.clone(),
    }]);
    let mut sources: Vec<(PathBuf, String)> = Vec::new();
    for path in workspace::walk(root) {
        let Ok(text) = workspace::read_text(&path, infill::config::DEFAULT_MAX_FILE_BYTES) else {
            continue;
        };
        index.update(&path, &text);
        if path.extension().and_then(|e| e.to_str()) == Some(language.extension()) {
            sources.push((path, text));
        }
    }
    // Which files define each name.
    let mut defined_in: HashMap<String, HashSet<usize>> = HashMap::new();
    let mut defined_here: Vec<HashSet<String>> = Vec::new();
    let mut def_lines: Vec<HashSet<usize>> = Vec::new();
    for (i, (_, text)) in sources.iter().enumerate() {
        let o = outline(Some(language), text);
        let mut here = HashSet::new();
        let mut lines = HashSet::new();
        for s in o.symbols {
            defined_in.entry(s.name.clone()).or_default().insert(i);
            lines.insert(s.line);
            here.insert(s.name);
        }
        defined_here.push(here);
        def_lines.push(lines);
    }
    let mut candidates: Vec<Item> = Vec::new();
    for (i, (path, text)) in sources.iter().enumerate() {
        let rel = path
            .strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string();
        if skipped_file(&rel) {
            continue;
        }
        let facts = line_facts(language, text);
        // The last line each name occurs on: a name the file uses again
        // further on is in the suffix the model sees, which would make the
        // item an in-file one.
        let mut last_line: HashMap<&str, usize> = HashMap::new();
        for (n, line) in text.split_inclusive('\n').enumerate() {
            for id in identifiers(line) {
                last_line.insert(id, n);
            }
        }
        let mut seen: HashSet<&str> = HashSet::new();
        let mut offset = 0;
        for (n, line) in text.split_inclusive('\n').enumerate() {
            let start = offset;
            offset += line.len();
            let content = line.trim_end_matches(['\n', '\r']);
            let trimmed = content.trim();
            let f = facts.get(n).cloned().unwrap_or_default();
            let ids: Vec<&str> = identifiers(content).collect();
            let usable = predictable(&f, trimmed)
                && !def_lines[i].contains(&n)
                && ids.iter().any(|id| {
                    distinctive(id)
                        && !COMMON.contains(id)
                        && !seen.contains(id)
                        && last_line.get(id) == Some(&n)
                        && !defined_here[i].contains(*id)
                        && defined_in
                            .get(*id)
                            .is_some_and(|f| !f.contains(&i) && f.len() <= MAX_DEFINING_FILES)
                });
            if usable {
                let indent = &content[..content.len() - content.trim_start().len()];
                candidates.push(Item {
                    id: format!("{name}/{rel}:{}", n + 1),
                    path: path.clone(),
                    line: n,
                    prefix: format!("{}{indent}", &text[..start]),
                    suffix: format!("\n{}", &text[offset..]),
                    expected: trimmed.to_string(),
                    original: text.clone(),
                });
            }
            // Names in imports, docstrings and comments are not uses.
            if !f.import && !f.in_string_or_comment {
                seen.extend(ids);
            }
        }
    }
    // Evenly spread over the package, deterministically.
    let items = if candidates.len() <= per_package {
        candidates
    } else {
        let step = candidates.len() as f64 / per_package as f64;
        (0..per_package)
            .map(|k| candidates[(k as f64 * step) as usize].clone())
            .collect()
    };
    Package { name, index, items }
}

/// A compound, project-specific looking name (`normalize_path`,
/// `getHeader`, `StringUtils`), not a plain word like `update` that
/// the standard library defines too.
fn distinctive(id: &str) -> bool {
    id.len() >= 5
        && (id.trim_matches('_').contains('_')
            || id.chars().next().is_some_and(char::is_uppercase)
            || id.chars().skip(1).any(char::is_uppercase))
}

#[derive(Debug, Default, Clone)]
pub struct Score {
    pub exact: usize,
    pub edit_similarity: f64,
    pub identifier_exact: usize,
    pub identifier_f1: f64,
    pub prompt_tokens: usize,
    /// Answers that needed a second request (`CursorContext::second_try`).
    pub second_tries: usize,
}

fn ids(text: &str) -> Vec<&str> {
    identifiers(text).collect()
}

fn score(got: &str, want: &str, s: &mut Score) {
    let (got, want) = (got.trim(), want.trim());
    if got == want {
        s.exact += 1;
    }
    s.edit_similarity += strsim::normalized_levenshtein(got, want);
    let (g, w) = (ids(got), ids(want));
    if g == w {
        s.identifier_exact += 1;
    }
    let mut pool: Vec<&str> = w.clone();
    let mut hit = 0;
    for id in &g {
        if let Some(i) = pool.iter().position(|p| p == id) {
            pool.swap_remove(i);
            hit += 1;
        }
    }
    if hit > 0 {
        let p = hit as f64 / g.len() as f64;
        let r = hit as f64 / w.len() as f64;
        s.identifier_f1 += 2.0 * p * r / (p + r);
    }
}

/// One item's result, for progress output.
pub struct Outcome<'a> {
    pub item: &'a Item,
    /// `needed_names` of the expected line, and those the context lacks.
    pub needed: Vec<String>,
    pub missing: Vec<String>,
    /// With cross-file context off and on; `None` without a model.
    pub answers: Option<[Suggestion; 2]>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub language: &'static str,
    pub packages: Vec<(String, usize)>,
    pub items: usize,
    pub off: Score,
    pub on: Score,
    pub seconds: f64,
    /// Whether a model completed the items (not retrieval only).
    pub completed: bool,
    /// Names of the expected lines that the model cannot see in the file's
    /// window (`needed_names`), and how many of them the context shows.
    pub names_needed: usize,
    pub names_shown: usize,
    pub items_needing_names: usize,
    /// Items whose needed names are all in the context.
    pub items_shown_all: usize,
}

/// The compound names of `expected` that appear nowhere in the window the
/// model sees: what only other files can tell it.
fn needed_names<'a>(expected: &'a str, prefix: &str, suffix: &str) -> Vec<&'a str> {
    let known: HashSet<&str> = identifiers(prefix).chain(identifiers(suffix)).collect();
    let mut out: Vec<&str> = identifiers(expected)
        .filter(|id| distinctive(id) && !COMMON.contains(id) && !known.contains(id))
        .collect();
    out.dedup();
    out
}

/// Names in the snippets that fit `budget` tokens, best first, at about
/// three characters a token (the engine counts exactly; the eval without a
/// model has no tokenizer).
fn shown_names(snippets: &[infill::retrieval::Snippet], budget: usize) -> HashSet<String> {
    let mut room = budget * 3;
    let mut out = HashSet::new();
    for s in snippets {
        if s.text.len() + s.path.len() > room {
            continue;
        }
        room -= s.text.len() + s.path.len();
        out.extend(identifiers(&s.text).map(str::to_string));
    }
    out
}

/// Completes every item with cross-file context off and on (with no
/// engine, only measures what retrieval would show).
pub fn run(
    language: Language,
    packages: &mut [Package],
    engine: Option<&dyn Engine>,
    config: &Config,
    mut progress: impl FnMut(&Outcome),
) -> Result<Report> {
    let started = std::time::Instant::now();
    let mut report = Report {
        language: language.name(),
        completed: engine.is_some(),
        ..Default::default()
    };
    let mut cfg = config.clone();
    cfg.completion.multiline = Multiline::Never;
    // Quality, not latency, is measured here: no time budget.
    cfg.completion.time_budget_ms = 0;
    for pkg in packages.iter_mut() {
        report.packages.push((pkg.name.clone(), pkg.items.len()));
        for item in &pkg.items {
            let removed = format!("{}{}", item.prefix, item.suffix);
            pkg.index.update(&item.path, &removed);
            let doc = Rope::from_str(&removed);
            let syntax = SyntaxTree::new(language, &doc);
            let ctx = cursor_context(&doc, syntax.as_ref(), item.prefix.chars().count(), &cfg);
            let q = Query {
                path: &item.path,
                line: item.line,
                prefix: &ctx.prefix,
                suffix: &ctx.suffix,
            };
            let snippets = pkg.index.retrieve(&q);
            let (repo_name, rel) = pkg
                .index
                .repo_and_path(&item.path)
                .unwrap_or_else(|| (pkg.name.clone(), item.id.clone()));
            let needed = needed_names(&item.expected, &ctx.prefix, &ctx.suffix);
            let shown = shown_names(&snippets, cfg.context.budget_tokens as usize);
            let missing: Vec<String> = needed
                .iter()
                .filter(|n| !shown.contains(**n))
                .map(|n| n.to_string())
                .collect();
            report.names_needed += needed.len();
            report.names_shown += needed.len() - missing.len();
            report.items_needing_names += usize::from(!needed.is_empty());
            report.items_shown_all += usize::from(!needed.is_empty() && missing.is_empty());
            let context = CrossFileContext::new(repo_name, rel, snippets, &cfg.context);
            let mut outcome = Outcome {
                item,
                needed: needed.iter().map(|n| n.to_string()).collect(),
                missing,
                answers: None,
            };
            let Some(engine) = engine else {
                // Retrieval only: what the context would hold.
                pkg.index.update(&item.path, &item.original);
                report.items += 1;
                progress(&outcome);
                continue;
            };
            let cancel = CancelFlag::default();
            let off = pipeline::run(engine, &ctx, &cfg, Extras::default(), Mode::Fresh, &cancel)
                .map_err(|e| anyhow::anyhow!("{}: {e}", item.id))?;
            let on = pipeline::run(
                engine,
                &ctx,
                &cfg,
                Extras {
                    context: Some(context),
                    document: None,
                },
                Mode::Fresh,
                &cancel,
            )
            .map_err(|e| anyhow::anyhow!("{}: {e}", item.id))?;
            pkg.index.update(&item.path, &item.original);
            score(&off.text, &item.expected, &mut report.off);
            score(&on.text, &item.expected, &mut report.on);
            report.off.prompt_tokens += off.output.prompt_tokens;
            report.on.prompt_tokens += on.output.prompt_tokens;
            report.off.second_tries += usize::from(off.second_try());
            report.on.second_tries += usize::from(on.second_try());
            report.items += 1;
            outcome.answers = Some([off, on]);
            progress(&outcome);
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.items.max(1) as f64;
        let pct = |k: usize| 100.0 * k as f64 / n;
        let pkgs: Vec<String> = self
            .packages
            .iter()
            .map(|(p, k)| format!("{p} ({k})"))
            .collect();
        writeln!(
            f,
            "{}: {} items from {}  ({:.0} s)",
            self.language,
            self.items,
            pkgs.join(", "),
            self.seconds
        )?;
        if !self.completed {
            return write!(
                f,
                "needed names in context: {} of {}; items with all shown: {} of {} that need any",
                self.names_shown, self.names_needed, self.items_shown_all, self.items_needing_names
            );
        }
        writeln!(
            f,
            "{:<24} {:>10} {:>10} {:>8}",
            "metric", "in-file", "cross-file", "ratio"
        )?;
        let ratio = |a: f64, b: f64| {
            if a > 0.0 {
                format!("{:.2}x", b / a)
            } else {
                "-".into()
            }
        };
        let (o, c) = (&self.off, &self.on);
        writeln!(
            f,
            "{:<24} {:>9.1}% {:>9.1}% {:>8}",
            "exact match",
            pct(o.exact),
            pct(c.exact),
            ratio(o.exact as f64, c.exact as f64)
        )?;
        writeln!(
            f,
            "{:<24} {:>10.3} {:>10.3} {:>8}",
            "edit similarity",
            o.edit_similarity / n,
            c.edit_similarity / n,
            ratio(o.edit_similarity, c.edit_similarity)
        )?;
        writeln!(
            f,
            "{:<24} {:>9.1}% {:>9.1}% {:>8}",
            "identifier exact match",
            pct(o.identifier_exact),
            pct(c.identifier_exact),
            ratio(o.identifier_exact as f64, c.identifier_exact as f64)
        )?;
        writeln!(
            f,
            "{:<24} {:>10.3} {:>10.3} {:>8}",
            "identifier F1",
            o.identifier_f1 / n,
            c.identifier_f1 / n,
            ratio(o.identifier_f1, c.identifier_f1)
        )?;
        writeln!(
            f,
            "{:<24} {:>10} {:>10}   ({} of {} items that need any: all shown)",
            "needed names in context",
            "-",
            format!("{}/{}", self.names_shown, self.names_needed),
            self.items_shown_all,
            self.items_needing_names
        )?;
        writeln!(
            f,
            "{:<24} {:>10} {:>10}",
            "second tries", o.second_tries, c.second_tries
        )?;
        write!(
            f,
            "{:<24} {:>10.0} {:>10.0}",
            "mean prompt tokens",
            o.prompt_tokens as f64 / n,
            c.prompt_tokens as f64 / n
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_use_names_defined_elsewhere_and_not_before() {
        let dir = std::env::temp_dir().join(format!("infill-crosseval-{}", std::process::id()));
        let pkg = dir.join("python/demo");
        std::fs::create_dir_all(pkg.join("demo")).unwrap();
        std::fs::write(
            pkg.join("demo/util.py"),
            "def normalize_path(p):\n    return p.strip('/')\n",
        )
        .unwrap();
        std::fs::write(
            pkg.join("demo/app.py"),
            "from demo.util import normalize_path\n\n\"\"\"\nnormalize_path(doc) in a docstring\n\"\"\"\ndef serve(path):\n    clean = normalize_path(path)\n    again = clean.strip()\n    return again\n",
        )
        .unwrap();
        // None of these lines is an item (each file holds one first use).
        let not_items = [
            (
                "imports",
                "from demo.util import (\n    normalize_path,\n)\n",
            ),
            (
                "signature",
                "def handle(\n    path=normalize_path,\n):\n    pass\n",
            ),
            (
                "comment",
                "def f():\n    x = normalize_path(1)  # tidy it\n",
            ),
            (
                "message",
                "def f():\n    raise Failure(normalize_path('a rather long message text'))\n",
            ),
            (
                // Used again further on: the suffix shows the name.
                "later",
                "def f(p):\n    a = normalize_path(p)\n    return normalize_path(a)\n",
            ),
            (
                "fragment",
                "def f(p):\n    y = (p\n         + normalize_path(p))\n",
            ),
        ];
        for (name, text) in not_items {
            std::fs::write(pkg.join(format!("demo/{name}.py")), text).unwrap();
        }
        std::fs::write(
            pkg.join("setup.py"),
            "from demo.util import normalize_path\nname = normalize_path('demo')\n",
        )
        .unwrap();
        let packages = load(&dir, Language::Python, 10).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let items: Vec<&Item> = packages[0].items.iter().collect();
        assert_eq!(items.len(), 1, "{items:?}");
        assert_eq!(items[0].expected, "clean = normalize_path(path)");
        assert!(items[0].prefix.ends_with("def serve(path):\n    "));
        assert!(items[0].suffix.starts_with("\n    again"));
        let mut s = Score::default();
        score("clean = normalize_path(path)", &items[0].expected, &mut s);
        score("clean = normalize(path)", &items[0].expected, &mut s);
        assert_eq!((s.exact, s.identifier_exact), (1, 1));
        assert!(s.identifier_f1 > 1.5 && s.identifier_f1 < 2.0);
    }
}
