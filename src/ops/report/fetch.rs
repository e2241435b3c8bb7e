//! What the report shows, read from `job_runs` and `dead_letters`.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use tokio_postgres::Client;
use uuid::Uuid;

use crate::harness::dead_letter;

/// One run as the report draws it.
#[derive(Debug, Clone)]
pub struct RunPoint {
    pub job: String,
    pub run_id: Uuid,
    pub status: String,
    pub started_at: DateTime<Utc>,
    /// Finished, or now for a run still going.
    pub ended_at: DateTime<Utc>,
    pub duration_ms: i64,
    /// Failed plus timed-out tasks.
    pub failed_tasks: i64,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
}

/// Per UTC day of the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Day {
    pub day: NaiveDate,
    pub failed_tasks: i64,
    pub dead_letters: i64,
}

#[derive(Debug, Clone)]
pub struct ReportData {
    pub generated_at: DateTime<Utc>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Ordered by job, then start.
    pub runs: Vec<RunPoint>,
    /// From jobs.yaml; a job without one has no timeout line.
    pub timeouts: BTreeMap<String, Duration>,
    pub days: Vec<Day>,
    /// Dead letters by status now (pending, running, resolved, dead).
    pub letters_by_status: BTreeMap<String, i64>,
}

impl ReportData {
    /// Job names, sorted.
    pub fn jobs(&self) -> Vec<&str> {
        let mut jobs: Vec<&str> = self.runs.iter().map(|r| r.job.as_str()).collect();
        jobs.dedup();
        jobs
    }
}

pub async fn fetch(
    client: &Client,
    days: u32,
    timeouts: BTreeMap<String, Duration>,
) -> Result<ReportData> {
    let now: DateTime<Utc> = client
        .query_one("SELECT now()", &[])
        .await
        .context("reading the database clock")?
        .get(0);
    let from = now - chrono::Duration::days(i64::from(days));
    let rows = client
        .query(
            "SELECT job, run_id, status, started_at, coalesce(finished_at, now()),
                    coalesce(duration_ms, (extract(epoch FROM coalesce(finished_at, now()) - started_at) * 1000)::bigint),
                    (tasks_failed + tasks_timed_out)::bigint, exit_code, error
               FROM job_runs WHERE started_at >= $1
              ORDER BY job, started_at",
            &[&from],
        )
        .await
        .context("reading job_runs (has `jobctl migrate` run?)")?;
    let runs: Vec<RunPoint> = rows
        .iter()
        .map(|r| RunPoint {
            job: r.get(0),
            run_id: r.get(1),
            status: r.get(2),
            started_at: r.get(3),
            ended_at: r.get(4),
            duration_ms: r.get(5),
            failed_tasks: r.get(6),
            exit_code: r.get(7),
            error: r.get(8),
        })
        .collect();
    let letters = dead_letter::created_per_day(client, from).await?;
    let by_status = dead_letter::count_all_by_status(client).await?;
    let mut failed: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    for r in &runs {
        *failed.entry(r.started_at.date_naive()).or_default() += r.failed_tasks;
    }
    let mut days_out = Vec::new();
    let mut day = from.date_naive();
    while day <= now.date_naive() {
        days_out.push(Day {
            day,
            failed_tasks: failed.get(&day).copied().unwrap_or(0),
            dead_letters: letters.get(&day).copied().unwrap_or(0),
        });
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    Ok(ReportData {
        generated_at: now,
        from,
        to: now,
        runs,
        timeouts,
        days: days_out,
        letters_by_status: by_status,
    })
}
