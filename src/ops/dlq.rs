//! `jobctl dlq`: the dead-letter queue for operators — list, show, redrive
//! (a dead or pending letter back to due-now), purge resolved letters.

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::harness::args::DatabaseArgs;
use crate::harness::database::Database;
use crate::harness::{ExitCode, UsageError};

#[derive(Debug, Clone, Serialize)]
pub struct LetterRow {
    pub id: i64,
    pub job: String,
    pub task_key: String,
    pub status: String,
    pub error_kind: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub error: String,
}

pub async fn list(
    args: &DatabaseArgs,
    job: Option<&str>,
    status: &str,
    limit: i64,
    json: bool,
) -> Result<ExitCode> {
    let client = Database::from_args(args)?.connect("jobctl/dlq").await?;
    let rows = client
        .query(
            "SELECT id, job, task_key, status, error_kind, attempts, next_attempt_at, updated_at, error
               FROM dead_letters
              WHERE ($1::text IS NULL OR job = $1) AND ($2 = 'all' OR status = $2)
              ORDER BY id DESC LIMIT $3",
            &[&job, &status, &limit],
        )
        .await
        .context("reading dead_letters")?;
    let letters: Vec<LetterRow> = rows
        .iter()
        .map(|r| LetterRow {
            id: r.get(0),
            job: r.get(1),
            task_key: r.get(2),
            status: r.get(3),
            error_kind: r.get(4),
            attempts: r.get(5),
            next_attempt_at: r.get(6),
            updated_at: r.get(7),
            error: r.get(8),
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&letters)?);
    } else {
        print!("{}", render_table(&letters));
    }
    Ok(ExitCode::Success)
}

pub fn render_table(letters: &[LetterRow]) -> String {
    if letters.is_empty() {
        return "no dead letters\n".into();
    }
    let mut out = format!(
        "{:>6}  {:<24}  {:<9}  {:<14}  {:>8}  {:<19}  {:<40}  ERROR\n",
        "ID", "JOB", "STATUS", "KIND", "ATTEMPTS", "NEXT ATTEMPT (UTC)", "TASK"
    );
    for l in letters {
        let next = if l.status == "pending" || l.status == "running" {
            l.next_attempt_at.format("%Y-%m-%d %H:%M:%S").to_string()
        } else {
            "-".into()
        };
        let error: String = l.error.replace('\n', " ").chars().take(80).collect();
        out.push_str(&format!(
            "{:>6}  {:<24}  {:<9}  {:<14}  {:>8}  {:<19}  {:<40}  {}\n",
            l.id, l.job, l.status, l.error_kind, l.attempts, next, l.task_key, error
        ));
    }
    out
}

pub async fn show(args: &DatabaseArgs, id: i64) -> Result<ExitCode> {
    let client = Database::from_args(args)?.connect("jobctl/dlq").await?;
    let row = client
        .query_opt(
            "SELECT to_jsonb(d) FROM dead_letters d WHERE id = $1",
            &[&id],
        )
        .await
        .context("reading dead_letters")?;
    match row {
        Some(r) => {
            let v: serde_json::Value = r.get(0);
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(ExitCode::Success)
        }
        None => Err(UsageError(format!("no dead letter with id {id}")).into()),
    }
}

/// Puts letters back to pending, due now, with their attempt count reset.
pub async fn redrive(args: &DatabaseArgs, ids: &[i64]) -> Result<ExitCode> {
    let client = Database::from_args(args)?.connect("jobctl/dlq").await?;
    let rows = client
        .query(
            "UPDATE dead_letters SET status = 'pending', attempts = 0, next_attempt_at = now(), updated_at = now()
              WHERE id = ANY($1) AND status IN ('dead', 'pending')
              RETURNING id",
            &[&ids],
        )
        .await
        .context("redriving dead letters")?;
    let done: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    let missed: Vec<i64> = ids.iter().copied().filter(|i| !done.contains(i)).collect();
    println!("redrive: {} letter(s) pending again: {done:?}", done.len());
    if !missed.is_empty() {
        eprintln!("redrive: not redriven (unknown, resolved, or running now): {missed:?}");
        return Ok(ExitCode::Usage);
    }
    Ok(ExitCode::Success)
}

/// Deletes resolved letters last updated before `before` (YYYY-MM-DD, UTC
/// midnight, or RFC 3339).
pub async fn purge(args: &DatabaseArgs, before: &str) -> Result<ExitCode> {
    let cutoff = parse_cutoff(before)?;
    let client = Database::from_args(args)?.connect("jobctl/dlq").await?;
    let n = client
        .execute(
            "DELETE FROM dead_letters WHERE status = 'resolved' AND updated_at < $1",
            &[&cutoff],
        )
        .await
        .context("purging resolved letters")?;
    println!("purge: {n} resolved letter(s) from before {cutoff} deleted");
    Ok(ExitCode::Success)
}

fn parse_cutoff(s: &str) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            UsageError(format!(
                "--resolved-before {s:?}: write a date as 2026-11-01 or 2026-11-01T00:00:00Z"
            ))
            .into()
        })
}
