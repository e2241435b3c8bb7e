//! The run contract every job binary keeps, built once.
//!
//! A binary parses its flags into a [`Job`] and calls [`run()`]; the harness
//! does the rest: deadline and watchdog, signals, singleton lock, run
//! ledger, chunks, dead letters, circuit breaker, exit codes, summary line.

pub mod args;
mod batch;
pub mod breaker;
pub mod chunks;
pub mod command;
pub mod database;
pub mod dead_letter;
pub mod deadline;
pub mod errors;
pub mod fault;
pub mod job;
pub mod ledger;
pub mod migrate;
pub mod outcome;
pub mod progress;
pub mod run;
pub mod shutdown;
pub mod singleton;
pub mod summary;
pub mod telemetry;
pub mod workers;

pub use args::CommonArgs;
pub use errors::{AbortRun, BadInput, DatabaseUnavailable, UsageError};
pub use job::{Job, Plan, PlanContext, TaskContext, TaskExecutor, TaskOutput, TaskSpec};
pub use outcome::{ExitCode, RunStatus};
pub use run::run;
