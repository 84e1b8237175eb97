//! A file's chunks (what BM25 retrieves) and symbols (what the definition
//! lookup finds), from one parse. Python and Java are cut along their
//! syntax trees with the queries in `grammars/<language>/definitions.scm`;
//! any other text is cut in fixed line windows.
//!
//! Incremental: `update` is given how the last text became this one, the
//! last tree and definitions, and the new text (and, from an open document, the new
//! tree, already reparsed incrementally by the editor's edits). The query
//! then runs only where something changed: the bytes that differ, the
//! ranges whose syntax changed (`Tree::changed_ranges`), and the whole
//! extent of every definition that touches them, grown until no
//! definition straddles the border. Definitions outside are the old ones,
//! moved. The result equals `outline` of the new text (tested).
//!
//! Pure: text in, outline out; no I/O.

use std::cmp::Ordering;
use std::sync::OnceLock;

use tree_sitter::{InputEdit, Node, Parser, Point, Query, QueryCursor, StreamingIterator, Tree};

use crate::text::syntax::Language;

/// A function or class longer than this is cut further: a class into its
/// header and members, a function into windows.
pub const MAX_CHUNK_LINES: usize = 60;
/// Lines per chunk for text outside definitions and for non-code files.
pub const WINDOW_LINES: usize = 30;
/// Longest signature kept for a symbol, in bytes.
const MAX_SIGNATURE: usize = 240;

/// A piece of a file that retrieval can return whole: whole lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// 0-based lines, inclusive.
    pub start_line: usize,
    pub end_line: usize,
    /// Its bytes in the file's text.
    pub start_byte: usize,
    pub end_byte: usize,
}

impl Chunk {
    /// The chunk's text in `file` (the text it was cut from).
    pub fn text<'a>(&self, file: &'a str) -> &'a str {
        file.get(self.start_byte..self.end_byte).unwrap_or("")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolKind {
    Function,
    Method,
    Class,
    Field,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    pub name: String,
    pub kind: SymbolKind,
    /// 0-based line of the definition's start (decorators included).
    pub line: usize,
    /// The declaration without its body: `def f(a, b) -> int:`,
    /// `public static Foo of(String s)`, `class A(B):`, `int count = 0;`.
    pub signature: String,
    /// Index (in the same outline) of the class this symbol is a member of.
    pub parent: Option<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outline {
    pub chunks: Vec<Chunk>,
    pub symbols: Vec<Symbol>,
}

/// Where each line of a text starts (lines end at `\n`, as tree-sitter counts rows).
#[derive(Debug, Clone, Default)]
pub struct Lines {
    /// 0, then one past every `\n` (so a text ending in `\n` has an empty last entry).
    starts: Vec<usize>,
    len: usize,
    /// Lines as `split_inclusive('\n')` counts them.
    count: usize,
}

impl Lines {
    pub fn new(text: &str) -> Lines {
        let mut starts = Vec::with_capacity(text.len() / 32 + 2);
        starts.push(0);
        // `match_indices` of one ASCII char runs on memchr.
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let count = if text.is_empty() || text.ends_with('\n') {
            starts.len() - 1
        } else {
            starts.len()
        };
        Lines {
            starts,
            len: text.len(),
            count,
        }
    }

    /// Number of lines (a last line without `\n` counts).
    pub fn count(&self) -> usize {
        self.count
    }

    /// First byte of `line` (the text's length past the end).
    pub fn start(&self, line: usize) -> usize {
        self.starts.get(line).copied().unwrap_or(self.len)
    }

    /// The row and byte column of `byte`.
    pub fn point(&self, byte: usize) -> Point {
        let byte = byte.min(self.len);
        let row = self
            .starts
            .partition_point(|&s| s <= byte)
            .saturating_sub(1);
        Point::new(row, byte - self.start(row))
    }
}

fn query(language: Language) -> Option<&'static Query> {
    static PY: OnceLock<Option<Query>> = OnceLock::new();
    static JAVA: OnceLock<Option<Query>> = OnceLock::new();
    let (cell, source) = match language {
        Language::Python => (&PY, include_str!("../../grammars/python/definitions.scm")),
        Language::Java => (&JAVA, include_str!("../../grammars/java/definitions.scm")),
    };
    cell.get_or_init(|| match Query::new(&language.grammar(), source) {
        Ok(q) => Some(q),
        Err(e) => {
            // A build problem (grammar and query out of step), not a user one:
            // the file is still indexed, in windows.
            tracing::error!("the {} definitions query is invalid: {e}", language.name());
            None
        }
    })
    .as_ref()
}

/// A definition found by the query, before chunking.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Def {
    kind: SymbolKind,
    name: String,
    /// Rows of the whole definition (decorators included).
    start_line: usize,
    end_line: usize,
    /// Where the whole definition starts (its decorators), the node itself,
    /// its name and its body start, and where it ends.
    whole_byte: usize,
    start_byte: usize,
    name_byte: usize,
    body_byte: Option<usize>,
    end_byte: usize,
}

impl Def {
    /// The bytes this definition's outcome depends on.
    fn extent(&self) -> (usize, usize) {
        (self.whole_byte, self.end_byte.max(self.whole_byte + 1))
    }

    /// The outline's order: by line, outer before inner, then by position.
    fn order(a: &Def, b: &Def) -> Ordering {
        a.start_line
            .cmp(&b.start_line)
            .then(b.end_line.cmp(&a.end_line))
            .then(a.start_byte.cmp(&b.start_byte))
            .then(a.name_byte.cmp(&b.name_byte))
    }

    fn same(a: &Def, b: &Def) -> bool {
        a.start_byte == b.start_byte && a.name_byte == b.name_byte && a.kind == b.kind
    }
}

/// What an update needs from the last one: the text, its tree, its definitions.
pub struct Parsed {
    language: Language,
    tree: Tree,
    defs: Vec<Def>,
}

impl std::fmt::Debug for Parsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parsed")
            .field("language", &self.language)
            .field("defs", &self.defs.len())
            .finish()
    }
}

/// Where two texts differ: one edit from `start` (the common prefix) to
/// `old_end` in the old text and `new_end` in the new (the common suffix
/// follows both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextDiff {
    pub start: usize,
    pub old_end: usize,
    pub new_end: usize,
    /// New rows minus old rows.
    pub rows_delta: isize,
    edit: InputEditCopy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InputEditCopy {
    start: Point,
    old_end: Point,
    new_end: Point,
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    const BLOCK: usize = 128;
    while i + BLOCK <= n && a[i..i + BLOCK] == b[i..i + BLOCK] {
        i += BLOCK;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

fn common_suffix(a: &[u8], b: &[u8], max: usize) -> usize {
    let (la, lb) = (a.len(), b.len());
    let mut i = 0;
    const BLOCK: usize = 128;
    while i + BLOCK <= max && a[la - i - BLOCK..la - i] == b[lb - i - BLOCK..lb - i] {
        i += BLOCK;
    }
    while i < max && a[la - i - 1] == b[lb - i - 1] {
        i += 1;
    }
    i
}

impl TextDiff {
    /// The one edit that turns `old` into `new` (`new_lines` is `new`'s).
    pub fn new(old: &str, new: &str, new_lines: &Lines) -> TextDiff {
        let (a, b) = (old.as_bytes(), new.as_bytes());
        let start = common_prefix(a, b);
        let suffix = common_suffix(a, b, a.len().min(b.len()) - start);
        let (old_end, new_end) = (a.len() - suffix, b.len() - suffix);
        let start_point = new_lines.point(start);
        let new_end_point = new_lines.point(new_end);
        let removed = &a[start..old_end];
        let old_newlines = removed.iter().filter(|&&c| c == b'\n').count();
        let old_end_point = match removed.iter().rposition(|&c| c == b'\n') {
            None => Point::new(start_point.row, start_point.column + removed.len()),
            Some(i) => Point::new(start_point.row + old_newlines, removed.len() - i - 1),
        };
        TextDiff {
            start,
            old_end,
            new_end,
            rows_delta: (new_end_point.row - start_point.row) as isize - old_newlines as isize,
            edit: InputEditCopy {
                start: start_point,
                old_end: old_end_point,
                new_end: new_end_point,
            },
        }
    }

    pub fn unchanged(&self) -> bool {
        self.start == self.old_end && self.start == self.new_end
    }

    fn input_edit(&self) -> InputEdit {
        InputEdit {
            start_byte: self.start,
            old_end_byte: self.old_end,
            new_end_byte: self.new_end,
            start_position: self.edit.start,
            old_end_position: self.edit.old_end,
            new_end_position: self.edit.new_end,
        }
    }

    /// Where an old byte range that lies wholly before or wholly after the
    /// changed bytes starts now, and how far its rows moved; `None` if it
    /// overlaps them.
    pub fn moved(&self, start: usize, end: usize) -> Option<(usize, isize)> {
        if end <= self.start {
            Some((start, 0))
        } else if start >= self.old_end {
            Some((start + self.new_end - self.old_end, self.rows_delta))
        } else {
            None
        }
    }

    /// Where a new byte range that lies wholly before or wholly after the
    /// changed bytes started in the old text (the same bytes are there).
    pub fn old_start(&self, start: usize, end: usize) -> Option<usize> {
        if end <= self.start {
            Some(start)
        } else if start >= self.new_end {
            Some(start - self.new_end + self.old_end)
        } else {
            None
        }
    }

    /// An old byte range in new coordinates, stretched over the change if it touches it.
    fn map_range(&self, start: usize, end: usize) -> (usize, usize) {
        let lo = if start < self.start {
            start
        } else if start >= self.old_end {
            start + self.new_end - self.old_end
        } else {
            self.start
        };
        let hi = if end <= self.start {
            end
        } else if end >= self.old_end {
            end + self.new_end - self.old_end
        } else {
            self.new_end
        };
        (lo, hi.max(lo))
    }
}

/// Cuts `text` into chunks and lists its symbols, from scratch.
pub fn outline(language: Option<Language>, text: &str) -> Outline {
    let lines = Lines::new(text);
    let (o, _) = update(language, text, &lines, None, None);
    o
}

/// The outline of `text`, reusing what can be reused: `tree` (the new text's
/// tree, from an open document) spares a parse; `previous` (how the last
/// text became this one, and what `update` returned for it) spares the
/// query outside what changed. Also returns what the next update needs
/// (`None` without a grammar).
pub fn update(
    language: Option<Language>,
    text: &str,
    lines: &Lines,
    tree: Option<Tree>,
    previous: Option<(&TextDiff, Parsed)>,
) -> (Outline, Option<Parsed>) {
    let Some(language) = language else {
        return (cut(&[], text, lines), None);
    };
    let previous = previous.filter(|(_, p)| p.language == language);
    // A tree that does not span the text is not this text's tree.
    let given = tree.filter(|t| t.root_node().end_byte() == text.len());
    let tree = match given {
        Some(t) => Some(t),
        None => {
            // Without the document's tree: parse, incrementally from the last tree.
            let old = previous.as_ref().map(|(d, p)| {
                let mut old = p.tree.clone();
                old.edit(&d.input_edit());
                old
            });
            let mut parser = Parser::new();
            parser
                .set_language(&language.grammar())
                .ok()
                .and_then(|()| parser.parse(text, old.as_ref()))
        }
    };
    let Some(tree) = tree else {
        return (cut(&[], text, lines), None);
    };
    let defs = match previous {
        Some((d, p)) if d.unchanged() => p.defs,
        Some((d, p)) => changed_definitions(language, text, &tree, p, d),
        None => definitions(language, text, &tree),
    };
    let o = cut(&defs, text, lines);
    (
        o,
        Some(Parsed {
            language,
            tree,
            defs,
        }),
    )
}

/// Chunks and symbols from the (ordered) definitions.
fn cut(defs: &[Def], text: &str, lines: &Lines) -> Outline {
    let symbols = symbols(defs, text);
    let mut chunks = Vec::new();
    let blocks: Vec<&Def> = defs
        .iter()
        .filter(|d| d.kind != SymbolKind::Field)
        .collect();
    let roots = children_of(&blocks, None);
    let cutter = Cutter { text, lines };
    cutter.cover(
        &blocks,
        &roots,
        0,
        lines.count().saturating_sub(1),
        &mut chunks,
    );
    Outline { chunks, symbols }
}

/// Every definition in `tree`, in outline order.
fn definitions(language: Language, text: &str, tree: &Tree) -> Vec<Def> {
    let mut defs = Vec::new();
    run_query(language, text, tree, None, &|_| true, &mut defs);
    defs.sort_by(Def::order);
    defs.dedup_by(|a, b| Def::same(a, b));
    defs
}

/// Runs the definitions query over `range` of `tree` (all of it for `None`),
/// adding the definitions `keep` accepts (by extent) to `out`.
fn run_query(
    language: Language,
    text: &str,
    tree: &Tree,
    range: Option<(usize, usize)>,
    keep: &dyn Fn((usize, usize)) -> bool,
    out: &mut Vec<Def>,
) {
    let Some(query) = query(language) else {
        return;
    };
    let name_index = query.capture_index_for_name("name");
    let mut cursor = QueryCursor::new();
    if let Some((a, b)) = range {
        // An end of 0 means "to the end" to tree-sitter.
        cursor.set_byte_range(a..b.max(a + 1));
    }
    let mut matches = cursor.matches(query, tree.root_node(), text.as_bytes());
    while let Some(m) = matches.next() {
        let mut name = None;
        let mut def: Option<(Node, SymbolKind)> = None;
        for c in m.captures() {
            if Some(c.index) == name_index {
                name = Some(c.node);
                continue;
            }
            let kind = match query.capture_names()[c.index as usize] {
                "definition.function" => SymbolKind::Function,
                "definition.method" => SymbolKind::Method,
                "definition.class" => SymbolKind::Class,
                "definition.field" => SymbolKind::Field,
                _ => continue,
            };
            def = Some((c.node, kind));
        }
        let (Some(name), Some((node, mut kind))) = (name, def) else {
            continue;
        };
        // Decorators belong to what they decorate.
        let whole = match node.parent() {
            Some(p) if p.kind() == "decorated_definition" => p,
            _ => node,
        };
        if !keep((
            whole.start_byte(),
            node.end_byte().max(whole.start_byte() + 1),
        )) {
            continue;
        }
        let Ok(name_text) = name.utf8_text(text.as_bytes()) else {
            continue;
        };
        if kind == SymbolKind::Function && inside_class(node) {
            kind = SymbolKind::Method;
        }
        out.push(Def {
            kind,
            name: name_text.to_string(),
            start_line: whole.start_position().row,
            end_line: whole.end_position().row,
            whole_byte: whole.start_byte(),
            start_byte: node.start_byte(),
            name_byte: name.start_byte(),
            body_byte: node.child_by_field_name("body").map(|b| b.start_byte()),
            end_byte: node.end_byte(),
        });
    }
}

/// Sorted, disjoint byte ranges.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Ranges(Vec<(usize, usize)>);

impl Ranges {
    fn add(&mut self, a: usize, b: usize) {
        self.0.push((a, b.max(a + 1)));
        self.0.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(self.0.len());
        for &(a, b) in &self.0 {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        self.0 = merged;
    }

    fn intersects(&self, (a, b): (usize, usize)) -> bool {
        // The first range ending after `a`.
        let i = self.0.partition_point(|r| r.1 <= a);
        self.0.get(i).is_some_and(|r| r.0 < b)
    }

    /// The parts of `self` not in `other`.
    fn minus(&self, other: &Ranges) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for &(a, b) in &self.0 {
            let mut from = a;
            for &(c, d) in &other.0 {
                if d <= from || c >= b {
                    continue;
                }
                if c > from {
                    out.push((from, c));
                }
                from = from.max(d);
            }
            if from < b {
                out.push((from, b));
            }
        }
        out
    }
}

/// The definitions of the new `text`, given the last update's: the query
/// runs only over what changed.
///
/// Why this equals a fresh query of `tree`: outside the changed bytes and
/// the changed ranges of the tree, every character has the same text and
/// the same ancestors (`Tree::changed_ranges`). Take a definition whose
/// extent misses the queried ranges. The other tree has a definition of
/// the same kind over the same characters, with the same name. If that one
/// reached further, a character it covers beyond ours would have other
/// ancestors and so lie in a changed range; it would touch the ranges,
/// count as changed, and its name, which is ours, would be added to the
/// ranges, so ours would touch them too. So it covers exactly the same
/// characters: the same definition. Hence: every definition that touches
/// the ranges, old or new, has its name added, until nothing more is
/// added; then the new ones that touch them come from the query, and the
/// old ones that do not are kept, moved.
fn changed_definitions(
    language: Language,
    text: &str,
    tree: &Tree,
    previous: Parsed,
    diff: &TextDiff,
) -> Vec<Def> {
    let mut old_tree = previous.tree;
    old_tree.edit(&diff.input_edit());
    let mut ranges = Ranges::default();
    // One byte either side, so that what only touches the change counts.
    ranges.add(diff.start.saturating_sub(1), diff.new_end + 1);
    for r in old_tree.changed_ranges(tree) {
        ranges.add(r.start_byte.saturating_sub(1), r.end_byte + 1);
    }
    // Old definitions, where they are now: their extent and their name.
    let old: Vec<((usize, usize), usize)> = previous
        .defs
        .iter()
        .map(|d| {
            let (a, b) = d.extent();
            (
                diff.map_range(a, b),
                diff.map_range(d.name_byte, d.name_byte + 1).0,
            )
        })
        .collect();
    let mut queried = Ranges::default();
    let mut found: Vec<Def> = Vec::new();
    loop {
        grow_to_decorated(language, tree, &mut ranges);
        for (a, b) in ranges.minus(&queried) {
            let r = &ranges;
            run_query(
                language,
                text,
                tree,
                Some((a, b)),
                &|e| r.intersects(e),
                &mut found,
            );
        }
        queried = ranges.clone();
        let mut grown = ranges.clone();
        let names = found
            .iter()
            .map(|d| (d.extent(), d.name_byte))
            .chain(old.iter().copied());
        for (extent, name) in names {
            if ranges.intersects(extent) && !ranges.intersects((name, name + 1)) {
                grown.add(name, name + 1);
            }
        }
        if grown == ranges {
            break;
        }
        ranges = grown;
    }
    let mut defs: Vec<Def> = found
        .into_iter()
        .filter(|d| ranges.intersects(d.extent()))
        .collect();
    for (d, &(extent, _)) in previous.defs.into_iter().zip(&old) {
        if ranges.intersects(extent) {
            continue;
        }
        let Some((at, rows)) = diff.moved(d.whole_byte, d.end_byte) else {
            continue;
        };
        let shift = |x: usize| (x + at).wrapping_sub(d.whole_byte);
        let row = |r: usize| (r as isize + rows) as usize;
        defs.push(Def {
            start_line: row(d.start_line),
            end_line: row(d.end_line),
            whole_byte: at,
            start_byte: shift(d.start_byte),
            name_byte: shift(d.name_byte),
            body_byte: d.body_byte.map(shift),
            end_byte: shift(d.end_byte),
            ..d
        });
    }
    defs.sort_by(Def::order);
    defs.dedup_by(|a, b| Def::same(a, b));
    defs
}

/// Grows `ranges` over every decorated definition one of them starts or
/// ends in: its decorators belong to the definition, and the query only
/// finds a definition through its own node.
fn grow_to_decorated(language: Language, tree: &Tree, ranges: &mut Ranges) {
    if language != Language::Python {
        return;
    }
    loop {
        let mut grown = ranges.clone();
        for &(a, b) in &ranges.0 {
            for at in [a, b.saturating_sub(1).max(a)] {
                let mut node = tree.root_node().descendant_for_byte_range(at, at);
                while let Some(n) = node {
                    if n.kind() == "decorated_definition" {
                        grown.add(n.start_byte(), n.end_byte());
                    }
                    node = n.parent();
                }
            }
        }
        if grown == *ranges {
            return;
        }
        *ranges = grown;
    }
}

/// A Python `def` directly in a class body (through decorators).
fn inside_class(node: Node) -> bool {
    let mut n = node.parent();
    while let Some(p) = n {
        match p.kind() {
            "block" | "decorated_definition" => n = p.parent(),
            "class_definition" => return true,
            _ => return false,
        }
    }
    false
}

fn symbols(defs: &[Def], text: &str) -> Vec<Symbol> {
    let mut out: Vec<Symbol> = Vec::with_capacity(defs.len());
    // Enclosing classes, innermost last, as (index, end line).
    let mut classes: Vec<(usize, usize)> = Vec::new();
    for d in defs {
        while classes.last().is_some_and(|&(_, end)| end < d.start_line) {
            classes.pop();
        }
        let end = d.body_byte.unwrap_or(d.end_byte).min(text.len());
        let mut sig = text.get(d.start_byte..end).unwrap_or("").trim_end();
        if d.kind == SymbolKind::Field {
            sig = sig.lines().next().unwrap_or("");
        }
        let sig = sig.trim_end_matches('{').trim_end();
        let signature = match sig.char_indices().nth(MAX_SIGNATURE) {
            Some((cut, _)) => format!("{} …", &sig[..cut]),
            None => sig.to_string(),
        };
        out.push(Symbol {
            name: d.name.clone(),
            kind: d.kind,
            line: d.start_line,
            signature,
            parent: classes.last().map(|&(i, _)| i),
        });
        if d.kind == SymbolKind::Class {
            classes.push((out.len() - 1, d.end_line));
        }
    }
    out
}

/// Indices of the blocks directly inside `parent` (all top-level ones for `None`).
fn children_of(blocks: &[&Def], parent: Option<usize>) -> Vec<usize> {
    let (lo, hi, from) = match parent {
        Some(p) => (blocks[p].start_line, blocks[p].end_line, p + 1),
        None => (0, usize::MAX, 0),
    };
    let mut out = Vec::new();
    let mut covered_to: Option<usize> = None;
    for (i, b) in blocks.iter().enumerate().skip(from) {
        if b.start_line > hi {
            break;
        }
        if b.start_line < lo || covered_to.is_some_and(|c| b.start_line <= c) {
            continue;
        }
        // A block on its parent's first line (a one-line class) is not a child.
        if parent.is_some() && b.start_line == lo {
            continue;
        }
        out.push(i);
        covered_to = Some(b.end_line);
    }
    out
}

struct Cutter<'a> {
    text: &'a str,
    lines: &'a Lines,
}

impl Cutter<'_> {
    /// Chunks for lines `from..=to`, holding the blocks `items` (in order).
    fn cover(
        &self,
        blocks: &[&Def],
        items: &[usize],
        from: usize,
        to: usize,
        out: &mut Vec<Chunk>,
    ) {
        let mut next = from;
        for &i in items {
            let b = blocks[i];
            if b.start_line > next {
                self.windows(next, b.start_line - 1, out);
            }
            self.block(blocks, i, out);
            next = b.end_line + 1;
        }
        if next <= to && self.lines.count() > 0 {
            self.windows(next, to, out);
        }
    }

    fn block(&self, blocks: &[&Def], i: usize, out: &mut Vec<Chunk>) {
        let b = blocks[i];
        let len = b.end_line - b.start_line + 1;
        let members = children_of(blocks, Some(i));
        if len <= MAX_CHUNK_LINES || members.is_empty() {
            if len <= MAX_CHUNK_LINES {
                self.push(b.start_line, b.end_line, out);
            } else {
                self.windows(b.start_line, b.end_line, out);
            }
            return;
        }
        // A large class: its header (up to the first member), then its members.
        let first = blocks[members[0]].start_line;
        let header_end = (first - 1).min(b.start_line + MAX_CHUNK_LINES - 1);
        self.push(b.start_line, header_end, out);
        self.cover(blocks, &members, first, b.end_line, out);
    }

    fn windows(&self, from: usize, to: usize, out: &mut Vec<Chunk>) {
        let mut start = from;
        while start <= to {
            let end = (start + WINDOW_LINES - 1).min(to);
            self.push(start, end, out);
            start = end + 1;
        }
    }

    /// Adds lines `from..=to` as a chunk unless they hold no word at all.
    fn push(&self, from: usize, to: usize, out: &mut Vec<Chunk>) {
        let to = to.min(self.lines.count().saturating_sub(1));
        if from > to || self.lines.count() == 0 {
            return;
        }
        let chunk = Chunk {
            start_line: from,
            end_line: to,
            start_byte: self.lines.start(from),
            end_byte: self.lines.start(to + 1),
        };
        if !chunk.text(self.text).chars().any(char::is_alphanumeric) {
            return;
        }
        out.push(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::fuzz::*;
    use super::*;
    use crate::text::document::{Document, TextChange};
    use crate::text::position::PositionEncoding;

    const PY: &str = "\
import os

LIMIT = 10

def top(a, b=1):
    return a + b

class Shape(Base):
    sides: int = 0

    @property
    def area(self) -> float:
        return 0.0
";

    #[test]
    fn python_symbols_with_signatures_and_members() {
        let o = outline(Some(Language::Python), PY);
        let sig = |n: &str| {
            o.symbols
                .iter()
                .find(|s| s.name == n)
                .map(|s| (s.kind, s.signature.clone(), s.parent))
        };
        assert_eq!(
            sig("top"),
            Some((SymbolKind::Function, "def top(a, b=1):".into(), None))
        );
        assert_eq!(
            sig("Shape"),
            Some((SymbolKind::Class, "class Shape(Base):".into(), None))
        );
        let shape = o.symbols.iter().position(|s| s.name == "Shape");
        assert_eq!(
            sig("area"),
            Some((SymbolKind::Method, "def area(self) -> float:".into(), shape))
        );
        assert_eq!(sig("sides").map(|s| s.0), Some(SymbolKind::Field));
        assert_eq!(sig("LIMIT").map(|s| s.2), Some(None));
        // Chunks: the module lines, the function, the (small) class whole.
        let starts: Vec<usize> = o.chunks.iter().map(|c| c.start_line).collect();
        assert_eq!(starts, vec![0, 4, 7]);
        assert!(o.chunks[2].text(PY).contains("@property"));
    }

    #[test]
    fn large_java_class_is_cut_into_header_and_members() {
        let mut src = String::from("package p;\n\npublic class Big {\n    private int n;\n\n");
        for i in 0..20 {
            src.push_str(&format!(
                "    /** Doc {i}. */\n    public int get{i}(int x) {{\n        return x + {i};\n    }}\n"
            ));
        }
        src.push_str("}\n");
        let o = outline(Some(Language::Java), &src);
        let get3 = o.symbols.iter().find(|s| s.name == "get3").unwrap();
        assert_eq!(get3.kind, SymbolKind::Method);
        assert_eq!(get3.signature, "public int get3(int x)");
        assert_eq!(o.symbols[get3.parent.unwrap()].name, "Big");
        // Header chunk holds the class line and its field, not the methods.
        let header = o
            .chunks
            .iter()
            .find(|c| c.text(&src).contains("class Big"))
            .unwrap();
        assert!(header.text(&src).contains("private int n;"));
        assert!(!header.text(&src).contains("get0"));
        assert!(o
            .chunks
            .iter()
            .any(|c| c.text(&src).contains("get7(int x)") && !c.text(&src).contains("get8")));
        // Every line with a word is in exactly one chunk.
        let mut seen = vec![0; src.lines().count()];
        for c in &o.chunks {
            for s in seen.iter_mut().take(c.end_line + 1).skip(c.start_line) {
                *s += 1;
            }
        }
        for (i, l) in src.lines().enumerate() {
            if l.chars().any(char::is_alphanumeric) {
                assert_eq!(seen[i], 1, "line {i}: {l}");
            }
        }
    }

    #[test]
    fn plain_text_in_windows() {
        let text: String = (0..70).map(|i| format!("line {i}\n")).collect();
        let o = outline(None, &text);
        let ranges: Vec<(usize, usize)> = o
            .chunks
            .iter()
            .map(|c| (c.start_line, c.end_line))
            .collect();
        assert_eq!(ranges, vec![(0, 29), (30, 59), (60, 69)]);
        assert!(o.symbols.is_empty());
    }

    fn parse(language: Language, text: &str) -> Tree {
        let mut parser = Parser::new();
        parser.set_language(&language.grammar()).unwrap();
        parser.parse(text, None).unwrap()
    }

    /// Random edits to a document; after each few, `update` from the last
    /// state must equal a fresh outline from the same tree, both with the
    /// document's tree and with none (`update` then reparses incrementally
    /// itself). Returns how often the incremental tree was not the fresh
    /// parse's (tree-sitter's error recovery can take another path).
    fn updates_equal_fresh(language: Language, seed_text: &str, pool: &[&str], seed: u64) -> usize {
        let mut rng = Rng(seed);
        let path = format!(
            "/x.{}",
            if language == Language::Python {
                "py"
            } else {
                "java"
            }
        );
        let mut doc = Document::new(&path, None, 0, seed_text);
        let mut text = seed_text.to_string();
        let tree = doc.syntax().and_then(|s| s.tree().cloned());
        let (first, p) = update(Some(language), &text, &Lines::new(&text), tree, None);
        assert_eq!(first, outline(Some(language), &text));
        let (_, p2) = update(Some(language), &text, &Lines::new(&text), None, None);
        // The states of both chains: with the document's trees, and without.
        let mut states = [p, p2];
        let mut diverged = 0;
        for round in 1..=300 {
            if round % 50 == 0 {
                let reset = TextChange {
                    range: None,
                    text: seed_text.to_string(),
                };
                doc.apply_changes(round, &[reset], PositionEncoding::Utf8);
            }
            let mut changes = Vec::new();
            for _ in 0..=rng.below(3) {
                let c = random_change(&mut rng, &doc.text().to_string(), pool);
                doc.apply_changes(round, std::slice::from_ref(&c), PositionEncoding::Utf8);
                changes.push(c);
            }
            let new = doc.text().to_string();
            let lines = Lines::new(&new);
            let fresh = parse(language, &new);
            let context =
                || format!("round {round}, changes {changes:?}\nbefore:\n{text}\nafter:\n{new}");
            for own in [false, true] {
                let tree = doc
                    .syntax()
                    .and_then(|s| s.tree().cloned())
                    .filter(|_| !own);
                let last = states[own as usize].take().unwrap();
                let diff = TextDiff::new(&text, &new, &lines);
                let (got, p) = update(Some(language), &new, &lines, tree, Some((&diff, last)));
                let p = p.unwrap();
                // What a full query of the same tree gives.
                assert_eq!(
                    p.defs,
                    definitions(language, &new, &p.tree),
                    "own parse {own}: {}",
                    context()
                );
                assert_eq!(got, cut(&p.defs, &new, &lines));
                if p.tree.root_node().to_sexp() == fresh.root_node().to_sexp() {
                    assert_eq!(got, outline(Some(language), &new), "{}", context());
                } else {
                    assert!(fresh.root_node().has_error(), "{}", context());
                    diverged += 1;
                }
                states[own as usize] = Some(p);
            }
            text = new;
        }
        diverged
    }

    /// Seeds per language (`INFILL_FUZZ_SEEDS` for a longer run).
    fn seeds() -> u64 {
        std::env::var("INFILL_FUZZ_SEEDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(4)
    }

    #[test]
    fn python_updates_equal_a_fresh_outline() {
        let diverged: usize = (1..=seeds())
            .map(|seed| updates_equal_fresh(Language::Python, PY_SEED, PY_POOL, seed * 7919))
            .sum();
        eprintln!(
            "python: incremental tree not the fresh one in {diverged} of {} updates",
            seeds() * 600
        );
    }

    #[test]
    fn java_updates_equal_a_fresh_outline() {
        let diverged: usize = (1..=seeds())
            .map(|seed| updates_equal_fresh(Language::Java, JAVA_SEED, JAVA_POOL, seed * 104729))
            .sum();
        eprintln!(
            "java: incremental tree not the fresh one in {diverged} of {} updates",
            seeds() * 600
        );
    }

    #[test]
    fn text_diff_and_lines() {
        let lines = Lines::new("ab\ncd\n");
        assert_eq!((lines.count(), lines.start(1), lines.start(2)), (2, 3, 6));
        assert_eq!(lines.point(4), Point::new(1, 1));
        assert_eq!(Lines::new("ab").count(), 1);
        assert_eq!(Lines::new("").count(), 0);
        let new = "ab\nXY\nZ\ncd\n";
        let d = TextDiff::new("ab\ncd\n", new, &Lines::new(new));
        assert_eq!((d.start, d.old_end, d.new_end, d.rows_delta), (3, 3, 8, 2));
        assert_eq!(d.moved(0, 2), Some((0, 0)));
        assert_eq!(d.moved(3, 5), Some((8, 2)));
        assert_eq!(d.old_start(8, 11), Some(3));
        assert_eq!(d.old_start(4, 6), None);
        let d = TextDiff::new("same", "same", &Lines::new("same"));
        assert!(d.unchanged());
    }
}

/// Random edits for the equivalence tests (here and in `index`).
#[cfg(test)]
pub(crate) mod fuzz {
    use crate::text::document::TextChange;
    use crate::text::position::LinePosition;

    /// A small deterministic generator (xorshift), for the random edits.
    pub struct Rng(pub u64);

    impl Rng {
        pub fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n.max(1) as u64) as usize
        }
    }

    pub const PY_SEED: &str = r#"import os
    from typing import List

    LIMIT = 10
    NAMES: List[str] = []


    def top(a, b=1):
    """Adds."""
    return a + b


    @decorator
    def decorated(x):
    def inner(y):
        return y
    return inner(x)


    class Shape(Base):
    sides: int = 0
    color = "red"

    def __init__(self, sides):
        self.sides = sides

    @property
    def area(self) -> float:
        return 0.0

    @staticmethod
    @cache
    def make(n):
        return Shape(n)

    class Meta:
        ordering = ["sides"]


    class Empty: pass


    if os.environ.get("X"):
    def maybe():
        pass
    "#;

    pub const PY_POOL: &[&str] = &[
        "def helper(x):",
        "    return x",
        "class Extra(Base):",
        "@property",
        "@staticmethod",
        "    value = compute_total(items)",
        "x = (",
        ")",
        "\"\"\"",
        "if x:",
        "    pass",
        "async def run(self):",
        "CONSTANT = 42",
        "    name: str = 'a'",
        "        return self.name",
        "try:",
        "except Exception:",
        "# comment",
        "",
        "    def method(self, a):",
    ];

    pub const JAVA_SEED: &str = r#"package demo;

    import java.util.List;

    /** A shape. */
    public class Shape extends Base implements Named {
    private int sides = 0;
    static final String NAME = "shape", OTHER = "x";

    public Shape(int sides) {
        this.sides = sides;
    }

    @Override
    public String name() {
        return NAME;
    }

    public int area() {
        return sides * 2;
    }

    enum Kind { ROUND, SQUARE; int weight() { return 1; } }

    interface Visitor {
        void visit(Shape s);
    }

    static class Builder {
        private int n;
        Builder sides(int n) { this.n = n; return this; }
    }
    }

    record Point(int x, int y) {}
    "#;

    pub const JAVA_POOL: &[&str] = &[
        "public void run() {",
        "}",
        "class Inner {",
        "@Override",
        "private int count = 0;",
        "/*",
        "*/",
        "enum E { A, B }",
        "int a, b;",
        "static final String NAME = \"x\";",
        "interface I { void f(); }",
        "{",
        "return 1;",
        "// comment",
        "",
        "    int value = compute(items);",
    ];

    const CHARS: &[&str] = &[
        "(", ")", "\"", "'", ":", "\n", " ", "    ", "@", "{", "}", ";", "#", "x", "def ", "\n\n",
    ];

    pub fn random_change(rng: &mut Rng, text: &str, pool: &[&str]) -> TextChange {
        let lines: Vec<&str> = text.split('\n').collect();
        let at = |rng: &mut Rng, line: usize| {
            let line = line.min(lines.len().saturating_sub(1));
            let len = lines.get(line).map_or(0, |l| l.len());
            LinePosition {
                line: line as u32,
                character: rng.below(len + 1) as u32,
            }
        };
        let line = rng.below(lines.len() + 1);
        match rng.below(6) {
            // A whole line from the pool, indented somehow.
            0 | 1 => {
                let indent = ["", "    ", "        "][rng.below(3)];
                let text = format!("{indent}{}\n", pool[rng.below(pool.len())]);
                let p = LinePosition {
                    line: line as u32,
                    character: 0,
                };
                TextChange {
                    range: Some((p, p)),
                    text,
                }
            }
            // A few characters.
            2 | 3 => {
                let p = at(rng, line);
                TextChange {
                    range: Some((p, p)),
                    text: CHARS[rng.below(CHARS.len())].to_string(),
                }
            }
            // A deletion within a line or over a few lines.
            _ => {
                let a = at(rng, line);
                let more = rng.below(4);
                let b = at(rng, line + more);
                let (a, b) = if (b.line, b.character) < (a.line, a.character) {
                    (b, a)
                } else {
                    (a, b)
                };
                TextChange {
                    range: Some((a, b)),
                    text: String::new(),
                }
            }
        }
    }
}
