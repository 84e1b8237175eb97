//! Cross-file snippets in front of the FIM prompt, within their own exact
//! token budget.
//!
//! Models trained on repository-level data (Qwen2.5-Coder) get their own
//! format, with the real repository name and relative paths:
//! `<|repo_name|>name\n<|file_sep|>a/b.py\n…\n<|file_sep|>cur.py\n<FIM>`,
//! unless they were tuned for chat since (see `ContextLayout::Auto`).
//! Other models get each snippet as comments in the target language, under a
//! path header, right above the function or method around the cursor (or
//! the statement or class member, outside any; at the start of the prefix
//! when it starts before the window).
//!
//! The snippets come before the code being typed, so that while they stay
//! the same the engine's KV cache keeps them across keystrokes.

use super::fim::{FimFamily, FimTemplate, Piece};
use super::{Prompt, Token, Tokenizer};
use crate::config::{ContextConfig, ContextLayout};
use crate::retrieval::Snippet;

/// What retrieval found for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrossFileContext {
    /// The workspace folder's name.
    pub repo_name: String,
    /// The current file, relative to the same folder.
    pub path: String,
    /// Best first; more than fit, the budget decides how many are used.
    pub snippets: Vec<Snippet>,
    /// Most tokens for all of it (headers and separators included).
    pub budget: usize,
    pub layout: ContextLayout,
}

impl CrossFileContext {
    /// The context for a file named `path` in the workspace folder
    /// `repo_name`, with the budget and layout of `settings`.
    pub fn new(
        repo_name: String,
        path: String,
        snippets: Vec<Snippet>,
        settings: &ContextConfig,
    ) -> CrossFileContext {
        CrossFileContext {
            repo_name,
            path,
            snippets,
            budget: settings.budget_tokens as usize,
            layout: settings.layout,
        }
    }
}

/// Ids of the repository-level tokens of a model that has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepoTokens {
    pub repo_name: Token,
    pub file_sep: Token,
    /// Tuned for chat after its repository-level training (an instruct
    /// model): `ContextLayout::Auto` shows it comments.
    pub chat_tuned: bool,
}

impl RepoTokens {
    /// Qwen2.5-Coder's `<|repo_name|>` and `<|file_sep|>`; other families
    /// either lack such tokens or were not trained on this layout.
    /// `model_names` are the model's own (GGUF `general.name`,
    /// `general.finetune`): one that says "instruct" or "chat" is
    /// `chat_tuned`.
    pub fn detect(
        template: &FimTemplate,
        lookup: &dyn Fn(&str) -> Option<Token>,
        model_names: &[&str],
    ) -> Option<Self> {
        if template.family != FimFamily::Qwen {
            return None;
        }
        let chat_tuned = model_names.iter().any(|n| {
            let n = n.to_lowercase();
            n.contains("instruct") || n.contains("chat")
        });
        Some(RepoTokens {
            repo_name: lookup("<|repo_name|>")?,
            file_sep: lookup("<|file_sep|>")?,
            chat_tuned,
        })
    }

    /// The tokens to lay `layout` out with: none where it is comments.
    fn for_layout(self, layout: ContextLayout) -> Option<Self> {
        match layout {
            ContextLayout::Repo => Some(self),
            ContextLayout::Auto => (!self.chat_tuned).then_some(self),
            ContextLayout::Comments => None,
        }
    }
}

/// The FIM prompt for `prefix` and `suffix` within `fim_budget`, preceded
/// by as many of `context`'s snippets (best first) as fit its budget.
/// Returns the prompt and the number of context tokens in it.
// The arguments are the FIM prompt's own (as in `super::build`) plus the
// context; a struct for them would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn build_with_context(
    tok: &dyn Tokenizer,
    template: &FimTemplate,
    repo: Option<RepoTokens>,
    context: Option<&CrossFileContext>,
    prefix: &str,
    suffix: &str,
    fim_budget: usize,
    shape: super::Shape,
    definition_start: Option<usize>,
) -> (Prompt, usize) {
    let mut prompt = super::build(tok, template, prefix, suffix, fim_budget, shape);
    let Some(ctx) = context.filter(|c| !c.snippets.is_empty() && c.budget > 0) else {
        return (prompt, 0);
    };
    let (context_tokens, at) = match repo.and_then(|r| r.for_layout(ctx.layout)) {
        // Repository format: before everything.
        Some(r) => (repo_layout(tok, r, ctx), 0),
        // Comments go right before the definition the cursor is in, when
        // it starts inside the prompt's window: nearest the cursor, where a
        // small model heeds them most; also the file above it stays in the
        // KV cache when the snippets change. Otherwise where the prefix
        // text starts.
        None => {
            let start = prefix_start(template, tok, &prompt);
            let near = definition_start
                .and_then(|d| Some((d, definition_at(tok, &prompt, start, prefix, d)?)));
            let indent = near.map_or("", |(d, _)| {
                let line = &prefix[d..];
                &line[..line.len() - line.trim_start_matches([' ', '\t']).len()]
            });
            let at = start + near.map_or(0, |(_, k)| k);
            (comment_layout(tok, ctx, indent), at)
        }
    };
    if context_tokens.is_empty() {
        return (prompt, 0);
    }
    let n = context_tokens.len();
    prompt.tokens.splice(at..at, context_tokens);
    (prompt, n)
}

/// Index in `prompt.tokens` where the prefix text begins.
fn prefix_start(template: &FimTemplate, tok: &dyn Tokenizer, prompt: &Prompt) -> usize {
    let mut at = 0;
    for piece in &template.layout {
        match piece {
            Piece::Prefix => return at,
            Piece::Marker(_) => at += 1,
            Piece::Text(t) => at += tok.tokenize(t).len(),
            Piece::Suffix => at += prompt.suffix_tokens,
        }
    }
    0
}

/// How many of the prompt's prefix tokens come before the definition
/// starting at byte `d` of `prefix`: only where the kept prefix text starts
/// at or before it and its tokens split cleanly there (a line start nearly
/// always is a token boundary).
fn definition_at(
    tok: &dyn Tokenizer,
    prompt: &Prompt,
    start: usize,
    prefix: &str,
    d: usize,
) -> Option<usize> {
    let from = prompt.prefix_from?;
    let before = tok.tokenize(prefix.get(from..d)?);
    let k = before.len();
    (k < prompt.prefix_tokens && prompt.tokens.get(start..start + k)? == before.as_slice())
        .then_some(k)
}

/// Chooses snippets best first while they fit (one that does not fit is
/// skipped, a smaller one after it may still fit), and lays them out best
/// last, nearest the current file.
fn choose(costs: &[usize], fixed: usize, budget: usize) -> Vec<usize> {
    let mut used = fixed;
    let mut chosen = Vec::new();
    for (i, &c) in costs.iter().enumerate() {
        if used + c <= budget {
            used += c;
            chosen.push(i);
        }
    }
    chosen.reverse();
    chosen
}

/// Qwen's repository layout: one `<|file_sep|>path` block per file, its
/// pieces in file order separated by blank lines (as a file whose other
/// parts were left out), the file of the best piece last.
fn repo_layout(tok: &dyn Tokenizer, r: RepoTokens, ctx: &CrossFileContext) -> Vec<Token> {
    let head = tok.tokenize(&format!("{}\n", ctx.repo_name));
    let tail = tok.tokenize(&format!("{}\n", ctx.path));
    let fixed = 1 + head.len() + 1 + tail.len();
    // Best first, while they fit: a piece costs its text, and a block
    // header for a file not yet shown.
    let mut chosen: Vec<usize> = Vec::new();
    let mut used = fixed;
    for (i, s) in ctx.snippets.iter().enumerate() {
        let new_file = !chosen.iter().any(|&c| ctx.snippets[c].path == s.path);
        let cost = tok.tokenize(&format!("{}\n\n", s.text.trim_end())).len()
            + if new_file {
                1 + tok.tokenize(&format!("{}\n", s.path)).len()
            } else {
                0
            };
        if used + cost <= ctx.budget {
            used += cost;
            chosen.push(i);
        }
    }
    // Joined text can tokenize a little differently from its parts: drop
    // the worst piece until the whole fits.
    loop {
        let body = repo_blocks(tok, r, ctx, &chosen);
        if chosen.is_empty() {
            return Vec::new();
        }
        if fixed + body.len() <= ctx.budget {
            let mut out = Vec::with_capacity(fixed + body.len());
            out.push(r.repo_name);
            out.extend(head);
            out.extend(body);
            out.push(r.file_sep);
            out.extend(tail);
            return out;
        }
        chosen.pop();
    }
}

/// The file blocks for the `chosen` snippets (indices, best first).
fn repo_blocks(
    tok: &dyn Tokenizer,
    r: RepoTokens,
    ctx: &CrossFileContext,
    chosen: &[usize],
) -> Vec<Token> {
    // Files in the order of their best piece, best last.
    let mut files: Vec<&str> = Vec::new();
    for &i in chosen {
        let path = ctx.snippets[i].path.as_str();
        if !files.contains(&path) {
            files.push(path);
        }
    }
    files.reverse();
    let mut out = Vec::new();
    for path in files {
        let mut pieces: Vec<&Snippet> = chosen
            .iter()
            .map(|&i| &ctx.snippets[i])
            .filter(|s| s.path == path)
            .collect();
        pieces.sort_by_key(|s| s.line);
        let texts: Vec<&str> = pieces.iter().map(|s| s.text.trim_end()).collect();
        out.push(r.file_sep);
        out.extend(tok.tokenize(&format!("{path}\n{}\n", texts.join("\n\n"))));
    }
    out
}

/// The line-comment marker of the current file's language.
fn comment_marker(path: &str) -> &'static str {
    let ext = path.rsplit('.').next().unwrap_or("");
    match ext {
        "java" | "js" | "jsx" | "ts" | "tsx" | "c" | "h" | "cc" | "cpp" | "hpp" | "cs" | "go"
        | "rs" | "kt" | "kts" | "scala" | "swift" | "dart" | "php" | "groovy" | "gradle" => "//",
        "sql" | "lua" | "hs" => "--",
        _ => "#",
    }
}

/// Snippets as comments with a path header, each line indented by `indent`.
fn comment_layout(tok: &dyn Tokenizer, ctx: &CrossFileContext, indent: &str) -> Vec<Token> {
    let c = comment_marker(&ctx.path);
    let bodies: Vec<Vec<Token>> = ctx
        .snippets
        .iter()
        .map(|s| {
            let mut text = format!("{indent}{c} Path: {}\n", s.path);
            for line in s.text.trim_end().lines() {
                text.push_str(indent);
                text.push_str(c);
                if !line.is_empty() {
                    text.push(' ');
                    text.push_str(line);
                }
                text.push('\n');
            }
            text.push('\n');
            tok.tokenize(&text)
        })
        .collect();
    let costs: Vec<usize> = bodies.iter().map(Vec::len).collect();
    choose(&costs, 0, ctx.budget)
        .into_iter()
        .flat_map(|i| bodies[i].iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::WordTokenizer;
    use super::*;
    use crate::prompt::Shape;
    const PLAIN: Shape = Shape {
        cursor_line_after_middle: false,
        middle_from: None,
    };

    fn template(family: FimFamily) -> FimTemplate {
        FimTemplate {
            family,
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

    /// The prompt for prefix `p` and suffix `s` within 10 tokens, with `c`.
    fn build(
        t: &FimTemplate,
        repo: Option<RepoTokens>,
        c: Option<&CrossFileContext>,
    ) -> (Prompt, usize) {
        build_with_context(&WordTokenizer, t, repo, c, "p", "s", 10, PLAIN, None)
    }

    fn ctx(budget: usize) -> CrossFileContext {
        CrossFileContext {
            repo_name: "demo".into(),
            path: "app/main.py".into(),
            snippets: vec![
                Snippet {
                    path: "lib/a.py".into(),
                    text: "def a(): pass".into(),
                    line: 0,
                },
                Snippet {
                    path: "lib/b.py".into(),
                    text: "x y z w v u t s r q p o n m".into(),
                    line: 0,
                },
                Snippet {
                    path: "lib/c.py".into(),
                    text: "c".into(),
                    line: 0,
                },
            ],
            budget,
            layout: ContextLayout::Auto,
        }
    }

    #[test]
    fn repo_format_best_last_within_budget() {
        let repo = RepoTokens {
            repo_name: -10,
            file_sep: -11,
            chat_tuned: false,
        };
        let t = template(FimFamily::Qwen);
        let (p, n) = build(&t, Some(repo), Some(&ctx(15)));
        // Header: 1 + "demo\n" (2); tail: 1 + "app/main.py\n" (2) = 6 fixed.
        // a: 1 + "lib/a.py\ndef a(): pass\n" (6) = 7; b is too big; c: 1 + 4 = 5 > 15-13.
        assert!(n <= 15, "{n}");
        assert_eq!(p.tokens[0], -10);
        assert_eq!(p.tokens.iter().filter(|&&t| t == -11).count(), 2);
        assert_eq!(n, 13);
        assert_eq!(&p.tokens[n..], &[-1, 1, -2, 1, -3]);
        // Bigger budget: all three, the best (a) last before the current path.
        let (p, n) = build(&t, Some(repo), Some(&ctx(100)));
        let seps: Vec<usize> = (0..n).filter(|&i| p.tokens[i] == -11).collect();
        assert_eq!(seps.len(), 4);
        // After the third separator: a's path, a newline, then "def" (3).
        assert_eq!(p.tokens[seps[2] + 3], 3);
        assert_eq!(p.tokens[seps[1] + 3], 1);
    }

    #[test]
    fn pieces_of_one_file_share_a_block_in_file_order() {
        let repo = RepoTokens {
            repo_name: -10,
            file_sep: -11,
            chat_tuned: false,
        };
        let piece = |path: &str, text: &str, line| Snippet {
            path: path.into(),
            text: text.into(),
            line,
        };
        let mut c = ctx(100);
        c.snippets = vec![
            piece("lib/a.py", "aaaaa", 30),
            piece("lib/b.py", "bb", 0),
            piece("lib/a.py", "aaa", 10),
        ];
        let t = template(FimFamily::Qwen);
        let (p, n) = build(&t, Some(repo), Some(&c));
        let body: Vec<i32> = p.tokens[..n].to_vec();
        // repo, demo \n, | b.py \n bb \n, | a.py \n aaa \n \n aaaaa \n, | main.py \n
        assert_eq!(
            body,
            vec![-10, 4, 0, -11, 8, 0, 2, 0, -11, 8, 0, 3, 0, 0, 5, 0, -11, 11, 0]
        );
    }

    #[test]
    fn comments_go_inside_the_prefix_for_other_models() {
        let t = template(FimFamily::StarCoder);
        let (p, n) = build(&t, None, Some(&ctx(100)));
        assert!(n > 0);
        assert_eq!(p.tokens[0], -1);
        assert_eq!(p.tokens.len(), 5 + n);
        assert_eq!(comment_marker("X.java"), "//");
        // No snippets or no budget: the plain prompt.
        let (plain, n) = build(&t, None, Some(&ctx(0)));
        assert_eq!((plain.tokens, n), (vec![-1, 1, -2, 1, -3], 0));
    }

    #[test]
    fn comments_go_before_the_definition_around_the_cursor() {
        let t = template(FimFamily::StarCoder);
        let prefix = "import x\n\nclass A:\n    # doc\n    def f(self):\n        y = 1\n        ";
        let d = prefix.find("    # doc").unwrap();
        let tok = WordTokenizer;
        let at_def = 1 + tok.tokenize(&prefix[..d]).len();
        let c = ctx(100);
        let with = |budget, def| {
            build_with_context(&tok, &t, None, Some(&c), prefix, "s", budget, PLAIN, def)
        };
        let plain = build_with_context(&tok, &t, None, None, prefix, "s", 100, PLAIN, None).0;
        let (near, n) = with(100, Some(d));
        assert!(n > 0);
        // The plain prompt with the comment block spliced in at the
        // definition, indented as it is ("#", "Path:", ...).
        assert_eq!(&near.tokens[..at_def], &plain.tokens[..at_def]);
        assert_eq!(&near.tokens[at_def + n..], &plain.tokens[at_def..]);
        assert_eq!(near.tokens[at_def], 1);
        // Without a definition: at the start of the prefix.
        let (top, n) = with(100, None);
        assert_eq!(&top.tokens[1 + n..], &plain.tokens[1..]);
        // A window that starts after the definition: at its start too.
        let (cut, n) = with(9, Some(d));
        let cut_plain = build_with_context(&tok, &t, None, None, prefix, "s", 9, PLAIN, None).0;
        assert_eq!(&cut.tokens[1 + n..], &cut_plain.tokens[1..]);
        // The repository format stays first.
        let repo = RepoTokens {
            repo_name: -10,
            file_sep: -11,
            chat_tuned: false,
        };
        let q = template(FimFamily::Qwen);
        let (p, _) = build_with_context(
            &tok,
            &q,
            Some(repo),
            Some(&c),
            prefix,
            "s",
            100,
            PLAIN,
            Some(d),
        );
        assert_eq!(p.tokens[0], -10);
    }

    #[test]
    fn chat_tuned_models_get_comments_unless_the_repository_format_is_asked_for() {
        let t = template(FimFamily::Qwen);
        let ids = |s: &str| match s {
            "<|repo_name|>" => Some(-10),
            "<|file_sep|>" => Some(-11),
            _ => None,
        };
        let base = RepoTokens::detect(&t, &ids, &["Qwen2.5 Coder 0.5B"]).unwrap();
        let instruct = RepoTokens::detect(
            &t,
            &ids,
            &["Qwen2.5 Coder 0.5B Instruct AWQ", "Instruct-AWQ"],
        )
        .unwrap();
        assert!(!base.chat_tuned && instruct.chat_tuned);
        assert!(RepoTokens::detect(&template(FimFamily::StarCoder), &ids, &[]).is_none());
        let comments = build(&t, None, Some(&ctx(100)));
        let mut c = ctx(100);
        for (repo, layout, repo_format) in [
            (base, ContextLayout::Auto, true),
            (instruct, ContextLayout::Auto, false),
            (instruct, ContextLayout::Repo, true),
            (base, ContextLayout::Comments, false),
        ] {
            c.layout = layout;
            let (p, n) = build(&t, Some(repo), Some(&c));
            assert!(n > 0);
            assert_eq!(p.tokens[0] == -10, repo_format, "{layout:?}");
            if !repo_format {
                assert_eq!((p, n), comments, "{layout:?}");
            }
        }
    }
}
