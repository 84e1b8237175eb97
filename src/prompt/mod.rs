//! Building the token sequence a FIM model sees, within an exact budget
//! counted with the model's own tokenizer.

pub mod fim;
pub mod memo;
pub mod repo;

use fim::{FimTemplate, Piece};

/// A token id of the model's vocabulary.
pub type Token = i32;

/// The model's tokenizer, for plain text only: implementations must not
/// turn text that spells a special token into that token.
pub trait Tokenizer {
    fn tokenize(&self, text: &str) -> Vec<Token>;
    /// The bytes a token stands for; empty if unknown (which turns token
    /// healing off).
    fn piece(&self, _token: Token) -> Vec<u8> {
        Vec::new()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub tokens: Vec<Token>,
    /// Tokens of prefix and suffix text that made it into the prompt.
    pub prefix_tokens: usize,
    pub suffix_tokens: usize,
    /// Text of the prefix's last token, taken out of the prompt (token
    /// healing): the answer must start with it, and it is then removed.
    pub healed: Vec<u8>,
    /// Byte offset in the prefix where the prompt's prefix text starts (the
    /// start of its first kept line); `None` when even one line did not
    /// fit and the text was cut inside it.
    pub prefix_from: Option<usize>,
}

/// Share of the budget the suffix may always claim when both sides are too
/// long: the code right after the cursor matters, but less than before it.
const SUFFIX_SHARE: usize = 4;

/// Tokens kept free for the cursor line when it goes after the middle
/// marker, so that typing within a line never changes how much of the
/// prefix and suffix fit (which would invalidate the KV cache behind them).
const LINE_RESERVE: usize = 48;

/// The same for the lines since an anchor (`Shape::middle_from`): a few
/// lines typed after it keep the prefix's and suffix's budget.
const ANCHORED_RESERVE: usize = 192;

/// One line in this many (by a hash of its text) may start the prefix
/// window. A window start chosen by content moves only every dozen lines or
/// so as the user types on, instead of on every new line; each move costs a
/// full prompt evaluation, so this is what keeps long files warm.
const WINDOW_START_EVERY: u64 = 16;

/// How the prompt is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// In templates whose middle marker ends the prompt (prefix–suffix–
    /// middle), put the text of the cursor line after the middle marker, as
    /// the start of the model's own answer. A keystroke then changes only the
    /// prompt's last few tokens, so the KV cache keeps the whole suffix;
    /// in the plain layout every keystroke re-evaluates the suffix.
    pub cursor_line_after_middle: bool,
    /// With `cursor_line_after_middle`: where the text after the middle
    /// marker starts, a line start in the prefix at or before the cursor
    /// line's (bytes). The lines typed since an anchor then go after the
    /// marker too, so that a new line changes only the prompt's end (the
    /// KV cache keeps prefix and suffix); with it even a line of only
    /// indentation goes there. Not a line start, or too long for half the
    /// budget: the cursor line alone, as without it.
    pub middle_from: Option<usize>,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            cursor_line_after_middle: true,
            middle_from: None,
        }
    }
}

/// Lays out `prefix` and `suffix` in `template`, with at most `budget`
/// tokens in all. When they do not fit, whole lines are dropped from the far
/// ends (the start of the prefix, the end of the suffix); the lines nearest
/// the cursor are kept. A single line longer than the budget is cut at a
/// token boundary.
pub fn build(
    tok: &dyn Tokenizer,
    template: &FimTemplate,
    prefix: &str,
    suffix: &str,
    budget: usize,
    shape: Shape,
) -> Prompt {
    let texts: Vec<Vec<Token>> = template
        .layout
        .iter()
        .map(|p| match p {
            Piece::Text(t) => tok.tokenize(t),
            _ => Vec::new(),
        })
        .collect();
    let fixed = template
        .layout
        .iter()
        .zip(&texts)
        .map(|(p, t)| match p {
            Piece::Marker(_) => 1,
            Piece::Text(_) => t.len(),
            _ => 0,
        })
        .sum::<usize>();
    let mut avail = budget.saturating_sub(fixed);

    // The cursor line, when it goes after the middle marker. A line of
    // only indentation stays in the prefix, healed there as in the plain
    // layout (a new line re-evaluates the suffix anyway). Once the line has
    // text it moves, at no cost: the prefix then ends at the same line
    // start the healed indentation left. The price of the move, measured
    // on HumanEval single-line FIM (first 40 items, whose cursor ends a
    // line with text): exact match 50.0% against 57.5% in the plain layout.
    let at = prefix.rfind('\n').map_or(0, |i| i + 1);
    let anchored = shape
        .middle_from
        .filter(|&m| m <= at && (m == 0 || prefix.as_bytes().get(m - 1) == Some(&b'\n')))
        .map(|m| (m, tok.tokenize(&prefix[m..])))
        .filter(|(_, toks)| toks.len() <= avail / 2);
    let (head, line) = match &anchored {
        _ if !shape_splits(shape, template) => (prefix, ""),
        Some((m, _)) => prefix.split_at(*m),
        None if !prefix[at..].trim().is_empty() => prefix.split_at(at),
        None => (prefix, ""),
    };
    let mut line_toks = Vec::new();
    if shape_splits(shape, template) {
        // Reserved also while the line is only indentation, so that its
        // first character does not change the budget of the rest.
        let reserve = if shape.middle_from.is_some() {
            // At most a quarter of a small budget.
            ANCHORED_RESERVE.min(avail / 4)
        } else {
            LINE_RESERVE
        };
        line_toks = match anchored {
            Some((_, toks)) => toks,
            None => fit_end(tok, line, avail / 2).1,
        };
        avail -= line_toks.len().max(reserve).min(avail);
    }

    let suffix = if template.uses_suffix() { suffix } else { "" };
    let head_len = tok.tokenize(head).len();
    let suffix_len = tok.tokenize(suffix).len();
    let (head_cap, suffix_cap) = if head_len + suffix_len <= avail {
        (head_len, suffix_len)
    } else {
        let suffix_cap = suffix_len.min((avail / SUFFIX_SHARE).max(avail.saturating_sub(head_len)));
        (avail - suffix_cap, suffix_cap)
    };
    let (prefix_from, mut head_toks) = fit_end_stable(tok, head, head_cap);
    let suffix_toks = fit_start(tok, suffix, suffix_cap);
    // Token healing: text before the cursor often ends inside a token the
    // model would rather continue (a trailing space, a half-typed name).
    // Backing up one token lets the model choose its own tokenization of
    // the boundary; the engine constrains the answer to restore the text.
    // With the cursor line after the middle marker only that line is
    // healed: the answer cannot start with the end of the prefix slot.
    let mut healed = Vec::new();
    let healed_side = if line.is_empty() {
        &mut head_toks
    } else {
        &mut line_toks
    };
    if let Some(&last) = healed_side.last() {
        let piece = tok.piece(last);
        if !piece.is_empty() {
            healed_side.pop();
            healed = piece;
        }
    }

    let mut tokens = Vec::with_capacity(budget);
    for (piece, text) in template.layout.iter().zip(&texts) {
        match piece {
            Piece::Marker(id) => tokens.push(*id),
            Piece::Text(_) => tokens.extend_from_slice(text),
            Piece::Prefix => tokens.extend_from_slice(&head_toks),
            Piece::Suffix => tokens.extend_from_slice(&suffix_toks),
        }
    }
    tokens.extend_from_slice(&line_toks);
    Prompt {
        tokens,
        prefix_tokens: head_toks.len() + line_toks.len(),
        suffix_tokens: suffix_toks.len(),
        healed,
        prefix_from,
    }
}

fn shape_splits(shape: Shape, template: &FimTemplate) -> bool {
    shape.cursor_line_after_middle && template.middle_last()
}

/// Tokens of the longest tail of `text`, starting at a line start, that fit
/// in `cap`; the last `cap` tokens when even the last line does not fit.
fn fit_end(tok: &dyn Tokenizer, text: &str, cap: usize) -> (Option<usize>, Vec<Token>) {
    fit_tail(tok, text, cap, false)
}

/// Like `fit_end`, but the tail starts at a line chosen by its content
/// (`WINDOW_START_EVERY`) when one fits within the next lines: as text is
/// added at the end, the start stays put until it no longer fits.
fn fit_end_stable(tok: &dyn Tokenizer, text: &str, cap: usize) -> (Option<usize>, Vec<Token>) {
    fit_tail(tok, text, cap, true)
}

/// Also returns where the tail starts in `text` (`None` when cut inside a line).
fn fit_tail(
    tok: &dyn Tokenizer,
    text: &str,
    cap: usize,
    stable: bool,
) -> (Option<usize>, Vec<Token>) {
    let full = tok.tokenize(text);
    if full.len() <= cap {
        return (Some(0), full);
    }
    // Line starts after the first; dropping lines only shrinks the count,
    // so the first start whose tail fits is the longest that fits.
    let starts: Vec<usize> = text.match_indices('\n').map(|(i, _)| i + 1).collect();
    let fitting = partition_point(&starts, |&s| tok.tokenize(&text[s..]).len() > cap);
    let by_content = stable
        .then(|| {
            starts[fitting..]
                .iter()
                .take(4 * WINDOW_START_EVERY as usize)
                .find(|&&s| starts_window(&text[s..]))
        })
        .flatten();
    match by_content.or(starts.get(fitting)) {
        Some(&s) => (Some(s), tok.tokenize(&text[s..])),
        None => (None, full[full.len() - cap..].to_vec()),
    }
}

/// Whether the line at the start of `rest` may start the prefix window:
/// a line with text whose hash falls in one bucket of `WINDOW_START_EVERY`.
fn starts_window(rest: &str) -> bool {
    let line = rest.split('\n').next().unwrap_or("").trim_end();
    if line.trim().is_empty() {
        return false;
    }
    // FNV-1a: tiny, stable across runs and platforms (std's hasher is not
    // guaranteed to be), and quality is no concern for a 1-in-16 pick.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in line.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h.is_multiple_of(WINDOW_START_EVERY)
}

/// Tokens of the longest head of `text`, ending at a line end, that fit in `cap`.
fn fit_start(tok: &dyn Tokenizer, text: &str, cap: usize) -> Vec<Token> {
    let full = tok.tokenize(text);
    if full.len() <= cap {
        return full;
    }
    // Ends just after each newline, longest first.
    let ends: Vec<usize> = text.match_indices('\n').map(|(i, _)| i + 1).rev().collect();
    let fitting = partition_point(&ends, |&e| tok.tokenize(&text[..e]).len() > cap);
    match ends.get(fitting) {
        Some(&e) => tok.tokenize(&text[..e]),
        None => full[..cap].to_vec(),
    }
}

/// Index of the first element for which `too_big` is false, assuming it is
/// true for a prefix of the slice and false after (binary search, so a long
/// file costs O(log lines) tokenizations).
fn partition_point<T>(items: &[T], too_big: impl Fn(&T) -> bool) -> usize {
    items.partition_point(too_big)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::fim::FimFamily;
    use super::*;

    /// One token per whitespace-separated word plus one per newline:
    /// enough to check budgets exactly.
    pub struct WordTokenizer;
    impl Tokenizer for WordTokenizer {
        fn tokenize(&self, text: &str) -> Vec<Token> {
            let mut out = Vec::new();
            for (i, line) in text.split('\n').enumerate() {
                if i > 0 {
                    out.push(0);
                }
                out.extend(line.split_whitespace().map(|w| w.len() as Token));
            }
            out
        }
    }

    const PLAIN: Shape = Shape {
        cursor_line_after_middle: false,
        middle_from: None,
    };
    const SPLIT: Shape = Shape {
        cursor_line_after_middle: true,
        middle_from: None,
    };

    fn qwen() -> FimTemplate {
        FimTemplate {
            family: FimFamily::Qwen,
            layout: vec![
                Piece::Marker(-1),
                Piece::Prefix,
                Piece::Marker(-2),
                Piece::Suffix,
                Piece::Marker(-3),
            ],
            stop_tokens: vec![],
        }
    }

    #[test]
    fn everything_fits() {
        let p = build(&WordTokenizer, &qwen(), "a bb\nccc", "dd", 100, PLAIN);
        assert_eq!(p.tokens, vec![-1, 1, 2, 0, 3, -2, 2, -3]);
    }

    #[test]
    fn drops_far_lines_first_and_respects_budget_exactly() {
        let prefix = "l1 l1\nl2 l2\nl3 l3\nnear cursor";
        let suffix = "s1\ns2 s2\ns3 s3 s3\ns4";
        for budget in 3..30 {
            let p = build(&WordTokenizer, &qwen(), prefix, suffix, budget, PLAIN);
            assert!(
                p.tokens.len() <= budget,
                "budget {budget}: {}",
                p.tokens.len()
            );
        }
        let p = build(&WordTokenizer, &qwen(), prefix, suffix, 12, PLAIN);
        // 9 tokens for text: the suffix may claim a quarter (2: "s1\n"),
        // the prefix gets 7, and its longest fitting tail is "l3 l3\nnear cursor".
        assert_eq!(p.suffix_tokens, 2);
        assert_eq!(p.prefix_tokens, 5);
        assert_eq!(p.tokens, vec![-1, 2, 2, 0, 4, 6, -2, 2, 0, -3]);
    }

    #[test]
    fn a_single_long_line_is_cut_at_tokens() {
        let p = build(&WordTokenizer, &qwen(), "a b c d e f", "", 6, PLAIN);
        assert_eq!(p.tokens, vec![-1, 1, 1, 1, -2, -3]);
    }

    /// One token per char (its code point), so pieces are known.
    struct CharTokenizer;
    impl Tokenizer for CharTokenizer {
        fn tokenize(&self, text: &str) -> Vec<Token> {
            text.chars().map(|c| c as Token).collect()
        }
        fn piece(&self, token: Token) -> Vec<u8> {
            char::from_u32(token as u32)
                .map(|c| c.to_string().into_bytes())
                .unwrap_or_default()
        }
    }

    #[test]
    fn heals_the_last_prefix_token() {
        let p = build(&CharTokenizer, &qwen(), "return ", "\n", 100, PLAIN);
        assert_eq!(p.healed, b" ");
        assert_eq!(p.prefix_tokens, 6);
        let text: Vec<Token> = "return".chars().map(|c| c as Token).collect();
        assert_eq!(&p.tokens[1..7], &text[..]);
        assert_eq!(p.tokens[7], -2);
    }

    #[test]
    fn prefix_only_ignores_suffix() {
        let t = FimTemplate {
            family: FimFamily::PrefixOnly,
            layout: vec![Piece::Prefix],
            stop_tokens: vec![],
        };
        let p = build(&WordTokenizer, &t, "x", "y y y", 10, PLAIN);
        assert_eq!(p.tokens, vec![1]);
        assert_eq!(p.suffix_tokens, 0);
    }

    #[test]
    fn cursor_line_goes_after_the_middle_marker_and_is_healed_there() {
        let p = build(&CharTokenizer, &qwen(), "ab\ncd", "\nz", 100, SPLIT);
        let c = |s: &str| s.chars().map(|c| c as Token).collect::<Vec<_>>();
        let mut want = vec![-1];
        want.extend(c("ab\n"));
        want.push(-2);
        want.extend(c("\nz"));
        want.push(-3);
        want.extend(c("c"));
        assert_eq!(p.tokens, want);
        assert_eq!(p.healed, b"d");
        // A cursor line of only indentation stays in the prefix, healed.
        let p = build(&CharTokenizer, &qwen(), "ab\n  ", "z", 100, SPLIT);
        assert_eq!(p.healed, b" ");
        assert_eq!(p.tokens[1..5], c("ab\n "));
        assert_eq!(p.tokens.last(), Some(&-3));
    }

    #[test]
    fn typing_within_a_line_keeps_everything_before_the_line() {
        // A prefix far over budget: typing on the cursor line must not
        // change a single token before it (the KV cache keeps them).
        let body: String = (0..200).map(|i| format!("line {i} x\n")).collect();
        let suffix: String = (0..200).map(|i| format!("after {i}\n")).collect();
        let mut before: Option<Vec<Token>> = None;
        for typed in ["", "r", "re", "ret", "return", "return a b c"] {
            let prefix = format!("{body}    {typed}");
            let p = build(&WordTokenizer, &qwen(), &prefix, &suffix, 300, SPLIT);
            assert!(p.tokens.len() <= 300);
            let end = p.tokens.iter().position(|&t| t == -3).unwrap();
            let stable = p.tokens[..=end].to_vec();
            if let Some(b) = &before {
                assert_eq!(b, &stable, "after typing {typed:?}");
            }
            before = Some(stable);
        }
    }

    #[test]
    fn lines_since_the_anchor_go_after_the_middle_marker() {
        let c = |s: &str| s.chars().map(|c| c as Token).collect::<Vec<_>>();
        let anchored = |m| Shape {
            cursor_line_after_middle: true,
            middle_from: Some(m),
        };
        // Two lines since the anchor (byte 3), the cursor on a blank line.
        let prefix = "ab\ncd\n  ";
        let p = build(&CharTokenizer, &qwen(), prefix, "\nz", 100, anchored(3));
        let mut want = vec![-1];
        want.extend(c("ab\n"));
        want.push(-2);
        want.extend(c("\nz"));
        want.push(-3);
        want.extend(c("cd\n "));
        assert_eq!(p.tokens, want);
        assert_eq!(p.healed, b" ");
        // An anchor at the blank cursor line's start: its indentation goes
        // after the marker too.
        let p = build(&CharTokenizer, &qwen(), prefix, "\nz", 100, anchored(6));
        assert_eq!(p.tokens[p.tokens.len() - 2..], [-3, ' ' as Token]);
        // Not a line start, or past the cursor line's start: the cursor
        // line alone (here only indentation: it stays in the prefix).
        for m in [4, 8, 99] {
            let p = build(&CharTokenizer, &qwen(), prefix, "\nz", 100, anchored(m));
            assert_eq!(p.tokens.last(), Some(&-3), "anchor {m}");
        }
        // Longer than half the budget: the same.
        let p = build(&CharTokenizer, &qwen(), prefix, "\nz", 12, anchored(0));
        assert_eq!(p.tokens.last(), Some(&-3));
    }

    #[test]
    fn a_new_line_after_the_anchor_keeps_everything_before_the_middle_marker() {
        // Far over budget on both sides: entering lines and typing after
        // the anchor must not change a token before the middle marker.
        let body: String = (0..200).map(|i| format!("line {i} x\n")).collect();
        let suffix: String = (0..200).map(|i| format!("after {i}\n")).collect();
        let mut before: Option<Vec<Token>> = None;
        for typed in [
            "",
            "x = 1",
            "x = 1\n",
            "x = 1\n    ",
            "x = 1\n    y = x\n    re",
        ] {
            let prefix = format!("{body}    {typed}");
            let shape = Shape {
                cursor_line_after_middle: true,
                middle_from: Some(body.len()),
            };
            let p = build(&WordTokenizer, &qwen(), &prefix, &suffix, 300, shape);
            assert!(p.tokens.len() <= 300);
            let end = p.tokens.iter().position(|&t| t == -3).unwrap();
            let stable = p.tokens[..=end].to_vec();
            if let Some(b) = &before {
                assert_eq!(b, &stable, "after typing {typed:?}");
            }
            before = Some(stable);
        }
    }

    #[test]
    fn the_window_start_moves_rarely_as_lines_are_added() {
        // Adding lines at the end moves the start of a plain window on
        // every line; the content-chosen start moves far less often.
        let lines: Vec<String> = (0..400)
            .map(|i| format!("v{i} = f(v{})\n", i / 3))
            .collect();
        let mut starts = std::collections::HashSet::new();
        for n in 200..400 {
            let prefix: String = lines[..n].concat();
            let p = build(&CharTokenizer, &qwen(), &prefix, "", 1000, SPLIT);
            assert!(p.tokens.len() <= 1000);
            let first_line: String = p.tokens[1..]
                .iter()
                .map_while(|&t| char::from_u32(t as u32).filter(|&c| c != '\n'))
                .collect();
            starts.insert(first_line);
        }
        assert!(starts.len() < 40, "{} distinct window starts", starts.len());
    }
}
