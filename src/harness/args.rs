//! The flags every job binary shares, each with an
//! environment fallback so a scheduler can configure a job without
//! rewriting its command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// Parses `90s`, `5m`, `2h`, `250ms`, `1h 30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{e}: write a duration like 90s, 5m, 2h or 250ms"))
}

/// Prints a duration the way it is written on the command line.
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Where the database is and how to reach it.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL, e.g. postgres://user:pass@host:5432/db?sslmode=require.
    /// Never logged: messages name the host and database only.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
    pub database_url: Option<String>,

    /// File holding the database URL (a mounted secret); used when
    /// --database-url is not given.
    #[arg(long, env = "DATABASE_URL_FILE", value_name = "FILE")]
    pub database_url_file: Option<PathBuf>,

    /// PEM file of CA certificates to trust for TLS, for a private CA; the
    /// public web roots are trusted by default. TLS is used when the URL
    /// says sslmode=require (or prefer and the server offers it).
    #[arg(long, env = "PGSSLROOTCERT", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// Give up connecting to the database after this long; a job that
    /// cannot connect exits 69 so the scheduler retries it later.
    #[arg(long, env = "CLIMATE_JOBS_CONNECT_TIMEOUT", default_value = "10s", value_parser = parse_duration, value_name = "DUR")]
    pub connect_timeout: Duration,

    /// Server-side limit for one SQL statement (Postgres statement_timeout).
    #[arg(long, env = "CLIMATE_JOBS_STATEMENT_TIMEOUT", default_value = "60s", value_parser = parse_duration, value_name = "DUR")]
    pub statement_timeout: Duration,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// JSON lines when stderr is not a terminal (containers), pretty otherwise.
    Auto,
    Json,
    Pretty,
}

#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log format on stderr.
    #[arg(long, env = "CLIMATE_JOBS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
}

/// How a run is bounded and how much it does at once.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Whole-run deadline. At the deadline in-flight tasks are cancelled, the
    /// run is recorded `timed_out` and the process exits 124; a watchdog
    /// thread ends the process at deadline + grace even if a task blocks.
    #[arg(long, env = "CLIMATE_JOBS_TIMEOUT", default_value = "1h", value_parser = parse_duration, value_name = "DUR")]
    pub timeout: Duration,

    /// Limit for one task; a task past it is cancelled and dead-lettered as a
    /// timeout, and the batch goes on.
    #[arg(long, env = "CLIMATE_JOBS_TASK_TIMEOUT", default_value = "5m", value_parser = parse_duration, value_name = "DUR")]
    pub task_timeout: Duration,

    /// After SIGTERM/SIGINT (or the deadline), how long in-flight tasks get to
    /// finish before they are abandoned. Keep it under the scheduler's kill
    /// delay (Azure Container Apps: 30 s).
    #[arg(long, env = "CLIMATE_JOBS_GRACE", default_value = "20s", value_parser = parse_duration, value_name = "DUR")]
    pub grace: Duration,

    /// Tasks run at once; also the database pool size.
    #[arg(long, env = "CLIMATE_JOBS_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,

    /// Connect, validate and plan, print the plan, write nothing.
    #[arg(long, env = "CLIMATE_JOBS_DRY_RUN")]
    pub dry_run: bool,

    /// Consecutive infrastructure failures (lost connections, pool
    /// timeouts) that end the run as `failed` instead of failing every
    /// remaining task the same way.
    #[arg(long, env = "CLIMATE_JOBS_BREAKER_THRESHOLD", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub breaker_threshold: u32,

    /// The scheduler execution this process is a replica of. Replicas of one
    /// execution (an Indexed Job's pods, a Container Apps Job execution's
    /// replicas) share its chunks; another execution is skipped while one
    /// lives. Unset: this process is a run of its own. On Container Apps,
    /// CONTAINER_APP_JOB_EXECUTION_NAME is used when this is unset.
    #[arg(long, env = "CLIMATE_JOBS_EXECUTION", value_name = "ID")]
    pub execution: Option<String>,

    /// How often the run's ledger row is touched; a `running` row older than
    /// six heartbeats belongs to a dead process.
    #[arg(long, env = "CLIMATE_JOBS_HEARTBEAT", default_value = "5s", value_parser = parse_duration, value_name = "DUR", hide = true)]
    pub heartbeat: Duration,
}

impl RunArgs {
    /// The execution to join, if any (see `--execution`).
    pub fn execution(&self) -> Option<String> {
        self.execution
            .clone()
            .or_else(|| std::env::var("CONTAINER_APP_JOB_EXECUTION_NAME").ok())
            .filter(|e| !e.trim().is_empty())
    }
}

/// Everything a job binary shares; flatten it into the binary's own `Args`.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub metrics: crate::metrics::publish::RunMetricsArgs,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_the_documented_spellings() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("10ms"), Ok(Duration::from_millis(10)));
        assert!(parse_duration("five minutes").is_err());
        assert!(parse_duration("10").is_err());
    }
}
