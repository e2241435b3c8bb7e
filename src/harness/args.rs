//! The flags every job binary shares, each with an
//! environment fallback so a scheduler can configure a job without
//! rewriting its command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// The longest duration any flag accepts (30 days): far beyond any real
/// deadline, and small enough that `Instant + d` can never overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Parses `90s`, `5m`, `2h`, `250ms`, `1h 30m`, at most 30 days.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = parse_age(s)?;
    if d > MAX_DURATION {
        return Err(format!(
            "{} is too long: at most {}",
            s.trim(),
            format_duration(MAX_DURATION)
        ));
    }
    Ok(d)
}

/// Parses a duration that is an age, not a deadline (how old data may get:
/// `35d`, `1y`): no 30-day cap, since nothing is scheduled by it.
pub fn parse_age(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{e}: write a duration like 90s, 5m, 2h or 250ms"))
}

/// Serde for a duration flag as people write it (`"90s"`, `"5m"`), so the
/// ledger records `--timeout 5m` as `"5m"`.
pub mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&super::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_age(&text).map_err(serde::de::Error::custom)
    }
}

/// A duration parser for a flag that must lie within `[min, max]`, so a
/// value the run cannot work with (`--heartbeat 0s`) is refused at parse
/// time (exit 2) instead of panicking later.
pub fn duration_within(
    min: Duration,
    max: Duration,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let d = parse_duration(s)?;
        if d < min || d > max {
            return Err(format!(
                "{} is out of range: between {} and {}",
                s.trim(),
                format_duration(min),
                format_duration(max)
            ));
        }
        Ok(d)
    }
}

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
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
    /// 100ms to 5m.
    #[arg(long, env = "CLIMATE_JOBS_CONNECT_TIMEOUT", default_value = "10s", value_parser = duration_within(ms(100), secs(300)), value_name = "DUR")]
    pub connect_timeout: Duration,

    /// Server-side limit for one SQL statement (Postgres statement_timeout;
    /// 0s turns it off). At most 24h.
    #[arg(long, env = "CLIMATE_JOBS_STATEMENT_TIMEOUT", default_value = "60s", value_parser = duration_within(ms(0), secs(24 * 3600)), value_name = "DUR")]
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
    /// 1s to 7d.
    #[arg(long, env = "CLIMATE_JOBS_TIMEOUT", default_value = "1h", value_parser = duration_within(secs(1), secs(7 * 24 * 3600)), value_name = "DUR")]
    pub timeout: Duration,

    /// Limit for one task; a task past it is cancelled and dead-lettered as a
    /// timeout, its server-side work is cancelled, and the batch goes on,
    /// even if the task blocks its thread. 100ms to 7d.
    #[arg(long, env = "CLIMATE_JOBS_TASK_TIMEOUT", default_value = "5m", value_parser = duration_within(ms(100), secs(7 * 24 * 3600)), value_name = "DUR")]
    pub task_timeout: Duration,

    /// After SIGTERM/SIGINT (or the deadline), how long in-flight tasks get to
    /// finish before they are abandoned. Keep it under the scheduler's kill
    /// delay (Azure Container Apps: 30 s). 0s to 1h.
    #[arg(long, env = "CLIMATE_JOBS_GRACE", default_value = "20s", value_parser = duration_within(ms(0), secs(3600)), value_name = "DUR")]
    pub grace: Duration,

    /// Tasks run at once; also the database pool size.
    #[arg(long, env = "CLIMATE_JOBS_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,

    /// Connect, validate and plan, print the plan, write nothing.
    #[arg(long, env = "CLIMATE_JOBS_DRY_RUN")]
    pub dry_run: bool,

    /// Consecutive infrastructure failures (lost, refused or stalled
    /// connections, pool timeouts) that end the run with exit 69 (database
    /// unavailable: retry later) instead of failing every remaining task
    /// the same way. Such a failure never dead-letters the chunk: it is
    /// tried again after a back-off.
    #[arg(long, env = "CLIMATE_JOBS_BREAKER_THRESHOLD", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub breaker_threshold: u32,

    /// The scheduler execution this process is a replica of. Replicas of one
    /// execution (an Indexed Job's pods, a Container Apps Job execution's
    /// replicas) share its chunks; another execution is skipped while one
    /// lives. Unset: this process is a run of its own. On Container Apps,
    /// CONTAINER_APP_JOB_EXECUTION_NAME is used when this is unset.
    #[arg(long, env = "CLIMATE_JOBS_EXECUTION", value_name = "ID")]
    pub execution: Option<String>,

    /// How often the run's ledger row is touched; the run's own database
    /// calls must answer within this long (at most the task timeout), or
    /// the database counts as stalled. 100ms to 1m.
    #[arg(long, env = "CLIMATE_JOBS_HEARTBEAT", default_value = "5s", value_parser = duration_within(ms(100), secs(60)), value_name = "DUR", hide = true)]
    pub heartbeat: Duration,
}

impl RunArgs {
    /// How long one of the run's own database calls (ledger, chunks, dead
    /// letters, the pool's liveness check) may take before the database
    /// counts as stalled: two heartbeats, at most half the task timeout,
    /// within 2 s to 15 s (a loaded server may take a second or two on a
    /// small statement). A black-holed connection is noticed by the next
    /// heartbeat plus this, whatever --timeout is.
    pub fn db_call_limit(&self) -> Duration {
        (self.heartbeat * 2)
            .min(self.task_timeout / 2)
            .clamp(secs(2), secs(15))
    }

    /// How long past its timeout a task that never yields (it blocks its
    /// thread) runs before the controller abandons it and dead-letters it.
    pub fn task_timeout_slack(&self) -> Duration {
        (self.task_timeout / 10).clamp(ms(250), secs(2))
    }

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

    #[test]
    fn absurd_durations_are_refused_not_overflowed() {
        assert!(parse_duration("9223372036854775807s").is_err());
        assert!(parse_duration("31days").is_err());
        let heartbeat = duration_within(ms(100), secs(60));
        assert!(heartbeat("0s").unwrap_err().contains("out of range"));
        assert_eq!(heartbeat("1s"), Ok(secs(1)));
        assert!(heartbeat("2m").is_err());
    }
}
