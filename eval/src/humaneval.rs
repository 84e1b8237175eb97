//! `infill-eval eval`: completion quality on public FIM sets (read from
//! `../shared/eval`, never copied), through the server's own pipeline
//! (cursor context → engine → cleaning), scored with and without the
//! cleaning step in one run.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use ropey::Rope;
use serde_json::Value;

use infill::completion::clean::syntax_errors;
use infill::completion::pipeline::{self, Extras, Mode, Suggestion};
use infill::completion::{cursor_context, CursorContext};
use infill::config::{Config, Multiline};
use infill::engine::{CancelFlag, Engine};
use infill::text::syntax::{Language, SyntaxTree};

use crate::cursor::{split_line, Cursor};
use crate::llama_vim;
use crate::stats::{self, discordant, format_p, mcnemar_exact, paired_bootstrap};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalSet {
    /// HumanEval single-line FIM, Python (Qwen2.5-Coder's `hm_fim`).
    FimPy,
    /// HumanEval single-line FIM, Java.
    FimJava,
    /// HumanEval-infilling, single line.
    InfillSingle,
    /// HumanEval-infilling, multi-line.
    InfillMulti,
}

impl EvalSet {
    pub const ALL: [(&'static str, EvalSet); 4] = [
        ("fim-py", EvalSet::FimPy),
        ("fim-java", EvalSet::FimJava),
        ("infill-single", EvalSet::InfillSingle),
        ("infill-multi", EvalSet::InfillMulti),
    ];

    fn file(self) -> &'static str {
        match self {
            EvalSet::FimPy => "humaneval-fim-single-line/py.jsonl.gz",
            EvalSet::FimJava => "humaneval-fim-single-line/java.jsonl.gz",
            EvalSet::InfillSingle => "humaneval-infilling/HumanEval-SingleLineInfilling.jsonl.gz",
            EvalSet::InfillMulti => "humaneval-infilling/HumanEval-MultiLineInfilling.jsonl.gz",
        }
    }
}

impl std::str::FromStr for EvalSet {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        EvalSet::ALL
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, set)| *set)
            .ok_or_else(|| {
                let names: Vec<&str> = EvalSet::ALL.iter().map(|(n, _)| *n).collect();
                format!("unknown set `{s}`; one of {}", names.join(", "))
            })
    }
}

/// One gap to fill.
#[derive(Debug, Clone)]
pub struct Item {
    pub id: String,
    pub prefix: String,
    pub suffix: String,
    pub expected: String,
    pub multiline: bool,
    pub language: Language,
    /// Python test code appended after the completed program, if runnable.
    pub tests: Option<String>,
}

/// The default data folder: `../shared/eval` beside the repository.
pub fn default_data_dir() -> PathBuf {
    // This crate sits in `eval/` of the repository.
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/eval")
}

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a str> {
    v.get(name)
        .and_then(Value::as_str)
        .with_context(|| format!("record lacks the string field `{name}`"))
}

/// The set's items with the cursor placed as `cursor` says (mid-line: the
/// first line of the gap cut by `cursor::split_line`, its start moved into
/// the prefix; lines that cannot be cut are left out), the first `limit`.
pub fn load(
    set: EvalSet,
    data_dir: &Path,
    limit: Option<usize>,
    cursor: Cursor,
) -> Result<Vec<Item>> {
    let path = data_dir.join(set.file());
    let file =
        std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader = BufReader::new(flate2::read::GzDecoder::new(file));
    let mut items = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        if limit.is_some_and(|l| items.len() >= l) {
            break;
        }
        let line =
            line.with_context(|| format!("{}: cannot read line {}", path.display(), n + 1))?;
        let v: Value = serde_json::from_str(&line)
            .with_context(|| format!("{}: line {} is not JSON", path.display(), n + 1))?;
        let item =
            parse_item(set, &v).with_context(|| format!("{}: line {}", path.display(), n + 1))?;
        if let Some(item) = place_cursor(item, cursor) {
            items.push(item);
        }
    }
    if items.is_empty() {
        bail!("{} holds no items", path.display());
    }
    Ok(items)
}

/// `item` with the cursor where `cursor` says; `None` where the gap's first
/// line cannot be cut there.
fn place_cursor(mut item: Item, cursor: Cursor) -> Option<Item> {
    if cursor == Cursor::LineStart {
        return Some(item);
    }
    let (first, later) = match item.expected.split_once('\n') {
        Some((first, later)) => (first, Some(later)),
        None => (item.expected.as_str(), None),
    };
    let (typed, rest) = split_line(first, cursor)?;
    let expected = match later {
        Some(later) => format!("{rest}\n{later}"),
        None => rest.to_string(),
    };
    item.prefix.push_str(typed);
    item.expected = expected;
    Some(item)
}

fn parse_item(set: EvalSet, v: &Value) -> Result<Item> {
    Ok(match set {
        EvalSet::FimPy | EvalSet::FimJava => {
            // The gap is a whole line between `prompt` and `suffix`; the
            // prompt lacks that line's newline and the suffix may or may not
            // start with the next one.
            let suffix = field(v, "suffix")?;
            let language = if set == EvalSet::FimPy {
                Language::Python
            } else {
                Language::Java
            };
            Item {
                id: field(v, "name")?.to_string(),
                prefix: format!("{}\n", field(v, "prompt")?),
                suffix: format!("\n{}", suffix.strip_prefix('\n').unwrap_or(suffix)),
                expected: field(v, "canonical_solution")?.to_string(),
                multiline: false,
                language,
                tests: (set == EvalSet::FimPy)
                    .then(|| v.get("tests").and_then(Value::as_str).map(str::to_string))
                    .flatten(),
            }
        }
        EvalSet::InfillSingle | EvalSet::InfillMulti => {
            let entry = field(v, "entry_point")?;
            Item {
                id: field(v, "task_id")?.to_string(),
                prefix: field(v, "prompt")?.to_string(),
                // The gap ends with a newline: in an editor the cursor sits on
                // the line being written, and the suffix starts on the next.
                suffix: format!("\n{}", field(v, "suffix")?),
                expected: field(v, "canonical_solution")?.to_string(),
                multiline: set == EvalSet::InfillMulti,
                language: Language::Python,
                tests: Some(format!("\n{}\ncheck({entry})\n", field(v, "test")?)),
            }
        }
    })
}

/// Scores of one variant (raw model text, or cleaned).
#[derive(Debug, Default, Clone)]
pub struct Score {
    pub exact: usize,
    pub edit_similarity: f64,
    pub passed: usize,
    pub runnable: usize,
    pub repeats_suffix: usize,
    pub adds_syntax_errors: usize,
}

#[derive(Debug, Default, Clone)]
pub struct Report {
    pub items: usize,
    pub raw: Score,
    /// The first answer cleaned, without a second try: the baseline for
    /// `cleaned`, measured on the same answers.
    pub first_cleaned: Score,
    pub cleaned: Score,
    pub seconds: f64,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    /// Items answered by a second request (`CursorContext::second_try`).
    pub second_tries: usize,
    /// The answer's first line is the expected one's (cleaned, second try).
    pub first_line_exact: usize,
    /// The first line of the answer or of one of its alternatives
    /// (`completion.candidates`) is the expected one's.
    pub any_first_line_exact: usize,
    /// Answers offered, the alternatives included (none empty).
    pub offered: usize,
    /// Each item's time in the engine, both tries included.
    pub latencies_ms: Vec<f64>,
    /// Cleaned answers (second try included) that show nothing.
    pub empty: usize,
    /// Each item's cleaned answer's scores (second try included), for the
    /// pairing with the llama.vim arm.
    pub per_item: Vec<ItemOutcome>,
    /// The llama.vim arm, where it ran (`llama_vim`).
    pub llama_vim: Option<LlamaVimReport>,
}

/// One answer's scores.
#[derive(Debug, Default, Clone, Copy)]
pub struct ItemOutcome {
    pub exact: bool,
    pub edit_similarity: f64,
    /// Whether the filled program passed its tests (`None`: no tests).
    pub passed: Option<bool>,
}

/// The llama.vim arm of `eval`: llama-server's `/infill` asked as llama.vim
/// asks it, its answer as llama.vim shows it.
#[derive(Debug, Default, Clone)]
pub struct LlamaVimReport {
    pub setup: String,
    pub score: Score,
    pub per_item: Vec<ItemOutcome>,
    pub first_line_exact: usize,
    pub empty: usize,
    pub empty_causes: std::collections::BTreeMap<String, usize>,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    pub latencies_ms: Vec<f64>,
}

/// The first line with text, blanks at both ends trimmed.
fn first_line(text: &str) -> &str {
    first_nonblank_line(text).unwrap_or("")
}

/// Whether the first line of `answer` is that of `expected`.
pub fn first_line_exact(answer: &str, expected: &str) -> bool {
    !answer.trim().is_empty() && first_line(answer) == first_line(expected)
}

/// The value below which `p` of the sorted `values` lie.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

fn normalize(text: &str) -> String {
    text.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

fn first_nonblank_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).find(|l| !l.is_empty())
}

/// Whether a suggestion re-types the first line of code after the gap.
fn repeats_suffix(completion: &str, suffix: &str) -> bool {
    let Some(next) = first_nonblank_line(suffix) else {
        return false;
    };
    completion.lines().map(str::trim).any(|l| l == next)
}

/// Runs `program` with python3 (10 s limit); true if it exits 0.
fn python_passes(program: &str, scratch: &Path) -> bool {
    if std::fs::write(scratch, program).is_err() {
        return false;
    }
    Command::new("timeout")
        .arg("10")
        .arg("python3")
        .arg(scratch)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn score(
    item: &Item,
    text: &str,
    s: &mut Score,
    baseline_errors: usize,
    scratch: &Path,
) -> ItemOutcome {
    let got = normalize(text);
    let want = normalize(&item.expected);
    let mut outcome = ItemOutcome {
        exact: got == want,
        edit_similarity: strsim::normalized_levenshtein(&got, &want),
        passed: None,
    };
    s.exact += usize::from(outcome.exact);
    s.edit_similarity += outcome.edit_similarity;
    if repeats_suffix(text, &item.suffix) {
        s.repeats_suffix += 1;
    }
    let filled = format!("{}{}{}", item.prefix, text, item.suffix);
    if syntax_errors(item.language, &filled) > baseline_errors {
        s.adds_syntax_errors += 1;
    }
    if let Some(tests) = &item.tests {
        s.runnable += 1;
        let passed = python_passes(&format!("{filled}\n{tests}"), scratch);
        s.passed += usize::from(passed);
        outcome.passed = Some(passed);
    }
    outcome
}

/// The text of a llama.vim answer that is scored: its first line with
/// text for a one-line gap (the answer may go on past it), all of it for a
/// multi-line one.
fn llama_vim_text<'a>(item: &Item, shown: &'a str) -> &'a str {
    if item.multiline {
        shown
    } else {
        shown
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim_end()
    }
}

/// An item's settings (no time budget, which would cut answers at places
/// that depend on the machine; multi-line as the item is) and its cursor's
/// context under them.
pub fn item_context(item: &Item, config: &Config) -> (Config, CursorContext) {
    let mut cfg = config.clone();
    cfg.completion.time_budget_ms = 0;
    cfg.completion.multiline = if item.multiline {
        Multiline::Always
    } else {
        Multiline::Never
    };
    let doc = Rope::from_str(&format!("{}{}", item.prefix, item.suffix));
    let syntax = SyntaxTree::new(item.language, &doc);
    let ctx = cursor_context(&doc, syntax.as_ref(), item.prefix.chars().count(), &cfg);
    (cfg, ctx)
}

/// `item` asked through the server's pipeline with `config`'s settings
/// (no time budget: quality, not latency, is measured; multi-line as the
/// item is).
pub fn ask(
    item: &Item,
    engine: &dyn Engine,
    config: &Config,
    mode: Mode,
) -> Result<pipeline::Suggestion> {
    let (cfg, ctx) = item_context(item, config);
    pipeline::run(
        engine,
        &ctx,
        &cfg,
        Extras::default(),
        mode,
        &CancelFlag::default(),
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", item.id))
}

/// Completes every item through the server's pipeline and scores it, and
/// where `llama_vim` is given, asks it as llama.vim would and scores that
/// alike.
pub fn run(
    items: &[Item],
    engine: &dyn Engine,
    config: &Config,
    llama_vim: Option<&llama_vim::Server>,
    mut progress: impl FnMut(usize, &Item, &Suggestion, Option<&llama_vim::Asked>),
) -> Result<Report> {
    let started = std::time::Instant::now();
    let scratch = std::env::temp_dir().join(format!("infill-eval-{}.py", std::process::id()));
    let mut report = Report {
        items: items.len(),
        llama_vim: llama_vim.map(|s| LlamaVimReport {
            setup: s.describe(),
            ..Default::default()
        }),
        ..Default::default()
    };
    for (i, item) in items.iter().enumerate() {
        // Afresh: a prefix kept from the item before was evaluated in other
        // batches, which changes logits in their last digits and flips
        // near-tied choices, so an item's answer would depend on the items
        // asked before it (a run of a subset would not agree with the full
        // run). Items share little of their prompts, so it costs little.
        let done = ask(item, engine, config, Mode::Fresh)?;
        report.prompt_tokens += done.output.prompt_tokens;
        report.generated_tokens += done.output.generated_tokens;
        report.second_tries += usize::from(done.second_try());
        let baseline = syntax_errors(item.language, &format!("{}{}", item.prefix, item.suffix));
        // Raw: the model's first answer, as it came.
        score(item, done.first_raw(), &mut report.raw, baseline, &scratch);
        // A second try is made only where the first answer was cleaned
        // away whole.
        let first_cleaned = if done.second_try() { "" } else { &done.text };
        score(
            item,
            first_cleaned,
            &mut report.first_cleaned,
            baseline,
            &scratch,
        );
        let cleaned = done.text.clone();
        let outcome = score(item, &cleaned, &mut report.cleaned, baseline, &scratch);
        report.per_item.push(outcome);
        report.empty += usize::from(cleaned.trim().is_empty());
        report.first_line_exact += usize::from(first_line_exact(&cleaned, &item.expected));
        let offered = std::iter::once(&cleaned)
            .chain(&done.alternatives)
            .filter(|t| !t.trim().is_empty());
        report.offered += offered.clone().count();
        report.any_first_line_exact +=
            usize::from(offered.clone().any(|t| first_line_exact(t, &item.expected)));
        report
            .latencies_ms
            .push(done.output.elapsed.as_secs_f64() * 1000.0);
        let mut asked = None;
        if let (Some(server), Some(vim)) = (llama_vim, report.llama_vim.as_mut()) {
            let text = format!("{}{}", item.prefix, item.suffix);
            let a = llama_vim::ask(server, &text, item.prefix.len())
                .map_err(|e| anyhow::anyhow!("{}: {e:#}", item.id))?;
            let answer = llama_vim_text(item, &a.shown.text);
            vim.per_item
                .push(score(item, answer, &mut vim.score, baseline, &scratch));
            vim.first_line_exact += usize::from(first_line_exact(answer, &item.expected));
            if let Some(cause) = a.shown.empty {
                vim.empty += 1;
                *vim.empty_causes.entry(cause.to_string()).or_default() += 1;
            }
            vim.prompt_tokens += a.answer.prompt_tokens;
            vim.generated_tokens += a.answer.generated_tokens;
            vim.latencies_ms
                .push(a.answer.elapsed.as_secs_f64() * 1000.0);
            asked = Some(a);
        }
        progress(i, item, &done, asked.as_ref());
    }
    let _ = std::fs::remove_file(&scratch);
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.items.max(1) as f64;
        let pct = |k: usize| 100.0 * k as f64 / n;
        writeln!(
            f,
            "items: {}  ({:.1} s, {} prompt tokens, {} generated, {} second tries)",
            self.items, self.seconds, self.prompt_tokens, self.generated_tokens, self.second_tries
        )?;
        // Cleaned without and with the second try (`completion.secondTry`).
        writeln!(
            f,
            "{:<28} {:>10} {:>10} {:>10}",
            "metric", "raw", "cleaned", "2nd try"
        )?;
        let scores = [&self.raw, &self.first_cleaned, &self.cleaned];
        let row = |f: &mut std::fmt::Formatter<'_>, name: &str, v: [String; 3]| {
            write!(f, "{name:<28} {:>10} {:>10} {:>10}", v[0], v[1], v[2])
        };
        row(
            f,
            "exact match",
            scores.map(|s| format!("{:.1}%", pct(s.exact))),
        )?;
        writeln!(f)?;
        row(
            f,
            "edit similarity",
            scores.map(|s| format!("{:.3}", s.edit_similarity / n)),
        )?;
        writeln!(f)?;
        if self.raw.runnable > 0 {
            let p = |s: &Score| format!("{:.1}%", 100.0 * s.passed as f64 / s.runnable as f64);
            row(f, "pass@1", scores.map(p))?;
            writeln!(f)?;
        }
        row(
            f,
            "repeats the suffix",
            scores.map(|s| format!("{:.1}%", pct(s.repeats_suffix))),
        )?;
        writeln!(f)?;
        row(
            f,
            "adds syntax errors",
            scores.map(|s| format!("{:.1}%", pct(s.adds_syntax_errors))),
        )?;
        writeln!(f)?;
        // Several candidates (`completion.candidates`): the first line of
        // the answer, and of any answer offered (cleaned, second try).
        let mut sorted = self.latencies_ms.clone();
        sorted.sort_by(f64::total_cmp);
        let mean = sorted.iter().sum::<f64>() / sorted.len().max(1) as f64;
        writeln!(
            f,
            "first line exact {:.1}%, any candidate's first line exact {:.1}% ({:.2} answers offered an item)",
            pct(self.first_line_exact),
            pct(self.any_first_line_exact),
            self.offered as f64 / n
        )?;
        write!(
            f,
            "latency in the engine: mean {:.0} ms, p50 {:.0} ms, p90 {:.0} ms",
            mean,
            percentile(&sorted, 0.5),
            percentile(&sorted, 0.9)
        )?;
        if let Some(vim) = &self.llama_vim {
            self.write_llama_vim(f, vim)?;
        }
        Ok(())
    }
}

impl Report {
    /// The llama.vim arm beside infill's cleaned answers (second try
    /// included), paired on the same items: exact McNemar for the yes/no
    /// metrics, a paired bootstrap of the mean difference (infill -
    /// llama.vim) for edit similarity.
    fn write_llama_vim(
        &self,
        f: &mut std::fmt::Formatter<'_>,
        vim: &LlamaVimReport,
    ) -> std::fmt::Result {
        let n = self.items.max(1) as f64;
        let pct = |k: usize| 100.0 * k as f64 / n;
        let pairs = || self.per_item.iter().zip(&vim.per_item);
        writeln!(
            f,
            "\n\nllama.vim arm: llama-server /infill asked as llama.vim asks it ({})",
            vim.setup
        )?;
        writeln!(
            f,
            "{:<28} {:>10} {:>10}   paired test (infill vs llama.vim)",
            "metric", "infill", "llama.vim"
        )?;
        let yes_no = |f: &mut std::fmt::Formatter<'_>,
                      name: &str,
                      [a, b]: [usize; 2],
                      of: f64,
                      (lost, gained): (usize, usize)| {
            writeln!(
                f,
                "{name:<28} {:>9.1}% {:>9.1}%   McNemar p={} ({lost} right with llama.vim only, {gained} with infill only)",
                100.0 * a as f64 / of,
                100.0 * b as f64 / of,
                format_p(mcnemar_exact(lost, gained)),
            )
        };
        yes_no(
            f,
            "exact match",
            [self.cleaned.exact, vim.score.exact],
            n,
            discordant(pairs().map(|(i, v)| (v.exact, i.exact))),
        )?;
        let diffs: Vec<f64> = pairs()
            .map(|(i, v)| i.edit_similarity - v.edit_similarity)
            .collect();
        let b = paired_bootstrap(&diffs, stats::BOOTSTRAP_RESAMPLES, stats::BOOTSTRAP_SEED);
        writeln!(
            f,
            "{:<28} {:>10.3} {:>10.3}   diff {:+.3} [{:+.3}, {:+.3}] p={}",
            "edit similarity",
            self.cleaned.edit_similarity / n,
            vim.score.edit_similarity / n,
            b.mean,
            b.low,
            b.high,
            format_p(b.p),
        )?;
        if vim.score.runnable > 0 {
            let runs = pairs().filter_map(|(i, v)| Some((v.passed?, i.passed?)));
            yes_no(
                f,
                "pass@1",
                [self.cleaned.passed, vim.score.passed],
                vim.score.runnable as f64,
                discordant(runs),
            )?;
        }
        let plain = |f: &mut std::fmt::Formatter<'_>, name: &str, a: String, b: String| {
            writeln!(f, "{name:<28} {a:>10} {b:>10}")
        };
        plain(
            f,
            "repeats the suffix",
            format!("{:.1}%", pct(self.cleaned.repeats_suffix)),
            format!("{:.1}%", pct(vim.score.repeats_suffix)),
        )?;
        plain(
            f,
            "adds syntax errors",
            format!("{:.1}%", pct(self.cleaned.adds_syntax_errors)),
            format!("{:.1}%", pct(vim.score.adds_syntax_errors)),
        )?;
        plain(
            f,
            "first line exact",
            format!("{:.1}%", pct(self.first_line_exact)),
            format!("{:.1}%", pct(vim.first_line_exact)),
        )?;
        plain(
            f,
            "empty answers",
            self.empty.to_string(),
            vim.empty.to_string(),
        )?;
        for (cause, count) in &vim.empty_causes {
            writeln!(f, "  {cause:<26} {:>10} {count:>10}", "")?;
        }
        let mut sorted = vim.latencies_ms.clone();
        sorted.sort_by(f64::total_cmp);
        write!(
            f,
            "llama.vim arm: {} prompt tokens, {} generated; latency (HTTP, one slot, cache reuse) p50 {:.0} ms, p90 {:.0} ms",
            vim.prompt_tokens,
            vim.generated_tokens,
            percentile(&sorted, 0.5),
            percentile(&sorted, 0.9)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_the_public_sets() {
        let dir = default_data_dir();
        assert!(
            dir.exists(),
            "the public sets are read from {} (shared/ beside the repository, as in CI)",
            dir.display()
        );
        for (_, set) in EvalSet::ALL {
            let items = load(set, &dir, Some(3), Cursor::LineStart).unwrap();
            assert_eq!(items.len(), 3);
            assert!(items.iter().all(|i| !i.expected.trim().is_empty()));
        }
    }

    #[test]
    fn mid_line_items_type_the_start_of_the_gap() {
        let dir = default_data_dir();
        assert!(dir.exists(), "no public sets at {}", dir.display());
        for (_, set) in EvalSet::ALL {
            let whole = load(set, &dir, Some(20), Cursor::LineStart).unwrap();
            let mid = load(set, &dir, None, Cursor::MidLine).unwrap();
            let mut mid = mid.iter();
            for item in &whole {
                // Lines that cannot be cut (`}`) are left out.
                if split_line(item.expected.lines().next().unwrap(), Cursor::MidLine).is_none() {
                    continue;
                }
                let m = mid.next().unwrap();
                assert_eq!(m.id, item.id);
                let typed = &m.prefix[item.prefix.len()..];
                assert!(!typed.trim().is_empty(), "{}: nothing typed", item.id);
                assert!(!m.expected.trim().is_empty(), "{}: nothing left", item.id);
                assert_eq!(
                    format!("{typed}{}", m.expected),
                    item.expected,
                    "{}",
                    item.id
                );
                assert_eq!(m.suffix, item.suffix);
            }
        }
    }

    #[test]
    fn scoring_helpers() {
        assert!(repeats_suffix("x = 1\nreturn x", "\n    return x\n"));
        assert!(!repeats_suffix("x = 1", "\n    return x\n"));
        assert_eq!(
            syntax_errors(Language::Python, "def f():\n    return 1\n"),
            0
        );
        assert!(syntax_errors(Language::Python, "def f(:\n    return (1\n") > 0);
        assert_eq!(normalize("  a  \n b \n\n"), "a\n b");
    }

    #[test]
    fn canonical_solutions_pass_their_own_tests() {
        let dir = default_data_dir();
        assert!(dir.exists(), "no public sets at {}", dir.display());
        let scratch =
            std::env::temp_dir().join(format!("infill-eval-test-{}.py", std::process::id()));
        for set in [EvalSet::FimPy, EvalSet::InfillSingle] {
            for cursor in [Cursor::LineStart, Cursor::MidLine] {
                for item in load(set, &dir, Some(2), cursor).unwrap() {
                    let mut s = Score::default();
                    let expected = item.expected.trim_end_matches('\n').to_string();
                    score(&item, &expected, &mut s, usize::MAX, &scratch);
                    assert_eq!((s.exact, s.passed, s.runnable), (1, 1, 1), "{}", item.id);
                }
            }
        }
        let _ = std::fs::remove_file(&scratch);
    }
}
