//! One open document: its text as a rope, its version, and (for languages
//! with a grammar) a syntax tree kept current with every edit.

use ropey::Rope;
use tree_sitter::InputEdit;

use super::position::{to_char_index, LinePosition, PositionEncoding};
use super::syntax::{point_at_byte, Language, SyntaxTree};

/// A replacement of `range` (LSP positions) by `text`; `range: None`
/// replaces the whole document.
#[derive(Debug, Clone)]
pub struct TextChange {
    pub range: Option<(LinePosition, LinePosition)>,
    pub text: String,
}

/// An edit as applied: chars `start..end` of the text before it were
/// replaced by `inserted` chars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppliedEdit {
    pub start: usize,
    pub end: usize,
    pub inserted: usize,
}

impl AppliedEdit {
    /// The one edit that turns `old` into `new`: their common prefix and
    /// suffix stay.
    fn between(old: &Rope, new: &str) -> AppliedEdit {
        let prefix = old
            .chars()
            .zip(new.chars())
            .take_while(|(a, b)| a == b)
            .count();
        let (old_len, new_len) = (old.len_chars(), new.chars().count());
        let suffix = old
            .chars_at(old_len)
            .reversed()
            .zip(new.chars().rev())
            .take_while(|(a, b)| a == b)
            .count()
            .min(old_len - prefix)
            .min(new_len - prefix);
        AppliedEdit {
            start: prefix,
            end: old_len - suffix,
            inserted: new_len - suffix - prefix,
        }
    }
}

#[derive(Debug)]
pub struct Document {
    pub path: String,
    pub version: i32,
    text: Rope,
    syntax: Option<SyntaxTree>,
    /// Char index just after the text of the last incremental change: where
    /// the user's cursor most likely is (LSP does not send cursor moves).
    last_edit: Option<usize>,
}

impl Document {
    pub fn new(path: &str, language_id: Option<&str>, version: i32, text: &str) -> Document {
        let rope = Rope::from_str(text);
        let syntax = Language::detect(language_id, path).and_then(|l| SyntaxTree::new(l, &rope));
        Document {
            path: path.to_string(),
            version,
            text: rope,
            syntax,
            last_edit: None,
        }
    }

    pub fn text(&self) -> &Rope {
        &self.text
    }

    pub fn syntax(&self) -> Option<&SyntaxTree> {
        self.syntax.as_ref()
    }

    /// The syntax tree as it stands, with its language (an O(1) copy):
    /// the workspace index's update reuses it instead of parsing again.
    pub fn tree_snapshot(&self) -> Option<(Language, tree_sitter::Tree)> {
        let syntax = self.syntax()?;
        Some((syntax.language(), syntax.tree()?.clone()))
    }

    pub fn language(&self) -> Option<Language> {
        self.syntax.as_ref().map(|s| s.language())
    }

    /// Applies changes in order (as LSP sends them), each one relative to the
    /// text left by the previous one, then reparses once.
    ///
    /// Ranges are clamped to the document; a range whose end precedes its
    /// start is treated as empty at the start (clients should never send it,
    /// and dropping it would desynchronise us from the editor).
    /// Char index just after the last incremental change, if any.
    pub fn last_edit(&self) -> Option<usize> {
        self.last_edit.map(|c| c.min(self.text.len_chars()))
    }

    /// Applies `changes` in order; returns each as the chars it replaced
    /// (a whole-text change as the one edit between the texts: their
    /// common prefix and suffix), for what follows ranges through edits.
    pub fn apply_changes(
        &mut self,
        version: i32,
        changes: &[TextChange],
        enc: PositionEncoding,
    ) -> Vec<AppliedEdit> {
        let applied = changes.iter().map(|c| self.apply_one(c, enc)).collect();
        self.version = version;
        if let Some(syntax) = self.syntax.as_mut() {
            syntax.reparse(&self.text);
        }
        applied
    }

    fn apply_one(&mut self, change: &TextChange, enc: PositionEncoding) -> AppliedEdit {
        let Some((start, end)) = change.range else {
            let applied = AppliedEdit::between(&self.text, &change.text);
            self.last_edit = None;
            self.text = Rope::from_str(&change.text);
            if let Some(lang) = self.language() {
                // A full replacement shares nothing with the old tree.
                self.syntax = SyntaxTree::new(lang, &self.text);
            }
            return applied;
        };
        let start_char = to_char_index(&self.text, start, enc);
        let end_char = to_char_index(&self.text, end, enc).max(start_char);

        let start_byte = self.text.char_to_byte(start_char);
        let old_end_byte = self.text.char_to_byte(end_char);
        let start_position = point_at_byte(&self.text, start_byte);
        let old_end_position = point_at_byte(&self.text, old_end_byte);

        self.text.remove(start_char..end_char);
        self.text.insert(start_char, &change.text);
        self.last_edit = Some(start_char + change.text.chars().count());

        if let Some(syntax) = self.syntax.as_mut() {
            let new_end_byte = start_byte + change.text.len();
            syntax.edit(&InputEdit {
                start_byte,
                old_end_byte,
                new_end_byte,
                start_position,
                old_end_position,
                new_end_position: point_at_byte(&self.text, new_end_byte),
            });
        }
        AppliedEdit {
            start: start_char,
            end: end_char,
            inserted: change.text.chars().count(),
        }
    }

    /// Char index of an LSP position in the current text.
    pub fn char_index(&self, pos: LinePosition, enc: PositionEncoding) -> usize {
        to_char_index(&self.text, pos, enc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_text_edits_are_one_diff() {
        let edit = |start, end, inserted| AppliedEdit {
            start,
            end,
            inserted,
        };
        let between = |old: &str, new: &str| AppliedEdit::between(&Rope::from_str(old), new);
        assert_eq!(between("abcdef", "abXYef"), edit(2, 4, 2));
        assert_eq!(between("aaa", "aaaa"), edit(3, 3, 1));
        assert_eq!(between("ab", ""), edit(0, 2, 0));
        assert_eq!(between("é", "é"), edit(1, 1, 0));
    }

    fn change(l0: u32, c0: u32, l1: u32, c1: u32, text: &str) -> TextChange {
        TextChange {
            range: Some((
                LinePosition {
                    line: l0,
                    character: c0,
                },
                LinePosition {
                    line: l1,
                    character: c1,
                },
            )),
            text: text.to_string(),
        }
    }

    #[test]
    fn incremental_edits_keep_tree_equal_to_fresh_parse() {
        let mut doc = Document::new("/x.py", Some("python"), 1, "def f(x):\n    return x\n");
        let edits = [
            change(1, 11, 1, 12, "x + 1"),
            change(0, 4, 0, 5, "g😀"),
            change(2, 0, 2, 0, "\r\nclass A:\r\n    pass\r\n"),
        ];
        doc.apply_changes(2, &edits, PositionEncoding::Utf16);
        assert_eq!(
            doc.text().to_string(),
            "def g😀(x):\n    return x + 1\n\r\nclass A:\r\n    pass\r\n"
        );
        let fresh = SyntaxTree::new(Language::Python, doc.text()).unwrap();
        assert_eq!(
            doc.syntax().unwrap().tree().unwrap().root_node().to_sexp(),
            fresh.tree().unwrap().root_node().to_sexp()
        );
    }

    #[test]
    fn reversed_and_out_of_range_edits_are_clamped() {
        let mut doc = Document::new("/x.txt", None, 1, "abc");
        doc.apply_changes(2, &[change(0, 2, 0, 1, "X")], PositionEncoding::Utf16);
        assert_eq!(doc.text().to_string(), "abXc");
        doc.apply_changes(3, &[change(9, 0, 9, 5, "!")], PositionEncoding::Utf16);
        assert_eq!(doc.text().to_string(), "abXc!");
        assert!(doc.syntax().is_none());
    }

    #[test]
    fn full_replacement() {
        let mut doc = Document::new("/x.java", None, 1, "class A {}");
        doc.apply_changes(
            2,
            &[TextChange {
                range: None,
                text: "class B { int x; }".into(),
            }],
            PositionEncoding::Utf8,
        );
        assert_eq!(doc.text().to_string(), "class B { int x; }");
        assert!(!doc
            .syntax()
            .unwrap()
            .tree()
            .unwrap()
            .root_node()
            .has_error());
    }
}
