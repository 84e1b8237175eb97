//! Logging for the binaries: to stderr (stdout is the LSP channel), plain
//! text, filtered by `INFILL_LOG` (`tracing`'s filter syntax; by default
//! `infill=info`).

/// Installs the subscriber; call once, first thing in `main`.
pub fn init() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("INFILL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("infill=info")),
        )
        .init();
}
