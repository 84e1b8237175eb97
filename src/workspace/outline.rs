//! A file's chunks (what BM25 retrieves) and symbols (what the definition
//! lookup finds), from one parse. Python and Java are cut along their
//! syntax trees with the queries in `grammars/<language>/definitions.scm`;
//! any other text is cut in fixed line windows.
//!
//! Pure: text in, outline out; no I/O.

use std::sync::OnceLock;

use tree_sitter::{Node, Parser, Query, QueryCursor, StreamingIterator};

use crate::text::syntax::Language;

/// A function or class longer than this is cut further: a class into its
/// header and members, a function into windows.
pub const MAX_CHUNK_LINES: usize = 60;
/// Lines per chunk for text outside definitions and for non-code files.
pub const WINDOW_LINES: usize = 30;
/// Longest signature kept for a symbol, in bytes.
const MAX_SIGNATURE: usize = 240;

/// A piece of a file that retrieval can return whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// 0-based lines, inclusive.
    pub start_line: usize,
    pub end_line: usize,
    pub text: String,
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
struct Def {
    kind: SymbolKind,
    name: String,
    start_line: usize,
    end_line: usize,
    /// Byte range of the whole node (decorators included), and where its body starts.
    start_byte: usize,
    body_byte: Option<usize>,
    end_byte: usize,
}

/// Cuts `text` into chunks and lists its symbols.
pub fn outline(language: Option<Language>, text: &str) -> Outline {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let defs = language.map(|l| definitions(l, text)).unwrap_or_default();
    let symbols = symbols(&defs, text);
    let mut chunks = Vec::new();
    let blocks: Vec<&Def> = defs
        .iter()
        .filter(|d| d.kind != SymbolKind::Field)
        .collect();
    let roots = children_of(&blocks, None);
    cover(
        &blocks,
        &roots,
        0,
        lines.len().saturating_sub(1),
        &lines,
        &mut chunks,
    );
    Outline { chunks, symbols }
}

fn definitions(language: Language, text: &str) -> Vec<Def> {
    let Some(query) = query(language) else {
        return Vec::new();
    };
    let mut parser = Parser::new();
    if parser.set_language(&language.grammar()).is_err() {
        return Vec::new();
    }
    let Some(tree) = parser.parse(text, None) else {
        return Vec::new();
    };
    let name_index = query.capture_index_for_name("name");
    let mut cursor = QueryCursor::new();
    let mut matches = cursor.matches(query, tree.root_node(), text.as_bytes());
    let mut defs = Vec::new();
    while let Some(m) = matches.next() {
        let mut name = None;
        let mut def: Option<(Node, SymbolKind)> = None;
        for c in m.captures() {
            if Some(c.index) == name_index {
                name = c.node.utf8_text(text.as_bytes()).ok();
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
        if kind == SymbolKind::Function && inside_class(node) {
            kind = SymbolKind::Method;
        }
        // Decorators and annotations belong to what they decorate.
        let whole = match node.parent() {
            Some(p) if p.kind() == "decorated_definition" => p,
            _ => node,
        };
        defs.push(Def {
            kind,
            name: name.to_string(),
            start_line: whole.start_position().row,
            end_line: whole.end_position().row,
            start_byte: node.start_byte(),
            body_byte: node.child_by_field_name("body").map(|b| b.start_byte()),
            end_byte: node.end_byte(),
        });
    }
    defs.sort_by_key(|d| (d.start_line, std::cmp::Reverse(d.end_line)));
    defs
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

/// Chunks for lines `from..=to`, holding the blocks `items` (in order).
fn cover(
    blocks: &[&Def],
    items: &[usize],
    from: usize,
    to: usize,
    lines: &[&str],
    out: &mut Vec<Chunk>,
) {
    let mut next = from;
    for &i in items {
        let b = blocks[i];
        if b.start_line > next {
            windows(next, b.start_line - 1, lines, out);
        }
        block(blocks, i, lines, out);
        next = b.end_line + 1;
    }
    if next <= to && !lines.is_empty() {
        windows(next, to, lines, out);
    }
}

fn block(blocks: &[&Def], i: usize, lines: &[&str], out: &mut Vec<Chunk>) {
    let b = blocks[i];
    let len = b.end_line - b.start_line + 1;
    let members = children_of(blocks, Some(i));
    if len <= MAX_CHUNK_LINES || members.is_empty() {
        if len <= MAX_CHUNK_LINES {
            push(b.start_line, b.end_line, lines, out);
        } else {
            windows(b.start_line, b.end_line, lines, out);
        }
        return;
    }
    // A large class: its header (up to the first member), then its members.
    let first = blocks[members[0]].start_line;
    let header_end = (first - 1).min(b.start_line + MAX_CHUNK_LINES - 1);
    push(b.start_line, header_end, lines, out);
    cover(blocks, &members, first, b.end_line, lines, out);
}

fn windows(from: usize, to: usize, lines: &[&str], out: &mut Vec<Chunk>) {
    let mut start = from;
    while start <= to {
        let end = (start + WINDOW_LINES - 1).min(to);
        push(start, end, lines, out);
        start = end + 1;
    }
}

/// Adds lines `from..=to` as a chunk unless they hold no word at all.
fn push(from: usize, to: usize, lines: &[&str], out: &mut Vec<Chunk>) {
    let to = to.min(lines.len().saturating_sub(1));
    if from > to {
        return;
    }
    let text: String = lines[from..=to].concat();
    if !text.chars().any(char::is_alphanumeric) {
        return;
    }
    out.push(Chunk {
        start_line: from,
        end_line: to,
        text,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(o.chunks[2].text.contains("@property"));
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
            .find(|c| c.text.contains("class Big"))
            .unwrap();
        assert!(header.text.contains("private int n;"));
        assert!(!header.text.contains("get0"));
        assert!(o
            .chunks
            .iter()
            .any(|c| c.text.contains("get7(int x)") && !c.text.contains("get8")));
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
}
