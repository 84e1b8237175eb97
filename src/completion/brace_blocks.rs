//! Java's blocks as their braces and indentation show them, for an answer
//! between the lines around it.
//!
//! `clean::keep_valid_lines` drops an answer that adds syntax errors to the
//! code around it. Where that code is already one brace short or over (a
//! line of the block was deleted, or the user is about to write it), an
//! answer that keeps it so adds no error and passes: on HumanEval-FIM Java
//! (first 1,250 items), 69 of 367 wrong answers were lines that leave the
//! blocks broken as the indentation below shows them (`} else {` right
//! above a line at the `if`'s own level, where a `}` was due; `}` right
//! above a deeper line, where the `if` that opens its block was due), and
//! so were 17 of the exact ones, at another indentation.
//!
//! Two rules, both about the line after an answer's line, that hold in any
//! indented Java whatever the file's state: after a line that opens a
//! block (ends with `{`) comes a deeper line, or the `}` that closes it at
//! the same indentation; after a complete statement (ends with `;` or
//! `}`), no deeper line. A line shallower than a statement before it is
//! not judged: where the user is writing a block's body and types its `}`
//! later (no automatic closing brackets), the code below is shallower and
//! fine.
//!
//! Written by hand: tree-sitter recovers from a missing or extra brace by
//! moving it to the file's end (the error count does not change), and no
//! crate judges Java by its indentation.

/// A physical line with code: its indentation and its code, comments left
/// out and string and character literals emptied.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CodeLine {
    /// Columns of indentation, a tab counting 4 (`text::indent_width`).
    indent: usize,
    /// Its indentation has a tab.
    tabs: bool,
    /// Its indentation has a space.
    spaces: bool,
    /// The code, trimmed.
    code: String,
}

impl CodeLine {
    /// Ends with `{`: the next line is its block's body.
    fn opens(&self) -> bool {
        self.code.ends_with('{')
    }

    /// A statement or block that ends on this line (`;`, `}`), not inside
    /// a bracket it opened (`for (int i = 0;` goes on).
    fn complete(&self) -> bool {
        self.code.ends_with([';', '}'])
            && self.code.matches('(').count() <= self.code.matches(')').count()
    }

    /// Starts by closing a block (`}`, `} else {`, `});`).
    fn closes(&self) -> bool {
        self.code.starts_with('}')
    }
}

/// Whether `next`, the code line after `line`, keeps the blocks `line`
/// leaves as the indentation shows them.
fn next_fits(line: &CodeLine, next: &CodeLine) -> bool {
    if line.opens() {
        next.indent > line.indent || (next.closes() && next.indent == line.indent)
    } else if line.complete() {
        next.indent <= line.indent
    } else {
        true
    }
}

/// The code lines of `text` read from a line start, and whether it ends
/// inside a comment or a string (the next line continues it).
fn code_lines(text: &str) -> (Vec<CodeLine>, bool) {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Code,
        BlockComment,
        /// A string or character literal, closed by this quote.
        Literal(char),
        /// A text block (`"""`).
        TextBlock,
    }
    let mut lines = Vec::new();
    let mut state = State::Code;
    for line in text.split('\n') {
        let indentation: String = line
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .collect();
        let chars: Vec<char> = line.chars().collect();
        let at = |i: usize, s: &str| {
            s.chars()
                .enumerate()
                .all(|(k, c)| chars.get(i + k) == Some(&c))
        };
        let mut code = String::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match state {
                State::BlockComment if c == '*' && at(i, "/") => {
                    i += 1;
                    state = State::Code;
                }
                State::Literal(_) if c == '\\' => i += 1,
                State::Literal(quote) if c == quote => {
                    code.push(quote);
                    state = State::Code;
                }
                State::TextBlock if c == '"' && at(i, "\"\"") => {
                    i += 2;
                    code.push('"');
                    state = State::Code;
                }
                State::BlockComment | State::Literal(_) | State::TextBlock => {}
                State::Code if c == '/' && at(i, "/") => break,
                State::Code if c == '/' && at(i, "*") => {
                    i += 1;
                    state = State::BlockComment;
                }
                State::Code if c == '"' && at(i, "\"\"") => {
                    i += 2;
                    code.push('"');
                    state = State::TextBlock;
                }
                State::Code if c == '"' || c == '\'' => {
                    code.push(c);
                    state = State::Literal(c);
                }
                State::Code => code.push(c),
            }
        }
        // A string or character literal ends on its line (Java has no
        // line continuation inside one): an unclosed one is broken code.
        if let State::Literal(_) = state {
            state = State::Code;
        }
        let code = code.trim();
        if !code.is_empty() {
            lines.push(CodeLine {
                indent: crate::text::indent_width(&indentation),
                tabs: indentation.contains('\t'),
                spaces: indentation.contains(' '),
                code: code.to_string(),
            });
        }
    }
    (lines, state != State::Code)
}

/// Indentation cannot be compared across `lines` that mix tabs and spaces
/// (a tab's width is the editor's).
fn mixed(lines: &[CodeLine]) -> bool {
    lines.iter().any(|l| l.tabs) && lines.iter().any(|l| l.spaces)
}

/// Whether `text`, inserted between `prefix` and `suffix` (which start and
/// end at line boundaries or anywhere: the cursor's line is read whole),
/// keeps Java's blocks as the indentation shows them, within itself and
/// with the first line of code below. True where it cannot be told: the
/// code before ends inside a comment or string, the answer ends inside
/// one, or the lines mix tabs and spaces.
pub fn brace_indentation_fits(prefix: &str, text: &str, suffix: &str) -> bool {
    let (before, line_start, line_end, after) = super::indentation::split_lines(prefix, suffix);
    if code_lines(before).1 {
        return true;
    }
    let (mut lines, open) = code_lines(&format!("{line_start}{text}{line_end}"));
    if open {
        return true;
    }
    if let Some(below) = code_lines(after).0.into_iter().next() {
        lines.push(below);
    }
    if mixed(&lines) {
        return true;
    }
    lines.windows(2).all(|pair| next_fits(&pair[0], &pair[1]))
}

/// `text` moved as a whole (its lines keeping their indentation relative
/// to each other) to the nearest indentation at which it fits
/// (`brace_line_indents`), where it does not fit where it is and the
/// cursor stands on a blank line: in Java indentation is layout only, so
/// the same code at another level is the same answer, shown where the
/// code around says it goes. (HumanEval-FIM Java, first 1,250 items: 14
/// exact answers were the right line a level off; dropped and asked again
/// at the right indentation, the model wrote something else.) `None`
/// where no indentation fits, or where tabs indent the line or the answer.
pub fn brace_reindented(prefix: &str, text: &str, suffix: &str) -> Option<String> {
    let (before, line_start, line_end, after) = super::indentation::split_lines(prefix, suffix);
    let first = text.split('\n').next().unwrap_or("");
    if !line_start.trim().is_empty()
        || !line_end.trim().is_empty()
        || first.trim().is_empty()
        || line_start.contains('\t')
        || text
            .lines()
            .any(|l| l.trim_start_matches(' ').starts_with('\t'))
    {
        return None;
    }
    let spaces = |l: &str| l.len() - l.trim_start_matches(' ').len();
    let at = line_start.len() + spaces(first);
    let mut targets = brace_line_indents(before, after);
    targets.retain(|&t| t >= line_start.len() && t != at);
    targets.sort_by_key(|&t| (t.abs_diff(at), t));
    targets.into_iter().find_map(|target| {
        // `at` counts the typed blanks too: the answer's own move by as much.
        let (moved, whole) = super::indentation::shift_lines(text, at, target);
        (whole && brace_indentation_fits(prefix, &moved, suffix)).then_some(moved)
    })
}

/// The kinds of line whose indentation a second try is steered to.
const KINDS: [&str; 3] = ["x();", "if (x) {", "}"];

/// The indentations (in spaces) at which a line of code on the cursor's
/// line fits between the last code line of `before` (up to the line's
/// start) and the first of `after` (from the next line): after a line that
/// opens a block, its body one step deeper (or its `}` at its level);
/// after a complete statement, its level (or a `}` closing a block around
/// it); each only where some line there keeps the line below fitting
/// (`next_fits`). Empty where it cannot be told: no code above, inside a
/// comment or string, tabs, or a line above that goes on (`if (x)` with no
/// brace, an open bracket).
pub fn brace_line_indents(before: &str, after: &str) -> Vec<usize> {
    let (above, open) = code_lines(before);
    let Some(last) = above.last().filter(|_| !open) else {
        return Vec::new();
    };
    let below = code_lines(after).0.into_iter().next();
    if above.iter().rev().take(50).any(|l| l.tabs) || below.as_ref().is_some_and(|b| b.tabs) {
        return Vec::new();
    }
    if !last.opens() && !last.complete() {
        return Vec::new();
    }
    let step = above
        .windows(2)
        .rev()
        .take(50)
        .map(|w| w[0].indent.abs_diff(w[1].indent))
        .filter(|&d| d > 0)
        .min()
        .unwrap_or(4);
    // (indentation, kind of line) that follow `last` as Java's blocks do.
    let mut placed: Vec<(usize, &str)> = Vec::new();
    if last.opens() {
        placed.extend([
            (last.indent + step, KINDS[0]),
            (last.indent + step, KINDS[1]),
        ]);
        placed.push((last.indent, KINDS[2]));
    } else {
        placed.extend([(last.indent, KINDS[0]), (last.indent, KINDS[1])]);
        let mut level = last.indent;
        while level >= step {
            level -= step;
            placed.push((level, KINDS[2]));
        }
    }
    let mut indents: Vec<usize> = placed
        .into_iter()
        .filter(|&(indent, kind)| {
            let line = CodeLine {
                indent,
                tabs: false,
                spaces: indent > 0,
                code: kind.to_string(),
            };
            below.as_ref().is_none_or(|b| next_fits(&line, b))
        })
        .map(|(indent, _)| indent)
        .collect();
    indents.sort_unstable();
    indents.dedup();
    indents
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` on a line of its own between `before` and the lines `after`.
    fn fits(before: &str, text: &str, after: &str) -> bool {
        brace_indentation_fits(before, text, &format!("\n{after}"))
    }

    const MODP: &str =
        "class A {\n    long modp(long n) {\n        if (n == 0) {\n            return 1;\n";

    #[test]
    fn an_opened_block_needs_a_deeper_line_or_its_brace_below() {
        // `} else {` where the `if`'s `}` was due: the line below is at the
        // `if`'s level, so the `else` block would have no body.
        let after = "        return n;\n    }\n}\n";
        assert!(!fits(MODP, "        } else {", after));
        assert!(fits(MODP, "        }", after));
        // An empty block closed right below, and a body below: fine.
        assert!(fits(MODP, "        } else {", "        }\n"));
        assert!(fits(MODP, "        } else {", "            return 2;\n"));
        // Inside the answer too.
        assert!(!fits(MODP, "        } else {\n        x = 1;", after));
    }

    #[test]
    fn no_deeper_line_after_a_complete_statement() {
        // The `if` that opens the deeper block below was due, not its end.
        let before = "class A {\n    void f() {\n        int d = 1;\n";
        let after = "            best = d;\n        }\n    }\n}\n";
        assert!(!fits(before, "    }", after));
        assert!(!fits(before, "        return;", after));
        assert!(fits(before, "        if (d > best) {", after));
        // A statement going on over lines is not complete.
        assert!(fits(
            before,
            "        for (int i = 0;",
            "             i < n; i++) {\n"
        ));
        assert!(fits(
            before,
            "        String s = \"a\" +",
            "            \"b;\";\n"
        ));
    }

    #[test]
    fn a_shallower_line_below_is_not_judged() {
        // Writing a block's body with its `}` still to type.
        let before = "class A {\n    void f() {\n        if (x) {\n            a();\n";
        assert!(fits(before, "            b();", "        return;\n"));
        assert!(fits(before, "        }", "        return;\n"));
    }

    #[test]
    fn comments_and_strings_are_not_code() {
        let after = "        return n;\n";
        assert!(fits(MODP, "        // } else {", after));
        assert!(!fits(MODP, "        } else { // other", after));
        assert!(fits(MODP, "        }", "        // {\n        return n;\n"));
        assert!(fits(MODP, "        String s = \"{\";", after));
        assert!(fits(MODP, "        char c = '{';", after));
        // Inside a block comment: nothing to tell.
        assert!(fits("class A {\n    /* note\n", "    } else {", after));
        // The line below after a Javadoc.
        assert!(!fits(
            MODP,
            "        } else {",
            "        /** x {\n         */\n        return n;\n"
        ));
    }

    #[test]
    fn mixed_tabs_and_spaces_are_not_judged() {
        assert!(fits(
            "class A {\n\tvoid f() {\n",
            "\t\t} else {",
            "        return;\n"
        ));
        assert!(!fits(
            "class A {\n\tvoid f() {\n",
            "\t\t} else {",
            "\t\treturn;\n"
        ));
    }

    #[test]
    fn the_cursors_line_counts_whole() {
        let prefix = format!("{MODP}        }} el");
        assert!(!brace_indentation_fits(
            &prefix,
            "se {",
            "\n        return n;\n"
        ));
        assert!(brace_indentation_fits(
            &prefix,
            "se {",
            "\n            return n;\n"
        ));
    }

    #[test]
    fn a_line_that_fits_one_level_off_is_moved_there() {
        let before = "class A {\n    void f(int x) {\n        if (x > 0) {\n";
        let after = "\n            x--;\n        }\n";
        let moved = |text: &str| brace_reindented(before, text, after);
        // The body of the `if`, written at the `if`'s own level.
        assert_eq!(moved("        x++;").as_deref(), Some("            x++;"));
        // Lines keep their indentation relative to each other.
        assert_eq!(
            moved("        if (x > 1) {\n            x++;\n        }").as_deref(),
            Some("            if (x > 1) {\n                x++;\n            }")
        );
        // Where it fits already, or nowhere: nothing moved.
        assert_eq!(moved("            x++;"), None);
        assert_eq!(moved("        } else {"), None);
        // Blanks typed on the line stay: the text may only move deeper.
        let typed = format!("{before}            ");
        assert_eq!(brace_reindented(&typed, "x++;", after), None);
        let typed = format!("{before}        ");
        assert_eq!(
            brace_reindented(&typed, "x++;", after).as_deref(),
            Some("    x++;")
        );
        // Tabs: nothing to tell.
        assert_eq!(moved("\tx++;"), None);
    }

    #[test]
    fn the_indentations_a_line_may_take() {
        // After a statement, the line below at the `if`'s level: a
        // statement at its level, or the `}` one level out.
        assert_eq!(brace_line_indents(MODP, "        return n;\n"), vec![8, 12]);
        // After an opening line, a deeper line below: the body.
        let before = "class A {\n    void f() {\n        while (n > 0) {\n";
        assert_eq!(brace_line_indents(before, "            n--;\n"), vec![12]);
        // ... or its `}` where the line below is at its level or closes.
        assert_eq!(brace_line_indents(before, "    }\n"), vec![8, 12]);
        // A deeper line below a statement: a line that opens its block.
        let before = "class A {\n    void f() {\n        int d = 1;\n";
        assert_eq!(
            brace_line_indents(before, "            best = d;\n"),
            vec![8]
        );
        // Nothing below: the statement's level or any `}` out of it.
        assert_eq!(brace_line_indents(before, ""), vec![0, 4, 8]);
        // Two-blank steps.
        let before = "class A {\n  void f() {\n    if (x) {\n";
        assert_eq!(brace_line_indents(before, "      y();\n"), vec![6]);
        // Nothing to tell: tabs, a header without a brace, no code above.
        assert!(brace_line_indents("class A {\n\tvoid f() {\n", "").is_empty());
        assert!(brace_line_indents("class A {\n    void f() {\n        if (x)\n", "").is_empty());
        assert!(brace_line_indents("// only a comment\n", "").is_empty());
    }
}
