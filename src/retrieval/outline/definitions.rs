//! The definitions query (`grammars/<language>/definitions.scm`): what
//! it finds in a tree, and the symbols those definitions are.

use std::cmp::Ordering;
use std::sync::OnceLock;

use tree_sitter::{Node, Query, QueryCursor, StreamingIterator, Tree};

use crate::text::syntax::Language;

use super::{Symbol, SymbolKind, MAX_SIGNATURE};

/// A definition found by the query, before chunking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Def {
    pub(super) kind: SymbolKind,
    pub(super) name: String,
    /// Rows of the whole definition (decorators included).
    pub(super) start_line: usize,
    pub(super) end_line: usize,
    /// Where the whole definition starts (its decorators), the node itself,
    /// its name and its body start, and where it ends.
    pub(super) whole_byte: usize,
    pub(super) start_byte: usize,
    pub(super) name_byte: usize,
    pub(super) body_byte: Option<usize>,
    pub(super) end_byte: usize,
}

impl Def {
    /// The bytes this definition's outcome depends on.
    pub(super) fn extent(&self) -> (usize, usize) {
        (self.whole_byte, self.end_byte.max(self.whole_byte + 1))
    }

    /// The outline's order: by line, outer before inner, then by position.
    pub(super) fn order(a: &Def, b: &Def) -> Ordering {
        a.start_line
            .cmp(&b.start_line)
            .then(b.end_line.cmp(&a.end_line))
            .then(a.start_byte.cmp(&b.start_byte))
            .then(a.name_byte.cmp(&b.name_byte))
    }

    pub(super) fn same(a: &Def, b: &Def) -> bool {
        a.start_byte == b.start_byte && a.name_byte == b.name_byte && a.kind == b.kind
    }
}

/// Every definition in `tree`, in outline order.
pub(super) fn definitions(language: Language, text: &str, tree: &Tree) -> Vec<Def> {
    let mut defs = Vec::new();
    run_query(language, text, tree, None, &|_| true, &mut defs);
    defs.sort_by(Def::order);
    defs.dedup_by(|a, b| Def::same(a, b));
    defs
}

/// Runs the definitions query over `range` of `tree` (all of it for `None`),
/// adding the definitions `keep` accepts (by extent) to `out`.
pub(super) fn run_query(
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

fn query(language: Language) -> Option<&'static Query> {
    static PY: OnceLock<Option<Query>> = OnceLock::new();
    static JAVA: OnceLock<Option<Query>> = OnceLock::new();
    let (cell, source) = match language {
        Language::Python => (
            &PY,
            include_str!("../../../grammars/python/definitions.scm"),
        ),
        Language::Java => (
            &JAVA,
            include_str!("../../../grammars/java/definitions.scm"),
        ),
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

pub(super) fn symbols(defs: &[Def], text: &str) -> Vec<Symbol> {
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
