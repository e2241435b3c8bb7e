//! The dead-letter queue: a chunk that failed or timed out is kept with what
//! it needs to run again, instead of being only a log line.
//!
//! Every statement on `dead_letters` lives in this module, so the table's
//! states and their transitions are in one place:
//!
//! ```text
//! post ──▶ pending ──claim──▶ running ──resolve──▶ resolved ──purge──▶ (gone)
//!             ▲                  │
//!             └──── reschedule ──┤
//!                                └──── bury ──▶ dead ──redrive──▶ pending
//! ```

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::{Client, Row};
use uuid::Uuid;

/// Why a chunk ended up here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LetterKind {
    Error,
    Timeout,
    Infrastructure,
}

impl LetterKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LetterKind::Error => "error",
            LetterKind::Timeout => "timeout",
            LetterKind::Infrastructure => "infrastructure",
        }
    }
}

/// Where a letter is in its life (the `status` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LetterStatus {
    /// Waiting for its next attempt (`next_attempt_at`).
    Pending,
    /// Claimed by a `dlq-reprocess` run until `next_attempt_at` (its lease).
    Running,
    /// Its chunk was done again; kept until purged.
    Resolved,
    /// Gave up after the maximum number of attempts; `redrive` revives it.
    Dead,
}

impl LetterStatus {
    pub const ALL: [LetterStatus; 4] = [
        LetterStatus::Pending,
        LetterStatus::Running,
        LetterStatus::Resolved,
        LetterStatus::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LetterStatus::Pending => "pending",
            LetterStatus::Running => "running",
            LetterStatus::Resolved => "resolved",
            LetterStatus::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<LetterStatus> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Pending or running: the letter still needs its chunk done.
    pub fn is_open(self) -> bool {
        matches!(self, LetterStatus::Pending | LetterStatus::Running)
    }
}

/// A failed chunk, as written to `dead_letters`.
#[derive(Debug, Clone)]
pub struct DeadLetter<'a> {
    pub job: &'a str,
    pub task_key: &'a str,
    pub payload: &'a serde_json::Value,
    pub kind: LetterKind,
    pub error: &'a str,
    pub run_id: Uuid,
}

/// Writes a letter; if the chunk already has an open letter, counts another
/// attempt on it instead. Returns the letter id.
pub async fn post(client: &Client, letter: &DeadLetter<'_>) -> Result<i64> {
    let row = client
        .query_one(
            "INSERT INTO dead_letters (job, task_key, payload, error_kind, error, first_run_id, last_run_id)
             VALUES ($1, $2, $3, $4, $5, $6, $6)
             ON CONFLICT (job, task_key) WHERE status IN ('pending', 'running') DO UPDATE
                SET attempts = dead_letters.attempts + 1, payload = EXCLUDED.payload,
                    error_kind = EXCLUDED.error_kind, error = EXCLUDED.error,
                    last_run_id = EXCLUDED.last_run_id, updated_at = now()
             RETURNING id",
            &[
                &letter.job,
                &letter.task_key,
                letter.payload,
                &letter.kind.as_str(),
                &letter.error,
                &letter.run_id,
            ],
        )
        .await
        .with_context(|| format!("writing the dead letter for chunk {}", letter.task_key))?;
    Ok(row.get(0))
}

/// A letter taken for a re-run: what `dlq-reprocess` needs to redo its chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimedLetter {
    pub id: i64,
    pub job: String,
    pub task_key: String,
    pub payload: serde_json::Value,
    pub attempts: i32,
}

/// Which due letters to take.
#[derive(Debug, Clone, Copy)]
pub struct DueFilter<'a> {
    /// Only this job's letters.
    pub job: Option<&'a str>,
    /// Only letters of these jobs (those whose chunk code can be re-run).
    pub jobs: &'a [&'a str],
    pub limit: i64,
}

fn claimed(rows: &[Row]) -> Vec<ClaimedLetter> {
    let mut letters: Vec<ClaimedLetter> = rows
        .iter()
        .map(|r| ClaimedLetter {
            id: r.get(0),
            job: r.get(1),
            task_key: r.get(2),
            payload: r.get(3),
            attempts: r.get(4),
        })
        .collect();
    letters.sort_by_key(|l| l.id);
    letters
}

/// The letters that are due, without claiming them (for `--dry-run`).
pub async fn peek_due(client: &Client, filter: DueFilter<'_>) -> Result<Vec<ClaimedLetter>> {
    let rows = client
        .query(
            "SELECT id, job, task_key, payload, attempts FROM dead_letters
              WHERE status IN ('pending', 'running') AND next_attempt_at <= now()
                AND ($1::text IS NULL OR job = $1) AND job = ANY($3)
              ORDER BY next_attempt_at, id LIMIT $2",
            &[&filter.job, &filter.limit, &filter.jobs],
        )
        .await
        .context("reading due dead letters")?;
    Ok(claimed(&rows))
}

/// Claims due letters for `run_id` until `lease` from now: `FOR UPDATE SKIP
/// LOCKED`, so two runs never take the same letter, and a letter whose run
/// died is due again when its lease ends.
pub async fn claim_due(
    client: &Client,
    filter: DueFilter<'_>,
    run_id: Uuid,
    lease: std::time::Duration,
) -> Result<Vec<ClaimedLetter>> {
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "UPDATE dead_letters d
                SET status = 'running', last_run_id = $4, updated_at = now(),
                    next_attempt_at = now() + make_interval(secs => $5::bigint / 1000.0)
              WHERE d.id IN (
                    SELECT id FROM dead_letters
                     WHERE status IN ('pending', 'running') AND next_attempt_at <= now()
                       AND ($1::text IS NULL OR job = $1) AND job = ANY($3)
                     ORDER BY next_attempt_at, id
                     LIMIT $2
                       FOR UPDATE SKIP LOCKED)
          RETURNING d.id, d.job, d.task_key, d.payload, d.attempts",
            &[&filter.job, &filter.limit, &filter.jobs, &run_id, &lease_ms],
        )
        .await
        .context("claiming due dead letters")?;
    Ok(claimed(&rows))
}

/// The letter's chunk was done again by `run_id`.
pub async fn resolve(client: &Client, id: i64, run_id: Uuid) -> Result<()> {
    client
        .execute(
            "UPDATE dead_letters SET status = 'resolved', resolved_by = $2, last_run_id = $2, updated_at = now()
              WHERE id = $1",
            &[&id, &run_id],
        )
        .await
        .with_context(|| format!("resolving dead letter {id}"))?;
    Ok(())
}

/// The chunk `key` of `job` was done by a normal run: its pending letter, if
/// any, is resolved by that run.
pub async fn resolve_chunk(client: &Client, job: &str, key: &str, run_id: Uuid) -> Result<()> {
    client
        .execute(
            "UPDATE dead_letters SET status = 'resolved', resolved_by = $3, updated_at = now()
              WHERE job = $1 AND task_key = $2 AND status = 'pending'",
            &[&job, &key, &run_id],
        )
        .await
        .with_context(|| format!("resolving the dead letter of chunk {key}"))?;
    Ok(())
}

/// What a failed re-run records on its letter.
#[derive(Debug, Clone, Copy)]
pub struct FailedAttempt<'a> {
    pub id: i64,
    /// The attempt count including this failure.
    pub attempts: i32,
    pub kind: LetterKind,
    pub error: &'a str,
    pub run_id: Uuid,
}

/// The re-run failed: pending again, due after `wait`.
pub async fn reschedule(
    client: &Client,
    attempt: &FailedAttempt<'_>,
    wait: std::time::Duration,
) -> Result<()> {
    let wait_ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
    client
        .execute(
            "UPDATE dead_letters SET status = 'pending', attempts = $2, error = $3, error_kind = $4,
                    last_run_id = $5, updated_at = now(),
                    next_attempt_at = now() + make_interval(secs => $6::bigint / 1000.0)
              WHERE id = $1",
            &[
                &attempt.id,
                &attempt.attempts,
                &attempt.error,
                &attempt.kind.as_str(),
                &attempt.run_id,
                &wait_ms,
            ],
        )
        .await
        .with_context(|| format!("scheduling dead letter {}'s next attempt", attempt.id))?;
    Ok(())
}

/// The re-run failed for the last allowed time: the letter is `dead`.
pub async fn bury(client: &Client, attempt: &FailedAttempt<'_>) -> Result<()> {
    client
        .execute(
            "UPDATE dead_letters SET status = 'dead', attempts = $2, error = $3, error_kind = $4,
                    last_run_id = $5, updated_at = now()
              WHERE id = $1",
            &[
                &attempt.id,
                &attempt.attempts,
                &attempt.error,
                &attempt.kind.as_str(),
                &attempt.run_id,
            ],
        )
        .await
        .with_context(|| format!("marking dead letter {} dead", attempt.id))?;
    Ok(())
}

/// One letter as operators see it.
#[derive(Debug, Clone, Serialize)]
pub struct LetterRow {
    pub id: i64,
    pub job: String,
    pub task_key: String,
    pub status: LetterStatus,
    pub error_kind: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub error: String,
}

/// Letters, newest first: of one job and/or one status if given.
pub async fn list(
    client: &Client,
    job: Option<&str>,
    status: Option<LetterStatus>,
    limit: i64,
) -> Result<Vec<LetterRow>> {
    let rows = client
        .query(
            "SELECT id, job, task_key, status, error_kind, attempts, next_attempt_at, updated_at, error
               FROM dead_letters
              WHERE ($1::text IS NULL OR job = $1) AND ($2::text IS NULL OR status = $2)
              ORDER BY id DESC LIMIT $3",
            &[&job, &status.map(LetterStatus::as_str), &limit],
        )
        .await
        .context("reading dead_letters")?;
    rows.iter()
        .map(|r| {
            let status: String = r.get(3);
            Ok(LetterRow {
                id: r.get(0),
                job: r.get(1),
                task_key: r.get(2),
                status: LetterStatus::parse(&status).with_context(|| {
                    format!("dead_letters.status {status:?} is not a known state")
                })?,
                error_kind: r.get(4),
                attempts: r.get(5),
                next_attempt_at: r.get(6),
                updated_at: r.get(7),
                error: r.get(8),
            })
        })
        .collect()
}

/// One letter with every column, as JSON; `None` if there is no such id.
pub async fn show(client: &Client, id: i64) -> Result<Option<serde_json::Value>> {
    let row = client
        .query_opt(
            "SELECT to_jsonb(d) FROM dead_letters d WHERE id = $1",
            &[&id],
        )
        .await
        .context("reading dead_letters")?;
    Ok(row.map(|r| r.get(0)))
}

/// Puts dead or pending letters back to pending, due now, attempts reset.
/// Returns the ids that were redriven (unknown, resolved or running ones are
/// left alone).
pub async fn redrive(client: &Client, ids: &[i64]) -> Result<Vec<i64>> {
    let rows = client
        .query(
            "UPDATE dead_letters SET status = 'pending', attempts = 0, next_attempt_at = now(), updated_at = now()
              WHERE id = ANY($1) AND status IN ('dead', 'pending')
              RETURNING id",
            &[&ids],
        )
        .await
        .context("redriving dead letters")?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Deletes resolved letters last updated before `cutoff`; returns how many.
pub async fn purge_resolved(client: &Client, cutoff: DateTime<Utc>) -> Result<u64> {
    client
        .execute(
            "DELETE FROM dead_letters WHERE status = 'resolved' AND updated_at < $1",
            &[&cutoff],
        )
        .await
        .context("purging resolved letters")
}

/// Letters of each of `jobs` that are not resolved (pending, running or
/// dead): what an operator still has to look at.
pub async fn count_unresolved_by_job(
    client: &Client,
    jobs: &[&str],
) -> Result<std::collections::HashMap<String, i64>> {
    let rows = client
        .query(
            "SELECT job, count(*) FROM dead_letters
              WHERE job = ANY($1) AND status <> 'resolved' GROUP BY job",
            &[&jobs],
        )
        .await
        .context("counting unresolved dead letters")?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Letters of `job` in each status, every status listed (zeros included) so
/// a count that falls to zero is seen falling.
pub async fn count_by_status(client: &Client, job: &str) -> Result<Vec<(LetterStatus, u64)>> {
    let statuses: Vec<&str> = LetterStatus::ALL.iter().map(|s| s.as_str()).collect();
    let rows = client
        .query(
            "SELECT s, count(d.id) FROM unnest($2::text[]) WITH ORDINALITY AS t(s, i)
               LEFT JOIN dead_letters d ON d.status = t.s AND d.job = $1
              GROUP BY s, i ORDER BY i",
            &[&job, &statuses],
        )
        .await
        .context("counting dead letters by status")?;
    rows.iter()
        .map(|r| {
            let s: String = r.get(0);
            let status = LetterStatus::parse(&s)
                .with_context(|| format!("dead letter status {s:?} is not a known state"))?;
            Ok((status, u64::try_from(r.get::<_, i64>(1)).unwrap_or(0)))
        })
        .collect()
}

/// Chunks of run `run_id` of `job` dead-lettered as infrastructure failures.
pub async fn count_infrastructure_failures(
    client: &Client,
    job: &str,
    run_id: Uuid,
) -> Result<u64> {
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM dead_letters
              WHERE job = $1 AND last_run_id = $2 AND error_kind = 'infrastructure'",
            &[&job, &run_id],
        )
        .await
        .context("counting the run's infrastructure failures in dead_letters")?
        .get(0);
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Letters created on each UTC day since `from` (days with none absent).
pub async fn created_per_day(
    client: &Client,
    from: DateTime<Utc>,
) -> Result<std::collections::BTreeMap<chrono::NaiveDate, i64>> {
    let rows = client
        .query(
            "SELECT (created_at AT TIME ZONE 'UTC')::date, count(*) FROM dead_letters
              WHERE created_at >= $1 GROUP BY 1",
            &[&from],
        )
        .await
        .context("counting dead letters per day")?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Letters of every job in each status present.
pub async fn count_all_by_status(
    client: &Client,
) -> Result<std::collections::BTreeMap<String, i64>> {
    let rows = client
        .query(
            "SELECT status, count(*) FROM dead_letters GROUP BY status",
            &[],
        )
        .await
        .context("counting dead letters by status")?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// How long to wait after the `retries`-th failed re-run of a letter:
/// exponential from `base` (retries = 1), capped at `cap`, with
/// "equal jitter" (half fixed, half random by `unit` in [0, 1)) so retries
/// of many letters spread out, yet below the cap a wait never shrinks from
/// one attempt to the next.
pub fn backoff(
    retries: u32,
    base: std::time::Duration,
    cap: std::time::Duration,
    unit: f64,
) -> std::time::Duration {
    let exp = retries.saturating_sub(1).min(30);
    let full = base.saturating_mul(1u32 << exp).min(cap);
    let half = full / 2;
    half + half.mul_f64(unit.clamp(0.0, 1.0))
}

/// A number in [0, 1) that differs per letter and attempt (no RNG state to
/// carry; jitter needs spread, not cryptographic quality).
pub fn jitter_unit(letter_id: i64, attempts: u32) -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut x = (letter_id as u64) ^ (u64::from(attempts) << 40) ^ (u64::from(nanos) << 8);
    // splitmix64 finaliser
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn backoff_grows_exponentially_and_is_capped() {
        let (base, cap) = (Duration::from_secs(60), Duration::from_secs(3600));
        let at = |n, u| backoff(n, base, cap, u);
        assert_eq!(at(1, 0.0), Duration::from_secs(30));
        assert_eq!(at(1, 1.0), Duration::from_secs(60));
        assert_eq!(at(3, 0.0), Duration::from_secs(120));
        assert_eq!(at(20, 1.0), cap);
        // Below the cap, whatever the jitter, the next wait is never shorter.
        for n in 1..6 {
            assert!(at(n + 1, 0.0) >= at(n, 1.0), "attempt {n}");
        }
    }

    #[test]
    fn jitter_is_in_the_unit_interval() {
        for id in 0..100 {
            let u = jitter_unit(id, 3);
            assert!((0.0..1.0).contains(&u), "{u}");
        }
    }
}
