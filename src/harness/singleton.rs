//! One run of a job at a time: a session-level advisory lock held on the
//! run's control connection. A killed process's connection closes and the
//! lock goes with it, so a crash never blocks the next run.

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
