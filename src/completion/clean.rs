//! Cleaning steps for a model's answer, each a small function of the text.
//!
//! FIM models do not know where to stop: they run past the gap, re-type the
//! code that follows the cursor, close brackets the line already closes,
//! and instruct checkpoints wrap up with a code fence and prose. Each step
//! below removes one of those failures; `CursorContext::finish` runs them in
//! order.

use ropey::Rope;

use super::brace_blocks::{brace_indentation_fits, brace_reindented};
use super::indentation::python_indentation_fits;
use crate::text::syntax::{Language, SyntaxTree};

/// Cuts a chat-style run-on: everything from the first line that starts a
/// Markdown code fence (the model closing its "answer") on.
pub fn cut_code_fence(text: &str) -> &str {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with("```") {
            return text[..offset].trim_end_matches([' ', '\t']);
        }
        offset += line.len();
    }
    text
}

/// Cuts the answer at a line that copies the header of a cross-file
/// snippet (`# Path: src/x.py`, as `prompt::repo` writes them above the
/// code): that is the prompt's own layout leaking into the answer, not
/// code to insert. Any comment marker the layout uses is recognized.
pub fn cut_context_header(text: &str) -> &str {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if ["#", "//", "--"]
            .iter()
            .any(|c| t.strip_prefix(c).is_some_and(|r| r.starts_with(" Path: ")))
            || is_bare_header(t)
        {
            return text[..offset].trim_end_matches([' ', '\t']);
        }
        offset += line.len();
    }
    text
}

/// A header without its comment marker (`Path: src/a/B.java`, seen where
/// the marker came from the line above): `Path: ` and one file path with a
/// folder and an extension, nothing else (not `Path: str = x`).
fn is_bare_header(line: &str) -> bool {
    line.strip_prefix("Path: ").is_some_and(|path| {
        let path = path.trim_end();
        !path.contains(char::is_whitespace)
            && path.contains('/')
            && path.rsplit_once('.').is_some_and(|(_, ext)| {
                !ext.is_empty() && ext.chars().all(|c| c.is_ascii_alphanumeric())
            })
    })
}

/// Cuts the answer where its lines start re-typing the lines that follow
/// the cursor's line: from the first generated line (after the first) that
/// equals the next non-blank line of the suffix.
pub fn cut_repeated_suffix_lines<'a>(text: &'a str, suffix: &str) -> &'a str {
    let Some(next) = suffix
        .split('\n')
        .skip(1)
        .map(str::trim)
        .find(|l| !l.is_empty())
    else {
        return text;
    };
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if i > 0 && line.trim() == next {
            return text[..offset].trim_end();
        }
        offset += line.len();
    }
    text
}

/// Whether a one-line answer makes the cursor's line exactly the next
/// non-blank line after it, indentation included: the model re-typing code
/// the user already has. (Indentation counts: a `}` closing an inner block
/// is not a repeat of the `}` closing the outer one.)
pub fn repeats_next_line(line_prefix: &str, text: &str, suffix: &str) -> bool {
    let next = suffix
        .split('\n')
        .skip(1)
        .map(str::trim_end)
        .find(|l| !l.trim().is_empty());
    !text.contains('\n') && next.is_some_and(|n| n == format!("{line_prefix}{}", text.trim_end()))
}

/// Net count of unclosed brackets in `s`: openers not yet closed plus
/// closers with no opener. Quotes are ignored (too ambiguous to count).
fn bracket_imbalance(s: &str) -> usize {
    let mut stack = Vec::new();
    let mut stray = 0;
    for c in s.chars() {
        match c {
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let open = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.last() == Some(&open) {
                    stack.pop();
                } else {
                    stray += 1;
                }
            }
            _ => {}
        }
    }
    stack.len() + stray
}

/// Removes the end of a one-line answer that the rest of the cursor's line
/// already has (closing brackets, quotes, `:`), when keeping it would leave
/// the line less balanced than dropping it.
pub fn trim_line_overlap(text: &str, line_prefix: &str, line_suffix: &str) -> String {
    let rest = line_suffix.trim_end();
    if rest.is_empty() || text.contains('\n') {
        return text.to_string();
    }
    // Longest end of `text` that is a start of `rest`.
    let overlap = (1..=text.len().min(rest.len()))
        .rev()
        .filter(|&n| text.is_char_boundary(text.len() - n) && rest.is_char_boundary(n))
        .find(|&n| text[text.len() - n..] == rest[..n]);
    let Some(n) = overlap else {
        return text.to_string();
    };
    let trimmed = &text[..text.len() - n];
    let kept = bracket_imbalance(&format!("{line_prefix}{text}{rest}"));
    let dropped = bracket_imbalance(&format!("{line_prefix}{trimmed}{rest}"));
    if dropped < kept || (dropped == kept && text.ends_with(rest)) {
        trimmed.to_string()
    } else {
        text.to_string()
    }
}

/// Syntax errors (ERROR and MISSING nodes) in `text`.
pub fn syntax_errors(language: Language, text: &str) -> usize {
    let Some(st) = SyntaxTree::new(language, &Rope::from_str(text)) else {
        return 0;
    };
    let Some(tree) = st.tree() else { return 0 };
    let mut count = 0;
    visit_nodes(tree, |node| {
        count += usize::from(node.is_error() || node.is_missing());
        true
    });
    count
}

/// Calls `visit` on every node of `tree`, in document order, until it
/// returns false.
fn visit_nodes(tree: &tree_sitter::Tree, mut visit: impl FnMut(tree_sitter::Node) -> bool) {
    let mut cursor = tree.walk();
    loop {
        if !visit(cursor.node()) {
            return;
        }
        if cursor.goto_first_child() || cursor.goto_next_sibling() {
            continue;
        }
        loop {
            if !cursor.goto_parent() {
                return;
            }
            if cursor.goto_next_sibling() {
                break;
            }
        }
    }
}

/// The longest prefix of `text`, on line boundaries, that adds no syntax
/// error to `prefix + suffix`; empty if every line adds one, but for a
/// block's first line in an answer the time budget cut (`cut_by_time`).
pub fn keep_valid_lines(
    language: Language,
    prefix: &str,
    text: &str,
    suffix: &str,
    cut_by_time: bool,
) -> String {
    let baseline = syntax_errors(language, &format!("{prefix}{suffix}"));
    let mut ends: Vec<usize> = text.match_indices('\n').map(|(i, _)| i).collect();
    ends.push(text.len());
    for &end in ends.iter().rev() {
        let candidate = text[..end].trim_end();
        if candidate.trim().is_empty() {
            continue;
        }
        if syntax_errors(language, &format!("{prefix}{candidate}{suffix}")) > baseline {
            continue;
        }
        if indentation_fits(language, prefix, candidate, suffix) {
            return candidate.to_string();
        }
        // Java's code is the same at any indentation: a block-wise misfit
        // that fits one level off is moved there, not dropped.
        if language == Language::Java {
            if let Some(moved) = brace_reindented(prefix, candidate, suffix) {
                return moved;
            }
        }
    }
    // No line is valid as it stands. A first line that opens a block
    // (`if (c == 0) {`, `for x in xs:`) is still the model's best line when
    // the time budget ended the answer before the block's body: shown if
    // the block, once closed, adds no error. Only then: a longer valid
    // answer is always preferred, and a model that ended after an open
    // block by itself (HumanEval-FIM Java: `public static void main(…) {`
    // where a `}` was due) gets no such grace.
    if !cut_by_time {
        return String::new();
    }
    // The shortest candidate of the loop above: up to the first line with text.
    let Some(first) = ends
        .iter()
        .map(|&end| text[..end].trim_end())
        .find(|c| !c.trim().is_empty())
    else {
        return String::new();
    };
    let line_start = prefix.rfind('\n').map_or(0, |i| i + 1);
    if let Some(close) = block_closing(language, &prefix[line_start..], first) {
        let closed = format!("{first}{close}");
        if syntax_errors(language, &format!("{prefix}{closed}{suffix}")) <= baseline
            && indentation_fits(language, prefix, &closed, suffix)
        {
            return first.to_string();
        }
    }
    String::new()
}

/// The blocks as the indentation shows them, which the error count misses
/// where the code around is already broken: Python's indentation rules
/// (`indentation`), Java's braces against the indentation (`brace_blocks`).
fn indentation_fits(language: Language, prefix: &str, text: &str, suffix: &str) -> bool {
    match language {
        Language::Python => python_indentation_fits(prefix, text, suffix),
        Language::Java => brace_indentation_fits(prefix, text, suffix),
    }
}

/// What closes the block that `line` (typed after `typed`, the start of its
/// line) opens: the braces it leaves open (Java), or an
/// indented `pass` (Python, a line ending with `:`); `None` where the line
/// opens no block, or closes a bracket it did not open.
fn block_closing(language: Language, typed: &str, line: &str) -> Option<String> {
    let whole = format!("{typed}{line}");
    let comment = match language {
        Language::Python => "#",
        _ => "//",
    };
    let mut open = Vec::new();
    let mut quote: Option<char> = None;
    let mut chars = whole.char_indices();
    let mut code_end = whole.len();
    while let Some((i, c)) = chars.next() {
        match quote {
            Some(q) => {
                if c == '\\' {
                    chars.next();
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => quote = Some(c),
                '(' | '[' | '{' => open.push(c),
                ')' | ']' | '}' => {
                    let opener = match c {
                        ')' => '(',
                        ']' => '[',
                        _ => '{',
                    };
                    if open.pop() != Some(opener) {
                        return None;
                    }
                }
                _ if whole[i..].starts_with(comment) => {
                    code_end = i;
                    break;
                }
                _ => {}
            },
        }
    }
    if quote.is_some() {
        return None;
    }
    let indent: String = whole
        .chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .collect();
    match language {
        Language::Python => (open.is_empty() && whole[..code_end].trim_end().ends_with(':'))
            .then(|| format!("\n{indent}    pass")),
        // Only braces left open (a call left open is not a block); closed
        // on a line of their own: the line may end with a comment.
        // At the line's indentation, as the code below is read by it.
        _ => (!open.is_empty() && open.iter().all(|o| *o == '{'))
            .then(|| format!("\n{indent}{}", "}".repeat(open.len()))),
    }
}

/// Inside a docstring, the answer is prose: keep it up to and including
/// the line that closes the string, and nothing of the code after it.
pub fn cut_after_string_close<'a>(text: &'a str, delimiter: &str) -> &'a str {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        offset += line.len();
        if line.contains(delimiter) {
            return text[..offset].trim_end();
        }
    }
    text
}

/// `text` (an answer between `prefix` and `suffix`) without the comments
/// the model put at the end of its own lines of code (`x = y  # Output:
/// 3`), where the code around has no line that ends with a comment: an
/// instruct model explains its code to a reader who wrote the rest, and
/// the user deletes the remark after accepting. A file whose lines carry
/// such comments keeps them (its style). Comments on lines of their own,
/// and after code the user typed, stay.
pub fn cut_trailing_comments(language: Language, prefix: &str, text: &str, suffix: &str) -> String {
    let doc = format!("{prefix}{text}{suffix}");
    let Some(st) = SyntaxTree::new(language, &Rope::from_str(&doc)) else {
        return text.to_string();
    };
    let Some(tree) = st.tree() else {
        return text.to_string();
    };
    let (start, end) = (prefix.len(), prefix.len() + text.len());
    // Byte ranges in `doc` of the comments ending a line after code.
    let mut trailing: Vec<(usize, usize)> = Vec::new();
    let mut file_has_them = false;
    visit_nodes(tree, |node| {
        if !matches!(node.kind(), "comment" | "line_comment") {
            return true;
        }
        let (s, e) = (node.start_byte(), node.end_byte());
        let line_start = doc[..s].rfind('\n').map_or(0, |i| i + 1);
        let line_end = doc[e..].find('\n').map_or(doc.len(), |i| e + i);
        let after_code = !doc[line_start..s].trim().is_empty();
        if !after_code || !doc[e..line_end].trim().is_empty() {
            return true;
        }
        if e <= start || s >= end {
            // The file's own style: its lines end with comments.
            file_has_them = true;
            return false;
        }
        // The model's comment after the model's code.
        if s > start && e <= end && !doc[line_start.max(start)..s].trim().is_empty() {
            trailing.push((s, e));
        }
        true
    });
    if file_has_them {
        return text.to_string();
    }
    let mut out = text.to_string();
    for &(s, e) in trailing.iter().rev() {
        let code_end = doc[start..s].trim_end_matches([' ', '\t']).len();
        out.replace_range(code_end..e - start, "");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_models_comments_after_its_code_are_cut_unless_the_file_has_them() {
        let py = Language::Python;
        let prefix = "def f(xs):\n    n = 0\n";
        let suffix = "\n    return n\n";
        let cut = |text: &str| cut_trailing_comments(py, prefix, text, suffix);
        assert_eq!(cut("    n = len(xs)  # Count them"), "    n = len(xs)");
        assert_eq!(
            cut("    for x in xs:  # each\n        n += x # add\n    n = -n"),
            "    for x in xs:\n        n += x\n    n = -n"
        );
        // A comment on its own line, and `#` in a string, stay.
        assert_eq!(
            cut("    # Count them\n    n = 1"),
            "    # Count them\n    n = 1"
        );
        assert_eq!(cut("    n = xs.count('#')"), "    n = xs.count('#')");
        // The file's lines end with comments: its style, kept.
        let styled = "def f(xs):\n    n = 0  # the count\n";
        assert_eq!(
            cut_trailing_comments(py, styled, "    n = len(xs)  # all", suffix),
            "    n = len(xs)  # all"
        );
        // After code the user typed, the comment is the whole answer: kept.
        assert_eq!(
            cut_trailing_comments(py, "def f(xs):\n    n = len(xs)", "  # all", suffix),
            "  # all"
        );
        let java = |text: &str| {
            cut_trailing_comments(
                Language::Java,
                "class A {\n  int f() {\n",
                text,
                "\n  }\n}\n",
            )
        };
        assert_eq!(java("    return 1; // one"), "    return 1;");
        assert_eq!(java("    return /* one */ 1;"), "    return /* one */ 1;");
    }

    #[test]
    fn a_copied_snippet_header_is_cut() {
        assert_eq!(cut_context_header("# Path: src/attr/_config.py"), "");
        assert_eq!(
            cut_context_header("x = 1\n    // Path: a/B.java\n"),
            "x = 1\n"
        );
        assert_eq!(cut_context_header("# Paths: a\nx"), "# Paths: a\nx");
        assert_eq!(cut_context_header("path = 'Path: x'"), "path = 'Path: x'");
        assert_eq!(cut_context_header("Path: src/main/java/a/B.java"), "");
        assert_eq!(cut_context_header("Path: str = x"), "Path: str = x");
        assert_eq!(cut_context_header("Path: os.PathLike"), "Path: os.PathLike");
    }

    #[test]
    fn a_block_opener_is_kept_where_nothing_else_is_valid() {
        // Java: the answer was cut after the block's first line.
        let prefix = "class A {\n    int f(int c) {\n        ";
        let suffix = "\n        return c;\n    }\n}\n";
        let kept = |text: &str| keep_valid_lines(Language::Java, prefix, text, suffix, true);
        assert_eq!(kept("if (c == 0) {"), "if (c == 0) {");
        // Only where the time budget cut the answer.
        assert_eq!(
            keep_valid_lines(Language::Java, prefix, "if (c == 0) {", suffix, false),
            ""
        );
        assert_eq!(kept("if (c == 0) { // zero\n"), "if (c == 0) { // zero");
        assert_eq!(kept("run(new Runnable() {"), "");
        // A complete answer stays whole; a valid first line is kept as before.
        assert_eq!(kept("c++;\nif (c == 0) {"), "c++;");
        // Not a block: an open call, an unmatched closer, garbage.
        assert_eq!(kept("foo(c,"), "");
        assert_eq!(kept("}) {"), "");
        assert_eq!(kept("] as bar:"), "");
        assert_eq!(kept("s = \"{\";{"), "s = \"{\";{");
        // Python: a line that ends with `:`.
        let prefix = "def f(xs):\n    n = 0\n    ";
        let suffix = "\n    return n\n";
        let kept = |text: &str| keep_valid_lines(Language::Python, prefix, text, suffix, true);
        assert_eq!(kept("for x in xs:"), "for x in xs:");
        assert_eq!(kept("for x in xs:  # each"), "for x in xs:  # each");
        assert_eq!(kept("if xs[0] == ':'"), "");
        assert_eq!(kept("] as bar:"), "");
    }

    #[test]
    fn code_fence_and_prose_are_cut() {
        let raw = "    return a + b\n```\n\nThis function adds two numbers.";
        assert_eq!(cut_code_fence(raw), "    return a + b\n");
        assert_eq!(cut_code_fence("x = 1"), "x = 1");
    }

    #[test]
    fn repeated_closing_line_is_cut() {
        let suffix = "\n    }\n}\n";
        let raw = "return width * height;\n    }\n}";
        assert_eq!(
            cut_repeated_suffix_lines(raw, suffix),
            "return width * height;"
        );
    }

    #[test]
    fn a_line_that_already_follows_is_a_repeat() {
        let suffix = "\n        n -= 1\n    return a\n";
        assert!(repeats_next_line("", "        n -= 1", suffix));
        assert!(repeats_next_line("    ", "    n -= 1", suffix));
        assert!(!repeats_next_line("", "        a, b = b, a + b", suffix));
        // Closing an inner block before the outer one's `}` is no repeat.
        assert!(!repeats_next_line("", "        }", "\n    }\n}\n"));
    }

    #[test]
    fn duplicated_closing_paren_is_dropped() {
        // `print(len(|))` and the model answers `items))`.
        assert_eq!(trim_line_overlap("items))", "print(len(", "))"), "items");
        // `print(|)` answered `len(items))`: one `)` is already there.
        assert_eq!(
            trim_line_overlap("len(items))", "print(", ")"),
            "len(items)"
        );
        // `print(|)` answered `len(items)`: balanced as it is; keep it.
        assert_eq!(trim_line_overlap("len(items)", "print(", ")"), "len(items)");
        assert_eq!(trim_line_overlap("x:", "if ", ":"), "x");
    }

    #[test]
    fn lines_that_break_the_syntax_are_dropped() {
        let prefix = "def area(w, h):\n    ";
        let text = "area = w * h\n    return (area";
        assert_eq!(
            keep_valid_lines(Language::Python, prefix, text, "\n", false),
            "area = w * h"
        );
    }

    #[test]
    fn syntax_check_keeps_valid_java() {
        let prefix = "class A {\n    int f(int x) {\n        ";
        let suffix = "\n    }\n}\n";
        assert_eq!(
            keep_valid_lines(Language::Java, prefix, "return x + 1;", suffix, false),
            "return x + 1;"
        );
        assert_eq!(
            keep_valid_lines(Language::Java, prefix, "return (x + 1;", suffix, false),
            ""
        );
    }

    #[test]
    fn docstring_is_not_continued_into_code() {
        let raw = "Return the sum of a and b.\n    \"\"\"\n    return a + b";
        assert_eq!(
            cut_after_string_close(raw, "\"\"\""),
            "Return the sum of a and b.\n    \"\"\""
        );
    }
}
