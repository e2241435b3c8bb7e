//! How a run ended: the ledger status and the process exit code, one table.
//!
//! The exit codes are the contract with the scheduler's retry policy
//! (README: "the run contract"): keep them stable, `jobctl render` builds pod failure
//! policies from them.

use serde::Serialize;

/// A run's state in `job_runs.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    /// Finished; some tasks are in the dead-letter queue.
    Partial,
    Failed,
    TimedOut,
    Cancelled,
    /// Another run holds the lock, or there was nothing to do.
    Skipped,
    /// Found `running` by a later run while its process was gone.
    Abandoned,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
            RunStatus::TimedOut => "timed_out",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Skipped => "skipped",
            RunStatus::Abandoned => "abandoned",
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Process exit codes (README: "the run contract").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// Succeeded, or skipped: the scheduler has nothing to do.
    Success = 0,
    /// Internal error or circuit open: retry.
    Failed = 1,
    /// Bad flags or configuration: retrying cannot help.
    Usage = 2,
    /// Finished with tasks in the DLQ: `dlq-reprocess` retries them, not the scheduler.
    Partial = 3,
    /// Bad input data, nothing written (sysexits EX_DATAERR).
    BadInput = 65,
    /// Database unreachable (sysexits EX_UNAVAILABLE): retry with back-off.
    DatabaseUnavailable = 69,
    /// Run deadline exceeded (as `timeout(1)` reports it).
    DeadlineExceeded = 124,
    Interrupted = 130,
    Terminated = 143,
}

impl ExitCode {
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The ledger status that goes with an exit code.
    pub fn status(self) -> RunStatus {
        match self {
            ExitCode::Success => RunStatus::Succeeded,
            ExitCode::Partial => RunStatus::Partial,
            ExitCode::DeadlineExceeded => RunStatus::TimedOut,
            ExitCode::Interrupted | ExitCode::Terminated => RunStatus::Cancelled,
            ExitCode::Failed
            | ExitCode::Usage
            | ExitCode::BadInput
            | ExitCode::DatabaseUnavailable => RunStatus::Failed,
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code as u8)
    }
}
