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
//!
//! The files, one job each: `lines` (where each line starts), `diff` (the
//! one edit between two texts), `definitions` (the query and the symbols
//! it yields), `incremental` (re-querying only what an edit changed),
//! `chunks` (definitions into chunks).

mod chunks;
mod definitions;
mod diff;
mod incremental;
mod lines;

use tree_sitter::{Parser, Tree};

use crate::text::syntax::Language;

use chunks::cut;
use definitions::{definitions, Def};
use incremental::changed_definitions;

pub use diff::TextDiff;
pub use lines::Lines;

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

/// Random edits for the equivalence tests (here and in `index`).
#[cfg(test)]
pub(crate) mod fuzz;

#[cfg(test)]
mod tests;
