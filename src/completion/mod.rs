//! What to ask the model at a cursor, when to stop it, and how to clean its
//! answer: the pure part of the completion pipeline, shared by the server,
//! the headless `complete` command and `eval`.

pub mod brace_blocks;
pub mod clean;
pub mod indentation;
pub mod pipeline;
pub mod trigger;

use ropey::Rope;

use crate::config::{Config, Multiline};
use crate::engine::{EngineRequest, StopRule};
use crate::text::indent_width;
use crate::text::syntax::{Language, SyntaxTree};
use trigger::{Scope, Skip};

/// Characters on each side of the cursor parsed again by the syntax check:
/// enough for the enclosing definitions, cheap to parse several times.
const SYNTAX_WINDOW_CHARS: usize = 8 * 1024;

/// Characters of text taken on each side of the cursor before token
/// budgeting; bounds the tokenizer's work on huge files.
const MAX_SIDE_CHARS: usize = 32 * 1024;

/// Granularity of the prefix window's start, in characters.
const WINDOW_STEP: usize = 4 * 1024;

/// The text around a cursor, and the shape of the answer wanted there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorContext {
    pub prefix: String,
    pub suffix: String,
    /// Char index in the document where `prefix` starts.
    pub prefix_start: usize,
    /// Text of the cursor's line before and after the cursor.
    pub line_prefix: String,
    pub line_suffix: String,
    pub stop: StopRule,
    /// The document's language, when it has a grammar.
    pub language: Option<Language>,
    /// Comment, string or code at the cursor (code without a grammar).
    pub scope: Scope,
    /// Byte offset in `prefix` of the line where the function or method
    /// around the cursor starts (its comments, decorators and annotations
    /// included; outside any, the statement or class member around the
    /// cursor), when it starts in the prefix before the cursor's line.
    pub definition_start: Option<usize>,
}

/// What a second request asks, where the first answer was dropped whole
/// on a blank line of code (`CursorContext::second_try`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecondTry {
    /// Not to start as this line did (the dropped answer's first line).
    Avoid(String),
    /// Text on the cursor's line: the first answer was blanks only.
    TextOnTheLine,
}

/// Why `CursorContext::finish` left nothing of an answer: the step that
/// emptied it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dropped {
    /// The model ended at once, or gave only blanks.
    ModelGaveNothing,
    /// The answer began with a Markdown code fence.
    CodeFence,
    /// The answer began with a copy of a cross-file snippet's header.
    ContextHeader,
    /// The stop rule left no text: the answer's first text was on a line
    /// less indented than the cursor's block, or past the line limit.
    StopRule,
    /// After blank lines, it re-typed the code that follows the cursor.
    RepeatsSuffix,
    /// The answer was only what the cursor's line already has after it.
    RestOfLine,
    /// Every line of it added a syntax error.
    BreaksSyntax,
    /// It made the cursor's line the line that already follows.
    RepeatsNextLine,
    /// A second try's line was a number alone (junk a start rule forced).
    BareNumber,
}

impl Dropped {
    pub fn describe(self) -> &'static str {
        match self {
            Dropped::ModelGaveNothing => "the model gave nothing",
            Dropped::CodeFence => "a code fence first",
            Dropped::ContextHeader => "a snippet header first",
            Dropped::StopRule => "outside the cursor's block",
            Dropped::RepeatsSuffix => "blank lines, then the code after the cursor",
            Dropped::RestOfLine => "only the rest of the line",
            Dropped::BreaksSyntax => "every line breaks the syntax",
            Dropped::RepeatsNextLine => "repeats the next line",
            Dropped::BareNumber => "a number alone",
        }
    }
}

/// Splits the document at `cursor` (a char index) and decides the answer's
/// shape; `syntax` is the document's current tree, if it has a grammar.
pub fn cursor_context(
    text: &Rope,
    syntax: Option<&SyntaxTree>,
    cursor: usize,
    config: &Config,
) -> CursorContext {
    let cursor = cursor.min(text.len_chars());
    let scope = syntax
        .map(|st| trigger::scope_at(st, text, text.char_to_byte(cursor)))
        .unwrap_or(Scope::Code);
    // The prefix window starts at a multiple of `WINDOW_STEP`, not at a
    // fixed distance from the cursor: typing must not slide it (a changed
    // prefix start defeats typed-through reuse, the result cache and the
    // KV cache). The suffix window needs no such care: typing inserts
    // before it, so its content stays the same.
    let start = cursor.saturating_sub(MAX_SIDE_CHARS) / WINDOW_STEP * WINDOW_STEP;
    let end = (cursor + MAX_SIDE_CHARS).min(text.len_chars());
    let prefix = text.slice(start..cursor).to_string();
    let suffix = text.slice(cursor..end).to_string();
    let definition_start = syntax.and_then(|st| {
        let from = text.char_to_byte(start);
        let d = enclosing_definition(st, text.char_to_byte(cursor))?.checked_sub(from)?;
        // `get` and not an index: a tree out of step with the text must
        // cost the placement, never the request.
        let d = with_leading_comments(&prefix, prefix.get(..d)?.len());
        (d < prefix.rfind('\n')? + 1).then_some(d)
    });

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
        prefix_start: start,
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
        language: syntax.map(SyntaxTree::language),
        scope,
        definition_start,
    }
}

/// Start byte of the innermost function or method around byte `cursor`
/// (a Python definition with its decorators); outside any, of the
/// innermost statement or member of a module or class body around it (a
/// module-level table, a field, a static block). `None` for a cursor
/// between them.
fn enclosing_definition(syntax: &SyntaxTree, cursor: usize) -> Option<usize> {
    let tree = syntax.tree()?;
    let mut node = tree
        .root_node()
        .descendant_for_byte_range(cursor.saturating_sub(1), cursor)?;
    // The innermost statement or member of a module or class body seen
    // on the way up; `Some(None)` when it is a class (the cursor is
    // between its members, not in one).
    let mut member = None;
    loop {
        match node.kind() {
            "function_definition" => {
                return Some(match node.parent() {
                    Some(p) if p.kind() == "decorated_definition" => p.start_byte(),
                    _ => node.start_byte(),
                })
            }
            "method_declaration"
            | "constructor_declaration"
            | "compact_constructor_declaration" => return Some(node.start_byte()),
            _ => {}
        }
        let parent = node.parent();
        if member.is_none() && parent.is_some_and(|p| holds_members(&p)) {
            member = Some((!CLASS_KINDS.contains(&node.kind())).then(|| node.start_byte()));
        }
        match parent {
            Some(p) => node = p,
            None => return member.flatten(),
        }
    }
}

/// Classes (and their like) among the members of a module or class body:
/// a cursor in one of them but in none of its members is between members.
const CLASS_KINDS: &[&str] = &[
    "class_definition",
    "decorated_definition",
    "class_declaration",
    "interface_declaration",
    "enum_declaration",
    "record_declaration",
    "annotation_type_declaration",
];

/// A module, or the body of a class (Java: of a class, record, interface
/// or enum): a node whose children are top-level statements or members.
fn holds_members(node: &tree_sitter::Node) -> bool {
    match node.kind() {
        "module" | "program" | "class_body" | "interface_body" | "enum_body_declarations" => true,
        "block" => node
            .parent()
            .is_some_and(|p| p.kind() == "class_definition"),
        _ => false,
    }
}

/// The start of the line holding byte `d` of `text`, moved up over the
/// comment lines right above it (a doc comment belongs to its definition).
/// `d` must be a char boundary of `text`.
fn with_leading_comments(text: &str, d: usize) -> usize {
    let mut start = text[..d].rfind('\n').map_or(0, |i| i + 1);
    while start > 0 {
        let above = text[..start - 1].rfind('\n').map_or(0, |i| i + 1);
        let line = text[above..start - 1].trim_start();
        let comment = crate::engine::COMMENT_STARTS
            .iter()
            .any(|m| line.starts_with(m));
        if !comment {
            break;
        }
        start = above;
    }
    start
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
            time_budget: (config.completion.time_budget_ms > 0)
                .then(|| std::time::Duration::from_millis(config.completion.time_budget_ms)),
            shape: crate::prompt::Shape {
                cursor_line_after_middle: config.completion.cursor_line_after_middle,
                middle_from: None,
            },
            evaluate_only: false,
            move_cache: config.completion.move_cached_tokens,
            fresh: false,
            avoid: None,
            code_first: false,
            require_content: config.completion.answer_blank_lines && self.on_blank_line_of_code(),
            indent_to_type: self.indent_to_type(),
            indents: Vec::new(),
            definition_start: self.definition_start,
            document: None,
            draft_tokens: config.completion.draft_tokens as usize,
            candidates: config.completion.candidates as usize,
            alternatives_to_their_end: false,
            branch_at_near_ties: true,
        }
    }

    /// For an automatic request: why not to ask the model here, if so.
    pub fn automatic_skip(&self, config: &Config) -> Option<Skip> {
        trigger::automatic_skip(
            &self.scope,
            &self.line_prefix,
            &self.line_suffix,
            config.completion.in_comments_and_strings,
        )
    }

    /// Cleans a raw model answer into the text to insert at the cursor:
    /// the steps of `clean`, in order.
    pub fn finish(&self, raw: &str) -> String {
        self.finish_explained(raw).0
    }

    /// `finish`, with the step that left nothing of a non-empty answer,
    /// where one did (evaluations count why answers are empty).
    pub fn finish_explained(&self, raw: &str) -> (String, Option<Dropped>) {
        self.finish_cut(raw, false)
    }

    /// `finish_explained` for an answer that the time budget may have cut
    /// (`cut_by_time`): then it ended at a line end before the model was
    /// done, and a block's first line alone is kept where nothing else is
    /// valid (`clean::keep_valid_lines`); a model that ended there itself
    /// left the block open, which stays dropped.
    pub fn finish_cut(&self, raw: &str, cut_by_time: bool) -> (String, Option<Dropped>) {
        if raw.trim().is_empty() {
            return (String::new(), Some(Dropped::ModelGaveNothing));
        }
        let fenced = clean::cut_code_fence(raw);
        if fenced.trim().is_empty() {
            return (String::new(), Some(Dropped::CodeFence));
        }
        let raw = clean::cut_context_header(fenced);
        if raw.trim().is_empty() {
            return (String::new(), Some(Dropped::ContextHeader));
        }
        // The last line counts as complete too: the model has finished.
        let mut text = match self.stop.cut(&format!("{raw}\n")) {
            Some(n) => &raw[..n.min(raw.len())],
            None => raw,
        };
        if text.trim().is_empty() {
            return (String::new(), Some(Dropped::StopRule));
        }
        if let Scope::String { delimiter } = &self.scope {
            if delimiter.len() == 3 {
                text = clean::cut_after_string_close(text, delimiter);
            }
        }
        text = clean::cut_repeated_suffix_lines(text.trim_end(), &self.suffix);
        if text.trim().is_empty() {
            return (String::new(), Some(Dropped::RepeatsSuffix));
        }
        // Token boundary: after `return ` the model may still begin with a
        // space of its own; one is enough.
        if !self.stop.multiline
            && self.line_prefix.ends_with([' ', '\t'])
            && !self.line_prefix.trim().is_empty()
        {
            text = text.trim_start_matches([' ', '\t']);
        }
        let mut out = clean::trim_line_overlap(text, &self.line_prefix, &self.line_suffix);
        if out.trim().is_empty() {
            return (String::new(), Some(Dropped::RestOfLine));
        }
        if let (Some(language), Scope::Code) = (self.language, &self.scope) {
            out = clean::keep_valid_lines(
                language,
                tail_chars(&self.prefix, SYNTAX_WINDOW_CHARS),
                &out,
                head_chars(&self.suffix, SYNTAX_WINDOW_CHARS),
                cut_by_time,
            );
            if out.trim().is_empty() {
                return (String::new(), Some(Dropped::BreaksSyntax));
            }
            out = clean::cut_trailing_comments(
                language,
                tail_chars(&self.prefix, SYNTAX_WINDOW_CHARS),
                &out,
                head_chars(&self.suffix, SYNTAX_WINDOW_CHARS),
            );
        }
        if clean::repeats_next_line(&self.line_prefix, &out, &self.suffix) {
            (String::new(), Some(Dropped::RepeatsNextLine))
        } else {
            (out, None)
        }
    }

    /// The document char index of the definition around the cursor
    /// (`definition_start`, a byte offset in the prefix).
    pub fn definition_char(&self) -> Option<usize> {
        let d = self.definition_start?;
        Some(self.prefix_start + self.prefix.get(..d)?.chars().count())
    }

    /// Byte offset in `prefix` of the document's char index `at`, if the
    /// prefix holds it.
    pub fn prefix_offset(&self, at: usize) -> Option<usize> {
        let chars = at.checked_sub(self.prefix_start)?;
        match self.prefix.char_indices().nth(chars) {
            Some((i, _)) => Some(i),
            None => (self.prefix.chars().count() == chars).then_some(self.prefix.len()),
        }
    }

    /// The cursor is on a line of code with nothing else on it: the user
    /// opened it to write something there, so an answer is due
    /// (`EngineRequest::require_content`, `second_try`).
    pub fn on_blank_line_of_code(&self) -> bool {
        self.scope == Scope::Code
            && self.line_prefix.trim().is_empty()
            && self.line_suffix.trim().is_empty()
    }

    /// What a second request should ask, when `finish` dropped the whole
    /// of the first answer `raw` on a blank line of code. The user opened
    /// the line to write something, so an empty answer is no answer.
    /// Where the model wrote a line, it should not start with it: it was
    /// the line that already follows (a FIM model that takes the hole for
    /// empty goes on with the suffix) or a line that breaks the code, and
    /// its next choice is often the missing line. Where it wrote nothing
    /// but blanks (or ended at once), it should write text on the line
    /// (after the indentation still to type, if any). Where it wrote a
    /// comment alone, it should write code (the comment is kept where
    /// none comes). `None` where no second try is due.
    pub fn second_try(&self, raw: &str, finished: &str) -> Option<SecondTry> {
        if !self.on_blank_line_of_code() {
            return None;
        }
        if !finished.trim().is_empty() {
            // A comment alone: the model describes the next line instead of
            // writing it (HumanEval-FIM: 48 such answers, none right; a
            // Java class's closing brace at the file's end became `// Main
            // method for testing`). The line was opened for code; the
            // comment stays where no code comes instead.
            let first = finished.lines().map(str::trim).find(|l| !l.is_empty())?;
            return is_comment_only(finished).then(|| SecondTry::Avoid(first.to_string()));
        }
        let first_line = clean::cut_code_fence(raw)
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty());
        match first_line {
            Some(line) => Some(SecondTry::Avoid(line.to_string())),
            None if raw.trim().is_empty() => Some(SecondTry::TextOnTheLine),
            // A code fence alone: nothing to avoid, nothing to learn.
            None => None,
        }
    }

    /// The numbers of blanks still to type at which a line of code on
    /// the cursor's blank line fits the code around it, where that can be
    /// told (Python: `indentation::python_line_indents`; Java:
    /// `brace_blocks::brace_line_indents`), the ones at or past what is
    /// typed; empty elsewhere. A second try's text
    /// must start at one of them (`EngineRequest::indents`).
    pub fn indents_to_type(&self) -> Vec<usize> {
        if !self.on_blank_line_of_code() || self.line_prefix.contains('\t') {
            return Vec::new();
        }
        let (before, after) = self.around_the_line();
        let (before, after) = (
            tail_chars(before, SYNTAX_WINDOW_CHARS),
            head_chars(after, SYNTAX_WINDOW_CHARS),
        );
        let indents = match self.language {
            Some(Language::Python) => indentation::python_line_indents(before, after),
            Some(Language::Java) => brace_blocks::brace_line_indents(before, after),
            None => return Vec::new(),
        };
        indents
            .into_iter()
            .filter_map(|indent| indent.checked_sub(self.line_prefix.len()))
            .collect()
    }

    /// The text before the cursor's line (up to its start) and after it
    /// (from its end).
    fn around_the_line(&self) -> (&str, &str) {
        let before = self.prefix.len().saturating_sub(self.line_prefix.len());
        (
            self.prefix.get(..before).unwrap_or(""),
            self.suffix.get(self.line_suffix.len()..).unwrap_or(""),
        )
    }

    /// Blanks still to type before the cursor's line has the indentation
    /// its code needs, where the cursor stands on a blank line before it
    /// (`EngineRequest::indent_to_type`): the deeper of the line above's
    /// (one level more after a line that opens a block) and the line
    /// below's, less what is typed. In bytes, as the model writes them.
    pub fn indent_to_type(&self) -> usize {
        if !self.line_prefix.trim().is_empty() {
            return 0;
        }
        let leading = |l: &str| leading_blanks(l).len();
        let (before, after) = self.around_the_line();
        let above = before.lines().rev().find(|l| !l.trim().is_empty());
        let below = after.lines().find(|l| !l.trim().is_empty());
        let above_width = above.map_or(0, |l| {
            let more = if opens_indent(l.trim_end()) {
                indent_unit(l).len()
            } else {
                0
            };
            leading(l) + more
        });
        let below_width = below.map_or(0, leading);
        above_width
            .max(below_width)
            .saturating_sub(self.line_prefix.len())
    }

    /// What an editor inserts when Enter is pressed here, where the cursor
    /// ends a line of code: a line break and the new line's auto-indent
    /// (the line's own indentation, one level more after a line that
    /// opens a block or a bracket, one less after a statement that ends a
    /// Python block). `None` elsewhere. A line that ends in a comment
    /// counts: the line after it is code (where it is not, a comment or
    /// string going on, the suggestion there is not asked for).
    pub fn enter_here(&self) -> Option<String> {
        let line = self.line_prefix.trim();
        if line.is_empty() || !self.line_suffix.trim().is_empty() {
            return None;
        }
        let own = leading_blanks(&self.line_prefix);
        let level = indent_unit(own);
        let first_word = line
            .split(|c: char| !c.is_alphanumeric() && c != '_')
            .next()
            .unwrap_or("");
        if self.language == Some(Language::Python) && PYTHON_BLOCK_ENDS.contains(&first_word) {
            let fewer = own.strip_suffix(level)?;
            return Some(format!("\n{fewer}"));
        }
        let more = if opens_indent(line) { level } else { "" };
        Some(format!("\n{own}{more}"))
    }
}

/// Python statements after which editors (VS Code's and Neovim's Python
/// indentation rules) give the new line one level less.
const PYTHON_BLOCK_ENDS: [&str; 5] = ["return", "pass", "raise", "break", "continue"];

/// The blanks a line starts with.
fn leading_blanks(line: &str) -> &str {
    &line[..line.len() - line.trim_start_matches([' ', '\t']).len()]
}

/// One level of indentation as a line indented so writes it: a tab, else
/// four spaces.
fn indent_unit(line: &str) -> &'static str {
    if line.starts_with('\t') {
        "\t"
    } else {
        "    "
    }
}

/// Whether the line after a line ending so (trimmed) is indented one level
/// more: it opens a block or a bracket.
fn opens_indent(line: &str) -> bool {
    line.ends_with([':', '{', '(', '['])
}

/// Whether `text` has lines and all of them are comments (in Python or
/// Java: `engine::COMMENT_STARTS`): on a blank line of code, the model
/// describing the next line instead of writing it.
pub fn is_comment_only(text: &str) -> bool {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .peekable();
    lines.peek().is_some() && lines.all(|l| crate::engine::starts_comment(l.as_bytes()))
}

/// The last `n` chars of `s`, starting at a line start when there is one.
fn tail_chars(s: &str, n: usize) -> &str {
    let Some((start, _)) = s.char_indices().rev().nth(n) else {
        return s;
    };
    match s[start..].find('\n') {
        Some(nl) => &s[start + nl + 1..],
        None => &s[start..],
    }
}

/// The first `n` chars of `s`, ending at a line end when there is one.
fn head_chars(s: &str, n: usize) -> &str {
    let Some((end, _)) = s.char_indices().nth(n) else {
        return s;
    };
    match s[..end].rfind('\n') {
        Some(nl) => &s[..nl + 1],
        None => &s[..end],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(before: &str, after: &str) -> CursorContext {
        let text = format!("{before}{after}");
        let rope = Rope::from_str(&text);
        cursor_context(&rope, None, before.chars().count(), &Config::default())
    }

    #[test]
    fn finish_explained_names_the_step_that_emptied_an_answer() {
        let rope = Rope::from_str(
            "def f(m):\n    n = 1\n    \n    n += len(m)\n    for k in m:\n        n += k\n",
        );
        let syntax = SyntaxTree::new(Language::Python, &rope);
        let c = cursor_context(&rope, syntax.as_ref(), 24, &Config::default());
        let cause = |raw: &str| c.finish_explained(raw).1;
        assert_eq!(cause("  \n"), Some(Dropped::ModelGaveNothing));
        assert_eq!(cause("```\n"), Some(Dropped::CodeFence));
        assert_eq!(cause("# Path: src/a.py\n"), Some(Dropped::ContextHeader));
        assert_eq!(cause("n += len(m)\n"), Some(Dropped::RepeatsNextLine));
        assert_eq!(cause("n = (\n"), Some(Dropped::BreaksSyntax));
        assert_eq!(
            cause("\n\n    n += len(m)\n    for k in m:\n"),
            Some(Dropped::RepeatsSuffix)
        );
        // A kept answer has no cause, and is what `finish` gives.
        assert_eq!(c.finish_explained("n += 2"), ("n += 2".to_string(), None));
        assert_eq!(c.finish("n += 2"), "n += 2");
        // Only the rest of the line: the model re-typed what follows.
        let c = ctx("def f(m):\n    return m", "[0]\n");
        assert_eq!(c.finish_explained("[0]").1, Some(Dropped::RestOfLine));
    }

    #[test]
    fn a_dropped_answer_on_a_blank_line_gets_a_second_try() {
        let rope = Rope::from_str(
            "def f(m):\n    n = 1\n    \n    n += len(m)\n    for k in m:\n        n += k\n",
        );
        let syntax = SyntaxTree::new(Language::Python, &rope);
        let c = cursor_context(&rope, syntax.as_ref(), 24, &Config::default());
        assert_eq!(c.line_prefix, "    ");
        // The model's first choice repeats the next line: dropped.
        let raw = "n += len(m)\n";
        assert_eq!(c.finish(raw), "");
        assert_eq!(
            c.second_try(raw, ""),
            Some(SecondTry::Avoid("n += len(m)".into()))
        );
        // A kept answer needs no second try; blanks alone ask for text.
        assert_eq!(c.second_try("n = 2", "n = 2"), None);
        // A comment alone asks for code (a comment above code needs nothing).
        let comment = "# Add the lengths\n";
        assert_eq!(c.finish(comment), "# Add the lengths");
        assert_eq!(
            c.second_try(comment, "# Add the lengths"),
            Some(SecondTry::Avoid("# Add the lengths".into()))
        );
        assert_eq!(c.second_try("# Add\nn = 2", "# Add\nn = 2"), None);
        assert_eq!(c.second_try("\n", ""), Some(SecondTry::TextOnTheLine));
        assert_eq!(c.second_try("", ""), Some(SecondTry::TextOnTheLine));
        assert_eq!(c.second_try("```\n", ""), None);
        // Not where the line has text, nor in a comment.
        let c = ctx("def f(m):\n    n = ", "\n    for k in m:\n");
        assert_eq!(c.second_try("for k in m:", ""), None);
        let rope = Rope::from_str("def f(m):\n    \"\"\"\n    \n    \"\"\"\n    return m\n");
        let syntax = SyntaxTree::new(Language::Python, &rope);
        let c = cursor_context(&rope, syntax.as_ref(), 22, &Config::default());
        assert_eq!(c.line_prefix, "    ");
        assert!(matches!(c.scope, Scope::String { .. }));
        assert_eq!(c.second_try("return m", ""), None);
    }

    #[test]
    fn the_indentation_to_type_is_what_the_lines_around_need_less_what_is_typed() {
        // Column 0 inside a body: the line below's indentation.
        let c = ctx("def f(m):\n    n = 1\n", "\n    return n\n");
        assert_eq!(c.indent_to_type(), 4);
        // After a block's opener: one level deeper than it.
        let c = ctx("def f(m):\n    for k in m:\n", "\n    return n\n");
        assert_eq!(c.indent_to_type(), 8);
        let c = ctx("class A {\n\tvoid f() {\n\t", "\n\t}\n}\n");
        assert_eq!(c.indent_to_type(), 1);
        // Typed already: nothing left.
        let c = ctx("def f(m):\n    n = 1\n    ", "\n    return n\n");
        assert_eq!(c.indent_to_type(), 0);
        // Not a blank line.
        let c = ctx("def f(m):\n    n = ", "\n    return n\n");
        assert_eq!(c.indent_to_type(), 0);
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

    fn definition_line(ctx: &CursorContext) -> Option<&str> {
        ctx.definition_start
            .map(|d| ctx.prefix[d..].lines().next().unwrap_or(""))
    }

    #[test]
    fn the_definition_around_the_cursor_starts_at_its_comments_and_decorators() {
        let py = |before: &str, after: &str| {
            let text = Rope::from_str(&format!("{before}{after}"));
            let tree = SyntaxTree::new(Language::Python, &text);
            cursor_context(
                &text,
                tree.as_ref(),
                before.chars().count(),
                &Config::default(),
            )
        };
        let c = py(
            "import os\n\nclass A:\n    # why\n    @property\n    def f(self):\n        x = 1\n        ",
            "\n        return x\n",
        );
        assert_eq!(definition_line(&c), Some("    # why"));
        // On the definition's own line, or between definitions: none.
        assert_eq!(py("def f(", "):\n    pass\n").definition_start, None);
        assert_eq!(py("import os\n\n", "\nx = 1\n").definition_start, None);
        // Outside any function: the statement or class member around it.
        let c = py("import os\n\nMAP = {\n    1: 2,\n    ", "\n}\n");
        assert_eq!(definition_line(&c), Some("MAP = {"));
        let c = py(
            "class A:\n    x = 1\n    T = {\n        1: 2,\n        ",
            "\n    }\n",
        );
        assert_eq!(definition_line(&c), Some("    T = {"));
        // Java: the cursor right after `at` in `text`.
        let java = |text: &str, at: &str| {
            let text = Rope::from_str(text);
            let tree = SyntaxTree::new(Language::Java, &text);
            let cursor = text.to_string().find(at).map(|i| i + at.len());
            let c = cursor_context(
                &text,
                tree.as_ref(),
                cursor.unwrap_or(0),
                &Config::default(),
            );
            definition_line(&c).map(str::to_string)
        };
        let method = "class A {\n  int y;\n  /**\n   * Doc.\n   */\n  @Override\n  public int f() {\n    int x = 1;\n    \n  }\n}\n";
        assert_eq!(java(method, "int x = 1;\n    ").as_deref(), Some("  /**"));
        let block = "class A {\n  static {\n    m.put(1, 2);\n    \n  }\n}\n";
        assert_eq!(
            java(block, "m.put(1, 2);\n    ").as_deref(),
            Some("  static {")
        );
        // A record's compact constructor; an enum's and an interface's members.
        let record = "record R(int a) {\n  // Checks.\n  R {\n    check(a);\n    \n  }\n}\n";
        assert_eq!(
            java(record, "check(a);\n    ").as_deref(),
            Some("  // Checks.")
        );
        let en = "enum E {\n  A, B;\n  static final Map<String, E> BY = Map.of(\n    \"a\", A,\n    \n  );\n}\n";
        assert_eq!(
            java(en, "A,\n    ").as_deref(),
            Some("  static final Map<String, E> BY = Map.of(")
        );
        let it = "interface I {\n  int X = 1;\n  String[] NAMES = {\n    \"a\",\n    \n  };\n}\n";
        assert_eq!(
            java(it, "\"a\",\n    ").as_deref(),
            Some("  String[] NAMES = {")
        );
        // Between an interface's members: none (the interface is no member).
        assert_eq!(java(it, "int X = 1;\n"), None);
    }

    fn py(before: &str, after: &str) -> CursorContext {
        let rope = Rope::from_str(&format!("{before}{after}"));
        let st = SyntaxTree::new(Language::Python, &rope).unwrap();
        cursor_context(&rope, Some(&st), before.chars().count(), &Config::default())
    }

    #[test]
    fn enter_here_is_the_editors_auto_indent_at_a_line_end_of_code() {
        let enter = |before: &str, after: &str| py(before, after).enter_here();
        assert_eq!(
            enter("def f(n):", "\n    return n\n").as_deref(),
            Some("\n    ")
        );
        assert_eq!(
            enter("def f(n):\n    m = n", "\n").as_deref(),
            Some("\n    ")
        );
        assert_eq!(
            enter("def f(n):\n    if n:", "\n").as_deref(),
            Some("\n        ")
        );
        assert_eq!(enter("def f(n):\n\tg(", "\n").as_deref(), Some("\n\t\t"));
        // Not at a line end, on a blank line.
        assert_eq!(enter("def f(n):\n    m = n", " + 1\n"), None);
        assert_eq!(enter("def f(n):\n    ", "\n"), None);
        // After a comment: the code it describes.
        assert_eq!(
            enter("def f(n):\n    # half", "\n").as_deref(),
            Some("\n    ")
        );
        // After a block's last statement: one level less.
        assert_eq!(
            enter("def f(n):\n    if n:\n        return n", "\n").as_deref(),
            Some("\n    ")
        );
        assert_eq!(enter("def f(n):\n    pass", "\n").as_deref(), Some("\n"));
        assert_eq!(enter("return n", "\n"), None);
        // Java keeps the indentation after `return`.
        let rope = Rope::from_str("class A {\n  int f() {\n    return 1;\n");
        let st = SyntaxTree::new(Language::Java, &rope).unwrap();
        let c = cursor_context(&rope, Some(&st), 35, &Config::default());
        assert_eq!(c.line_prefix, "    return 1;");
        assert_eq!(c.enter_here().as_deref(), Some("\n    "));
    }

    #[test]
    fn doubled_space_after_return_is_removed() {
        let c = py("def f(n):\n    return ", "\n");
        assert_eq!(c.finish(" f(n - 1)"), "f(n - 1)");
    }

    #[test]
    fn runaway_second_function_is_cut() {
        let c = py("def area(w, h):\n    ", "\n");
        let raw = "return w * h\n\n\ndef perimeter(w, h):\n    return 2 * (w + h)\n";
        assert_eq!(c.finish(raw), "return w * h");
    }

    #[test]
    fn docstring_is_not_continued_into_code() {
        let c = py("def add(a, b):\n    \"\"\"Add two numbers.\n    ", "\n");
        assert!(c.stop.multiline);
        assert_eq!(
            c.scope,
            Scope::String {
                delimiter: "\"\"\"".into()
            }
        );
        let raw = "Both may be floats.\n    \"\"\"\n    return a + b\n";
        assert_eq!(c.finish(raw), "Both may be floats.\n    \"\"\"");
    }

    #[test]
    fn code_fence_and_prose_after_code_are_cut() {
        let c = py("def add(a, b):\n    ", "\n");
        assert_eq!(
            c.finish("return a + b\n```\n\nThis adds a and b."),
            "return a + b"
        );
    }

    #[test]
    fn answer_that_breaks_the_syntax_is_dropped() {
        let c = py("x = compute(", ")\n");
        assert_eq!(c.finish("1, [2, 3)"), "");
        assert_eq!(c.finish("1, [2, 3]"), "1, [2, 3]");
    }

    #[test]
    fn whitespace_only_answer_is_empty() {
        assert_eq!(ctx("x = ", "").finish("  \n"), "");
    }
}
