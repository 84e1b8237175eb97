//! The `infill` command line: `serve` (LSP over stdio) and `complete` (headless).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use infill::config::Config;

#[derive(Parser)]
#[command(
    name = "infill",
    version,
    about = "Code completions from a local model, over LSP"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Speak LSP over stdin/stdout (what an editor starts).
    Serve {
        /// Accepted for clients that always pass it (vscode-languageclient);
        /// stdio is the only transport.
        #[arg(long, hide = true)]
        stdio: bool,
        #[command(flatten)]
        settings: SettingFlags,
    },
    /// Print the completion at FILE:LINE:COL (1-based; COL in characters).
    Complete {
        location: infill::headless::Location,
        /// Read the file's text from stdin instead of FILE.
        #[arg(long)]
        stdin: bool,
        #[command(flatten)]
        settings: SettingFlags,
    },
    /// Score completions on a public FIM set (exact match, edit similarity,
    /// pass@1, suffix repeats, syntax errors), with and without cleaning.
    Eval {
        /// fim-py, fim-java, infill-single or infill-multi.
        #[arg(long, default_value = "fim-py")]
        set: infill::eval::EvalSet,
        /// Score only the first N items.
        #[arg(long)]
        limit: Option<usize>,
        /// Folder holding the sets (default: ../shared/eval beside the repository).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Print each item's cleaned completion.
        #[arg(long)]
        verbose: bool,
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
        /// Items per package.
        #[arg(long, default_value_t = 10)]
        limit: usize,
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

/// Flags that set the same values as the LSP settings of the same name;
/// client settings, when sent, take precedence over them.
#[derive(Args)]
struct SettingFlags {
    /// model.path: the GGUF model file.
    #[arg(long, value_name = "PATH")]
    model: Option<PathBuf>,
    /// model.threads: decode threads (default: physical cores).
    #[arg(long)]
    threads: Option<u32>,
    /// model.contextSize: context window in tokens.
    #[arg(long)]
    context_size: Option<u32>,
    /// model.gpuLayers: layers to offload to a GPU (needs a GPU build).
    #[arg(long)]
    gpu_layers: Option<u32>,
    /// model.fimTemplate: force a FIM template (qwen, starcoder, codellama,
    /// deepseek, codestral, codegemma, prefix-only).
    #[arg(long)]
    fim_template: Option<String>,
    /// completion.maxTokens: most tokens generated per completion.
    #[arg(long)]
    max_tokens: Option<u32>,
    /// context.crossFile=false: no snippets from other files.
    #[arg(long)]
    no_cross_file: bool,
    /// completion.promptTokens: prompt budget for the text around the cursor.
    #[arg(long)]
    prompt_tokens: Option<u32>,
    /// context.budgetTokens: prompt budget for cross-file snippets.
    #[arg(long)]
    context_budget: Option<u32>,
    /// Any setting, as KEY=VALUE with a dotted key and a JSON value (a bare
    /// word is taken as a string), e.g. `--setting completion.cursorLineAfterMiddle=false`.
    #[arg(long = "setting", value_name = "KEY=VALUE")]
    settings: Vec<String>,
}

impl SettingFlags {
    fn config(&self) -> Result<Config, String> {
        let mut config = Config::default();
        let mut model = serde_json::Map::new();
        if let Some(p) = &self.model {
            model.insert("path".into(), p.to_string_lossy().into_owned().into());
        }
        if let Some(v) = self.threads {
            model.insert("threads".into(), v.into());
        }
        if let Some(v) = self.context_size {
            model.insert("contextSize".into(), v.into());
        }
        if let Some(v) = self.gpu_layers {
            model.insert("gpuLayers".into(), v.into());
        }
        if let Some(v) = &self.fim_template {
            model.insert("fimTemplate".into(), v.clone().into());
        }
        let mut settings = serde_json::json!({ "model": model });
        if let Some(v) = self.max_tokens {
            settings["completion"] = serde_json::json!({ "maxTokens": v });
        }
        if self.no_cross_file {
            settings["context"] = serde_json::json!({ "crossFile": false });
        }
        if let Some(v) = self.prompt_tokens {
            settings["completion"]["promptTokens"] = v.into();
        }
        if let Some(v) = self.context_budget {
            settings["context"]["budgetTokens"] = v.into();
        }
        for item in &self.settings {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("--setting {item}: expected KEY=VALUE"))?;
            let value = serde_json::from_str(value)
                .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
            let mut at = &mut settings;
            for part in key.split('.') {
                if !at.is_object() {
                    *at = serde_json::json!({});
                }
                at = &mut at[part];
            }
            *at = value;
        }
        // One validation path for flags and client settings.
        let report = config.merge_json(&settings);
        if let Some(err) = report.errors.first() {
            return Err(format!("invalid flag: {err}"));
        }
        Ok(config)
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("INFILL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("infill=info")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { settings, .. } => {
            let config = match settings.config() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("infill: {e}");
                    return ExitCode::from(2);
                }
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("infill: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(infill::lsp::serve_stdio(config));
            // The stdin reader sits in a blocking read that only the client
            // can end; don't wait for it after `exit`.
            runtime.shutdown_timeout(std::time::Duration::from_millis(200));
            ExitCode::SUCCESS
        }
        Command::Eval {
            set,
            limit,
            data,
            verbose,
            settings,
        } => match run_eval(set, limit, data, verbose, &settings) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("infill: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::EvalCross {
            language,
            limit,
            data,
            verbose,
            only,
            retrieval_only,
            settings,
        } => match run_eval_cross(
            &language,
            limit,
            data,
            verbose,
            &only,
            retrieval_only,
            &settings,
        ) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("infill: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::BenchIndex { workspace, samples } => {
            match infill::bench::run(&workspace, samples) {
                Ok(report) => {
                    print!("{report}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("infill: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Complete {
            location,
            stdin,
            settings,
        } => {
            let result = settings
                .config()
                .map_err(anyhow::Error::msg)
                .and_then(|config| infill::headless::complete(&location, stdin, &config));
            match result {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("infill: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn run_eval(
    set: infill::eval::EvalSet,
    limit: Option<usize>,
    data: Option<PathBuf>,
    verbose: bool,
    settings: &SettingFlags,
) -> anyhow::Result<()> {
    let config = settings.config().map_err(anyhow::Error::msg)?;
    let data = data.unwrap_or_else(infill::eval::default_data_dir);
    let items = infill::eval::load(set, &data, limit)?;
    let engine = ready_engine(&config)?;
    let report = infill::eval::run(&items, engine.as_ref(), &config, |i, item, text| {
        if verbose {
            eprintln!("[{}/{}] {}: {:?}", i + 1, items.len(), item.id, text);
        }
    })?;
    println!("{report}");
    Ok(())
}

/// Starts the engine and waits for its model (for the eval commands).
fn ready_engine(
    config: &infill::config::Config,
) -> anyhow::Result<std::sync::Arc<dyn infill::engine::Engine>> {
    let engine = infill::engine::start(config);
    match engine.wait_ready(std::time::Duration::from_secs(600)) {
        infill::engine::EngineState::Ready { description } => eprintln!("model: {description}"),
        infill::engine::EngineState::Failed(why) => anyhow::bail!("{why}"),
        infill::engine::EngineState::Loading => anyhow::bail!("the model did not load in time"),
    }
    Ok(engine)
}

fn run_eval_cross(
    language: &str,
    limit: usize,
    data: Option<PathBuf>,
    verbose: bool,
    only: &[String],
    retrieval_only: bool,
    settings: &SettingFlags,
) -> anyhow::Result<()> {
    use infill::text::syntax::Language;
    let languages = match language {
        "python" => vec![Language::Python],
        "java" => vec![Language::Java],
        "all" => vec![Language::Python, Language::Java],
        other => anyhow::bail!("unknown language `{other}`; python, java or all"),
    };
    let config = settings.config().map_err(anyhow::Error::msg)?;
    let data = data.unwrap_or_else(infill::crosseval::default_data_dir);
    let mut sets = Vec::new();
    for l in languages {
        let mut packages = infill::crosseval::load(&data, l, limit)?;
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
    let mut reports = Vec::new();
    for (language, mut packages) in sets {
        let report =
            infill::crosseval::run(language, &mut packages, engine.as_deref(), &config, |o| {
                if !verbose {
                    return;
                }
                eprintln!("{}\n  want {:?}", o.item.id, o.item.expected);
                if !o.needed.is_empty() {
                    eprintln!("  needs {:?}, not in context {:?}", o.needed, o.missing);
                }
                // The raw answer too where cleaning changed it, and the
                // first one where a second try replaced it.
                for (label, a) in ["off", "on "].iter().zip(o.answers.iter().flatten()) {
                    eprintln!("  {label}  {:?}", a.text);
                    if let Some(first) = &a.dropped_first {
                        eprintln!("       first {first:?}");
                    }
                    if a.output.text.trim() != a.text.trim() {
                        eprintln!("       raw {:?}", a.output.text);
                    }
                }
            })?;
        println!("{report}\n");
        reports.push(report);
    }
    Ok(())
}
