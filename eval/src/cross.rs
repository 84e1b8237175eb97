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
//!
//! The packages are split into a tuning part and a test part
//! ([`TUNE_PACKAGES`], [`TEST_PACKAGES`]): settings are decided on the
//! first, results reported on the second. Every off/on comparison is printed
//! with its paired significance (`stats`), for all items and for
//! CrossCodeEval's selection (the line uses a name the file imports from
//! another file of the package).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use ropey::Rope;

use infill::completion::cursor_context;
use infill::completion::pipeline::{self, Extras, Mode, Suggestion};
use infill::config::{Config, Multiline};
use infill::engine::{CancelFlag, Engine};
use infill::prompt::repo::CrossFileContext;
use infill::retrieval::imports::imports;
use infill::retrieval::{outline::outline, tokens::identifiers, Index, Query, Root};
use infill::text::syntax::{Language, SyntaxTree};
use infill::workspace;

use crate::cursor::{split_line, Cursor};
use crate::llama_vim;
use crate::stats::{self, discordant, format_p, mcnemar_exact, paired_bootstrap};

/// The tuning part: the packages the evaluation was first built and tuned
/// on (layouts, budgets and the item filter were chosen looking at the
/// items of the first four of each language), and some added beside them.
/// Decide on these (`--split tune`).
pub const TUNE_PACKAGES: &[&str] = &[
    // Python
    "click",
    "httpx",
    "marshmallow",
    "requests",
    "flask",
    "itsdangerous",
    // Java
    "jsoup",
    "libcommons-io-java",
    "libcommons-lang3-java",
    "libjcommander-java",
    "libcommons-pool2-java",
];

/// The test part: packages added for it, whose items no tuning looked at.
/// Report these (`--split test`), and change nothing because of what they
/// show (a package looked at while tuning moves to `TUNE_PACKAGES`).
pub const TEST_PACKAGES: &[&str] = &[
    // Python
    "attrs",
    "jinja2",
    "pluggy",
    "pydantic",
    "rich",
    "starlette",
    "tomlkit",
    "urllib3",
    "werkzeug",
    // Java
    "guava-libraries",
    "jackson-core",
    "libcommons-cli-java",
    "libcommons-collections4-java",
    "libcommons-compress-java",
    "libcommons-net-java",
    "libgoogle-gson-java",
    "picocli",
];

/// Which packages an evaluation takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Split {
    #[default]
    Tune,
    Test,
    All,
}

impl Split {
    /// Whether the package named `name` is in this part (`All`: every
    /// package in the cache, listed or not).
    pub fn contains(self, name: &str) -> bool {
        match self {
            Split::Tune => TUNE_PACKAGES.contains(&name),
            Split::Test => TEST_PACKAGES.contains(&name),
            Split::All => true,
        }
    }
}

impl std::str::FromStr for Split {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "tune" => Ok(Split::Tune),
            "test" => Ok(Split::Test),
            "all" => Ok(Split::All),
            other => Err(format!("unknown split `{other}`; tune, test or all")),
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Split::Tune => "tune",
            Split::Test => "test",
            Split::All => "all",
        })
    }
}

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
    /// The file's text before the cursor (the line's indentation, and in
    /// mid-line mode its typed start) and after the line.
    pub prefix: String,
    pub suffix: String,
    /// The line's start typed before the cursor (empty at the line start).
    pub typed: String,
    /// What the model must complete: the line's code after the cursor.
    pub expected: String,
    /// In CrossCodeEval's selection: the expected text uses a name that the
    /// file imports from another file of the package.
    pub cceval: bool,
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
pub(crate) struct LineFacts {
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
pub(crate) fn line_facts(language: Language, text: &str) -> Vec<LineFacts> {
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
pub(crate) fn predictable(facts: &LineFacts, trimmed: &str) -> bool {
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

/// Loads the packages of `split` under `dir/<language>/`, with at most
/// `per_package` items each, the cursor placed as `cursor` says.
pub fn load(
    dir: &Path,
    language: Language,
    per_package: usize,
    cursor: Cursor,
    split: Split,
) -> Result<Vec<Package>> {
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
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| split.contains(&n.to_string_lossy()))
        })
        .collect();
    roots.sort();
    if roots.is_empty() {
        bail!(
            "no packages of the {split} split in {}; run scripts/fetch-cross-eval",
            lang_dir.display()
        );
    }
    let mut out = Vec::new();
    for root in roots {
        out.push(load_package(&root, language, per_package, cursor));
    }
    Ok(out)
}

/// Path of `path` under `root`, `/`-separated.
fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

/// Whether `rel` is the file `suffix` names (`a/b.py`), wherever it sits
/// under the package root (`src/a/b.py`).
fn ends_with_path(rel: &str, suffix: &str) -> bool {
    rel == suffix || rel.ends_with(&format!("/{suffix}"))
}

/// The files (relative paths) an import of `name` from `module` in the file
/// `rel` may resolve to: Python `from .m import name` (relative to the
/// file's folder; a name may be a module itself, or defined in a package's
/// `__init__.py`), `from pkg.m import name` (anywhere under the root);
/// Java `import p.C;` (`p/C.java`), `import static p.C.m;` and
/// `import p.C.Inner;` (`p/C.java`).
fn import_targets(language: Language, rel: &str, module: &str, name: &str) -> Vec<String> {
    match language {
        Language::Java => {
            let m = module.replace('.', "/");
            vec![format!("{m}/{name}.java"), format!("{m}.java")]
        }
        Language::Python => {
            let dots = module.len() - module.trim_start_matches('.').len();
            let path = module.trim_start_matches('.').replace('.', "/");
            let base = if dots == 0 {
                None
            } else {
                // `.` is the file's folder, each further dot one up.
                let mut dir: Vec<&str> = rel.split('/').collect();
                dir.pop();
                for _ in 1..dots {
                    dir.pop();
                }
                Some(dir.join("/"))
            };
            let join = |a: &str, b: &str| match (a.is_empty(), b.is_empty()) {
                (true, _) => b.to_string(),
                (_, true) => a.to_string(),
                _ => format!("{a}/{b}"),
            };
            let module_path = join(base.as_deref().unwrap_or(""), &path);
            let mut out = Vec::new();
            for m in [module_path.clone(), join(&module_path, name)] {
                if !m.is_empty() {
                    out.push(format!("{m}.py"));
                    out.push(format!("{m}/__init__.py"));
                }
            }
            // Relative targets are exact paths: mark them so.
            if base.is_some() {
                out.iter_mut().for_each(|t| t.insert(0, '/'));
            }
            out
        }
    }
}

/// The names the file `rel` (text `text`) imports from another of the
/// package's files `files` (CrossCodeEval's criterion for an item).
fn imported_from_package(
    language: Language,
    rel: &str,
    text: &str,
    files: &HashSet<String>,
) -> HashSet<String> {
    let resolves = |target: &str| match target.strip_prefix('/') {
        // Relative to the file: that exact path.
        Some(exact) => exact != rel && files.contains(exact),
        None => files.iter().any(|f| f != rel && ends_with_path(f, target)),
    };
    imports(language, text)
        .into_iter()
        .filter(|i| {
            import_targets(language, rel, &i.module, &i.name)
                .iter()
                .any(|t| resolves(t))
        })
        .map(|i| i.name)
        .collect()
}

fn load_package(root: &Path, language: Language, per_package: usize, cursor: Cursor) -> Package {
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
    let files: HashSet<String> = sources.iter().map(|(p, _)| relative(root, p)).collect();
    let mut candidates: Vec<Item> = Vec::new();
    for (i, (path, text)) in sources.iter().enumerate() {
        let rel = relative(root, path);
        if skipped_file(&rel) {
            continue;
        }
        let facts = line_facts(language, text);
        let imported = imported_from_package(language, &rel, text, &files);
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
            // A name only other files define, first used here: in the part
            // of the line the model must complete.
            let cross_file = |id: &str| {
                distinctive(id)
                    && !COMMON.contains(&id)
                    && !seen.contains(id)
                    && last_line.get(id) == Some(&n)
                    && !defined_here[i].contains(id)
                    && defined_in
                        .get(id)
                        .is_some_and(|f| !f.contains(&i) && f.len() <= MAX_DEFINING_FILES)
            };
            let cut = split_line(content.trim_end(), cursor);
            let usable = predictable(&f, trimmed)
                && !def_lines[i].contains(&n)
                && cut.is_some_and(|(_, rest)| identifiers(rest).any(cross_file));
            if let (true, Some((before, rest))) = (usable, cut) {
                let indent = &content[..content.len() - content.trim_start().len()];
                candidates.push(Item {
                    id: format!("{name}/{rel}:{}", n + 1),
                    path: path.clone(),
                    line: n,
                    prefix: format!("{}{before}", &text[..start]),
                    suffix: format!("\n{}", &text[offset..]),
                    typed: before[indent.len()..].to_string(),
                    expected: rest.trim().to_string(),
                    cceval: identifiers(rest).any(|id| imported.contains(id)),
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
pub(crate) fn distinctive(id: &str) -> bool {
    id.len() >= 5
        && (id.trim_matches('_').contains('_')
            || id.chars().next().is_some_and(char::is_uppercase)
            || id.chars().skip(1).any(char::is_uppercase))
}

/// One answer's scores.
#[derive(Debug, Default, Clone, Copy)]
pub struct ItemScore {
    pub exact: bool,
    pub edit_similarity: f64,
    pub identifier_exact: bool,
    pub identifier_f1: f64,
}

pub(crate) fn score(got: &str, want: &str) -> ItemScore {
    let (got, want) = (got.trim(), want.trim());
    let (g, w): (Vec<&str>, Vec<&str>) = (identifiers(got).collect(), identifiers(want).collect());
    let mut pool: Vec<&str> = w.clone();
    let mut hit = 0;
    for id in &g {
        if let Some(i) = pool.iter().position(|p| p == id) {
            pool.swap_remove(i);
            hit += 1;
        }
    }
    let identifier_f1 = if hit > 0 {
        let p = hit as f64 / g.len() as f64;
        let r = hit as f64 / w.len() as f64;
        2.0 * p * r / (p + r)
    } else {
        0.0
    };
    ItemScore {
        exact: got == want,
        edit_similarity: strsim::normalized_levenshtein(got, want),
        identifier_exact: g == w,
        identifier_f1,
    }
}

/// An item's scores with crossFile off and on.
#[derive(Debug, Clone, Copy)]
pub struct Paired {
    pub off: ItemScore,
    pub on: ItemScore,
    /// In CrossCodeEval's selection (`Item::cceval`).
    pub cceval: bool,
}

/// What one arm cost.
#[derive(Debug, Default, Clone)]
pub struct Cost {
    pub prompt_tokens: usize,
    /// Answers that needed a second request (`CursorContext::second_try`).
    pub second_tries: usize,
    /// Answers that showed nothing.
    pub empty: usize,
    /// Why they showed nothing (`empty_cause`), with counts.
    pub empty_causes: std::collections::BTreeMap<String, usize>,
}

/// One item's result, for progress output.
pub struct Outcome<'a> {
    pub item: &'a Item,
    /// `needed_names` of the expected line, and those the context lacks.
    pub needed: Vec<String>,
    pub missing: Vec<String>,
    /// With cross-file context off and on; `None` without a model.
    pub answers: Option<[Suggestion; 2]>,
    /// Why each answer shows nothing (`empty_cause`), where it does.
    pub empty_causes: [Option<String>; 2],
    /// The llama.vim arm's answer, where it runs.
    pub llama_vim: Option<llama_vim::Asked>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub language: &'static str,
    pub split: Split,
    pub cursor: Cursor,
    /// The arms' column headings, and what the second changes.
    pub labels: [String; 2],
    pub change: String,
    /// Asked as an editor asks (`Arms::as_editor`).
    pub as_editor: bool,
    pub packages: Vec<(String, usize)>,
    pub items: usize,
    /// Items in CrossCodeEval's selection.
    pub cceval_items: usize,
    /// Per item, in order (empty without a model).
    pub scored: Vec<Paired>,
    pub off: Cost,
    pub on: Cost,
    /// The llama.vim arm (`Arms::llama_vim`): each item's scores, in the
    /// order of `scored` (empty where it does not run), what it cost, and
    /// how it was run.
    pub llama_vim: Vec<ItemScore>,
    pub llama_vim_cost: Cost,
    pub llama_vim_setup: String,
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

/// The two arms an evaluation compares, item by item.
#[derive(Debug, Clone)]
pub struct Arms {
    /// Column headings of the report.
    pub labels: [String; 2],
    /// What the second arm changes, printed above the table.
    pub change: String,
    configs: [Config; 2],
    /// Lines before the cursor's that go after the middle marker with it
    /// (`Extras::anchor`): `Some(0)` the cursor line even when blank,
    /// `None` as the server without an anchor.
    pub middle_lines: [Option<usize>; 2],
    /// The arms' settings as given, for `as_editor`.
    given: [Config; 2],
    /// Ask as an editor's automatic request does: the settings' own answer
    /// shape and time budget (multi-line where the cursor allows it), and
    /// nothing where the trigger rules decline (an empty answer).
    pub as_editor: bool,
    /// Only the second arm is asked; the first column repeats its answers.
    pub second_arm_only: bool,
    /// A third arm: llama-server's `/infill` asked as llama.vim asks it
    /// (`llama_vim`), scored like the others, paired against both.
    pub llama_vim: Option<std::sync::Arc<llama_vim::Server>>,
}

impl Arms {
    /// Cross-file context off and on, with `config`'s other settings.
    pub fn cross_file(config: &Config) -> Arms {
        let mut off = config.clone();
        off.context.cross_file = false;
        let mut on = config.clone();
        on.context.cross_file = true;
        Arms {
            labels: ["in-file".into(), "cross-file".into()],
            change: "context.crossFile=true".into(),
            given: [off.clone(), on.clone()],
            configs: [off, on].map(single_line_without_time_budget),
            middle_lines: [None; 2],
            as_editor: false,
            second_arm_only: false,
            llama_vim: None,
        }
    }

    /// `first` against `second` (which differs by `change`), each with
    /// cross-file context as it sets it.
    pub fn versus(first: &Config, second: &Config, change: &str) -> Arms {
        Arms {
            labels: ["A".into(), "B".into()],
            change: change.to_string(),
            given: [first.clone(), second.clone()],
            configs: [first.clone(), second.clone()].map(single_line_without_time_budget),
            middle_lines: [None; 2],
            as_editor: false,
            second_arm_only: false,
            llama_vim: None,
        }
    }

    /// The settings each arm asks with.
    fn settings(&self) -> &[Config; 2] {
        if self.as_editor {
            &self.given
        } else {
            &self.configs
        }
    }

    /// Three-character labels for progress lines.
    pub fn short_labels(&self) -> [String; 2] {
        self.labels
            .clone()
            .map(|l| format!("{:<3}", l.chars().take(3).collect::<String>()))
    }
}

/// One line is scored, and quality, not latency, is measured here: no time
/// budget.
fn single_line_without_time_budget(mut config: Config) -> Config {
    config.completion.multiline = Multiline::Never;
    config.completion.time_budget_ms = 0;
    config
}

/// Completes every item in both arms (with no engine, only measures what
/// retrieval would show).
pub fn run(
    language: Language,
    split: Split,
    cursor: Cursor,
    packages: &mut [Package],
    engine: Option<&dyn Engine>,
    arms: &Arms,
    mut progress: impl FnMut(&Outcome),
) -> Result<Report> {
    let started = std::time::Instant::now();
    let mut report = Report {
        language: language.name(),
        split,
        cursor,
        labels: arms.labels.clone(),
        change: arms.change.clone(),
        as_editor: arms.as_editor,
        completed: engine.is_some(),
        llama_vim_setup: arms
            .llama_vim
            .as_ref()
            .map(|s| s.describe())
            .unwrap_or_default(),
        ..Default::default()
    };
    let cfg = &arms.settings()[0];
    for pkg in packages.iter_mut() {
        report.packages.push((pkg.name.clone(), pkg.items.len()));
        for item in &pkg.items {
            let removed = format!("{}{}", item.prefix, item.suffix);
            pkg.index.update(&item.path, &removed);
            let doc = Rope::from_str(&removed);
            let syntax = SyntaxTree::new(language, &doc);
            let cursor_at = item.prefix.chars().count();
            let ctx = cursor_context(&doc, syntax.as_ref(), cursor_at, cfg);
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
            report.cceval_items += usize::from(item.cceval);
            let context = CrossFileContext::new(repo_name, rel, snippets, &cfg.context);
            let mut outcome = Outcome {
                item,
                needed: needed.iter().map(|n| n.to_string()).collect(),
                missing,
                answers: None,
                empty_causes: [None, None],
                llama_vim: None,
            };
            let Some(engine) = engine else {
                // Retrieval only: what the context would hold.
                pkg.index.update(&item.path, &item.original);
                report.items += 1;
                progress(&outcome);
                continue;
            };
            let cancel = CancelFlag::default();
            let ask = |config: &Config,
                       middle_lines: Option<usize>|
             -> Result<(Suggestion, Option<String>)> {
                let ctx = cursor_context(&doc, syntax.as_ref(), cursor_at, config);
                if let Some(skip) = arms.as_editor.then(|| ctx.automatic_skip(config)).flatten() {
                    return Ok((not_asked(), Some(format!("not asked: {skip:?}"))));
                }
                let extras = Extras {
                    context: config.context.cross_file.then(|| context.clone()),
                    document: None,
                    anchor: middle_lines.map(|k| {
                        let line = doc.char_to_line(cursor_at);
                        doc.line_to_char(line.saturating_sub(k))
                    }),
                };
                let answer = pipeline::run(engine, &ctx, config, extras, Mode::Fresh, &cancel)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", item.id))?;
                let cause = empty_cause(&answer);
                Ok((answer, cause))
            };
            let [first, second] = arms.settings();
            let ((off, off_cause), (on, on_cause)) = if arms.second_arm_only {
                let on = ask(second, arms.middle_lines[1])?;
                (on.clone(), on)
            } else {
                let off = ask(first, arms.middle_lines[0])?;
                (off, ask(second, arms.middle_lines[1])?)
            };
            for (cost, cause) in [(&mut report.off, &off_cause), (&mut report.on, &on_cause)] {
                if let Some(cause) = cause {
                    *cost.empty_causes.entry(cause.clone()).or_default() += 1;
                }
            }
            outcome.empty_causes = [off_cause, on_cause];
            // The llama.vim arm, on the same document and cursor (its
            // answer may hold several lines: scored on the first with text).
            if let Some(server) = &arms.llama_vim {
                let asked = llama_vim::ask(server, &removed, item.prefix.len())
                    .map_err(|e| anyhow::anyhow!("{}: {e:#}", item.id))?;
                let cost = &mut report.llama_vim_cost;
                cost.prompt_tokens += asked.answer.prompt_tokens;
                if let Some(cause) = asked.shown.empty {
                    cost.empty += 1;
                    *cost.empty_causes.entry(cause.to_string()).or_default() += 1;
                }
                report.llama_vim.push(score(
                    first_line_with_text(&asked.shown.text),
                    &item.expected,
                ));
                outcome.llama_vim = Some(asked);
            }
            pkg.index.update(&item.path, &item.original);
            // A multi-line answer (asked as an editor) is scored on its
            // first line: the line that was blanked.
            let line = |text: &str| -> String {
                if arms.as_editor {
                    first_line_with_text(text).to_string()
                } else {
                    text.to_string()
                }
            };
            report.scored.push(Paired {
                off: score(&line(&off.text), &item.expected),
                on: score(&line(&on.text), &item.expected),
                cceval: item.cceval,
            });
            report.off.prompt_tokens += off.output.prompt_tokens;
            report.on.prompt_tokens += on.output.prompt_tokens;
            report.off.second_tries += usize::from(off.second_try());
            report.on.second_tries += usize::from(on.second_try());
            report.off.empty += usize::from(off.text.trim().is_empty());
            report.on.empty += usize::from(on.text.trim().is_empty());
            report.items += 1;
            outcome.answers = Some([off, on]);
            progress(&outcome);
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The first line of `text` that is not blank (empty where none is).
fn first_line_with_text(text: &str) -> &str {
    text.lines().find(|l| !l.trim().is_empty()).unwrap_or("")
}

/// An answer that was never asked (the trigger rules declined).
fn not_asked() -> Suggestion {
    Suggestion {
        output: Default::default(),
        text: String::new(),
        dropped_first: None,
        dropped: None,
        first_dropped: None,
        alternatives: Vec::new(),
    }
}

/// Why `answer` shows nothing, `None` where it shows something: the
/// cleaning step that emptied it (both tries' where a second try was made),
/// and whether the time budget had cut it.
fn empty_cause(answer: &Suggestion) -> Option<String> {
    if !answer.text.trim().is_empty() {
        return None;
    }
    let step = |d: Option<infill::completion::Dropped>| d.map_or("?", |d| d.describe());
    let mut cause = match answer.first_dropped {
        Some(first) => format!("{}, then {}", first.describe(), step(answer.dropped)),
        None => step(answer.dropped).to_string(),
    };
    if answer.output.cut_by_time {
        cause.push_str(" (time budget)");
    }
    Some(cause)
}

/// A ratio of the second arm to the first, `-` where the first is 0.
fn ratio(a: f64, b: f64) -> String {
    if a > 0.0 {
        format!("{:.2}x", b / a)
    } else {
        "-".into()
    }
}

/// The metric rows of a paired comparison of `items`, each with its
/// significance: exact McNemar for the yes/no metrics (`lost` right off
/// only, `gained` right on only), a paired bootstrap 95% interval of the
/// mean difference (on - off) for the graded ones.
pub fn write_paired(f: &mut impl std::fmt::Write, items: &[Paired]) -> std::fmt::Result {
    let n = items.len().max(1) as f64;
    let yes_no = |f: &mut dyn std::fmt::Write, name: &str, get: fn(&ItemScore) -> bool| {
        let off = items.iter().filter(|p| get(&p.off)).count();
        let on = items.iter().filter(|p| get(&p.on)).count();
        let (lost, gained) = discordant(items.iter().map(|p| (get(&p.off), get(&p.on))));
        writeln!(
            f,
            "{name:<24} {:>9.1}% {:>9.1}% {:>8}   McNemar p={} ({lost} lost, {gained} gained)",
            100.0 * off as f64 / n,
            100.0 * on as f64 / n,
            ratio(off as f64, on as f64),
            format_p(mcnemar_exact(lost, gained)),
        )
    };
    let graded = |f: &mut dyn std::fmt::Write, name: &str, get: fn(&ItemScore) -> f64| {
        let off: f64 = items.iter().map(|p| get(&p.off)).sum();
        let on: f64 = items.iter().map(|p| get(&p.on)).sum();
        let diffs: Vec<f64> = items.iter().map(|p| get(&p.on) - get(&p.off)).collect();
        let b = paired_bootstrap(&diffs, stats::BOOTSTRAP_RESAMPLES, stats::BOOTSTRAP_SEED);
        writeln!(
            f,
            "{name:<24} {:>10.3} {:>10.3} {:>8}   diff {:+.3} [{:+.3}, {:+.3}] p={}",
            off / n,
            on / n,
            ratio(off, on),
            b.mean,
            b.low,
            b.high,
            format_p(b.p),
        )
    };
    yes_no(f, "exact match", |s| s.exact)?;
    graded(f, "edit similarity", |s| s.edit_similarity)?;
    yes_no(f, "identifier exact match", |s| s.identifier_exact)?;
    graded(f, "identifier F1", |s| s.identifier_f1)
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.items.max(1) as f64;
        let pkgs: Vec<String> = self
            .packages
            .iter()
            .map(|(p, k)| format!("{p} ({k})"))
            .collect();
        writeln!(
            f,
            "{}: {} items from {}  (split {}, cursor {}{}, {:.0} s)",
            self.language,
            self.items,
            pkgs.join(", "),
            self.split,
            self.cursor,
            if self.as_editor {
                ", asked as an editor: answer shape, time budget, trigger rules"
            } else {
                ""
            },
            self.seconds
        )?;
        if !self.completed {
            return write!(
                f,
                "needed names in context: {} of {}; items with all shown: {} of {} that need any\n\
                 CrossCodeEval selection (the line uses a name imported from another file of the package): {} items",
                self.names_shown,
                self.names_needed,
                self.items_shown_all,
                self.items_needing_names,
                self.cceval_items
            );
        }
        writeln!(
            f,
            "{:<24} {:>10} {:>10} {:>8}   paired test (second vs first, {}; 95% interval of the mean difference)",
            "all items", self.labels[0], self.labels[1], "ratio", self.change
        )?;
        write_paired(f, &self.scored)?;
        let cceval: Vec<Paired> = self.scored.iter().filter(|p| p.cceval).copied().collect();
        writeln!(
            f,
            "{:<24} {:>10} {:>10} {:>8}   ({} items: the line uses a name imported from another file of the package)",
            "CrossCodeEval selection",
            self.labels[0],
            self.labels[1],
            "ratio",
            cceval.len()
        )?;
        write_paired(f, &cceval)?;
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
            "second tries", self.off.second_tries, self.on.second_tries
        )?;
        // The llama.vim arm's column where it ran.
        let vim = !self.llama_vim.is_empty();
        let third = |f: &mut std::fmt::Formatter<'_>, value: String| {
            if vim {
                write!(f, " {value:>10}")
            } else {
                Ok(())
            }
        };
        write!(
            f,
            "{:<24} {:>10} {:>10}",
            "empty answers", self.off.empty, self.on.empty
        )?;
        third(f, self.llama_vim_cost.empty.to_string())?;
        writeln!(f, "{}", if vim { "   (third: llama.vim)" } else { "" })?;
        let causes: std::collections::BTreeSet<&String> = self
            .off
            .empty_causes
            .keys()
            .chain(self.on.empty_causes.keys())
            .chain(self.llama_vim_cost.empty_causes.keys())
            .collect();
        for cause in causes {
            let count = |c: &Cost| c.empty_causes.get(cause).copied().unwrap_or(0);
            write!(
                f,
                "  {:<46} {:>10} {:>10}",
                cause,
                count(&self.off),
                count(&self.on)
            )?;
            third(f, count(&self.llama_vim_cost).to_string())?;
            writeln!(f)?;
        }
        write!(
            f,
            "{:<24} {:>10.0} {:>10.0}",
            "mean prompt tokens",
            self.off.prompt_tokens as f64 / n,
            self.on.prompt_tokens as f64 / n
        )?;
        third(
            f,
            format!("{:.0}", self.llama_vim_cost.prompt_tokens as f64 / n),
        )?;
        if vim {
            self.write_llama_vim(f)?;
        }
        Ok(())
    }
}

impl Report {
    /// The llama.vim arm against each of infill's arms, on the same items,
    /// with the same paired tests (`lost`: right with llama.vim only).
    fn write_llama_vim(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "\nllama.vim arm: llama-server /infill asked as llama.vim asks it ({})",
            self.llama_vim_setup
        )?;
        for (k, label) in self.labels.iter().enumerate() {
            let pairs: Vec<Paired> = self
                .scored
                .iter()
                .zip(&self.llama_vim)
                .map(|(p, vim)| Paired {
                    off: *vim,
                    on: if k == 0 { p.off } else { p.on },
                    cceval: p.cceval,
                })
                .collect();
            writeln!(f)?;
            writeln!(
                f,
                "{:<24} {:>10} {:>10} {:>8}   paired test ({label} vs llama.vim)",
                "all items", "llama.vim", label, "ratio"
            )?;
            write_paired(f, &pairs)?;
        }
        Ok(())
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
        let packages = load(&dir, Language::Python, 10, Cursor::LineStart, Split::All).unwrap();
        let mid = load(&dir, Language::Python, 10, Cursor::MidLine, Split::All).unwrap();
        // Not in the tuning part: `demo` is listed nowhere.
        assert!(load(&dir, Language::Python, 10, Cursor::LineStart, Split::Tune).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
        let items: Vec<&Item> = packages[0].items.iter().collect();
        assert_eq!(items.len(), 1, "{items:?}");
        assert_eq!(items[0].expected, "clean = normalize_path(path)");
        assert!(items[0].typed.is_empty());
        assert!(items[0].prefix.ends_with("def serve(path):\n    "));
        assert!(items[0].suffix.starts_with("\n    again"));
        // `normalize_path` is imported from demo/util.py.
        assert!(items[0].cceval);
        // Mid-line: `clean ` typed, the rest to complete.
        let m = &mid[0].items[0];
        assert_eq!(
            (m.typed.as_str(), m.expected.as_str()),
            ("clean ", "= normalize_path(path)")
        );
        assert!(m.prefix.ends_with("def serve(path):\n    clean "));
        assert_eq!(m.suffix, items[0].suffix);
        assert!(m.cceval);
        let right = score("clean = normalize_path(path)", &items[0].expected);
        let near = score("clean = normalize(path)", &items[0].expected);
        assert!(right.exact && right.identifier_exact && right.identifier_f1 == 1.0);
        assert!(!near.exact && !near.identifier_exact);
        assert!(near.identifier_f1 > 0.5 && near.identifier_f1 < 1.0);
    }

    #[test]
    fn imports_resolve_to_package_files() {
        let files: HashSet<String> = [
            "src/pkg/__init__.py",
            "src/pkg/util.py",
            "src/pkg/sub/__init__.py",
            "src/pkg/sub/deep.py",
            "src/org/x/Util.java",
            "src/org/x/Node.java",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let py = "from .util import helper_fn\nfrom . import util\nfrom ..util import up_one\nfrom pkg.sub.deep import Deep\nfrom pkg import Root\nfrom typing import Any\nfrom .missing import Gone\n";
        let mut got: Vec<String> =
            imported_from_package(Language::Python, "src/pkg/sub/deep2.py", py, &files)
                .into_iter()
                .collect();
        got.sort();
        // `.util` from pkg/sub is pkg/sub/util.py: absent; `..util` is
        // pkg/util.py; `from . import util` names pkg/sub/__init__.py.
        assert_eq!(got, ["Deep", "Root", "up_one", "util"]);
        let mut got: Vec<String> =
            imported_from_package(Language::Python, "src/pkg/app.py", py, &files)
                .into_iter()
                .collect();
        got.sort();
        assert_eq!(got, ["Deep", "Root", "helper_fn", "util"]);
        let java = "package org.x;\nimport org.x.Util;\nimport static org.x.Node.walk;\nimport java.util.List;\nimport org.x.Util.Inner;\n";
        let mut got: Vec<String> =
            imported_from_package(Language::Java, "src/org/x/App.java", java, &files)
                .into_iter()
                .collect();
        got.sort();
        assert_eq!(got, ["Inner", "Util", "walk"]);
        // A file importing itself does not count.
        let own = imported_from_package(Language::Java, "src/org/x/Util.java", java, &files);
        assert!(!own.contains("Util"));
    }

    #[test]
    fn the_split_covers_the_fetched_packages_once() {
        for p in TUNE_PACKAGES {
            assert!(!TEST_PACKAGES.contains(p), "{p} is in both parts");
        }
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/fetch-cross-eval");
        let text = std::fs::read_to_string(&script).unwrap();
        let mut fetched: Vec<&str> = text
            .lines()
            .filter(|l| l.split_whitespace().nth(1).is_some_and(|h| h.len() == 64))
            .filter_map(|l| l.split(['=', ' ']).next())
            .collect();
        fetched.sort();
        let mut listed: Vec<&str> = TUNE_PACKAGES.iter().chain(TEST_PACKAGES).copied().collect();
        listed.sort();
        assert_eq!(fetched, listed);
        assert!(Split::Test.contains("rich") && !Split::Test.contains("requests"));
        assert!(Split::All.contains("anything"));
    }

    #[test]
    fn report_rows_carry_their_significance() {
        let s = |exact: bool, es: f64| ItemScore {
            exact,
            edit_similarity: es,
            identifier_exact: exact,
            identifier_f1: es,
        };
        // 1 lost, 6 gained, 3 right in both: McNemar p = 0.125.
        let mut items = vec![];
        items.push(Paired {
            off: s(true, 1.0),
            on: s(false, 0.5),
            cceval: true,
        });
        for _ in 0..6 {
            items.push(Paired {
                off: s(false, 0.5),
                on: s(true, 1.0),
                cceval: false,
            });
        }
        for _ in 0..3 {
            items.push(Paired {
                off: s(true, 1.0),
                on: s(true, 1.0),
                cceval: true,
            });
        }
        let mut out = String::new();
        write_paired(&mut out, &items).unwrap();
        assert!(out.contains("McNemar p=0.125 (1 lost, 6 gained)"), "{out}");
        assert!(out.contains("diff +0.250"), "{out}");
        let report = Report {
            language: "python",
            items: items.len(),
            completed: true,
            scored: items,
            ..Default::default()
        };
        let text = report.to_string();
        assert!(
            text.contains("(4 items: the line uses a name imported"),
            "{text}"
        );
        assert!(
            text.contains("McNemar p=1.000 (1 lost, 0 gained)"),
            "{text}"
        );
    }
}
