//! Chunks: a plan's tasks recorded in `run_chunks`, each committed as a
//! whole, so a run cut short is resumed by the next run of the same plan
//! from its first unfinished chunk instead of starting over.

use anyhow::{Context, Result};
use tokio_postgres::Client;
use uuid::Uuid;

use super::job::TaskSpec;

/// A chunk still to do, in plan order.
#[derive(Debug, Clone)]
pub struct PendingChunk {
    pub ordinal: u64,
    pub spec: TaskSpec,
}

/// The chunks of one plan of one job.
pub struct ChunkBook<'a> {
    pub client: &'a Client,
    pub job: &'a str,
    pub plan_key: &'a str,
}

impl ChunkBook<'_> {
    /// Records the plan's chunks (those already recorded are kept as they
    /// are) and returns the ones not yet done, plus how many are done.
    pub async fn register(&self, tasks: &[TaskSpec]) -> Result<(Vec<PendingChunk>, u64)> {
        let keys: Vec<&str> = tasks.iter().map(|t| t.key.as_str()).collect();
        let ordinals: Vec<i32> = (0..tasks.len())
            .map(|i| i32::try_from(i).unwrap_or(i32::MAX))
            .collect();
        let payloads: Vec<&serde_json::Value> = tasks.iter().map(|t| &t.payload).collect();
        self.client
            .execute(
                "INSERT INTO run_chunks (job, plan_key, chunk_key, ordinal, payload)
                 SELECT $1, $2, k, o, p FROM unnest($3::text[], $4::int[], $5::jsonb[]) AS t(k, o, p)
                 ON CONFLICT (job, plan_key, chunk_key) DO NOTHING",
                &[&self.job, &self.plan_key, &keys, &ordinals, &payloads],
            )
            .await
            .context("recording the plan's chunks in run_chunks")?;
        // Everything not done runs again: chunks left 'running' by a dead
        // run, and 'failed' ones (a run that finishes them resolves their
        // dead letters), so re-running a batch is always a way to repair it.
        let rows = self
            .client
            .query(
                "SELECT chunk_key FROM run_chunks WHERE job = $1 AND plan_key = $2 AND state = 'done'",
                &[&self.job, &self.plan_key],
            )
            .await
            .context("reading run_chunks")?;
        let finished: std::collections::HashSet<String> =
            rows.iter().map(|r| r.get::<_, String>(0)).collect();
        let mut pending = Vec::new();
        for (i, spec) in tasks.iter().enumerate() {
            if !finished.contains(&spec.key) {
                pending.push(PendingChunk {
                    ordinal: i as u64,
                    spec: spec.clone(),
                });
            }
        }
        let done = (tasks.len() - pending.len()) as u64;
        Ok((pending, done))
    }

    /// Records the chunk done and resolves its open dead letter, if any.
    pub async fn mark_done(&self, key: &str, run_id: Uuid, rows: u64) -> Result<()> {
        self.set_state(key, run_id, "done", rows, None).await?;
        self.client
            .execute(
                "UPDATE dead_letters SET status = 'resolved', resolved_by = $3, updated_at = now()
                  WHERE job = $1 AND task_key = $2 AND status = 'pending'",
                &[&self.job, &key, &run_id],
            )
            .await
            .with_context(|| format!("resolving the dead letter of chunk {key}"))?;
        Ok(())
    }

    pub async fn mark_failed(&self, key: &str, run_id: Uuid, error: &str) -> Result<()> {
        self.set_state(key, run_id, "failed", 0, Some(error)).await
    }

    async fn set_state(
        &self,
        key: &str,
        run_id: Uuid,
        state: &str,
        rows: u64,
        error: Option<&str>,
    ) -> Result<()> {
        self.client
            .execute(
                "UPDATE run_chunks SET state = $4, run_id = $5, attempts = attempts + 1,
                        rows_written = $6, finished_at = now(), error = $7
                  WHERE job = $1 AND plan_key = $2 AND chunk_key = $3",
                &[
                    &self.job,
                    &self.plan_key,
                    &key,
                    &state,
                    &run_id,
                    &i64::try_from(rows).unwrap_or(i64::MAX),
                    &error,
                ],
            )
            .await
            .with_context(|| format!("recording chunk {key} as {state}"))?;
        Ok(())
    }
}
