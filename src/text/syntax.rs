//! Languages with a tree-sitter grammar, and an incrementally maintained
//! syntax tree for one document.

use ropey::Rope;
use tree_sitter::{InputEdit, Parser, Point, Tree};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    Python,
    Java,
}

impl Language {
    /// From an LSP `languageId`, falling back to the file extension of `path`.
    pub fn detect(language_id: Option<&str>, path: &str) -> Option<Language> {
        match language_id {
            Some("python") => return Some(Language::Python),
            Some("java") => return Some(Language::Java),
            _ => {}
        }
        Language::from_extension(path.rsplit('.').next()?)
    }

    /// The one place that maps file extensions to languages.
    pub fn from_extension(ext: &str) -> Option<Language> {
        match ext {
            "py" | "pyi" => Some(Language::Python),
            "java" => Some(Language::Java),
            _ => None,
        }
    }

    /// The extension of the language's source files (not stubs).
    pub fn extension(self) -> &'static str {
        match self {
            Language::Python => "py",
            Language::Java => "java",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::Java => "java",
        }
    }

    pub fn grammar(self) -> tree_sitter::Language {
        match self {
            Language::Python => tree_sitter_python::LANGUAGE.into(),
            Language::Java => tree_sitter_java::LANGUAGE.into(),
        }
    }
}

/// A parser and the tree of the document's current text.
pub struct SyntaxTree {
    language: Language,
    parser: Parser,
    tree: Option<Tree>,
}

impl std::fmt::Debug for SyntaxTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyntaxTree")
            .field("language", &self.language)
            .finish()
    }
}

impl SyntaxTree {
    /// Parses `text` from scratch. `None` if the grammar cannot be loaded
    /// (an ABI mismatch: a build problem, not a user one).
    pub fn new(language: Language, text: &Rope) -> Option<SyntaxTree> {
        let mut parser = Parser::new();
        parser.set_language(&language.grammar()).ok()?;
        let mut me = SyntaxTree {
            language,
            parser,
            tree: None,
        };
        me.reparse(text);
        Some(me)
    }

    pub fn language(&self) -> Language {
        self.language
    }

    pub fn tree(&self) -> Option<&Tree> {
        self.tree.as_ref()
    }

    /// Tells the old tree about an edit, so that the next reparse reuses
    /// the unchanged parts.
    pub fn edit(&mut self, edit: &InputEdit) {
        if let Some(tree) = self.tree.as_mut() {
            tree.edit(edit);
        }
    }

    /// Reparses incrementally from the rope's chunks (no copy of the text).
    pub fn reparse(&mut self, text: &Rope) {
        let mut read = |byte: usize, _: Point| -> &[u8] {
            if byte >= text.len_bytes() {
                return &[];
            }
            let (chunk, chunk_start, _, _) = text.chunk_at_byte(byte);
            &chunk.as_bytes()[byte - chunk_start..]
        };
        self.tree = self
            .parser
            .parse_with_options(&mut read, self.tree.as_ref(), None);
    }
}

/// The tree-sitter point (row, byte column) of a byte offset in `text`.
pub fn point_at_byte(text: &Rope, byte: usize) -> Point {
    let byte = byte.min(text.len_bytes());
    let line = text.byte_to_line(byte);
    Point::new(line, byte - text.line_to_byte(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_language_id_then_extension() {
        assert_eq!(
            Language::detect(Some("python"), "x.txt"),
            Some(Language::Python)
        );
        assert_eq!(Language::detect(None, "/a/B.java"), Some(Language::Java));
        assert_eq!(Language::detect(Some("rust"), "/a/b.rs"), None);
    }

    #[test]
    fn parses_python() {
        let rope = Rope::from_str("def f(x):\n    return x\n");
        let st = SyntaxTree::new(Language::Python, &rope).unwrap();
        let root = st.tree().unwrap().root_node();
        assert_eq!(root.kind(), "module");
        assert!(!root.has_error());
    }
}
