//! Logs on stderr: JSON lines in containers (every line carries the run's
//! `job` and `run_id`, and `task` inside a task, in its `spans`), pretty on a
//! terminal. stdout is kept for the one summary line.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use super::args::LogFormat;

/// Installs the global subscriber; harmless if one is already set.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,tokio_postgres=warn"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
}

pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}
