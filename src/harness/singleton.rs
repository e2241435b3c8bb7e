//! One run of a job at a time: a session-level advisory lock held on the
//! run's control connection. A killed process's connection closes and the
//! lock goes with it, so a crash never blocks the next run.
//!
//! A process alone takes the lock exclusively. Replicas of one scheduler
//! execution take it shared, and `job_executions` says which execution
//! is current: a replica of another execution, or a lone run, is skipped
//! while any replica of the current one holds the lock.

use anyhow::{Context, Result};
use tokio_postgres::Client;

/// First key of the two-key advisory lock: this project's namespace, so our
/// locks cannot collide with another application's on the same database.
const LOCK_NAMESPACE: i32 = 0x434a_0001; // "CJ" v1

/// Tries to take the job's lock; `false` when another session holds it.
pub async fn try_lock(client: &Client, job: &str) -> Result<bool> {
    let row = client
        .query_one(
            "SELECT pg_try_advisory_lock($1, hashtext($2))",
            &[&LOCK_NAMESPACE, &job],
        )
        .await
        .with_context(|| format!("taking the singleton lock for job {job}"))?;
    Ok(row.get(0))
}

/// Joins scheduler execution `execution` of `job` as one of its replicas;
/// `false` when another execution (or a lone run) holds the job.
pub async fn join_execution(client: &mut Client, job: &str, execution: &str) -> Result<bool> {
    // The row lock serialises the decision between replicas starting at once.
    let tx = client
        .transaction()
        .await
        .context("starting the join transaction")?;
    tx.execute(
        "INSERT INTO job_executions (job, execution) VALUES ($1, $2) ON CONFLICT (job) DO NOTHING",
        &[&job, &execution],
    )
    .await
    .context("recording the job's execution")?;
    let current: String = tx
        .query_one(
            "SELECT execution FROM job_executions WHERE job = $1 FOR UPDATE",
            &[&job],
        )
        .await
        .context("reading job_executions")?
        .get(0);
    let free: bool = tx
        .query_one(
            "SELECT pg_try_advisory_lock($1, hashtext($2))",
            &[&LOCK_NAMESPACE, &job],
        )
        .await
        .with_context(|| format!("taking the singleton lock for job {job}"))?
        .get(0);
    let joined = if free {
        // Nobody runs the job: this execution becomes the current one.
        tx.execute(
            "UPDATE job_executions SET execution = $2, started_at = now() WHERE job = $1",
            &[&job, &execution],
        )
        .await
        .context("updating job_executions")?;
        tx.execute(
            "SELECT pg_advisory_unlock($1, hashtext($2))",
            &[&LOCK_NAMESPACE, &job],
        )
        .await
        .context("releasing the exclusive lock")?;
        lock_shared(&tx, job).await?
    } else if current == execution {
        // Our siblings hold it shared (or a lone run holds it exclusively:
        // then the shared lock is refused and we are skipped).
        lock_shared(&tx, job).await?
    } else {
        false
    };
    tx.commit().await.context("committing the join")?;
    Ok(joined)
}

async fn lock_shared(tx: &tokio_postgres::Transaction<'_>, job: &str) -> Result<bool> {
    Ok(tx
        .query_one(
            "SELECT pg_try_advisory_lock_shared($1, hashtext($2))",
            &[&LOCK_NAMESPACE, &job],
        )
        .await
        .with_context(|| format!("taking the shared lock for job {job}"))?
        .get(0))
}
