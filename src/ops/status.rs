//! `jobctl status`: one line per job of jobs.yaml — is it ok, running,
//! late, failing, stuck, or has it never run — from the ledger, the
//! schedule and the dead-letter queue. Exit 0 when nothing is late, failing
//! or stuck, 1 otherwise: a health check and a CI gate.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::str::FromStr;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::harness::ExitCode;
use crate::harness::args::DatabaseArgs;
use crate::harness::database::Database;
use crate::harness::dead_letter;
use crate::manifest::{self, JobSpec, JobsFile, freshness};
use crate::metrics::ledger::{SUCCESS_STATUSES, data_updates};

/// A job's state, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Running past its timeout + grace: the process ignores its deadline
    /// or is gone without a trace.
    Stuck,
    /// The last run ended failed, partial, timed out, cancelled or abandoned.
    Failing,
    /// No success since the last scheduled time that should have finished.
    Late,
    Running,
    /// No run in the ledger at all.
    NeverRun,
    Ok,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Stuck => "stuck",
            State::Failing => "failing",
            State::Late => "late",
            State::Running => "running",
            State::NeverRun => "never-run",
            State::Ok => "ok",
        }
    }

    /// Late, failing and stuck make `jobctl status` exit 1.
    pub fn is_alarm(self) -> bool {
        matches!(self, State::Stuck | State::Failing | State::Late)
    }
}

/// Statuses of a finished run that mean it failed.
const FAILED: &[&str] = &["failed", "partial", "timed_out", "cancelled", "abandoned"];

/// One run as the status needs it.
#[derive(Debug, Clone, Serialize)]
pub struct RunBrief {
    pub status: String,
    pub exit_code: Option<i32>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_seconds: Option<f64>,
}

/// What the database knows about one job.
#[derive(Debug, Clone, Default)]
pub struct JobLedger {
    pub last: Option<RunBrief>,
    /// The newest `running` row (a later skipped run may hide it).
    pub running: Option<RunBrief>,
    pub last_success: Option<DateTime<Utc>>,
    pub open_dead_letters: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DataAge {
    pub table: String,
    pub last_update: Option<DateTime<Utc>>,
    pub age_seconds: Option<i64>,
    pub max_age_seconds: u64,
    pub stale: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    pub job: String,
    pub state: State,
    pub schedule: String,
    pub timeout_seconds: u64,
    pub last_run: Option<RunBrief>,
    pub last_success: Option<DateTime<Utc>>,
    /// The scheduled time whose run should have succeeded by now.
    pub last_due: Option<DateTime<Utc>>,
    pub next_due: Option<DateTime<Utc>>,
    pub open_dead_letters: i64,
    pub data: Option<DataAge>,
}

/// The latest scheduled time whose run should have succeeded by `now`
/// (scheduled + starting deadline + one attempt ≤ now).
pub fn last_due(job: &JobSpec, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let within = freshness::due_within_secs(&job.schedule, job.timeout, job.grace);
    let cutoff = now - chrono::Duration::seconds(i64::try_from(within).ok()?);
    manifest::check_cron(&job.schedule)
        .ok()?
        .find_previous_occurrence(&cutoff, true)
        .ok()
}

/// The state of one job at `now`.
pub fn assess(
    job: &JobSpec,
    ledger: &JobLedger,
    data: &BTreeMap<String, DateTime<Utc>>,
    now: DateTime<Utc>,
) -> JobStatus {
    let due = last_due(job, now);
    let stuck_after =
        chrono::Duration::from_std(job.timeout + job.grace).unwrap_or(chrono::Duration::MAX);
    let state = if ledger.last.is_none() {
        State::NeverRun
    } else if let Some(run) = &ledger.running {
        if now - run.started_at > stuck_after {
            State::Stuck
        } else {
            State::Running
        }
    } else if ledger
        .last
        .as_ref()
        .is_some_and(|r| FAILED.contains(&r.status.as_str()))
    {
        State::Failing
    } else if due.is_some_and(|d| ledger.last_success.is_none_or(|s| s < d)) {
        State::Late
    } else {
        State::Ok
    };
    let data = job.freshness.as_ref().map(|f| {
        let last_update = data.get(&f.table).copied();
        let age_seconds = last_update.map(|t| (now - t).num_seconds());
        DataAge {
            table: f.table.clone(),
            last_update,
            age_seconds,
            max_age_seconds: f.max_age.as_secs(),
            stale: age_seconds
                .is_none_or(|a| a > i64::try_from(f.max_age.as_secs()).unwrap_or(i64::MAX)),
        }
    });
    JobStatus {
        job: job.name.clone(),
        state,
        schedule: job.schedule.clone(),
        timeout_seconds: job.timeout.as_secs(),
        last_run: ledger.running.clone().or_else(|| ledger.last.clone()),
        last_success: ledger.last_success,
        last_due: due,
        next_due: manifest::next_run(&job.schedule, now),
        open_dead_letters: ledger.open_dead_letters,
        data,
    }
}

/// A short duration: `45s`, `12m`, `3h 5m`, `2d 4h`.
pub fn short(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 if s % 3600 / 60 == 0 => format!("{}h", s / 3600),
        3600..86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ if s % 86_400 / 3600 == 0 => format!("{}d", s / 86_400),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

fn secs(s: u64) -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX))
}

/// The aligned table `jobctl status` prints.
pub fn render_table(rows: &[JobStatus], now: DateTime<Utc>) -> String {
    let header = [
        "JOB",
        "STATE",
        "LAST RUN",
        "DURATION/TIMEOUT",
        "LAST SUCCESS",
        "NEXT DUE",
        "DLQ",
        "DATA AGE",
    ];
    let ago = |t: DateTime<Utc>| format!("{} ago", short(now - t));
    let table: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            let last = r.last_run.as_ref();
            let last_run = last.map_or("-".into(), |l| match (l.status.as_str(), l.finished_at) {
                ("running", _) | (_, None) => format!("{} since {}", l.status, ago(l.started_at)),
                (status, Some(end)) => format!(
                    "{status} (exit {}) {}",
                    l.exit_code.map_or("-".into(), |c| c.to_string()),
                    ago(end)
                ),
            });
            let duration = last.map_or("-".into(), |l| {
                let took = match (l.duration_seconds, l.finished_at) {
                    (Some(d), Some(_)) => chrono::Duration::milliseconds((d * 1000.0) as i64),
                    _ => now - l.started_at,
                };
                format!("{}/{}", short(took), short(secs(r.timeout_seconds)))
            });
            let data = r.data.as_ref().map_or("-".into(), |d| match d.age_seconds {
                Some(a) => format!(
                    "{} {}{}",
                    d.table,
                    short(chrono::Duration::seconds(a)),
                    if d.stale { " (stale)" } else { "" }
                ),
                None => format!("{} never", d.table),
            });
            [
                r.job.clone(),
                r.state.as_str().into(),
                last_run,
                duration,
                r.last_success.map_or("never".into(), ago),
                r.next_due.map_or("-".into(), |t| {
                    format!("in {} ({})", short(t - now), t.format("%m-%d %H:%M"))
                }),
                r.open_dead_letters.to_string(),
                data,
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut s = String::new();
        for (cell, w) in cells.iter().zip(widths) {
            let _ = write!(s, "{cell:<w$}  ");
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(&header.map(String::from));
    for row in &table {
        line(row);
    }
    out
}

fn brief(r: &tokio_postgres::Row, at: usize) -> RunBrief {
    RunBrief {
        status: r.get(at),
        exit_code: r.get(at + 1),
        started_at: r.get(at + 2),
        finished_at: r.get(at + 3),
        duration_seconds: r.get::<_, Option<i64>>(at + 4).map(|ms| ms as f64 / 1000.0),
    }
}

/// Reads every job's ledger facts in four queries.
pub async fn fetch(
    client: &tokio_postgres::Client,
    jobs: &[String],
) -> Result<BTreeMap<String, JobLedger>> {
    let mut out: BTreeMap<String, JobLedger> = jobs
        .iter()
        .map(|j| (j.clone(), JobLedger::default()))
        .collect();
    let cols = "status, exit_code, started_at, finished_at, duration_ms";
    for (running, what) in [(false, "last run"), (true, "running run")] {
        let rows = client
            .query(
                &format!(
                    "SELECT DISTINCT ON (job) job, {cols} FROM job_runs
                      WHERE job = ANY($1) AND (NOT $2 OR status = 'running')
                      ORDER BY job, started_at DESC, run_id DESC"
                ),
                &[&jobs, &running],
            )
            .await
            .with_context(|| {
                format!("reading each job's {what} from job_runs (has `jobctl migrate` run?)")
            })?;
        for r in &rows {
            if let Some(l) = out.get_mut(r.get::<_, &str>(0)) {
                if running {
                    l.running = Some(brief(r, 1));
                } else {
                    l.last = Some(brief(r, 1));
                }
            }
        }
    }
    let rows = client
        .query(
            "SELECT job, max(finished_at) FROM job_runs
              WHERE job = ANY($1) AND status = ANY($2) GROUP BY job",
            &[&jobs, &SUCCESS_STATUSES],
        )
        .await
        .context("reading each job's last success from job_runs")?;
    for r in &rows {
        if let Some(l) = out.get_mut(r.get::<_, &str>(0)) {
            l.last_success = r.get(1);
        }
    }
    let names: Vec<&str> = jobs.iter().map(String::as_str).collect();
    for (job, n) in dead_letter::count_unresolved_by_job(client, &names).await? {
        if let Some(l) = out.get_mut(job.as_str()) {
            l.open_dead_letters = n;
        }
    }
    Ok(out)
}

/// Parses `--now` (RFC 3339).
pub fn parse_now(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::<chrono::FixedOffset>::from_str(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{s:?}: {e}: expected an RFC 3339 time like 2026-11-29T12:00:00Z"))
}

pub async fn run(
    database: &DatabaseArgs,
    file: &JobsFile,
    json: bool,
    now: Option<DateTime<Utc>>,
) -> Result<ExitCode> {
    let now = now.unwrap_or_else(Utc::now);
    let db = Database::from_args(database)?;
    let client = db.connect("jobctl/status").await?;
    let jobs: Vec<String> = manifest::by_name(file)
        .keys()
        .map(|k| k.to_string())
        .collect();
    let ledgers = fetch(&client, &jobs).await?;
    let data: BTreeMap<String, DateTime<Utc>> = data_updates(&client)
        .await?
        .into_iter()
        .filter_map(|(t, secs)| {
            DateTime::from_timestamp_micros((secs * 1e6) as i64).map(|d| (t, d))
        })
        .collect();
    let rows: Vec<JobStatus> = manifest::by_name(file)
        .values()
        .map(|job| {
            let l = ledgers.get(&job.name).cloned().unwrap_or_default();
            assess(job, &l, &data, now)
        })
        .collect();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).context("encoding the status as JSON")?
        );
    } else {
        print!("{}", render_table(&rows, now));
    }
    let alarms = rows.iter().filter(|r| r.state.is_alarm()).count();
    if alarms > 0 {
        tracing::warn!(alarms, "{alarms} job(s) late, failing or stuck");
        return Ok(ExitCode::Failed);
    }
    Ok(ExitCode::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        parse_now(s).unwrap()
    }

    #[test]
    fn last_due_is_the_latest_schedule_that_should_have_finished() {
        let file = manifest::parse(
            r#"
jobs:
  nightly:
    binary: jobctl
    schedule: "0 2 * * *"
    timeout: 2h
    task_timeout: 20m
    grace: 20s
    secrets:
      DATABASE_URL: {secret: s, key: k}
"#,
        )
        .unwrap();
        let job = &file.jobs[0];
        // 02:00 + starting deadline 1h + attempt (2h + 20s + 60s) = 05:01:20.
        assert_eq!(
            last_due(job, at("2026-11-29T05:01:19Z")),
            Some(at("2026-11-28T02:00:00Z"))
        );
        assert_eq!(
            last_due(job, at("2026-11-29T05:01:20Z")),
            Some(at("2026-11-29T02:00:00Z"))
        );
    }

    #[test]
    fn short_durations_read_at_a_glance() {
        let s = chrono::Duration::seconds;
        assert_eq!(short(s(-5)), "0s");
        assert_eq!(short(s(59)), "59s");
        assert_eq!(short(s(61)), "1m");
        assert_eq!(short(s(7200)), "2h");
        assert_eq!(short(s(7260)), "2h 1m");
        assert_eq!(short(s(86_400 * 9 + 3600 * 12)), "9d 12h");
        assert!(parse_now("yesterday").unwrap_err().contains("RFC 3339"));
    }
}
