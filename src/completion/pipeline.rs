//! The completion pipeline, written once: the cursor's context becomes an
//! engine request (with the cross-file context the caller found), the
//! model answers, the answer is cleaned, and where the cleaning dropped a
//! blank line's whole answer the model is asked once more with that start
//! and a comment's forbidden, several starts at once (and where no code
//! comes after a dropped line of code, a third time with comments
//! allowed). Every front end calls `run`: the server's
//! requests and warm starts, `infill complete`, and both evaluations, so
//! they answer alike.

use std::time::Duration;

use super::{is_comment_only, CursorContext, Dropped, SecondTry};
use crate::config::Config;
use crate::engine::{CancelFlag, Engine, EngineError, EngineOutput, EngineRequest};
use crate::prompt::repo::CrossFileContext;
use crate::text::syntax::Language;

/// Starts a second try decodes at once: its greedy answer (avoiding the
/// dropped first line's start) and the next-best other starts, in case
/// the cleaning drops the greedy one again. On 84 blank lines of registry
/// packages (`infill-eval eval-cross --as-editor`), 7 were left empty by
/// a greedy second try: the model's next choice after a dropped snippet
/// header or Javadoc line was another (`**Path: …`, `*`), or a line that
/// does not fit (`elif …`, `}`).
pub const SECOND_TRY_STARTS: usize = 3;

/// What the caller wants from the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A suggestion, reusing what the KV cache holds of the prompt.
    Suggest,
    /// A suggestion that depends on its prompt alone: the whole prompt is
    /// evaluated afresh (for evaluations; see `EngineRequest::fresh`).
    Fresh,
    /// Only bring the prompt into the KV cache (a warm start after a pause
    /// in typing): nothing is generated, nothing cleaned.
    WarmUp,
}

/// An answer as the user sees it: the model's output cleaned by
/// `CursorContext::finish`.
#[derive(Debug, Clone)]
pub struct Suggestion {
    /// The model's output: the second try's text where there was one,
    /// with the costs of both tries. Its `alternatives` are the engine's
    /// raw ones where no second try replaced the answer (cleaned, they are
    /// `alternatives`); a second try's other starts are not kept there.
    pub output: EngineOutput,
    pub text: String,
    /// The first answer's raw text, where the cleaning dropped it whole
    /// (or it was a comment alone) and a second try replaced it
    /// (`CursorContext::second_try`).
    pub dropped_first: Option<String>,
    /// Why `text` is empty, where the cleaning left nothing of the answer
    /// (of the second try's, where there was one).
    pub dropped: Option<Dropped>,
    /// Why the first answer was dropped, where a second try replaced it.
    pub first_dropped: Option<Dropped>,
    /// Other answers to offer after `text` (`completion.candidates`),
    /// cleaned, best first: none empty, none equal to `text` or to one
    /// another.
    pub alternatives: Vec<String>,
}

impl Suggestion {
    /// A second request was made.
    pub fn second_try(&self) -> bool {
        self.dropped_first.is_some()
    }

    /// The first request's raw text.
    pub fn first_raw(&self) -> &str {
        self.dropped_first.as_deref().unwrap_or(&self.output.text)
    }
}

/// What the pipeline is asked, besides the cursor's context and settings.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// What retrieval found for the cursor, if cross-file context is on.
    pub context: Option<CrossFileContext>,
    /// The document asked in, so that the engine can keep its prompt when
    /// another document is asked next (`EngineRequest::document`).
    pub document: Option<String>,
    /// Char index in the document of the line start from which the text
    /// goes after the middle marker (`prompt::Shape::middle_from`): the
    /// anchor the lines typed since follow.
    pub anchor: Option<usize>,
}

/// Runs the pipeline at `ctx` with `config`'s settings (budgets, layout,
/// `completion.secondTry`). Blocking: call it off any event loop.
pub fn run(
    engine: &dyn Engine,
    ctx: &CursorContext,
    config: &Config,
    extras: Extras,
    mode: Mode,
    cancel: &CancelFlag,
) -> Result<Suggestion, EngineError> {
    let mut req = ctx.engine_request(config);
    req.context = extras.context;
    req.document = extras.document;
    if req.shape.cursor_line_after_middle {
        req.shape.middle_from = extras.anchor.and_then(|a| ctx.prefix_offset(a));
    }
    req.fresh = mode == Mode::Fresh;
    if mode == Mode::WarmUp {
        req.evaluate_only = true;
        let output = engine.complete(req, cancel.clone())?;
        return Ok(Suggestion {
            output,
            text: String::new(),
            dropped_first: None,
            dropped: None,
            first_dropped: None,
            alternatives: Vec::new(),
        });
    }
    let mut retry = req.clone();
    let first = engine.complete(req, cancel.clone())?;
    let (first_text, dropped) = ctx.finish_cut(&first.text, first.cut_by_time);
    // The raw alternatives stay in the output (what the engine gave, for
    // the evaluation's `--verbose`).
    let mut cleaned: Vec<(String, f32)> = first
        .alternatives
        .iter()
        .map(|a| (ctx.finish(&a.text), a.first_logprob))
        .collect();
    // Also when the time budget cut the first answer: on a blank line an
    // empty answer is the worst one, and the second try costs only its own
    // tokens (the prompt is cached); with no time left it ends at its
    // first line end.
    let avoid = if config.completion.second_try {
        ctx.second_try(&first.text, &first_text)
    } else {
        None
    };
    let Some(second_try) = avoid else {
        let alternatives = rank_alternatives(&first_text, cleaned, config.completion.candidates);
        return Ok(Suggestion {
            output: first,
            text: first_text,
            dropped_first: None,
            dropped,
            first_dropped: None,
            alternatives,
        });
    };
    // Where the code around tells at which indentations a line fits
    // (Python), the second answer starts at one of them.
    let indents = ctx.indents_to_type();
    // Whether a comment may still be the answer where the second try
    // brings no code (a third try, below).
    let mut comment_if_no_code = false;
    // The first answer at an indentation where it fits, where it was
    // dropped for its indentation alone: the answer if the second try's
    // is dropped too.
    let mut moved = None;
    match second_try {
        SecondTry::Avoid(avoid) => {
            // No comment first the second time. After a comment or a
            // copied snippet header the model took the blank line for a
            // place in a comment. After a dropped line of code its next
            // choice is often a comment that describes code instead of
            // writing it: `// Main method for testing` where a Java class's
            // closing brace was due at the file's end (none of the 48
            // comments alone on HumanEval-FIM was right); barred, the model
            // wrote the brace (21 of the 25 such items of the first 400).
            retry.code_first = true;
            comment_if_no_code = !crate::engine::starts_comment(avoid.as_bytes())
                && !super::clean::cut_context_header(&avoid).trim().is_empty();
            // A line dropped for its indentation may be the right line at
            // another (`count += 1` after an `if`, one level too shallow):
            // only its indentation is ruled out then, unless the line is
            // one that follows (at any indentation it would be a repeat).
            // (Java's cleaning moved such a line to where it fits already,
            // `brace_blocks::brace_reindented`: a Java line dropped fits
            // nowhere.)
            let at = leading_blanks_on_the_line(&first.text);
            let misplaced = ctx.language == Some(Language::Python)
                && !indents.is_empty()
                && at.is_some_and(|at| !indents.contains(&at))
                && !ctx.suffix.lines().map(str::trim).any(|l| {
                    !l.is_empty()
                        && avoid
                            .strip_prefix(l)
                            .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
                });
            if misplaced {
                moved = at.and_then(|at| moved_to_fit(ctx, &first, at, &indents));
            } else {
                retry.avoid = Some(avoid);
            }
        }
        // Blanks only: the model took the hole for empty (where the
        // cursor is at the line's start, often only its indentation).
        SecondTry::TextOnTheLine => {
            retry.require_content = true;
            retry.indent_to_type = ctx.indent_to_type();
        }
    }
    if let Some(&deepest) = indents.iter().max() {
        retry.require_content = true;
        retry.indent_to_type = deepest;
        retry.indents = indents;
    }
    // The second try gets what is left of the time budget (none left: a
    // multi-line answer ends at its first line end).
    retry.time_budget = retry
        .time_budget
        .map(|b| b.checked_sub(first.elapsed).unwrap_or_default());
    // The same prompt was just evaluated: the KV cache holds it exactly.
    retry.fresh = false;
    // Several starts at once (one batch per step, so about the time of
    // one): where the greedy second answer is dropped as well, the most
    // likely other start that the cleaning keeps is the answer.
    retry.candidates = SECOND_TRY_STARTS.max(config.completion.candidates as usize);
    retry.alternatives_to_their_end = true;
    // Other starts, each as likely as the model makes it: the answer may
    // be one of them.
    retry.branch_at_near_ties = false;
    // The third try's request, kept only where one may come.
    let for_a_comment = comment_if_no_code.then(|| retry.clone());
    let second = try_again(engine, ctx, &first, retry, moved, cancel)?;
    // Code was asked for after a dropped line of code and none came: a
    // comment the model would write there is still better than nothing
    // (an empty answer is the worst one). Rare, and the prompt is cached:
    // the third try costs only its own tokens.
    let again =
        if let Some(mut for_a_comment) = for_a_comment.filter(|_| second.text.trim().is_empty()) {
            for_a_comment.code_first = false;
            for_a_comment.time_budget = for_a_comment
                .time_budget
                .map(|b| b.checked_sub(second.own_elapsed).unwrap_or_default());
            let third = try_again(engine, ctx, &second.output, for_a_comment, None, cancel)?;
            if third.text.trim().is_empty() {
                // What the request cost is all three; the cause, the second's.
                let output = EngineOutput {
                    text: second.output.text,
                    ..third.output
                };
                Again { output, ..second }
            } else {
                third
            }
        } else {
            second
        };
    let Again {
        mut output,
        mut text,
        dropped: mut second_dropped,
        others,
        ..
    } = again;
    cleaned.extend(others);
    // The first answer was a comment alone and no code came instead: the
    // comment is still better than nothing, and is the answer.
    let dropped_first = if text.trim().is_empty() && !first_text.trim().is_empty() {
        text = first_text;
        second_dropped = None;
        output.text = first.text;
        None
    } else {
        Some(first.text)
    };
    let alternatives = rank_alternatives(&text, cleaned, config.completion.candidates);
    Ok(Suggestion {
        text,
        output,
        dropped_first,
        dropped: second_dropped,
        first_dropped: dropped,
        alternatives,
    })
}

/// A second (or third) try's answer, the other starts the cleaning kept
/// (most likely first) and why the answer was dropped, if it was.
struct Again {
    /// Its answer, with what the tries before it cost added.
    output: EngineOutput,
    /// The time this try took alone.
    own_elapsed: Duration,
    text: String,
    dropped: Option<Dropped>,
    others: Vec<(String, f32)>,
}

/// Asks `req` (the same prompt as the try before, `earlier`) with several
/// starts at once; where the greedy answer is dropped, `moved` (the try
/// before's answer moved to where it fits) is the answer, else the most
/// likely other start that is kept, and where it is a comment alone the
/// most likely one that is code.
fn try_again(
    engine: &dyn Engine,
    ctx: &CursorContext,
    earlier: &EngineOutput,
    req: EngineRequest,
    moved: Option<String>,
    cancel: &CancelFlag,
) -> Result<Again, EngineError> {
    let mut answer = engine.complete(req, cancel.clone())?;
    let alternatives = std::mem::take(&mut answer.alternatives);
    let own_elapsed = answer.elapsed;
    let output = with_costs_of(earlier, answer);
    let (mut text, mut dropped) = ctx.finish_cut(&output.text, output.cut_by_time);
    if is_a_bare_number(&text) {
        (text, dropped) = (String::new(), Some(Dropped::BareNumber));
    }
    let mut others: Vec<(String, f32)> = alternatives
        .iter()
        .map(|a| {
            (
                ctx.finish_cut(&a.text, output.cut_by_time).0,
                a.first_logprob,
            )
        })
        .filter(|(t, _)| !t.trim().is_empty() && !is_a_bare_number(t))
        .collect();
    others.sort_by(|a, b| b.1.total_cmp(&a.1));
    if text.trim().is_empty() {
        if let Some(moved) = moved {
            text = moved;
            dropped = None;
        } else if !others.is_empty() {
            text = others.remove(0).0;
            dropped = None;
        }
    }
    // A comment alone is the last resort on a blank line of code (after
    // blanks alone, the second try's greedy answer is often one): the most
    // likely start that is code comes first.
    if is_comment_only(&text) {
        if let Some(i) = others.iter().position(|(t, _)| !is_comment_only(t)) {
            let code = others.remove(i);
            // The greedy comment was at least as likely as that start.
            others.insert(0, (std::mem::replace(&mut text, code.0), code.1));
        }
    }
    Ok(Again {
        output,
        own_elapsed,
        text,
        dropped,
        others,
    })
}

/// `first`'s answer (its text began with `at` blanks on the cursor's
/// line, an indentation where it does not fit) moved to the nearest of
/// `indents` where the cleaning keeps it, deeper first on a tie. A second
/// try asked at those indentations often writes junk where the model's
/// own line was right one level off: on the first 1,043 HumanEval-FIM
/// Python items, `return True` after `if balance < 0:` at the `if`'s
/// level became `1` at the body's (the tokens for a line's text at a
/// forced indentation are not the ones the model writes it with).
fn moved_to_fit(
    ctx: &CursorContext,
    first: &EngineOutput,
    at: usize,
    indents: &[usize],
) -> Option<String> {
    let mut targets = indents.to_vec();
    targets.sort_by_key(|&to| (to.abs_diff(at), std::cmp::Reverse(to)));
    targets.into_iter().find_map(|to| {
        let raw = reindented(&first.text, at, to)?;
        let (text, _) = ctx.finish_cut(&raw, first.cut_by_time);
        (leading_blanks_on_the_line(&text) == Some(to) && !is_a_bare_number(&text)).then_some(text)
    })
}

/// `raw` (its first line's text after `from` blanks) with every line
/// moved by `to - from` spaces; a later line with too few blanks to move
/// ends it. `None` where the first line's blanks are not spaces.
fn reindented(raw: &str, from: usize, to: usize) -> Option<String> {
    let first_blanks = raw.get(..from)?;
    if first_blanks.bytes().any(|b| b != b' ') {
        return None;
    }
    Some(super::indentation::shift_lines(raw, from, to).0)
}

/// Whether `text`'s first line is a number alone: no code a user writes
/// on a line of its own (a statement that does nothing), but what a
/// model kept by a second try's start rule from the line it wanted
/// writes (`1`, `2.0`, where `return True` was due).
fn is_a_bare_number(text: &str) -> bool {
    let Some(line) = text.lines().map(str::trim).find(|l| !l.is_empty()) else {
        return false;
    };
    let digits = line.strip_prefix('-').unwrap_or(line);
    digits.starts_with(|c: char| c.is_ascii_digit())
        && digits
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
}

/// `later` with what `earlier` cost added: a request's cost is all its
/// tries, its answer the last one's.
fn with_costs_of(earlier: &EngineOutput, later: EngineOutput) -> EngineOutput {
    EngineOutput {
        evaluated_tokens: earlier.evaluated_tokens + later.evaluated_tokens,
        moved_tokens: earlier.moved_tokens + later.moved_tokens,
        generated_tokens: earlier.generated_tokens + later.generated_tokens,
        elapsed: earlier.elapsed + later.elapsed,
        build_time: earlier.build_time + later.build_time,
        eval_time: earlier.eval_time + later.eval_time,
        generate_time: earlier.generate_time + later.generate_time,
        drafted_tokens: earlier.drafted_tokens + later.drafted_tokens,
        accepted_tokens: earlier.accepted_tokens + later.accepted_tokens,
        ..later
    }
}

/// The blanks `raw` starts with, where its first text is on the cursor's
/// line (no line break before it).
fn leading_blanks_on_the_line(raw: &str) -> Option<usize> {
    let blanks = raw.len() - raw.trim_start_matches([' ', '\t']).len();
    let rest = &raw[blanks..];
    (!rest.is_empty() && !rest.starts_with(['\n', '\r'])).then_some(blanks)
}

/// The alternatives to offer after `first` (all cleaned), at most
/// `candidates - 1`: empty ones and repeats (of `first` or of one another,
/// trailing blanks aside) dropped, the rest by the log-probability of
/// their first token, most likely first. `first` is the greedy answer and
/// always comes first: where it is empty the editor shows the first
/// alternative in its place.
pub fn rank_alternatives(
    first: &str,
    mut alternatives: Vec<(String, f32)>,
    candidates: u32,
) -> Vec<String> {
    alternatives.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut seen = vec![first.trim_end()];
    let mut kept: Vec<&str> = Vec::new();
    for (text, _) in &alternatives {
        let key = text.trim_end();
        if key.trim_start().is_empty() || seen.contains(&key) {
            continue;
        }
        seen.push(key);
        kept.push(text);
    }
    kept.truncate((candidates as usize).saturating_sub(1));
    kept.into_iter().map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ropey::Rope;

    use super::*;
    use crate::completion::cursor_context;
    use crate::engine::scripted::Scripted;
    use crate::text::syntax::SyntaxTree;

    /// A unit test of the pipeline's decisions, not of a model (the real
    /// model's side, `avoid`, is tested end to end in `tests/lsp_e2e.rs`).
    fn complete(doc: &str, cursor: usize, answers: &[&str]) -> (Suggestion, Vec<EngineRequest>) {
        complete_in(Language::Python, doc, cursor, answers)
    }

    fn complete_in(
        language: Language,
        doc: &str,
        cursor: usize,
        answers: &[&str],
    ) -> (Suggestion, Vec<EngineRequest>) {
        let rope = Rope::from_str(doc);
        let syntax = SyntaxTree::new(language, &rope);
        let config = Config::default();
        let ctx = cursor_context(&rope, syntax.as_ref(), cursor, &config);
        let engine = Scripted::new(answers);
        let done = run(
            &engine,
            &ctx,
            &config,
            Extras::default(),
            Mode::Fresh,
            &CancelFlag::default(),
        )
        .unwrap();
        (done, engine.requests())
    }

    const DOC: &str = "def f(m):\n    n = 1\n    \n    for k in m:\n        n += k\n";

    #[test]
    fn a_repeat_of_the_next_line_is_asked_again_avoiding_it() {
        let (done, seen) = complete(DOC, 24, &["for k in m:\n", "n = sum(m)"]);
        assert!(done.second_try());
        assert_eq!(done.text, "n = sum(m)");
        assert_eq!(done.first_raw(), "for k in m:\n");
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].avoid, None);
        assert_eq!(seen[1].avoid.as_deref(), Some("for k in m:"));
        // The prompt is the same: the KV cache holds it, so no fresh start.
        assert!(!seen[1].fresh);
        assert_eq!(seen[1].prefix, seen[0].prefix);
        // The second try has what the first left of the time budget.
        assert_eq!(seen[1].time_budget, Some(Duration::from_millis(1700)));
        // Costs add up.
        assert_eq!(done.output.generated_tokens, 8);
        assert_eq!(done.output.elapsed, Duration::from_millis(600));
    }

    #[test]
    fn a_dropped_answer_cut_by_time_is_asked_again_for_one_line() {
        // A cold prompt used up the time budget: the first answer (a line
        // that breaks the code, cut at its end) leaves nothing.
        let cut = format!("] as bar:\n{}", crate::engine::scripted::CUT_BY_TIME);
        let (done, seen) = complete(DOC, 24, &[&cut, "n = 2"]);
        assert!(done.second_try());
        assert_eq!(done.text, "n = 2");
        assert_eq!(seen[1].avoid.as_deref(), Some("] as bar:"));
        // No time left: the second try ends at its first line end.
        assert_eq!(seen[1].time_budget, Some(Duration::ZERO));
        // No comment first the second time either (after code dropped).
        assert!(!seen[0].code_first && seen[1].code_first);
    }

    #[test]
    fn a_comment_comes_where_code_was_asked_for_again_and_none_came() {
        use crate::engine::scripted::ALTERNATIVES;
        // A line that breaks the code, then one that repeats the next
        // line: the third try may write a comment, from the same prompt.
        let (done, seen) = complete(DOC, 24, &["] as bar:\n", "for k in m:\n", "# Sum\n"]);
        assert_eq!(done.text, "# Sum");
        assert_eq!(seen.len(), 3);
        assert!(seen[1].code_first && !seen[2].code_first);
        assert_eq!(seen[2].avoid.as_deref(), Some("] as bar:"));
        assert_eq!(
            (seen[2].candidates, seen[2].fresh),
            (SECOND_TRY_STARTS, false)
        );
        // What was left of the time budget after both tries.
        assert_eq!(seen[2].time_budget, Some(Duration::from_millis(1400)));
        assert_eq!(done.output.text, "# Sum\n");
        assert_eq!(done.output.elapsed, Duration::from_millis(900));
        assert_eq!(done.first_raw(), "] as bar:\n");
        // As in the second try, a kept other start where the greedy
        // answer is dropped.
        let third = format!("for k in m:\n{ALTERNATIVES}# Sum\n");
        let (done, _) = complete(DOC, 24, &["] as bar:\n", "for k in m:\n", &third]);
        assert_eq!(done.text, "# Sum");
        // Nothing the third time either: empty, with the second's cause.
        let (done, seen) = complete(DOC, 24, &["] as bar:\n", "for k in m:\n", ""]);
        assert_eq!((done.text.as_str(), seen.len()), ("", 3));
        assert_eq!(done.dropped, Some(Dropped::BreaksSyntax));
        assert_eq!(done.output.text, "for k in m:\n");
        // After a dropped comment no comment is asked for again.
        let (_, seen) = complete(DOC, 24, &["# Path: a.py\n", "for k in m:\n"]);
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn a_dropped_comment_or_header_is_asked_again_with_code_first() {
        for first in [
            "# Path: src/a.py\n",
            "*/\n",
            "Path: src/main/java/a/B.java\n",
        ] {
            let (done, seen) = complete(DOC, 24, &[first, "n = 2"]);
            assert_eq!(done.text, "n = 2", "{first:?}");
            assert!(seen[1].code_first, "{first:?}");
            assert_eq!(seen[1].avoid.as_deref(), Some(first.trim()));
        }
    }

    #[test]
    fn blanks_alone_are_asked_again_for_text_on_the_line() {
        // After the indentation: text, no more blanks.
        let (done, seen) = complete(DOC, 24, &["\n", "n = 2"]);
        assert!(done.second_try());
        assert_eq!(done.text, "n = 2");
        assert!(!seen[0].require_content);
        assert!(seen[1].require_content);
        assert_eq!(
            (seen[1].indent_to_type, seen[1].avoid.as_deref()),
            (0, None)
        );
        // At the blank line's start (as HumanEval asks): its indentation
        // may come first. The model ended at once the first time.
        let doc = "def f(m):\n    n = 1\n\n    for k in m:\n        n += k\n";
        let (done, seen) = complete(doc, 20, &["", "    n = 2"]);
        assert_eq!(done.text, "    n = 2");
        assert_eq!(seen[1].indent_to_type, 4);
        assert!(!seen[1].code_first);
    }

    #[test]
    fn a_line_dropped_for_its_indentation_is_asked_again_at_one_that_fits() {
        // `return 1` after `if x:` at the same level: Python refuses it
        // (tree-sitter's error count does not change: the blank line left
        // the `if` without a body already).
        let doc = "def f(x):\n    if x:\n\n    return 0\n";
        let (done, seen) = complete(doc, 20, &["    return 1\n", "        return 1"]);
        assert_eq!(done.text, "        return 1");
        assert!(done.second_try());
        // Where the second try writes junk there (a number alone, which a
        // start rule forced) or nothing, the first line moved is the answer.
        for second in ["        1", "        2.0\n        return 1", ""] {
            let (done, seen) = complete(doc, 20, &["    return 1\n", second]);
            assert_eq!((done.text.as_str(), seen.len()), ("        return 1", 2));
        }
        // A number alone is no answer of a second try anyway.
        let (done, _) = complete(doc, 20, &["        # Path: a.py\n", "        1"]);
        assert_eq!(done.dropped, Some(Dropped::BareNumber));
        // The same text may come again, at the body's indentation only.
        assert_eq!(seen[1].avoid, None);
        assert_eq!(seen[1].indents, vec![8]);
        assert!(seen[1].require_content);
        assert_eq!(seen[1].indent_to_type, 8);
        // A line dropped at a fitting indentation is avoided as before.
        let (_, seen) = complete(doc, 20, &["        # Path: a.py\n", "        return 1"]);
        assert_eq!(seen[1].avoid.as_deref(), Some("# Path: a.py"));
        assert_eq!(seen[1].indents, vec![8]);
        // A line that follows further down is avoided at any indentation
        // (with a comment after it too).
        let doc = "def f(x):\n    if x:\n\n    y = 0\n    return 0\n";
        let (_, seen) = complete(doc, 20, &["    return 0  # done\n", "        return 1"]);
        assert_eq!(seen[1].avoid.as_deref(), Some("return 0  # done"));
        let (_, seen) = complete(DOC, 24, &["for k in m:\n", "n = len(m)"]);
        assert_eq!(seen[1].avoid.as_deref(), Some("for k in m:"));
        assert_eq!(seen[1].indents, vec![0]);
    }

    #[test]
    fn an_answer_moves_by_whole_lines_of_blanks() {
        assert_eq!(
            reindented("  if a:\n    b\n\n  c\n", 2, 4).as_deref(),
            Some("    if a:\n      b\n\n    c\n")
        );
        // A line that cannot move as far ends the answer.
        assert_eq!(reindented("    a\n b\n", 4, 2).as_deref(), Some("  a\n"));
        assert_eq!(reindented("    a\nb\n", 4, 0).as_deref(), Some("a\n"));
        assert_eq!(reindented("\ta\n", 1, 4), None);
        assert!(is_a_bare_number("        1") && is_a_bare_number("-2.0\nx = 1"));
        assert!(!is_a_bare_number("1,") && !is_a_bare_number("x1") && !is_a_bare_number(""));
    }

    #[test]
    fn a_java_line_that_breaks_the_blocks_below_is_asked_again() {
        let java = |doc: &str, answers: &[&str]| {
            let cursor = doc.find("\n\n").map(|i| i + 1).unwrap();
            complete_in(Language::Java, doc, cursor, answers)
        };
        // `} else {` where the `if`'s `}` was due (the line below is at the
        // `if`'s level): the file is a brace short either way, so the error
        // count cannot tell; the blocks by their indentation can.
        let doc = "class A {\n    long f(long n) {\n        if (n == 0) {\n            return 1;\n\n        return n;\n    }\n}\n";
        let (done, seen) = java(doc, &["        } else {\n", "        }"]);
        assert_eq!(done.text, "        }");
        assert_eq!(seen[1].avoid.as_deref(), Some("} else {"));
        assert_eq!(seen[1].indents, vec![8, 12]);
        // The right line one level too shallow (the line below is deeper):
        // moved to the body's indentation, no second try.
        let doc = "class A {\n    void f(int x) {\n        if (x > 0) {\n\n            x--;\n        }\n    }\n}\n";
        let (done, seen) = java(doc, &["        x++;\n"]);
        assert_eq!((done.text.as_str(), seen.len()), ("            x++;", 1));
        // A line that adds a syntax error is avoided, at any indentation.
        let (_, seen) = java(doc, &["        }\n", "            x++;"]);
        assert_eq!(seen[1].avoid.as_deref(), Some("}"));
        assert_eq!(seen[1].indents, vec![12]);
    }

    #[test]
    fn a_comment_alone_is_asked_again_for_code_and_kept_where_none_comes() {
        use crate::engine::scripted::ALTERNATIVES;
        let (done, seen) = complete(DOC, 24, &["# Sum the items\n", "n = len(m)"]);
        assert_eq!(done.text, "n = len(m)");
        assert!(done.second_try());
        assert!(seen[1].code_first);
        assert_eq!(seen[1].avoid.as_deref(), Some("# Sum the items"));
        // No code the second time (a line that repeats the next one): the
        // comment is shown, as the first answer.
        let (done, seen) = complete(DOC, 24, &["# Sum the items\n", "for k in m:\n"]);
        assert_eq!(seen.len(), 2);
        assert_eq!(done.text, "# Sum the items");
        assert!(!done.second_try());
        assert_eq!(done.dropped, None);
        assert_eq!(done.output.text, "# Sum the items\n");
        // After blanks alone, the second try's most likely start that is
        // code comes before its greedy comment.
        let second = format!("# Sum the items\n{ALTERNATIVES}n = len(m)\n");
        let (done, _) = complete(DOC, 24, &["\n", &second]);
        assert_eq!(done.text, "n = len(m)");
        // A comment above code is an answer as it is.
        let (done, seen) = complete(DOC, 24, &["# Sum\n    n = len(m)\n"]);
        assert_eq!(
            (done.text.as_str(), seen.len()),
            ("# Sum\n    n = len(m)", 1)
        );
    }

    #[test]
    fn a_second_try_dropped_again_takes_its_best_other_start_that_is_kept() {
        use crate::engine::scripted::{ALTERNATIVES, CUT_BY_TIME};
        // A copied snippet header, then another and a line that breaks the
        // code as the greedy answers; the second try's other starts bring
        // a line that repeats the next one (dropped) and one that fits.
        let first = format!("# Path: src/a.py\n{CUT_BY_TIME}");
        let second = format!(
            "**Path: src/a.py\n{CUT_BY_TIME}{ALTERNATIVES}for k in m:\n{ALTERNATIVES}n = len(m)\n"
        );
        let (done, seen) = complete(DOC, 24, &[&first, &second]);
        assert_eq!(done.text, "n = len(m)");
        assert_eq!(done.dropped, None);
        assert!(done.second_try());
        // Several starts at once, each to its own end.
        assert_eq!(seen[0].candidates, 1);
        assert_eq!(seen[1].candidates, SECOND_TRY_STARTS);
        assert!(seen[1].alternatives_to_their_end && !seen[0].alternatives_to_their_end);
        // Where every start is dropped the answer stays empty, with the
        // greedy second answer's cause.
        let second = format!("**Path: src/a.py\n{CUT_BY_TIME}{ALTERNATIVES}for k in m:\n");
        let (done, _) = complete(DOC, 24, &[&first, &second]);
        assert_eq!(done.text, "");
        assert_eq!(done.dropped, Some(Dropped::BreaksSyntax));
        assert!(done.alternatives.is_empty());
    }

    #[test]
    fn a_kept_answer_or_a_line_with_text_is_not_asked_again() {
        let (done, seen) = complete(DOC, 24, &["n = 2"]);
        assert_eq!(
            (done.text.as_str(), done.second_try(), seen.len()),
            ("n = 2", false, 1)
        );
        // The cursor after `n = ` on its line: a dropped answer stays dropped.
        let (done, seen) = complete(DOC, 18, &["1\n"]);
        assert_eq!(
            (done.text.as_str(), done.second_try(), seen.len()),
            ("", false, 1)
        );
    }

    #[test]
    fn alternatives_are_ranked_by_their_start_without_repeats_or_empties() {
        let alts = |v: &[(&str, f32)]| -> Vec<(String, f32)> {
            v.iter().map(|(t, p)| (t.to_string(), *p)).collect()
        };
        // Best first token first; the greedy answer's repeat (trailing
        // blanks aside), another repeat and an empty one dropped.
        let ranked = rank_alternatives(
            "return x",
            alts(&[
                ("return y", -3.0),
                ("return x  ", -1.0),
                ("", -0.5),
                ("  \n", -0.6),
                ("yield x", -2.0),
                ("return y", -2.5),
            ]),
            5,
        );
        assert_eq!(ranked, vec!["yield x", "return y"]);
        // At most `candidates - 1`.
        let ranked = rank_alternatives("a", alts(&[("b", -1.0), ("c", -2.0), ("d", -0.5)]), 3);
        assert_eq!(ranked, vec!["d", "b"]);
        assert!(rank_alternatives("a", alts(&[("b", -1.0)]), 1).is_empty());
        // An empty greedy answer: the alternatives are all there is.
        assert_eq!(rank_alternatives("", alts(&[("b", -1.0)]), 2), vec!["b"]);
    }

    #[test]
    fn a_warm_up_only_evaluates() {
        let rope = Rope::from_str(DOC);
        let config = Config::default();
        let ctx = cursor_context(&rope, None, 24, &config);
        let engine = Scripted::new(&["never used"]);
        let done = run(
            &engine,
            &ctx,
            &config,
            Extras::default(),
            Mode::WarmUp,
            &CancelFlag::default(),
        )
        .unwrap();
        assert_eq!(done.text, "");
        let seen = engine.requests();
        assert_eq!(seen.len(), 1);
        assert!(seen[0].evaluate_only && !seen[0].fresh);
    }
}
