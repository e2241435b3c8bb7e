//! `jobctl runs`: the run history, newest first, as a table or JSON.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::harness::ExitCode;
use crate::harness::args::DatabaseArgs;
use crate::harness::database::Database;
use crate::harness::ledger::STALE_HEARTBEATS;

/// One row of `job_runs` as operators read it.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub run_id: Uuid,
    pub job: String,
    pub status: String,
    /// A `running` row whose heartbeat is stale: its process is most
    /// likely gone; the job's next run will mark it `abandoned`.
    pub stale: bool,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub host: String,
    pub tasks_total: i32,
    pub tasks_done: i32,
    pub tasks_failed: i32,
    pub tasks_timed_out: i32,
    pub tasks_skipped: i32,
    pub rows_written: i64,
    pub duration_ms: Option<i64>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
}

pub struct RunsQuery<'a> {
    pub job: Option<&'a str>,
    pub limit: i64,
}

pub async fn fetch(client: &tokio_postgres::Client, q: &RunsQuery<'_>) -> Result<Vec<RunRow>> {
    // Heartbeat default 5 s; a row silent for six of them is stale.
    let stale_s = f64::from(5 * STALE_HEARTBEATS);
    let rows = client
        .query(
            "SELECT run_id, job, status, status = 'running' AND heartbeat_at < now() - make_interval(secs => $3),
                    started_at, finished_at, host, tasks_total, tasks_done, tasks_failed,
                    tasks_timed_out, tasks_skipped, rows_written, duration_ms, exit_code, error
               FROM job_runs
              WHERE $1::text IS NULL OR job = $1
              ORDER BY started_at DESC, run_id DESC
              LIMIT $2",
            &[&q.job, &q.limit, &stale_s],
        )
        .await
        .context("reading job_runs (has `jobctl migrate` run?)")?;
    Ok(rows
        .iter()
        .map(|r| RunRow {
            run_id: r.get(0),
            job: r.get(1),
            status: r.get(2),
            stale: r.get(3),
            started_at: r.get(4),
            finished_at: r.get(5),
            host: r.get(6),
            tasks_total: r.get(7),
            tasks_done: r.get(8),
            tasks_failed: r.get(9),
            tasks_timed_out: r.get(10),
            tasks_skipped: r.get(11),
            rows_written: r.get(12),
            duration_ms: r.get(13),
            exit_code: r.get(14),
            error: r.get(15),
        })
        .collect())
}

/// Renders runs as an aligned text table.
pub fn render_table(runs: &[RunRow]) -> String {
    if runs.is_empty() {
        return "no runs recorded\n".into();
    }
    let header = [
        "STARTED (UTC)",
        "JOB",
        "STATUS",
        "DURATION",
        "TASKS",
        "FAILED",
        "ROWS",
        "EXIT",
        "RUN ID",
        "ERROR / REASON",
    ];
    let rows: Vec<[String; 10]> = runs
        .iter()
        .map(|r| {
            let status = if r.stale {
                format!("{} (stale)", r.status)
            } else {
                r.status.clone()
            };
            [
                r.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                r.job.clone(),
                status,
                r.duration_ms.map(format_ms).unwrap_or_else(|| "-".into()),
                format!("{}/{}", r.tasks_done + r.tasks_skipped, r.tasks_total),
                (r.tasks_failed + r.tasks_timed_out).to_string(),
                r.rows_written.to_string(),
                r.exit_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into()),
                r.run_id.to_string(),
                r.error
                    .as_deref()
                    .map(|e| truncate(e, 80))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                let _ = write!(s, "{cell:<w$}  ");
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(&header.map(String::from));
    for row in &rows {
        line(row);
    }
    out
}

fn format_ms(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

fn truncate(s: &str, max: usize) -> String {
    let one_line = s.replace('\n', " ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

pub async fn run(args: &DatabaseArgs, q: &RunsQuery<'_>, json: bool) -> Result<ExitCode> {
    let db = Database::from_args(args)?;
    let client = db.connect("jobctl/runs").await?;
    let runs = fetch(&client, q).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&runs).context("encoding runs as JSON")?
        );
    } else {
        print!("{}", render_table(&runs));
    }
    Ok(ExitCode::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(job: &str, status: &str, stale: bool, error: Option<&str>) -> RunRow {
        let t = DateTime::parse_from_rfc3339("2026-11-22T01:02:03Z")
            .unwrap()
            .with_timezone(&Utc);
        RunRow {
            run_id: Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001),
            job: job.into(),
            status: status.into(),
            stale,
            started_at: t,
            finished_at: Some(t),
            host: "host-1".into(),
            tasks_total: 20,
            tasks_done: 19,
            tasks_failed: 1,
            tasks_timed_out: 0,
            tasks_skipped: 0,
            rows_written: 1234,
            duration_ms: Some(61_500),
            exit_code: Some(3),
            error: error.map(String::from),
        }
    }

    #[test]
    fn table_aligns_columns_and_marks_stale_runs() {
        let out = render_table(&[
            row(
                "canary",
                "partial",
                false,
                Some("1 of 20 task(s) failed and are in the dead-letter queue"),
            ),
            row("hazard-timeseries-batch", "running", true, None),
        ]);
        let expected = "\
STARTED (UTC)        JOB                      STATUS           DURATION  TASKS  FAILED  ROWS  EXIT  RUN ID                                ERROR / REASON
2026-11-22 01:02:03  canary                   partial          1m01s     19/20  1       1234  3     01930000-0000-7000-8000-000000000001  1 of 20 task(s) failed and are in the dead-letter queue
2026-11-22 01:02:03  hazard-timeseries-batch  running (stale)  1m01s     19/20  1       1234  3     01930000-0000-7000-8000-000000000001
";
        assert_eq!(out, expected);
    }

    #[test]
    fn empty_history_says_so() {
        assert_eq!(render_table(&[]), "no runs recorded\n");
    }
}
