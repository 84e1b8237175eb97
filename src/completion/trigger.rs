//! Whether to ask the model at all. A quarter of bad completions come from
//! asking in the wrong place (Code4Me): inside comments and strings, in the
//! middle of a word, or before a line that already has most of its text.

use ropey::Rope;

use crate::text::syntax::SyntaxTree;

/// What kind of text the cursor is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Code,
    Comment,
    /// A string; `delimiter` is its quote (`"""`, `'`, ...).
    String {
        delimiter: String,
    },
}

/// Why an automatic request is not answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    InComment,
    InString,
    MidWord,
    LineAlreadyWritten,
}

/// Most characters right of the cursor, other than closing brackets,
/// quotes and separators, before a line counts as already written.
const MAX_TEXT_RIGHT: usize = 3;

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The scope at byte `cursor` of the tree's text.
pub fn scope_at(syntax: &SyntaxTree, source: &Rope, cursor: usize) -> Scope {
    let Some(tree) = syntax.tree() else {
        return Scope::Code;
    };
    let start = cursor.saturating_sub(1);
    let Some(mut node) = tree.root_node().descendant_for_byte_range(start, cursor) else {
        return Scope::Code;
    };
    loop {
        let (s, e) = (node.start_byte(), node.end_byte());
        match node.kind() {
            // Line comments run to the line end: the cursor there is still in them.
            "comment" | "line_comment" if s < cursor && cursor <= e => return Scope::Comment,
            "block_comment" if s < cursor && cursor < e => return Scope::Comment,
            "string" | "string_literal" | "text_block" | "character_literal" => {
                let unterminated = node.has_error() || node.is_missing();
                if s < cursor && (cursor < e || (cursor == e && unterminated)) {
                    let text = source
                        .get_byte_slice(s..e)
                        .map(|t| t.to_string())
                        .unwrap_or_default();
                    let body = text.trim_start_matches(|c: char| c.is_ascii_alphabetic());
                    let delimiter = ["\"\"\"", "'''", "\"", "'"]
                        .into_iter()
                        .find(|d| body.starts_with(d))
                        .unwrap_or("\"");
                    return Scope::String {
                        delimiter: delimiter.to_string(),
                    };
                }
            }
            _ => {}
        }
        match node.parent() {
            Some(p) => node = p,
            None => return unterminated_string_before(tree, source, cursor),
        }
    }
}

/// A string opened before the cursor and never closed (the user is typing
/// it): tree-sitter keeps only its opening quote, inside an ERROR node.
fn unterminated_string_before(tree: &tree_sitter::Tree, source: &Rope, cursor: usize) -> Scope {
    let mut walk = tree.walk();
    let mut last_open: Option<(usize, usize)> = None;
    'outer: loop {
        let node = walk.node();
        if node.start_byte() >= cursor {
            // Nothing at or after the cursor matters.
        } else if node.kind() == "string_start" && node.parent().is_some_and(|p| p.is_error()) {
            last_open = Some((node.start_byte(), node.end_byte()));
        } else if node.child_count() > 0 && walk.goto_first_child() {
            continue;
        }
        while !walk.goto_next_sibling() {
            if !walk.goto_parent() {
                break 'outer;
            }
        }
    }
    match last_open {
        Some((s, e)) => {
            let quote = source
                .get_byte_slice(s..e)
                .map(|t| t.to_string())
                .unwrap_or_default();
            Scope::String {
                delimiter: quote
                    .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                    .to_string(),
            }
        }
        None => Scope::Code,
    }
}

/// Decides an automatic request; explicit requests are always answered.
pub fn automatic_skip(
    scope: &Scope,
    line_prefix: &str,
    line_suffix: &str,
    in_comments_and_strings: bool,
) -> Option<Skip> {
    if !in_comments_and_strings {
        match scope {
            Scope::Comment => return Some(Skip::InComment),
            Scope::String { .. } => return Some(Skip::InString),
            Scope::Code => {}
        }
    }
    let before = line_prefix.chars().next_back();
    let after = line_suffix.chars().next();
    if before.is_some_and(is_word) && after.is_some_and(is_word) {
        return Some(Skip::MidWord);
    }
    let written = line_suffix
        .chars()
        .filter(|c| !c.is_whitespace() && !")]}>\"'`;:,.".contains(*c))
        .count();
    if written > MAX_TEXT_RIGHT {
        return Some(Skip::LineAlreadyWritten);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::syntax::Language;

    fn scope(lang: Language, text: &str, marker: &str) -> Scope {
        let cursor = text.find(marker).unwrap();
        let text = text.replacen(marker, "", 1);
        let rope = Rope::from_str(&text);
        let st = SyntaxTree::new(lang, &rope).unwrap();
        scope_at(&st, &rope, cursor)
    }

    #[test]
    fn finds_comments_and_strings() {
        use Language::*;
        assert_eq!(scope(Python, "x = 1  # note|\n", "|"), Scope::Comment);
        assert_eq!(
            scope(Python, "x = 'ab|c'\n", "|"),
            Scope::String {
                delimiter: "'".into()
            }
        );
        assert_eq!(scope(Python, "x = 'abc'|\n", "|"), Scope::Code);
        assert_eq!(
            scope(Python, "def f():\n    \"\"\"Sum |\n    return 1\n", "|"),
            Scope::String {
                delimiter: "\"\"\"".into()
            }
        );
        assert_eq!(scope(Java, "class A { // hi|\n}", "|"), Scope::Comment);
        assert_eq!(scope(Java, "class A { /* a */| }", "|"), Scope::Code);
        assert_eq!(
            scope(Java, "class A { String s = \"a|b\"; }", "|"),
            Scope::String {
                delimiter: "\"".into()
            }
        );
        assert_eq!(
            scope(Java, "class A { int f() { return |", "|"),
            Scope::Code
        );
    }

    #[test]
    fn automatic_requests_skip_the_wrong_places() {
        let code = Scope::Code;
        assert_eq!(
            automatic_skip(&Scope::Comment, "# a", "", false),
            Some(Skip::InComment)
        );
        assert_eq!(automatic_skip(&Scope::Comment, "# a", "", true), None);
        assert_eq!(
            automatic_skip(&code, "    retu", "rn x", false),
            Some(Skip::MidWord)
        );
        assert_eq!(
            automatic_skip(&code, "    x = ", "compute(y)", false),
            Some(Skip::LineAlreadyWritten)
        );
        assert_eq!(automatic_skip(&code, "    print(", "))", false), None);
        assert_eq!(automatic_skip(&code, "    return ", "", false), None);
    }
}
