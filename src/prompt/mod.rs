//! Building the token sequence a FIM model sees, within an exact budget
//! counted with the model's own tokenizer.

pub mod fim;
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
}

/// Share of the budget the suffix may always claim when both sides are too
/// long: the code right after the cursor matters, but less than before it.
const SUFFIX_SHARE: usize = 4;

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
    let avail = budget.saturating_sub(fixed);

    let suffix = if template.uses_suffix() { suffix } else { "" };
    let prefix_len = tok.tokenize(prefix).len();
    let suffix_len = tok.tokenize(suffix).len();
    let (prefix_cap, suffix_cap) = if prefix_len + suffix_len <= avail {
        (prefix_len, suffix_len)
    } else {
        let suffix_cap =
            suffix_len.min((avail / SUFFIX_SHARE).max(avail.saturating_sub(prefix_len)));
        (avail - suffix_cap, suffix_cap)
    };
    let mut prefix_toks = fit_end(tok, prefix, prefix_cap);
    let suffix_toks = fit_start(tok, suffix, suffix_cap);
    // Token healing: text before the cursor often ends inside a token the
    // model would rather continue (a trailing space, a half-typed name).
    // Backing up one token lets the model choose its own tokenization of
    // the boundary; the engine constrains the answer to restore the text.
    let mut healed = Vec::new();
    if let Some(&last) = prefix_toks.last() {
        let piece = tok.piece(last);
        if !piece.is_empty() {
            prefix_toks.pop();
            healed = piece;
        }
    }

    let mut tokens = Vec::with_capacity(budget);
    for (piece, text) in template.layout.iter().zip(&texts) {
        match piece {
            Piece::Marker(id) => tokens.push(*id),
            Piece::Text(_) => tokens.extend_from_slice(text),
            Piece::Prefix => tokens.extend_from_slice(&prefix_toks),
            Piece::Suffix => tokens.extend_from_slice(&suffix_toks),
        }
    }
    Prompt {
        tokens,
        prefix_tokens: prefix_toks.len(),
        suffix_tokens: suffix_toks.len(),
        healed,
    }
}

/// Tokens of the longest tail of `text`, starting at a line start, that fit
/// in `cap`; the last `cap` tokens when even the last line does not fit.
fn fit_end(tok: &dyn Tokenizer, text: &str, cap: usize) -> Vec<Token> {
    let full = tok.tokenize(text);
    if full.len() <= cap {
        return full;
    }
    // Line starts after the first; dropping lines only shrinks the count,
    // so the first start whose tail fits is the longest that fits.
    let starts: Vec<usize> = text.match_indices('\n').map(|(i, _)| i + 1).collect();
    let fitting = partition_point(&starts, |&s| tok.tokenize(&text[s..]).len() > cap);
    match starts.get(fitting) {
        Some(&s) => tok.tokenize(&text[s..]),
        None => full[full.len() - cap..].to_vec(),
    }
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
        let p = build(&WordTokenizer, &qwen(), "a bb\nccc", "dd", 100);
        assert_eq!(p.tokens, vec![-1, 1, 2, 0, 3, -2, 2, -3]);
    }

    #[test]
    fn drops_far_lines_first_and_respects_budget_exactly() {
        let prefix = "l1 l1\nl2 l2\nl3 l3\nnear cursor";
        let suffix = "s1\ns2 s2\ns3 s3 s3\ns4";
        for budget in 3..30 {
            let p = build(&WordTokenizer, &qwen(), prefix, suffix, budget);
            assert!(
                p.tokens.len() <= budget,
                "budget {budget}: {}",
                p.tokens.len()
            );
        }
        let p = build(&WordTokenizer, &qwen(), prefix, suffix, 12);
        // 9 tokens for text: the suffix may claim a quarter (2: "s1\n"),
        // the prefix gets 7, and its longest fitting tail is "l3 l3\nnear cursor".
        assert_eq!(p.suffix_tokens, 2);
        assert_eq!(p.prefix_tokens, 5);
        assert_eq!(p.tokens, vec![-1, 2, 2, 0, 4, 6, -2, 2, 0, -3]);
    }

    #[test]
    fn a_single_long_line_is_cut_at_tokens() {
        let p = build(&WordTokenizer, &qwen(), "a b c d e f", "", 6);
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
        let p = build(&CharTokenizer, &qwen(), "return ", "\n", 100);
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
        let p = build(&WordTokenizer, &t, "x", "y y y", 10);
        assert_eq!(p.tokens, vec![1]);
        assert_eq!(p.suffix_tokens, 0);
    }
}
