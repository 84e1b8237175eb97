//! Where the cursor stands on the line an evaluation blanks: at its start
//! (after the indentation, nothing of the line typed: what the evaluations
//! measured first) or inside it, with its start typed (where users type
//! most).
//!
//! The mid-line split is deterministic: the line's first token (a run of
//! letters, digits and `_`, else a run of other non-blank characters) and
//! the blanks after it are typed; the rest of the line is what the model
//! must complete. Where that leaves nothing (`}`, `});`, `pass`), the first
//! half of the line's code (in characters, rounded down) is typed instead.
//! A line of one character cannot be split: mid-line evaluations leave it out.
//!
//! `return sorted(x)` → `return ` | `sorted(x)`;
//! `self.x = y` → `self` | `.x = y`; `});` → `}` | `);`.

use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cursor {
    /// At the line's start, after its indentation.
    #[default]
    LineStart,
    /// Inside the line, its start typed (see the module's documentation).
    MidLine,
}

impl FromStr for Cursor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "line-start" => Ok(Cursor::LineStart),
            "mid-line" => Ok(Cursor::MidLine),
            other => Err(format!("unknown cursor `{other}`; line-start or mid-line")),
        }
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Cursor::LineStart => "line-start",
            Cursor::MidLine => "mid-line",
        })
    }
}

fn word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The byte length of the part of `code` (a line without its indentation
/// or line end) typed before the cursor in mid-line mode; `None` where the
/// line cannot be split (under two characters of code).
pub fn typed_len(code: &str) -> Option<usize> {
    let code = code.trim_end();
    let first = code.chars().next()?;
    let token_end = code
        .char_indices()
        .find(|&(_, c)| c.is_whitespace() || word(c) != word(first))
        .map_or(code.len(), |(i, _)| i);
    let typed = token_end + code[token_end..].len() - code[token_end..].trim_start().len();
    if typed < code.len() {
        return Some(typed);
    }
    let chars = code.chars().count();
    if chars < 2 {
        return None;
    }
    code.char_indices().nth(chars / 2).map(|(i, _)| i)
}

/// `line` (its indentation, code and possibly a line end) cut where the
/// cursor stands: (indentation and the typed part, the rest to complete).
/// At the line start nothing is typed.
pub fn split_line(line: &str, cursor: Cursor) -> Option<(&str, &str)> {
    let indent = line.len() - line.trim_start().len();
    let at = match cursor {
        Cursor::LineStart => indent,
        Cursor::MidLine => indent + typed_len(&line[indent..])?,
    };
    Some((&line[..at], &line[at..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mid(line: &str) -> Option<(&str, &str)> {
        split_line(line, Cursor::MidLine)
    }

    #[test]
    fn mid_line_splits() {
        assert_eq!(
            mid("    return sorted(x)"),
            Some(("    return ", "sorted(x)"))
        );
        assert_eq!(mid("self.x = y"), Some(("self", ".x = y")));
        assert_eq!(mid("  x = 1\n"), Some(("  x ", "= 1\n")));
        assert_eq!(mid("        });"), Some(("        }", ");")));
        assert_eq!(mid("    pass"), Some(("    pa", "ss")));
        assert_eq!(mid("    }"), None);
        assert_eq!(mid(""), None);
        assert_eq!(mid("    größe = 1"), Some(("    größe ", "= 1")));
        assert_eq!(mid("    ab"), Some(("    a", "b")));
        assert_eq!(
            split_line("    return x", Cursor::LineStart),
            Some(("    ", "return x"))
        );
        assert_eq!("mid-line".parse::<Cursor>(), Ok(Cursor::MidLine));
        assert!("middle".parse::<Cursor>().is_err());
    }
}
