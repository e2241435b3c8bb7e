//! Chunks: a plan's tasks recorded in `run_chunks`, each committed as a
//! whole. Processes claim them one batch at a time with `FOR UPDATE SKIP
//! LOCKED` and a lease, so
//! * a run cut short is resumed by the next run of the same plan from its
//!   first unfinished chunk instead of starting over;
//! * several replicas of one scheduler execution share the chunks, each
//!   done exactly once;
//! * a chunk whose replica died is claimed again once its lease has passed.

use std::time::Duration;

use anyhow::{Context, Result};
use tokio_postgres::Client;
use uuid::Uuid;

use super::job::TaskSpec;

/// A claimed chunk, in plan order.
#[derive(Debug, Clone)]
pub struct PendingChunk {
    pub ordinal: u64,
    pub spec: TaskSpec,
}

/// The chunks of one plan of one job, as one process sees them.
pub struct ChunkBook<'a> {
    pub client: &'a Client,
    pub job: &'a str,
    pub plan_key: &'a str,
    /// The scheduler execution this process belongs to.
    pub execution: &'a str,
    /// Alone: this process holds the job's exclusive lock, so any chunk
    /// left `running` belongs to a dead process and is claimable at once.
    /// As a replica, only once its lease has passed.
    pub alone: bool,
    pub run_id: Uuid,
}

impl ChunkBook<'_> {
    /// Records the plan's chunks (those already recorded are kept as they
    /// are) and returns how many are done already.
    pub async fn register(&self, tasks: &[TaskSpec]) -> Result<u64> {
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
        let done: i64 = self
            .client
            .query_one(
                "SELECT count(*) FROM run_chunks WHERE job = $1 AND plan_key = $2 AND state = 'done'",
                &[&self.job, &self.plan_key],
            )
            .await
            .context("reading run_chunks")?
            .get(0);
        Ok(done as u64)
    }

    /// Claims up to `n` chunks in plan order: pending ones, `running` ones
    /// whose holder is gone, and `failed` ones of an earlier execution (a
    /// new run of the plan repairs them; within one execution they belong
    /// to the dead-letter queue).
    pub async fn claim(&self, n: usize, lease: Duration) -> Result<Vec<PendingChunk>> {
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let rows = self
            .client
            .query(
                "UPDATE run_chunks c
                    SET state = 'running', run_id = $3, execution = $4, started_at = now(),
                        lease_until = now() + make_interval(secs => $6::bigint / 1000.0)
                  WHERE (c.job, c.plan_key, c.chunk_key) IN (
                        SELECT job, plan_key, chunk_key FROM run_chunks
                         WHERE job = $1 AND plan_key = $2
                           AND (state = 'pending'
                                OR (state = 'running' AND run_id <> $3 AND ($7 OR lease_until < now()))
                                OR (state = 'failed' AND execution IS DISTINCT FROM $4))
                         ORDER BY ordinal
                         LIMIT $5
                           FOR UPDATE SKIP LOCKED)
                  RETURNING c.ordinal, c.chunk_key, c.payload",
                &[
                    &self.job,
                    &self.plan_key,
                    &self.run_id,
                    &self.execution,
                    &(n as i64),
                    &lease_ms,
                    &self.alone,
                ],
            )
            .await
            .context("claiming chunks in run_chunks")?;
        let mut chunks: Vec<PendingChunk> = rows
            .iter()
            .map(|r| PendingChunk {
                ordinal: u64::try_from(r.get::<_, i32>(0)).unwrap_or(0),
                spec: TaskSpec {
                    key: r.get(1),
                    payload: r.get(2),
                },
            })
            .collect();
        chunks.sort_by_key(|c| c.ordinal);
        Ok(chunks)
    }

    /// How long until another process's running chunk is either finished
    /// or claimable (its lease ends); None when no other process holds one.
    pub async fn others_running(&self) -> Result<Option<Duration>> {
        if self.alone {
            return Ok(None);
        }
        let row = self
            .client
            .query_one(
                "SELECT extract(epoch FROM min(lease_until) - now())::float8 FROM run_chunks
                  WHERE job = $1 AND plan_key = $2 AND state = 'running' AND run_id <> $3",
                &[&self.job, &self.plan_key, &self.run_id],
            )
            .await
            .context("reading run_chunks")?;
        Ok(row
            .get::<_, Option<f64>>(0)
            .map(|s| Duration::from_secs_f64(s.max(0.0))))
    }

    /// Whether every chunk of the plan is done (by any process).
    pub async fn all_done(&self) -> Result<bool> {
        let open: i64 = self
            .client
            .query_one(
                "SELECT count(*) FROM run_chunks WHERE job = $1 AND plan_key = $2 AND state <> 'done'",
                &[&self.job, &self.plan_key],
            )
            .await
            .context("reading run_chunks")?
            .get(0);
        Ok(open == 0)
    }

    /// Records the chunk done and resolves its open dead letter, if any.
    pub async fn mark_done(&self, key: &str, rows: u64) -> Result<()> {
        self.set_state(key, "done", rows, None).await?;
        super::dead_letter::resolve_chunk(self.client, self.job, key, self.run_id).await
    }

    pub async fn mark_failed(&self, key: &str, error: &str) -> Result<()> {
        self.set_state(key, "failed", 0, Some(error)).await
    }

    async fn set_state(
        &self,
        key: &str,
        state: &str,
        rows: u64,
        error: Option<&str>,
    ) -> Result<()> {
        self.client
            .execute(
                "UPDATE run_chunks SET state = $4, run_id = $5, execution = $6, attempts = attempts + 1,
                        rows_written = $7, finished_at = now(), lease_until = NULL, error = $8
                  WHERE job = $1 AND plan_key = $2 AND chunk_key = $3",
                &[
                    &self.job,
                    &self.plan_key,
                    &key,
                    &state,
                    &self.run_id,
                    &self.execution,
                    &i64::try_from(rows).unwrap_or(i64::MAX),
                    &error,
                ],
            )
            .await
            .with_context(|| format!("recording chunk {key} as {state}"))?;
        Ok(())
    }
}

/// Marks the chunk `key` of `job` done by `run_id`, whatever plan it is in:
/// `dlq-reprocess` redid it from its dead letter.
pub async fn mark_done_by_key(client: &Client, job: &str, key: &str, run_id: Uuid) -> Result<()> {
    client
        .execute(
            "UPDATE run_chunks SET state = 'done', run_id = $3, finished_at = now(), error = NULL
              WHERE job = $1 AND chunk_key = $2 AND state <> 'done'",
            &[&job, &key, &run_id],
        )
        .await
        .with_context(|| format!("marking chunk {key} of {job} done"))?;
    Ok(())
}
