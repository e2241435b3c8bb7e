//! Running an operator command (migrate, runs, …): not a job, so no lock
//! or ledger, but the same logging and the same exit-code table.

use std::future::Future;

use super::args::LogFormat;
use super::errors;
use super::outcome::ExitCode;
use super::telemetry;

/// Runs `command` on a small runtime and exits with the mapped exit code.
pub fn run_command<F, Fut>(log_format: LogFormat, command: F) -> !
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<ExitCode>>,
{
    telemetry::init(log_format);
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(command()));
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            let code = errors::exit_code_for(&e);
            tracing::error!(exit_code = code.code(), "{}", errors::one_line(&e));
            code
        }
    };
    std::process::exit(code.code())
}
