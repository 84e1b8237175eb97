//! The `infill` command line: `serve` (LSP over stdio) and `complete` (one
//! completion without an editor). Evaluation and benchmarks are another
//! binary, `infill-eval` (the `eval/` crate): this one ships to users.

mod complete;
mod stats;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use infill::config::flags::SettingFlags;

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
    /// Acceptance and persistence of suggestions, from the local store.
    Stats(stats::StatsArgs),
    /// Print the completion at FILE:LINE:COL (1-based; COL in characters).
    Complete {
        location: complete::Location,
        /// Read the file's text from stdin instead of FILE.
        #[arg(long)]
        stdin: bool,
        #[command(flatten)]
        settings: SettingFlags,
    },
}

fn main() -> ExitCode {
    infill::logging::init();
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
            // llama.cpp must be done before the process exits: its work
            // (the last chunk of a cancelled prompt, freeing the model)
            // racing with the exit's C++ static destructors crashed it now
            // and then (status -11 after `exit`, found by bench-replay).
            if !infill::engine::wait_for_threads(std::time::Duration::from_secs(3)) {
                tracing::warn!("the model was still busy when the server exited");
            }
            ExitCode::SUCCESS
        }
        Command::Stats(args) => print_result(stats::run(&args)),
        Command::Complete {
            location,
            stdin,
            settings,
        } => {
            let result = settings
                .config()
                .map_err(anyhow::Error::msg)
                .and_then(|config| complete::complete(&location, stdin, &config));
            // The engine, dropped with `complete`'s return, frees its model
            // before the process exits (see `serve`).
            infill::engine::wait_for_threads(std::time::Duration::from_secs(3));
            print_result(result)
        }
    }
}

/// Prints a command's text, or its error; the process's exit status.
fn print_result(result: anyhow::Result<String>) -> ExitCode {
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
