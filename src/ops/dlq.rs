//! `jobctl dlq`: the dead-letter queue for operators — list, show, redrive
//! (a dead or pending letter back to due-now), purge resolved letters.

use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};

use crate::harness::args::DatabaseArgs;
use crate::harness::database::Database;
use crate::harness::dead_letter::{self, LetterRow, LetterStatus};
use crate::harness::{ExitCode, UsageError};

pub async fn list(
    args: &DatabaseArgs,
    job: Option<&str>,
    status: Option<LetterStatus>,
    limit: i64,
    json: bool,
) -> Result<ExitCode> {
    let client = Database::from_args(args)?.connect("jobctl/dlq").await?;
    let letters = dead_letter::list(&client, job, status, limit).await?;
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
        let next = if l.status.is_open() {
            l.next_attempt_at.format("%Y-%m-%d %H:%M:%S").to_string()
        } else {
            "-".into()
        };
        let error: String = l.error.replace('\n', " ").chars().take(80).collect();
        out.push_str(&format!(
            "{:>6}  {:<24}  {:<9}  {:<14}  {:>8}  {:<19}  {:<40}  {}\n",
            l.id,
            l.job,
            l.status.as_str(),
            l.error_kind,
            l.attempts,
            next,
            l.task_key,
            error
        ));
    }
    out
}

pub async fn show(args: &DatabaseArgs, id: i64) -> Result<ExitCode> {
    let client = Database::from_args(args)?.connect("jobctl/dlq").await?;
    let row = dead_letter::show(&client, id).await?;
    match row {
        Some(v) => {
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(ExitCode::Success)
        }
        None => Err(UsageError(format!("no dead letter with id {id}")).into()),
    }
}

/// Puts letters back to pending, due now, with their attempt count reset.
pub async fn redrive(args: &DatabaseArgs, ids: &[i64]) -> Result<ExitCode> {
    let client = Database::from_args(args)?.connect("jobctl/dlq").await?;
    let done = dead_letter::redrive(&client, ids).await?;
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
    let n = dead_letter::purge_resolved(&client, cutoff).await?;
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
