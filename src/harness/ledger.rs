//! The run ledger: one `job_runs` row per run, from `running` to how it ended.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;
use tokio_postgres::Client;
use uuid::Uuid;

use super::outcome::RunStatus;

/// Counters a run keeps and reports (ledger row, summary line, progress).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct RunMetrics {
    pub tasks_total: u64,
    pub tasks_done: u64,
    pub tasks_failed: u64,
    pub tasks_timed_out: u64,
    /// Already done by an earlier run of the same plan (resumed).
    pub tasks_skipped: u64,
    pub rows_written: u64,
}

impl RunMetrics {
    pub fn finished(&self) -> u64 {
        self.tasks_done + self.tasks_failed + self.tasks_timed_out + self.tasks_skipped
    }
}

/// Fails with what to do when the database has not been migrated.
pub async fn ensure_schema(client: &Client) -> Result<()> {
    let present: bool = client
        .query_one("SELECT to_regclass('job_runs') IS NOT NULL", &[])
        .await
        .context("checking the schema")?
        .get(0);
    anyhow::ensure!(
        present,
        "the database has no climate-jobs schema (no table job_runs): run `jobctl migrate` first"
    );
    Ok(())
}

/// A `running` row whose heartbeat is older than this many heartbeats, and
/// whose run has no database session left, belongs to a process that is gone.
pub const STALE_HEARTBEATS: u32 = 6;

/// The `application_name` of every database session of a run: how the
/// server (and `pg_stat_activity`) tells which sessions belong to it.
/// Postgres keeps 63 bytes of it; job names are ASCII.
pub fn application_name(job: &str, run_id: Uuid) -> String {
    let mut name = format!("{job}/{run_id}");
    name.truncate(63);
    name
}

/// What a run writes about itself. Holds the run's control connection.
#[derive(Clone)]
pub struct RunLedger {
    client: Arc<Client>,
    pub job: String,
    pub run_id: Uuid,
}

fn count(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn big(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl RunLedger {
    pub fn new(client: Arc<Client>, job: &str, run_id: Uuid) -> Self {
        Self {
            client,
            job: job.to_string(),
            run_id,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub async fn begin(&self, args: &serde_json::Value) -> Result<()> {
        self.client
            .execute(
                "INSERT INTO job_runs (run_id, job, status, host, pid, args)
                 VALUES ($1, $2, 'running', $3, $4, $5)",
                &[&self.run_id, &self.job, &hostname(), &pid(), args],
            )
            .await
            .map_err(schema_hint)
            .context("recording the run in job_runs")?;
        Ok(())
    }

    /// Records a run that did not start work, e.g. because another holds the lock.
    pub async fn record_skipped(&self, args: &serde_json::Value, reason: &str) -> Result<()> {
        self.client
            .execute(
                "INSERT INTO job_runs (run_id, job, status, host, pid, args, finished_at,
                                       duration_ms, exit_code, error)
                 VALUES ($1, $2, 'skipped', $3, $4, $5, now(), 0, 0, $6)",
                &[&self.run_id, &self.job, &hostname(), &pid(), args, &reason],
            )
            .await
            .map_err(schema_hint)
            .context("recording the skipped run in job_runs")?;
        Ok(())
    }

    /// Marks as `abandoned` the runs whose process is gone: this job's other
    /// `running` rows (we hold the job's lock, so no live process owns
    /// them), and any job's `running` row with a stale heartbeat whose run
    /// has no database session left. A heartbeat alone proves nothing: a
    /// live process may be stalled (paused, swapping) for a while, and its
    /// session (which holds its lock) shows it is still there.
    ///
    /// As a replica (`alone` false) only the heartbeat rule applies: the
    /// job's other `running` rows may be live siblings.
    pub async fn abandon_dead_runs(
        &self,
        heartbeat: Duration,
        alone: bool,
    ) -> Result<Vec<(Uuid, String)>> {
        let stale_ms = big((heartbeat * STALE_HEARTBEATS).as_millis() as u64);
        let rows = self
            .client
            .query(
                "UPDATE job_runs
                    SET status = 'abandoned', finished_at = now(),
                        error = coalesce(error, 'process gone: no heartbeat since ' || heartbeat_at
                                         || ', found by run ' || $2::text)
                  WHERE status = 'running' AND run_id <> $2
                    AND ((job = $1 AND $4)
                         OR (heartbeat_at < now() - make_interval(secs => $3::bigint / 1000.0)
                             AND NOT EXISTS (
                                 SELECT 1 FROM pg_stat_activity a
                                  WHERE a.application_name = left(job_runs.job || '/' || job_runs.run_id::text, 63))))
                  RETURNING run_id, job",
                &[&self.job, &self.run_id, &stale_ms, &alone],
            )
            .await
            .context("marking abandoned runs in job_runs")?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub async fn heartbeat(&self, m: &RunMetrics) -> Result<()> {
        self.client
            .execute(
                "UPDATE job_runs SET heartbeat_at = now(), tasks_total = $2, tasks_done = $3,
                        tasks_failed = $4, tasks_timed_out = $5, tasks_skipped = $6, rows_written = $7
                  WHERE run_id = $1",
                &[
                    &self.run_id,
                    &count(m.tasks_total),
                    &count(m.tasks_done),
                    &count(m.tasks_failed),
                    &count(m.tasks_timed_out),
                    &count(m.tasks_skipped),
                    &big(m.rows_written),
                ],
            )
            .await
            .context("heartbeat on job_runs")?;
        Ok(())
    }

    pub async fn finish(&self, end: &RunEnd<'_>) -> Result<()> {
        let m = end.metrics;
        self.client
            .execute(
                "UPDATE job_runs SET status = $2, finished_at = now(), heartbeat_at = now(),
                        tasks_total = $3, tasks_done = $4, tasks_failed = $5, tasks_timed_out = $6,
                        tasks_skipped = $7, rows_written = $8, duration_ms = $9, peak_rss_kb = $10,
                        exit_code = $11, error = $12
                  WHERE run_id = $1",
                &[
                    &self.run_id,
                    &end.status.as_str(),
                    &count(m.tasks_total),
                    &count(m.tasks_done),
                    &count(m.tasks_failed),
                    &count(m.tasks_timed_out),
                    &count(m.tasks_skipped),
                    &big(m.rows_written),
                    &big(end.duration.as_millis() as u64),
                    &end.peak_rss_kb.map(big),
                    &end.exit_code,
                    &end.error,
                ],
            )
            .await
            .context("recording the end of the run in job_runs")?;
        Ok(())
    }

    /// Ends every other database session of this run (its pool
    /// connections, perhaps still running a query or queued on a lock) and
    /// returns how many there were.
    pub async fn terminate_other_sessions(&self) -> Result<i64> {
        let name = application_name(&self.job, self.run_id);
        let row = self
            .client
            .query_one(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
                  WHERE application_name = $1 AND pid <> pg_backend_pid()",
                &[&name],
            )
            .await
            .context("ending the run's database sessions")?;
        Ok(row.get(0))
    }

    /// Who holds the job now, for the message of a skipped run.
    pub async fn current_holder(&self) -> Result<Option<String>> {
        let row = self
            .client
            .query_opt(
                "SELECT run_id::text, host, pid, started_at::text FROM job_runs
                  WHERE job = $1 AND status = 'running' AND run_id <> $2
                  ORDER BY started_at DESC LIMIT 1",
                &[&self.job, &self.run_id],
            )
            .await
            .context("looking up the running run")?;
        Ok(row.map(|r| {
            let (id, host, pid, since): (String, String, i32, String) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            format!("run {id} on {host} (pid {pid}) since {since}")
        }))
    }
}

/// How a run ended, for `RunLedger::finish`.
pub struct RunEnd<'a> {
    pub status: RunStatus,
    pub metrics: &'a RunMetrics,
    pub duration: Duration,
    pub peak_rss_kb: Option<u64>,
    pub exit_code: i32,
    pub error: Option<&'a str>,
}

/// Turns "relation job_runs does not exist" into what to do about it.
fn schema_hint(e: tokio_postgres::Error) -> anyhow::Error {
    let undefined = e
        .code()
        .is_some_and(|c| *c == tokio_postgres::error::SqlState::UNDEFINED_TABLE);
    if undefined {
        anyhow::Error::new(e)
            .context("the database has no climate-jobs schema: run `jobctl migrate` first")
    } else {
        e.into()
    }
}

pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn pid() -> i32 {
    i32::try_from(std::process::id()).unwrap_or(i32::MAX)
}

/// Peak resident memory of this process (VmHWM), in KiB; None off Linux.
pub fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
