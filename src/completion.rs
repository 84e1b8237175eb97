//! What to ask the model at a cursor, when to stop it, and how to clean its
//! answer: the pure part of the completion pipeline, shared by the server
//! and the headless `complete` command.

use ropey::Rope;

use crate::config::{Config, Multiline};
use crate::engine::EngineRequest;

/// Characters of text taken on each side of the cursor before token
/// budgeting; bounds the tokenizer's work on huge files.
const MAX_SIDE_CHARS: usize = 32 * 1024;

/// The text around a cursor, and the shape of the answer wanted there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorContext {
    pub prefix: String,
    pub suffix: String,
    /// Text of the cursor's line before and after the cursor.
    pub line_prefix: String,
    pub line_suffix: String,
    pub stop: StopRule,
}

/// When generation ends, decided on the text generated so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopRule {
    pub multiline: bool,
    pub max_lines: usize,
    /// In multi-line mode, a later line indented less than this ends the
    /// suggestion: it belongs to an enclosing block the user already has.
    pub min_indent: usize,
}

impl StopRule {
    /// Byte length to keep if generation must stop now, `None` to go on.
    pub fn cut(&self, text: &str) -> Option<usize> {
        let mut line_start = 0;
        let mut lines = 0;
        for (i, _) in text.match_indices('\n') {
            let line = &text[line_start..i];
            if lines > 0 && !line.trim().is_empty() && indent_width(line) < self.min_indent {
                return Some(line_start.saturating_sub(1));
            }
            lines += 1;
            let content_so_far = !text[..i].trim().is_empty();
            if !self.multiline && content_so_far {
                return Some(i);
            }
            if lines >= self.max_lines {
                return Some(i);
            }
            line_start = i + 1;
        }
        None
    }
}

fn indent_width(line: &str) -> usize {
    line.chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .map(|c| if c == '\t' { 4 } else { 1 })
        .sum()
}

/// Splits the document at `cursor` (a char index) and decides the answer's shape.
pub fn cursor_context(text: &Rope, cursor: usize, config: &Config) -> CursorContext {
    let cursor = cursor.min(text.len_chars());
    let start = cursor.saturating_sub(MAX_SIDE_CHARS);
    let end = (cursor + MAX_SIDE_CHARS).min(text.len_chars());
    let prefix = text.slice(start..cursor).to_string();
    let suffix = text.slice(cursor..end).to_string();

    let line_prefix = prefix.rsplit(['\n', '\r']).next().unwrap_or("").to_string();
    let line_suffix = suffix.split(['\n', '\r']).next().unwrap_or("").to_string();

    let opens_block = {
        let t = line_prefix.trim_end();
        t.ends_with(':') || t.ends_with('{')
    };
    let blank_line = line_prefix.trim().is_empty();
    let multiline = match config.completion.multiline {
        Multiline::Always => true,
        Multiline::Never => false,
        Multiline::Auto => line_suffix.trim().is_empty() && (blank_line || opens_block),
    };
    let min_indent = if blank_line {
        indent_width(&line_prefix)
    } else {
        indent_width(&line_prefix) + usize::from(opens_block)
    };
    CursorContext {
        prefix,
        suffix,
        line_prefix,
        line_suffix,
        stop: StopRule {
            multiline,
            max_lines: if multiline {
                config.completion.max_lines as usize
            } else {
                1
            },
            min_indent,
        },
    }
}

impl CursorContext {
    pub fn engine_request(&self, config: &Config) -> EngineRequest {
        EngineRequest {
            prefix: self.prefix.clone(),
            suffix: self.suffix.clone(),
            prompt_budget: config.completion.prompt_tokens as usize,
            max_tokens: config.completion.max_tokens as usize,
            stop: self.stop,
            context: None,
        }
    }

    /// Cleans a raw model answer into the text to insert at the cursor.
    pub fn finish(&self, raw: &str) -> String {
        // The last line counts as complete too: the model has finished.
        let mut text = match self.stop.cut(&format!("{raw}\n")) {
            Some(n) => &raw[..n.min(raw.len())],
            None => raw,
        };
        text = text.trim_end();
        if let Some(n) = self.repeats_following_line(text) {
            text = text[..n].trim_end();
        }
        let mut out = text.to_string();
        // Characters the line already has right of the cursor (closing
        // brackets, quotes) must not be inserted a second time.
        let rest = self.line_suffix.trim_end();
        if !rest.is_empty() && !out.contains('\n') && out.ends_with(rest) {
            out.truncate(out.len() - rest.len());
        }
        if out.trim().is_empty() {
            String::new()
        } else {
            out
        }
    }

    /// Byte offset of the first generated line (after the first) that equals
    /// the next non-blank line after the cursor line: the model is re-typing
    /// code that already follows.
    fn repeats_following_line(&self, text: &str) -> Option<usize> {
        let next = self
            .suffix
            .split('\n')
            .skip(1)
            .map(str::trim)
            .find(|l| !l.is_empty())?;
        let mut offset: usize = 0;
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 && line.trim() == next {
                return Some(offset.saturating_sub(1));
            }
            offset += line.len() + 1;
        }
        None
    }
}

/// The suggestion last shown for a document, kept so that typing through
/// it is answered without the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownSuggestion {
    pub uri: String,
    pub prefix: String,
    pub suffix: String,
    pub text: String,
}

impl ShownSuggestion {
    /// The rest of the suggestion if, since it was shown, the user typed
    /// exactly its start and nothing else changed.
    pub fn rest_after_typing(&self, uri: &str, ctx: &CursorContext) -> Option<String> {
        if uri != self.uri || ctx.suffix != self.suffix {
            return None;
        }
        let typed = ctx.prefix.strip_prefix(&self.prefix)?;
        let rest = self.text.strip_prefix(typed)?;
        (!rest.trim().is_empty()).then(|| rest.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(before: &str, after: &str) -> CursorContext {
        let text = format!("{before}{after}");
        let rope = Rope::from_str(&text);
        cursor_context(&rope, before.chars().count(), &Config::default())
    }

    #[test]
    fn blank_indented_line_asks_for_a_block() {
        let c = ctx("def f(n):\n    ", "\n");
        assert!(c.stop.multiline);
        assert_eq!(c.stop.min_indent, 4);
        assert_eq!(c.line_prefix, "    ");
    }

    #[test]
    fn text_before_cursor_asks_for_one_line() {
        let c = ctx("    return fib", "\n");
        assert!(!c.stop.multiline);
        assert_eq!(c.stop.cut("(n - 1)\n    x = 1"), Some(7));
        assert_eq!(c.finish("(n - 1)\n    x = 1"), "(n - 1)");
    }

    #[test]
    fn stops_at_dedent_below_the_block() {
        let c = ctx("def f(n):\n    ", "");
        let raw = "if n < 2:\n        return n\n    return f(n - 1)\n\ndef g():\n    pass\n";
        assert_eq!(
            c.finish(raw),
            "if n < 2:\n        return n\n    return f(n - 1)"
        );
    }

    #[test]
    fn after_block_opener_the_body_must_be_deeper() {
        let c = ctx("class A {\n    int f() {", "\n    }\n}");
        assert!(c.stop.multiline);
        assert_eq!(c.stop.min_indent, 5);
        let raw = "\n        return 1;\n    }\n";
        assert_eq!(c.finish(raw), "\n        return 1;");
    }

    #[test]
    fn drops_closing_text_the_line_already_has() {
        let c = ctx("print(foo(", "))\n");
        assert_eq!(c.finish("1, 2))"), "1, 2");
    }

    #[test]
    fn drops_repeat_of_the_following_line() {
        let c = ctx("def f(n):\n    ", "\n    return total\n");
        assert_eq!(
            c.finish("total = sum(n)\n    return total\n"),
            "total = sum(n)"
        );
    }

    #[test]
    fn typing_through_a_suggestion_keeps_its_rest() {
        let shown = ShownSuggestion {
            uri: "u".into(),
            prefix: "    return ".into(),
            suffix: "\n".into(),
            text: "fibonacci(n - 1) + fibonacci(n - 2)".into(),
        };
        let typed = ctx("    return fib", "\n");
        assert_eq!(
            shown.rest_after_typing("u", &typed).as_deref(),
            Some("onacci(n - 1) + fibonacci(n - 2)")
        );
        assert_eq!(shown.rest_after_typing("v", &typed), None);
        assert_eq!(
            shown.rest_after_typing("u", &ctx("    return fix", "\n")),
            None
        );
        assert_eq!(
            shown.rest_after_typing("u", &ctx("    return fib", "\nx")),
            None
        );
        let all = ctx("    return fibonacci(n - 1) + fibonacci(n - 2)", "\n");
        assert_eq!(shown.rest_after_typing("u", &all), None);
    }

    #[test]
    fn whitespace_only_answer_is_empty() {
        assert_eq!(ctx("x = ", "").finish("  \n"), "");
    }
}
