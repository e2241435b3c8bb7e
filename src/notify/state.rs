//! The notify tables (migrations/0005_notify.sql): which execution a process
//! belongs to and whether it closes it, and what each receiver last heard.
//!
//! Every decision is one conditional statement whose RETURNING says who
//! won, so N replicas or a retry racing the run it replaces send once.

use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use tokio_postgres::Client;
use uuid::Uuid;

use super::payload::Action;

/// A receiver's claim is released after this long if its holder died.
const CLAIM_FOR_SECS: f64 = 30.0;

/// Joins the execution's check-in row; true for the first process to join
/// (it sends the start ping). Returns the execution's `rid` too.
pub async fn join(
    client: &Client,
    job: &str,
    execution: &str,
    run_id: Uuid,
) -> Result<(bool, Uuid)> {
    let row = client
        .query_one(
            "INSERT INTO notify_executions AS e (job, execution, rid) VALUES ($1, $2, $3)
             ON CONFLICT (job, execution) DO UPDATE SET joined = e.joined + 1
             RETURNING e.joined, e.rid",
            &[&job, &execution, &run_id],
        )
        .await
        .context("joining the execution in notify_executions")?;
    let joined: i32 = row.get(0);
    Ok((joined == 1, row.get(1)))
}

/// How an execution stands once this process has finished.
#[derive(Debug)]
pub struct Closing {
    /// This process is the one that closes the execution.
    pub last: bool,
    pub rid: Uuid,
    /// The worst outcome among the execution's processes so far.
    pub status: String,
    pub exit_code: i32,
}

/// Orders outcomes: the worst one speaks for a replicated run.
pub fn rank(status: &str) -> i32 {
    match status {
        "skipped" => 0,
        "succeeded" => 1,
        "cancelled" => 2,
        "partial" => 3,
        "abandoned" => 4,
        "timed_out" => 5,
        "failed" => 6,
        _ => 1,
    }
}

/// Counts this process as finished; the one whose count reaches `expected`
/// closes the execution (exactly one process can see that number).
pub async fn close(
    client: &Client,
    job: &str,
    execution: &str,
    run_id: Uuid,
    status: &str,
    exit_code: i32,
    expected: u16,
) -> Result<Closing> {
    let row = client
        .query_one(
            "INSERT INTO notify_executions AS e
                    (job, execution, rid, closed, worst_rank, worst_status, worst_exit, closed_at)
             VALUES ($1, $2, $3, 1, $4, $5, $6, now())
             ON CONFLICT (job, execution) DO UPDATE SET
                 closed = e.closed + 1,
                 worst_status = CASE WHEN $4 > e.worst_rank THEN $5 ELSE e.worst_status END,
                 worst_exit = CASE WHEN $4 > e.worst_rank THEN $6 ELSE e.worst_exit END,
                 worst_rank = greatest(e.worst_rank, $4),
                 closed_at = now()
             RETURNING e.closed, e.rid, e.worst_status, e.worst_exit",
            &[
                &job,
                &execution,
                &run_id,
                &rank(status),
                &status,
                &exit_code,
            ],
        )
        .await
        .context("closing the execution in notify_executions")?;
    let closed: i32 = row.get(0);
    let last = closed == i32::from(expected);
    if last {
        // Housekeeping, best effort: one row per execution adds up.
        let _ = client
            .execute(
                "DELETE FROM notify_executions WHERE started_at < now() - interval '30 days'",
                &[],
            )
            .await;
    }
    Ok(Closing {
        last,
        rid: row.get(1),
        status: row
            .get::<_, Option<String>>(2)
            .unwrap_or_else(|| status.to_string()),
        exit_code: row.get::<_, Option<i32>>(3).unwrap_or(exit_code),
    })
}

/// A receiver this process has the right to send to now.
#[derive(Debug, Clone, Copy)]
pub struct Claim {
    pub action: Action,
    /// When the job started failing (now, for a first trigger).
    pub since: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// Claims `receiver` of `job` if it must be told something: a trigger when
/// it has not heard of the failure (or last heard longer than
/// `remind_every` ago), a resolve when it heard of one and the job is well
/// again. None: nothing to say, or another process is saying it.
pub async fn claim(
    client: &Client,
    job: &str,
    receiver: &str,
    run_id: Uuid,
    firing: bool,
    remind_every: Duration,
) -> Result<Option<Claim>> {
    client
        .execute(
            "INSERT INTO notify_alerts (job, receiver) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&job, &receiver],
        )
        .await
        .context("creating the notify_alerts row")?;
    let row = client
        .query_opt(
            "UPDATE notify_alerts
                SET claimed_by = $3, claimed_until = now() + make_interval(secs => $6)
              WHERE job = $1 AND receiver = $2
                AND (claimed_until IS NULL OR claimed_until < now())
                AND CASE WHEN $4 THEN state = 'ok' OR last_sent_at IS NULL
                                      OR last_sent_at < now() - make_interval(secs => $5)
                         ELSE state = 'firing' END
              RETURNING state, firing_since, now()",
            &[
                &job,
                &receiver,
                &run_id,
                &firing,
                &remind_every.as_secs_f64(),
                &CLAIM_FOR_SECS,
            ],
        )
        .await
        .context("claiming the receiver in notify_alerts")?;
    Ok(row.map(|r| {
        let state: String = r.get(0);
        let firing_since: Option<DateTime<Utc>> = r.get(1);
        let now: DateTime<Utc> = r.get(2);
        let was_firing = state == "firing";
        Claim {
            action: if firing {
                Action::Trigger {
                    reminder: was_firing,
                }
            } else {
                Action::Resolve
            },
            since: firing_since.filter(|_| was_firing).unwrap_or(now),
            now,
        }
    }))
}

/// Records a delivered message and releases the claim.
pub async fn delivered(
    client: &Client,
    job: &str,
    receiver: &str,
    run_id: Uuid,
    claim: &Claim,
    status: &str,
) -> Result<()> {
    let firing = matches!(claim.action, Action::Trigger { .. });
    client
        .execute(
            "UPDATE notify_alerts
                SET state = CASE WHEN $4 THEN 'firing' ELSE 'ok' END,
                    firing_since = CASE WHEN $4 THEN $5::timestamptz END,
                    last_status = $6, last_run_id = $3, last_sent_at = now(),
                    sends = sends + 1, claimed_by = NULL, claimed_until = NULL, last_error = NULL
              WHERE job = $1 AND receiver = $2 AND claimed_by = $3",
            &[&job, &receiver, &run_id, &firing, &claim.since, &status],
        )
        .await
        .context("recording the sent alert in notify_alerts")?;
    Ok(())
}

/// Records a failed send and releases the claim: the next run tries again.
pub async fn not_delivered(
    client: &Client,
    job: &str,
    receiver: &str,
    run_id: Uuid,
    error: &str,
) -> Result<()> {
    client
        .execute(
            "UPDATE notify_alerts SET claimed_by = NULL, claimed_until = NULL, last_error = $4
              WHERE job = $1 AND receiver = $2 AND claimed_by = $3",
            &[&job, &receiver, &run_id, &error],
        )
        .await
        .context("recording the failed send in notify_alerts")?;
    Ok(())
}

/// The job's last finished run before this one, if it was abandoned (its
/// process died): (run id, host, error).
pub async fn abandoned_before(
    client: &Client,
    job: &str,
    run_id: Uuid,
) -> Result<Option<(Uuid, String, Option<String>)>> {
    let row = client
        .query_opt(
            "SELECT run_id, host, error, status FROM job_runs
              WHERE job = $1 AND run_id <> $2 AND status NOT IN ('running', 'skipped')
              ORDER BY started_at DESC LIMIT 1",
            &[&job, &run_id],
        )
        .await
        .context("reading the job's previous run")?;
    Ok(row
        .filter(|r| r.get::<_, String>(3) == "abandoned")
        .map(|r| (r.get(0), r.get(1), r.get(2))))
}
