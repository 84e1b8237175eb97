//! `infill-eval`: how good and how fast infill's completions are, on public
//! and registry code, through the library's public API and the same
//! pipeline the server runs. Not shipped with the `infill` binary.

mod bench_index;
mod candidates;
mod cross;
mod cursor;
mod draft;
mod humaneval;
mod llama_vim;
mod replay;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use infill::config::flags::SettingFlags;

#[derive(Parser)]
#[command(
    name = "infill-eval",
    version,
    about = "Evaluations and benchmarks of infill's completions"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Score completions on a public FIM set (exact match, edit similarity,
    /// pass@1, suffix repeats, syntax errors), with and without cleaning.
    Eval {
        /// fim-py, fim-java, infill-single or infill-multi.
        #[arg(long, default_value = "fim-py")]
        set: humaneval::EvalSet,
        /// Score only the first N items.
        #[arg(long)]
        limit: Option<usize>,
        /// Folder holding the sets (default: ../shared/eval beside the repository).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Only the items named in this file (one name a line, as
        /// `--verbose` prints them): to ask again the items a change can
        /// touch.
        #[arg(long)]
        only_file: Option<PathBuf>,
        /// Print each item's cleaned completion (and where a second try
        /// replaced the first answer, that answer as the model gave it).
        #[arg(long)]
        verbose: bool,
        /// line-start (the gap's first line whole) or mid-line (its first
        /// token typed, the rest of the line to complete; lines of one
        /// character left out).
        #[arg(long, default_value = "line-start")]
        cursor: cursor::Cursor,
        /// Ask every item with one candidate and with this many
        /// (`completion.candidates`), each afresh, alternating which goes
        /// first: first line exact, any candidate's first line exact, and
        /// the time of both.
        #[arg(long)]
        versus_candidates: Option<u32>,
        #[command(flatten)]
        llama_vim: LlamaVimFlags,
        #[command(flatten)]
        settings: SettingFlags,
    },
    /// Score cross-file context on lines that use names defined in other
    /// files of registry packages (see scripts/fetch-cross-eval): exact
    /// match, edit similarity and identifier match, crossFile off and on.
    EvalCross {
        /// python, java or all.
        #[arg(long, default_value = "all")]
        language: String,
        /// Items per package (at most; spread evenly over its candidates).
        #[arg(long, default_value_t = 40)]
        limit: usize,
        /// Packages: tune (decide on these), test (report these) or all.
        #[arg(long, default_value = "tune")]
        split: cross::Split,
        /// line-start (after the indentation, nothing typed) or mid-line
        /// (the line's first token typed; the cross-file name in the rest).
        #[arg(long, default_value = "line-start")]
        cursor: cursor::Cursor,
        /// Package cache (default: ~/.cache/infill/cross-eval).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Print each item's completions.
        #[arg(long)]
        verbose: bool,
        /// Only items whose id (`package/path:line`, as `--verbose` prints
        /// it) contains one of these (repeatable; to look into single items).
        #[arg(long)]
        only: Vec<String>,
        /// Load no model: only measure which needed names retrieval shows.
        #[arg(long)]
        retrieval_only: bool,
        /// Compare two settings instead of crossFile off and on: the first
        /// arm has the flags' settings (crossFile as they set it), the
        /// second these on top (repeatable KEY=VALUE, as `--setting`).
        #[arg(long, value_name = "KEY=VALUE")]
        versus: Vec<String>,
        /// Both arms put this many lines before the cursor's after the FIM
        /// middle marker with it (the lines typed since the session's
        /// anchor; 0: the cursor line even when blank).
        #[arg(long)]
        middle_lines: Option<usize>,
        /// The same for the second arm only.
        #[arg(long)]
        versus_middle_lines: Option<usize>,
        /// Ask as an editor's automatic request does: the settings' answer
        /// shape (multi-line where the cursor allows) and time budget, and
        /// no answer where the trigger rules decline; scores the first line.
        #[arg(long)]
        as_editor: bool,
        /// Ask only the second arm (cross-file context on, the default, or
        /// `--versus`'s settings): half the time, for its own figures
        /// (empty answers and their causes); the first column repeats it.
        #[arg(long)]
        second_arm_only: bool,
        #[command(flatten)]
        llama_vim: LlamaVimFlags,
        #[command(flatten)]
        settings: SettingFlags,
    },
    /// Recency context on an edit replay: the difference between two
    /// versions of a package typed into the older one through the session,
    /// file by file, a completion asked on added lines that use a name an
    /// earlier hunk touched; recency off and on, paired (see
    /// scripts/fetch-replay for version pairs).
    EvalReplay {
        /// The older version's folder (the workspace).
        old: PathBuf,
        /// The newer version's folder.
        new: PathBuf,
        /// python or java: the files replayed.
        #[arg(long, default_value = "python")]
        language: String,
        /// Ask at most this many items (the first ones of the replay).
        #[arg(long, default_value_t = 40)]
        limit: usize,
        /// Print the files, hunks and items; load no model.
        #[arg(long)]
        plan_only: bool,
        /// Ask retrieval only (no completion): whether a needed name is in
        /// the snippets that fit the budget, and on which items the
        /// snippets differ (only those can answer differently).
        #[arg(long)]
        retrieval_only: bool,
        /// Ask only the items whose id (`path:line`) contains one of these
        /// (repeatable); the others are typed through. With
        /// `--retrieval-only --verbose`, each one's snippets are printed.
        #[arg(long)]
        only: Vec<String>,
        /// Print each answer.
        #[arg(long)]
        verbose: bool,
        #[command(flatten)]
        settings: SettingFlags,
    },
    /// Prompt lookup against plain decoding (not a test): each item asked
    /// with drafts off and with `--draft-tokens N` (needed: drafts are off
    /// by default), both afresh, alternating which goes first; identical
    /// answers, generation tokens/s of each, the drafts' acceptance.
    BenchDraft {
        /// fim-py, fim-java, infill-single or infill-multi.
        #[arg(long, default_value = "infill-multi")]
        set: humaneval::EvalSet,
        /// Take every Nth item of the set (a spread over its tasks: the
        /// sets hold many gaps of each task in a row).
        #[arg(long, default_value_t = 1)]
        every: usize,
        /// At most this many items (after `--every`).
        #[arg(long)]
        limit: Option<usize>,
        /// Only items whose id contains one of these (repeatable; to look
        /// into one that differs, with `INFILL_LOG=infill::engine=trace`).
        #[arg(long)]
        only: Vec<String>,
        /// Folder holding the sets (default: ../shared/eval beside the repository).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Print each item's answers and figures.
        #[arg(long)]
        verbose: bool,
        #[command(flatten)]
        settings: SettingFlags,
    },
    /// Measure the workspace index on a source tree (not a test): time to
    /// index, memory, time per incremental update and per query.
    BenchIndex {
        workspace: PathBuf,
        /// Updates and queries timed.
        #[arg(long, default_value_t = 500)]
        samples: usize,
    },
}

/// The llama.vim arm of `eval` and `eval-cross`.
#[derive(Args, Debug, Clone)]
struct LlamaVimFlags {
    /// Also ask llama.cpp's own llama-server (started here on the same
    /// model file and threads, stopped at the end) at `/infill` exactly as
    /// the llama.vim plugin asks it for the same cursor, score its answer
    /// as llama.vim shows it like infill's, and pair it against infill's
    /// answers on the same items.
    #[arg(long)]
    llama_vim: bool,
    /// The llama-server binary (default: where scripts/build-llama-server
    /// puts it).
    #[arg(long, value_name = "PATH", requires = "llama_vim")]
    llama_server: Option<PathBuf>,
    /// llama-vim (its samplers: top_k 40, top_p 0.90, infill, at
    /// temperature 1, with a fixed seed) or greedy (as scripts/bench-latency).
    #[arg(long, default_value = "llama-vim", requires = "llama_vim")]
    llama_vim_sampling: llama_vim::Sampling,
}

impl LlamaVimFlags {
    /// The running server, where the arm was asked for: infill's model file
    /// and thread count.
    fn start(&self, config: &infill::config::Config) -> anyhow::Result<Option<llama_vim::Server>> {
        if !self.llama_vim {
            return Ok(None);
        }
        let model = config
            .model
            .path
            .clone()
            .unwrap_or_else(infill::models::default_model_path);
        let threads = config
            .model
            .threads
            .map_or_else(infill::engine::llama::physical_cores, |t| t as usize);
        let binary = self
            .llama_server
            .clone()
            .unwrap_or_else(llama_vim::default_binary);
        let server = llama_vim::Server::start(&binary, &model, threads, self.llama_vim_sampling)?;
        eprintln!("llama.vim arm: {} ({threads} threads)", server.describe());
        Ok(Some(server))
    }
}

fn main() -> ExitCode {
    infill::logging::init();
    let cli = Cli::parse();
    match cli.command {
        Command::Eval {
            set,
            limit,
            data,
            only_file,
            verbose,
            cursor,
            versus_candidates,
            llama_vim,
            settings,
        } => match run_eval(
            set,
            (limit, data, cursor, only_file),
            verbose,
            (versus_candidates, &llama_vim),
            &settings,
        ) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("infill: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::EvalCross {
            language,
            limit,
            split,
            cursor,
            data,
            verbose,
            only,
            retrieval_only,
            versus,
            middle_lines,
            versus_middle_lines,
            as_editor,
            second_arm_only,
            llama_vim,
            settings,
        } => match run_eval_cross(
            &language,
            Selection {
                limit,
                split,
                cursor,
                only,
            },
            data,
            verbose,
            retrieval_only,
            &settings,
            &Comparison {
                versus,
                middle_lines: [middle_lines, versus_middle_lines.or(middle_lines)],
                as_editor,
                second_arm_only,
                llama_vim,
            },
        ) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("infill: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::BenchDraft {
            set,
            every,
            limit,
            only,
            data,
            verbose,
            settings,
        } => match run_bench_draft(set, (every, limit, &only), data, verbose, &settings) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("infill: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::EvalReplay {
            old,
            new,
            language,
            limit,
            plan_only,
            retrieval_only,
            only,
            verbose,
            settings,
        } => {
            let run = || -> anyhow::Result<()> {
                let config = settings.config().map_err(anyhow::Error::msg)?;
                let language = match language.as_str() {
                    "python" => infill::text::syntax::Language::Python,
                    "java" => infill::text::syntax::Language::Java,
                    other => anyhow::bail!("unknown language `{other}`; python or java"),
                };
                replay::run(
                    &old,
                    &new,
                    language,
                    (limit, &only),
                    (plan_only, retrieval_only),
                    verbose,
                    &config,
                )
            };
            match run() {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("infill: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::BenchIndex { workspace, samples } => match bench_index::run(&workspace, samples) {
            Ok(report) => {
                print!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("infill: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn run_eval(
    set: humaneval::EvalSet,
    (limit, data, cursor, only_file): (
        Option<usize>,
        Option<PathBuf>,
        cursor::Cursor,
        Option<PathBuf>,
    ),
    verbose: bool,
    (versus_candidates, llama_vim): (Option<u32>, &LlamaVimFlags),
    settings: &SettingFlags,
) -> anyhow::Result<()> {
    if versus_candidates.is_some() && llama_vim.llama_vim {
        anyhow::bail!("--llama-vim does not go with --versus-candidates");
    }
    let config = settings.config().map_err(anyhow::Error::msg)?;
    let data = data.unwrap_or_else(humaneval::default_data_dir);
    let mut items = humaneval::load(set, &data, limit, cursor)?;
    if let Some(path) = only_file {
        let names = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let names: std::collections::HashSet<&str> = names
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        items.retain(|i| names.contains(i.id.as_str()));
        if items.is_empty() {
            anyhow::bail!("no item of the set is named in {}", path.display());
        }
    }
    println!("cursor: {cursor}");
    let engine = ready_engine(&config)?;
    if let Some(n) = versus_candidates {
        if !(2..=infill::config::MAX_CANDIDATES).contains(&n) {
            anyhow::bail!(
                "--versus-candidates takes 2 to {}",
                infill::config::MAX_CANDIDATES
            );
        }
        let report = candidates::run(&items, engine.as_ref(), &config, n, |i, item, p| {
            if verbose {
                let ms =
                    |s: &infill::completion::pipeline::Suggestion| s.output.elapsed.as_millis();
                let gen_ms = |s: &infill::completion::pipeline::Suggestion| {
                    s.output.generate_time.as_millis()
                };
                eprintln!(
                    "[{}/{}] {} expected {:?}: one {:?} ({} ms, generation {} ms); {} {:?} + {:?} ({} ms, generation {} ms)",
                    i + 1,
                    items.len(),
                    item.id,
                    item.expected.trim(),
                    p.single.text,
                    ms(&p.single),
                    gen_ms(&p.single),
                    n,
                    p.several.text,
                    p.several.alternatives,
                    ms(&p.several),
                    gen_ms(&p.several),
                );
            }
        })?;
        println!("{report}");
        return Ok(());
    }
    let server = llama_vim.start(&config)?;
    let report = humaneval::run(
        &items,
        engine.as_ref(),
        &config,
        server.as_ref(),
        |i, item, done, vim| {
            if verbose {
                eprintln!("[{}/{}] {}: {:?}", i + 1, items.len(), item.id, done.text);
                if let Some(first) = &done.dropped_first {
                    eprintln!("  first answer (dropped): {first:?}");
                }
                // With `--candidates N`: what the engine gave besides the
                // answer, and what the cleaning offered of it.
                for raw in &done.output.alternatives {
                    eprintln!(
                        "  raw alternative ({:.2}): {:?}",
                        raw.first_logprob, raw.text
                    );
                }
                for offered in &done.alternatives {
                    eprintln!("  offered: {offered:?}");
                }
                if let Some(v) = vim {
                    let cause = v.shown.empty.map(|c| format!("  empty: {c}"));
                    eprintln!(
                        "  vim {:?}{} ({} prompt tokens, {} evaluated)",
                        v.shown.text,
                        cause.unwrap_or_default(),
                        v.answer.prompt_tokens,
                        v.answer.evaluated_tokens
                    );
                }
            }
        },
    )?;
    println!("{report}");
    Ok(())
}

/// Which items `bench-draft` takes: every Nth, at most so many, those
/// whose id contains one of these.
type Pick<'a> = (usize, Option<usize>, &'a [String]);

fn run_bench_draft(
    set: humaneval::EvalSet,
    (every, limit, only): Pick,
    data: Option<PathBuf>,
    verbose: bool,
    settings: &SettingFlags,
) -> anyhow::Result<()> {
    let config = settings.config().map_err(anyhow::Error::msg)?;
    let draft_tokens = config.completion.draft_tokens as usize;
    if draft_tokens == 0 {
        anyhow::bail!("drafts are off by default: give --draft-tokens N (e.g. 8) to compare");
    }
    let data = data.unwrap_or_else(humaneval::default_data_dir);
    let items: Vec<_> = humaneval::load(set, &data, None, cursor::Cursor::LineStart)?
        .into_iter()
        .step_by(every.max(1))
        .filter(|item| only.is_empty() || only.iter().any(|o| item.id.contains(o.as_str())))
        .take(limit.unwrap_or(usize::MAX))
        .collect();
    let engine = ready_engine(&config)?;
    let report = draft::run(
        &items,
        engine.as_ref(),
        &config,
        draft_tokens,
        |i, item, off, on| {
            if verbose {
                eprintln!(
                    "[{}/{}] {} {}: {} tokens, off {:.1} tok/s, on {:.1} tok/s, {}/{} accepted",
                    i + 1,
                    items.len(),
                    item.id,
                    if off.text == on.text {
                        "same"
                    } else {
                        "DIFFERENT"
                    },
                    off.generated_tokens,
                    off.generated_tokens as f64 / off.generate_time.as_secs_f64().max(1e-9),
                    on.generated_tokens as f64 / on.generate_time.as_secs_f64().max(1e-9),
                    on.accepted_tokens,
                    on.drafted_tokens,
                );
            }
        },
    )?;
    println!("{report}");
    for (id, off, on) in &report.differing {
        println!("differs: {id}\n  off: {off:?}\n  on:  {on:?}");
    }
    Ok(())
}

/// Starts the engine and waits for its model (for the eval commands).
fn ready_engine(
    config: &infill::config::Config,
) -> anyhow::Result<std::sync::Arc<dyn infill::engine::Engine>> {
    let engine = infill::engine::start(config);
    let description =
        infill::engine::wait_until_ready(engine.as_ref(), std::time::Duration::from_secs(600))
            .map_err(anyhow::Error::msg)?;
    eprintln!("model: {description}");
    Ok(engine)
}

/// Which items `eval-cross` takes.
/// What the second arm of `eval-cross` changes, when not cross-file context.
struct Comparison {
    versus: Vec<String>,
    middle_lines: [Option<usize>; 2],
    as_editor: bool,
    second_arm_only: bool,
    /// A third arm: llama-server asked as llama.vim asks.
    llama_vim: LlamaVimFlags,
}

struct Selection {
    limit: usize,
    split: cross::Split,
    cursor: cursor::Cursor,
    only: Vec<String>,
}

fn run_eval_cross(
    language: &str,
    selection: Selection,
    data: Option<PathBuf>,
    verbose: bool,
    retrieval_only: bool,
    settings: &SettingFlags,
    comparison: &Comparison,
) -> anyhow::Result<()> {
    let Comparison {
        versus,
        middle_lines,
        as_editor,
        second_arm_only,
        llama_vim,
    } = comparison;
    let middle_lines = *middle_lines;
    use infill::text::syntax::Language;
    let languages = match language {
        "python" => vec![Language::Python],
        "java" => vec![Language::Java],
        "all" => vec![Language::Python, Language::Java],
        other => anyhow::bail!("unknown language `{other}`; python, java or all"),
    };
    let config = settings.config().map_err(anyhow::Error::msg)?;
    let mut arms = if versus.is_empty() && middle_lines[0] == middle_lines[1] {
        cross::Arms::cross_file(&config)
    } else {
        let second = settings.config_with(versus).map_err(anyhow::Error::msg)?;
        let mut change = versus.join(" ");
        if middle_lines[0] != middle_lines[1] {
            let lines = |m: Option<usize>| m.map_or("none".to_string(), |k| k.to_string());
            change = format!(
                "{change} middle lines {} -> {}",
                lines(middle_lines[0]),
                lines(middle_lines[1])
            );
        }
        cross::Arms::versus(&config, &second, change.trim())
    };
    arms.middle_lines = middle_lines;
    arms.as_editor = *as_editor;
    arms.second_arm_only = *second_arm_only;
    if *second_arm_only {
        arms.labels[0] = format!("={}", arms.labels[1]);
        arms.change = format!(
            "{}; second arm only: the first column repeats it",
            arms.change
        );
    }
    let data = data.unwrap_or_else(cross::default_data_dir);
    let mut sets = Vec::new();
    for l in languages {
        let Selection {
            limit,
            split,
            cursor,
            ref only,
        } = selection;
        let mut packages = cross::load(&data, l, limit, cursor, split)?;
        if !only.is_empty() {
            for p in &mut packages {
                p.items
                    .retain(|item| only.iter().any(|o| item.id.contains(o.as_str())));
            }
        }
        sets.push((l, packages));
    }
    let engine = if retrieval_only {
        None
    } else {
        Some(ready_engine(&config)?)
    };
    if !retrieval_only {
        arms.llama_vim = llama_vim.start(&config)?.map(std::sync::Arc::new);
    }
    let mut reports = Vec::new();
    for (language, mut packages) in sets {
        let report = cross::run(
            language,
            selection.split,
            selection.cursor,
            &mut packages,
            engine.as_deref(),
            &arms,
            |o| {
                if !verbose {
                    return;
                }
                let cceval = if o.item.cceval {
                    "  (CrossCodeEval)"
                } else {
                    ""
                };
                eprintln!(
                    "{}{cceval}\n  typed {:?}, want {:?}",
                    o.item.id, o.item.typed, o.item.expected
                );
                if !o.needed.is_empty() {
                    eprintln!("  needs {:?}, not in context {:?}", o.needed, o.missing);
                }
                // The raw answer too where cleaning changed it, and the
                // first one where a second try replaced it.
                let answers = o.answers.iter().flatten().zip(&o.empty_causes);
                for (label, (a, cause)) in arms.short_labels().iter().zip(answers) {
                    match cause {
                        Some(cause) => eprintln!("  {label}  {:?}  empty: {cause}", a.text),
                        None => eprintln!("  {label}  {:?}", a.text),
                    }
                    if let Some(first) = &a.dropped_first {
                        eprintln!("       first {first:?}");
                    }
                    if a.output.text.trim() != a.text.trim() {
                        eprintln!("       raw {:?}", a.output.text);
                    }
                }
                if let Some(v) = &o.llama_vim {
                    let tokens = format!(
                        "({} prompt tokens, {} evaluated)",
                        v.answer.prompt_tokens, v.answer.evaluated_tokens
                    );
                    match v.shown.empty {
                        Some(cause) => {
                            eprintln!("  vim  {:?}  empty: {cause} {tokens}", v.shown.text)
                        }
                        None => eprintln!("  vim  {:?} {tokens}", v.shown.text),
                    }
                    if v.answer.content.trim() != v.shown.text.trim() {
                        eprintln!("       raw {:?}", v.answer.content);
                    }
                }
            },
        )?;
        println!("{report}\n");
        reports.push(report);
    }
    Ok(())
}
