//! Python's indentation rules for an answer between the lines around it.
//!
//! `clean::keep_valid_lines` drops an answer that adds syntax errors to the
//! code around it, counted by tree-sitter. Where that code is already
//! broken by its indentation (the user deleted a block's header, or is
//! about to write the body of one), an answer that leaves it broken adds
//! no error and passes: on HumanEval-FIM Python, 97 of 447 wrong answers
//! were lines no Python accepts there (`return out` right above a deeper
//! `break`, `elif x == 0.0:` right after `elif x > 0.0:`), and so were 12
//! of the "exact" ones, at another indentation. Python's own rules are
//! simple enough to check directly on logical lines: after a line that
//! opens a block comes a deeper one; after any other line, none deeper.
//!
//! Written by hand: tree-sitter recovers from these errors silently (the
//! error count does not change), and no crate checks Python indentation
//! without a full parser.

/// A logical line of Python: one or more physical lines joined by open
/// brackets or a trailing backslash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LogicalLine {
    /// Columns of its first physical line's indentation (a tab to the next
    /// multiple of 8, as Python counts).
    indent: usize,
    /// Its code ends with `:` (a comment after it aside): it opens a block.
    opens: bool,
}

/// Scans `text` from a line start, as Python's tokenizer would from a
/// point between statements: the complete logical lines with code (blank
/// and comment-only lines skipped), and whether the text ended inside one
/// (an open bracket or string, a backslash continuation).
fn logical_lines(text: &str) -> (Vec<LogicalLine>, bool) {
    let mut lines = Vec::new();
    let mut depth = 0usize;
    // The open string's quote, and whether it is triple.
    let mut quote: Option<(char, bool)> = None;
    // The logical line being read: its indentation, once its first
    // character of code is seen.
    let mut current: Option<usize> = None;
    let mut last_code = ' ';
    let mut continued = false;
    let mut column = 0usize;
    let mut at_line_start = true;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some((q, triple)) = quote {
            if c == '\\' {
                i += 2;
                continue;
            }
            if c == q {
                if !triple {
                    quote = None;
                } else if chars.get(i + 1) == Some(&q) && chars.get(i + 2) == Some(&q) {
                    quote = None;
                    i += 3;
                    last_code = q;
                    continue;
                }
            } else if c == '\n' && !triple {
                // An unclosed one-line string: not code we can read; end the
                // string at the line end so that one bad line stays one.
                quote = None;
            } else {
                i += 1;
                continue;
            }
            if c != '\n' {
                last_code = q;
                i += 1;
                continue;
            }
        }
        if at_line_start {
            match c {
                ' ' => {
                    column += 1;
                    i += 1;
                    continue;
                }
                '\t' => {
                    column = (column / 8 + 1) * 8;
                    i += 1;
                    continue;
                }
                _ => at_line_start = false,
            }
        }
        match c {
            '\n' => {
                if let Some(indent) = current {
                    if depth == 0 && !continued {
                        lines.push(LogicalLine {
                            indent,
                            opens: last_code == ':',
                        });
                        current = None;
                    }
                }
                continued = false;
                column = 0;
                at_line_start = true;
                i += 1;
                continue;
            }
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '\\' if chars.get(i + 1) == Some(&'\n') => {
                continued = true;
                i += 1;
                continue;
            }
            ' ' | '\t' | '\r' => {
                i += 1;
                continue;
            }
            _ => {}
        }
        if current.is_none() {
            current = Some(column);
        }
        continued = false;
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            '"' | '\'' => {
                let triple = chars.get(i + 1) == Some(&c) && chars.get(i + 2) == Some(&c);
                quote = Some((c, triple));
                if triple {
                    i += 3;
                    last_code = c;
                    continue;
                }
            }
            _ => {}
        }
        last_code = c;
        i += 1;
    }
    let open = depth > 0 || quote.is_some() || continued;
    if let (Some(indent), false) = (current, open) {
        lines.push(LogicalLine {
            indent,
            opens: last_code == ':',
        });
    }
    (lines, open)
}

/// Python's tokenizer over `lines`, as far as indentation goes: after a
/// line that opens a block, a deeper one; after any other, none deeper; a
/// dedent to a level of an enclosing block. Whether no line from index
/// `from` on breaks that. Lines before `from` are the code above, read
/// from a window that may start anywhere: their errors are taken as they
/// come (the user's code may be broken), and a dedent below the window's
/// first level is taken as a level of its own.
fn indentation_holds(lines: &[LogicalLine], from: usize) -> bool {
    levels_after(lines, from).is_some()
}

/// The indentation levels open after `lines` (the outermost first), or
/// `None` where a line from index `from` on breaks the rules
/// (`indentation_holds`).
fn levels_after(lines: &[LogicalLine], from: usize) -> Option<Vec<usize>> {
    let Some(first) = lines.first() else {
        return Some(Vec::new());
    };
    let mut levels = vec![first.indent];
    for (i, pair) in lines.windows(2).enumerate() {
        let (previous, line) = (pair[0], pair[1]);
        let judged = i + 1 >= from;
        let top = levels.last().copied().unwrap_or(0);
        if previous.opens || line.indent > top {
            // A block's body must be deeper; no other line may be.
            if judged && (previous.opens != (line.indent > top)) {
                return None;
            }
            if line.indent > top {
                levels.push(line.indent);
            }
            continue;
        }
        while levels.last().is_some_and(|&l| l > line.indent) {
            levels.pop();
        }
        match levels.last() {
            Some(&l) if l == line.indent => {}
            // The dedent meets no enclosing block.
            Some(_) if judged => return None,
            _ => levels.push(line.indent),
        }
    }
    Some(levels)
}

/// Lines of code below the answer that it must fit with (where some line
/// in its place could make them fit): a block's end shows only a few lines
/// down (`if not lst:` above a deeper `break` is deep enough for it, but
/// not for the line after `break`).
const LINES_BELOW: usize = 4;

/// The code around the cursor's line, as logical lines.
struct Around {
    /// The complete logical lines above the cursor's line.
    above: Vec<LogicalLine>,
    /// The first logical lines below it (at most `LINES_BELOW`), as far
    /// as some line in the cursor's line could make them fit.
    below: Vec<LogicalLine>,
}

impl Around {
    /// The code `before` the cursor's line and `after` it; `None` where the
    /// code above ends inside a bracket or string (the line continues it).
    fn new(before: &str, after: &str) -> Option<Around> {
        let (above, open) = logical_lines(before);
        if open {
            return None;
        }
        let mut below = logical_lines(after).0;
        below.truncate(LINES_BELOW);
        let fitting = fitting_below(&above, &below);
        below.truncate(fitting);
        Some(Around { above, below })
    }

    /// Whether the logical lines `answer` fit between the lines above and
    /// (where `to_below`) the lines below.
    fn fits(&self, answer: &[LogicalLine], to_below: bool) -> bool {
        let mut lines = self.above.clone();
        lines.extend(answer);
        if to_below {
            lines.extend(&self.below);
        }
        indentation_holds(&lines, self.above.len())
    }
}

/// How many of the lines `below` some line between them and `above` could
/// make fit.
fn fitting_below(above: &[LogicalLine], below: &[LogicalLine]) -> usize {
    let Some(first) = below.first() else {
        return 0;
    };
    (1..=below.len())
        .rev()
        .find(|&k| {
            (0..=first.indent + 1).any(|indent| {
                let mut hoped = above.to_vec();
                hoped.push(LogicalLine {
                    indent,
                    opens: indent < first.indent,
                });
                hoped.extend(&below[..k]);
                indentation_holds(&hoped, above.len())
            })
        })
        .unwrap_or(0)
}

/// `prefix` up to its last line start, and the text after it; `suffix` up
/// to its first line end, and the lines after it.
pub(super) fn split_lines<'a>(
    prefix: &'a str,
    suffix: &'a str,
) -> (&'a str, &'a str, &'a str, &'a str) {
    let (before, line_start) = match prefix.rfind('\n') {
        Some(i) => (&prefix[..=i], &prefix[i + 1..]),
        None => ("", prefix),
    };
    let (line_end, after) = match suffix.find('\n') {
        Some(i) => (&suffix[..i], &suffix[i + 1..]),
        None => (suffix, ""),
    };
    (before, line_start, line_end, after)
}

/// `text` with the leading spaces of each line that has text moved by
/// `to - from` (blank lines as they are), as far as the lines allow: up to
/// the first line with too few spaces to move left (its line ends kept),
/// and whether every line could move. Both languages' cleaning move an
/// answer that fits at another indentation (`pipeline::moved_to_fit`,
/// `brace_blocks::brace_reindented`).
pub(super) fn shift_lines(text: &str, from: usize, to: usize) -> (String, bool) {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if line.trim().is_empty() {
            out.push_str(line);
            continue;
        }
        let code = line.trim_start_matches(' ');
        match (line.len() - code.len() + to).checked_sub(from) {
            Some(blanks) => {
                out.extend(std::iter::repeat_n(' ', blanks));
                out.push_str(code);
            }
            None => return (out, false),
        }
    }
    (out, true)
}

/// Whether `text`, inserted between `prefix` and `suffix` (which start and
/// end at line boundaries or anywhere: the cursor's line is read whole),
/// keeps Python's indentation rules with the lines next to it and within
/// itself. True where it cannot be told: the code before the cursor's line
/// ends inside a bracket or string, or the answer ends inside one. The
/// lines below count only as far as some line in the answer's place could
/// make them fit: a line that dedents to no level of the code above is
/// broken whatever is written before it.
pub fn python_indentation_fits(prefix: &str, text: &str, suffix: &str) -> bool {
    let (before, line_start, line_end, after) = split_lines(prefix, suffix);
    let Some(around) = Around::new(before, after) else {
        return true;
    };
    let (answer, open) = logical_lines(&format!("{line_start}{text}{line_end}"));
    around.fits(&answer, !open)
}

/// The indentations (in spaces) at which a line of code on the cursor's
/// line fits the code around it, between `before` (up to the line's start)
/// and `after` (from the next line): the levels of the blocks open above
/// (and one level deeper where the line above opens a block) at which a
/// line, opening a block or not, fits. Empty where it cannot be told:
/// inside a bracket or string, or where the code above is indented with
/// tabs.
pub fn python_line_indents(before: &str, after: &str) -> Vec<usize> {
    let tabs = before
        .lines()
        .any(|l| l.trim_start_matches(' ').starts_with('\t'));
    let Some(around) = Around::new(before, after).filter(|_| !tabs) else {
        return Vec::new();
    };
    // Nothing is judged (all lines are above): the levels always come.
    let mut levels = levels_after(&around.above, around.above.len()).unwrap_or_default();
    if let Some(above) = around.above.last().filter(|l| l.opens) {
        let step = levels
            .windows(2)
            .map(|w| w[1] - w[0])
            .filter(|&d| d > 0)
            .min()
            .unwrap_or(4);
        levels.push(above.indent + step);
    }
    levels.retain(|&indent| {
        [false, true]
            .into_iter()
            .any(|opens| around.fits(&[LogicalLine { indent, opens }], true))
    });
    levels.sort_unstable();
    levels.dedup();
    levels
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` on a line of its own between `before` and the lines `after`.
    fn fits(before: &str, text: &str, after: &str) -> bool {
        python_indentation_fits(before, text, &format!("\n{after}"))
    }

    #[test]
    fn a_block_opener_needs_a_deeper_line_after_it() {
        let before = "def f(x):\n    if x > 1:\n        y = 1\n    elif x > 0:\n";
        let after = "    else:\n        y = 3\n";
        assert!(fits(before, "        y = 2", after));
        assert!(!fits(before, "    elif x == 0:", after));
        // A header whose body is missing below it.
        assert!(!fits(
            "def f(x):\n    y = 1\n",
            "    if y:",
            "    return y\n"
        ));
        assert!(fits(
            "def f(x):\n    y = 1\n",
            "    if y:",
            "        return y\n"
        ));
    }

    #[test]
    fn a_deeper_line_below_needs_a_header_above_it() {
        let before = "def f(lst):\n    while lst:\n        out.append(lst.pop(0))\n";
        let after = "            break\n        out.append(lst.pop())\n    return out\n";
        assert!(!fits(before, "    return out", after));
        assert!(!fits(before, "        x = 1", after));
        assert!(fits(before, "        if not lst:", after));
        // A comment in between is not a line of code.
        let commented = "            # done\n            break\n";
        assert!(fits(before, "        if not lst:  # last", commented));
    }

    #[test]
    fn no_line_deeper_than_the_one_above_unless_it_opens_a_block() {
        let before = "def f():\n    x = 1\n";
        assert!(!fits(before, "        y = 2", "    return x\n"));
        assert!(fits(before, "    y = 2", "    return x\n"));
        assert!(fits(before, "    y = 2", ""));
    }

    #[test]
    fn brackets_strings_and_continuations_make_one_logical_line() {
        // The header spans lines: its body is deeper than its first line.
        let before = "def f(a,\n      b):\n";
        assert!(fits(before, "    return a", ""));
        // The answer opens a bracket the suffix closes: nothing to tell.
        assert!(fits("x = 1\n", "y = {", "    1: 2,\n}\n"));
        // Inside a call spanning lines: any indentation.
        assert!(fits("foo(1,\n", "        2,", "    3)\n"));
        // A colon in a string or a comment opens nothing.
        assert!(fits("s = 'a:'\n", "t = 1", ""));
        assert!(fits("x = 1  # note:\n", "y = 2", ""));
        assert!(fits("s = \"\"\"a:\nb:\"\"\"\n", "t = 1", ""));
        assert!(fits("x = 1 + \\\n    2\n", "y = 3", ""));
        // A dict entry's colon is inside the bracket.
        assert!(fits("d = {\n    'a': 1,\n}\n", "e = 2", ""));
    }

    #[test]
    fn typed_text_and_the_rest_of_the_line_count_as_the_line() {
        let fits = python_indentation_fits;
        let before = "def f(x):\n    if x:\n        ";
        assert!(fits(before, "return 1", "\n    return 0\n"));
        let before = "def f(x):\n    ";
        assert!(fits(before, "if x", ":\n        return 1\n"));
        assert!(!fits(before, "if x", ":\n    return 1\n"));
    }

    #[test]
    fn a_dedent_must_meet_an_enclosing_block() {
        let before = "def f(lst):\n    while lst:\n        out.append(lst.pop(0))\n";
        let after = "            break\n        out.append(lst.pop())\n";
        // Deeper than `while` is not enough: `break`'s block must end at
        // the level of `out.append` below.
        assert!(!fits(before, "    if not lst:", after));
        assert!(fits(before, "    if not lst:", &after[..18]));
        assert!(fits(before, "        if not lst:", after));
        let before = "def f(x):\n    if x:\n        if x > 1:\n            y = 1\n";
        assert!(!fits(before, "      y = 2", ""));
        assert!(fits(before, "    y = 2", ""));
        assert!(fits(before, "y = 2", ""));
    }

    #[test]
    fn a_line_below_that_nothing_could_fit_is_not_held_against_the_answer() {
        // `b` is deeper than a line that opens nothing: broken whatever
        // comes before it; `a` still counts.
        let before = "def f(x):\n    y = 1\n";
        let after = "    a = 1\n        b = 2\n";
        assert!(fits(before, "    w = 2", after));
        assert!(!fits(before, "    if w:", after));
        // Code above that is already broken does not count either.
        let before = "def f(x):\n    y = 1\n        z = 2\n";
        assert!(fits(before, "    w = 3", ""));
    }

    #[test]
    fn the_indentations_a_line_may_take_are_the_levels_that_fit() {
        let indents = |before: &str, after: &str| python_line_indents(before, after);
        let before = "def f(lst):\n    while lst:\n        out.append(lst.pop(0))\n";
        // Any level of the blocks above, where nothing below constrains.
        assert_eq!(indents(before, ""), vec![0, 4, 8]);
        assert_eq!(indents(before, "    return out\n"), vec![0, 4, 8]);
        // A deeper line below: a header whose block ends where `out` is.
        let after = "            break\n        out.append(lst.pop())\n";
        assert_eq!(indents(before, after), vec![8]);
        // After a header: its body, one step deeper.
        let before = "def f(x):\n    if x:\n";
        assert_eq!(indents(before, "    return 0\n"), vec![8]);
        let before = "def f(x):\n  if x:\n";
        assert_eq!(indents(before, ""), vec![4]);
        // Tabs, or inside brackets: nothing to tell.
        assert!(indents("def f(x):\n\tif x:\n", "").is_empty());
        assert!(indents("foo(1,\n", "    2)\n").is_empty());
    }

    #[test]
    fn multi_line_answers_are_checked_within() {
        let before = "def f(x):\n";
        assert!(fits(
            before,
            "    if x:\n        return 1\n    return 0",
            ""
        ));
        assert!(!fits(before, "    if x:\n    return 1", ""));
    }
}
