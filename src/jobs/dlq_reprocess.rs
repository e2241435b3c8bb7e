//! dlq-reprocess: re-runs dead letters through the same task code of the
//! job that wrote them, under the same harness (deadline, task timeout,
//! signals, ledger).
//!
//! Letters are claimed in the plan with `FOR UPDATE SKIP LOCKED` and leased
//! (`status = 'running'`, `next_attempt_at` = lease end), so two runs never
//! run the same letter, and a letter claimed by a run that died is claimed
//! again once its lease has passed. Success resolves the letter (and marks
//! its chunk done); failure counts an attempt and schedules the next after
//! an exponential back-off with jitter; at `--max-attempts` the letter is
//! `dead` and stays listed (`jobctl dlq list`, `jobctl dlq redrive`).

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::harness::dead_letter::{DeadLetter, backoff, jitter_unit};
use crate::harness::{CommonArgs, Job, Plan, PlanContext, TaskContext, TaskOutput, TaskSpec};

pub const JOB_NAME: &str = "dlq-reprocess";

#[derive(Debug, Clone)]
pub struct DlqReprocess {
    /// Only letters of this job.
    pub job: Option<String>,
    /// At most this many letters per run.
    pub limit: i64,
    /// Failed attempts after which a letter is `dead`.
    pub max_attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
    pub common: CommonArgs,
}

/// A claimed letter, as this job's task payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimedLetter {
    pub id: i64,
    pub job: String,
    pub task_key: String,
    pub payload: serde_json::Value,
    pub attempts: i32,
}

impl DlqReprocess {
    fn lease(&self) -> Duration {
        self.common.run.timeout + self.common.run.grace
    }
}

impl Job for DlqReprocess {
    fn name(&self) -> &'static str {
        JOB_NAME
    }

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn args(&self) -> serde_json::Value {
        json!({
            "job": self.job,
            "limit": self.limit,
            "max_attempts": self.max_attempts,
            "backoff_ms": self.backoff.as_millis() as u64,
            "max_backoff_ms": self.max_backoff.as_millis() as u64,
        })
    }

    async fn plan(&self, ctx: &PlanContext) -> Result<Plan> {
        let client = ctx
            .pool
            .get()
            .await
            .context("getting a database connection")?;
        let known: Vec<&str> = super::reprocessable_jobs().to_vec();
        let rows = if ctx.dry_run {
            client
                .query(
                    "SELECT id, job, task_key, payload, attempts FROM dead_letters
                      WHERE (status = 'pending' OR status = 'running') AND next_attempt_at <= now()
                        AND ($1::text IS NULL OR job = $1) AND job = ANY($3)
                      ORDER BY next_attempt_at, id LIMIT $2",
                    &[&self.job, &self.limit, &known],
                )
                .await
        } else {
            let lease_ms = self.lease().as_millis() as i64;
            client
                .query(
                    "UPDATE dead_letters d
                        SET status = 'running', last_run_id = $4, updated_at = now(),
                            next_attempt_at = now() + make_interval(secs => $5::bigint / 1000.0)
                      WHERE d.id IN (
                            SELECT id FROM dead_letters
                             WHERE (status = 'pending' OR status = 'running') AND next_attempt_at <= now()
                               AND ($1::text IS NULL OR job = $1) AND job = ANY($3)
                             ORDER BY next_attempt_at, id
                             LIMIT $2
                               FOR UPDATE SKIP LOCKED)
                  RETURNING d.id, d.job, d.task_key, d.payload, d.attempts",
                    &[&self.job, &self.limit, &known, &ctx.run_id, &lease_ms],
                )
                .await
        }
        .context("claiming due dead letters")?;
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
        let mut plan = Plan::default();
        for l in &letters {
            plan.description.push(format!(
                "letter {} of {}: task {} (attempt {})",
                l.id,
                l.job,
                l.task_key,
                l.attempts + 1
            ));
        }
        if letters.is_empty() {
            plan.description.push("no dead letters are due".into());
        }
        plan.tasks = letters
            .into_iter()
            .map(|l| {
                Ok(TaskSpec {
                    key: format!("letter-{}", l.id),
                    payload: serde_json::to_value(&l).context("encoding a letter")?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(plan)
    }

    async fn run_task(&self, ctx: TaskContext) -> Result<TaskOutput> {
        let letter: ClaimedLetter =
            serde_json::from_value(ctx.payload).context("decoding the claimed letter")?;
        let executor = super::executor_for(&letter.job, &self.common)
            .ok_or_else(|| anyhow!("no task executor for job {:?}", letter.job))?;
        tracing::info!(letter = letter.id, job = %letter.job, task = %letter.task_key, "re-running");
        let inner = TaskContext {
            pool: ctx.pool.clone(),
            run_id: ctx.run_id,
            ordinal: ctx.ordinal,
            key: letter.task_key.clone(),
            payload: letter.payload.clone(),
            cancel: ctx.cancel.clone(),
        };
        let out = executor.execute(inner).await?;
        let client = ctx
            .pool
            .get()
            .await
            .context("getting a database connection")?;
        client
            .execute(
                "UPDATE dead_letters SET status = 'resolved', resolved_by = $2, last_run_id = $2, updated_at = now()
                  WHERE id = $1",
                &[&letter.id, &ctx.run_id],
            )
            .await
            .context("resolving the letter")?;
        client
            .execute(
                "UPDATE run_chunks SET state = 'done', run_id = $3, finished_at = now(), error = NULL
                  WHERE job = $1 AND chunk_key = $2 AND state <> 'done'",
                &[&letter.job, &letter.task_key, &ctx.run_id],
            )
            .await
            .context("marking the letter's chunk done")?;
        Ok(out)
    }

    /// A failed re-run is not a new letter: it is another attempt of this one.
    async fn on_task_failure(
        &self,
        client: &tokio_postgres::Client,
        failure: &DeadLetter<'_>,
    ) -> Result<()> {
        let letter: ClaimedLetter = serde_json::from_value(failure.payload.clone())
            .context("decoding the claimed letter")?;
        let attempts = u32::try_from(letter.attempts).unwrap_or(0) + 1;
        if attempts >= self.max_attempts {
            client
                .execute(
                    "UPDATE dead_letters SET status = 'dead', attempts = $2, error = $3, error_kind = $4,
                            last_run_id = $5, updated_at = now()
                      WHERE id = $1",
                    &[&letter.id, &(attempts as i32), &failure.error, &failure.kind.as_str(), &failure.run_id],
                )
                .await
                .context("marking the letter dead")?;
            tracing::warn!(
                letter = letter.id,
                attempts,
                "letter is dead after {attempts} attempts"
            );
        } else {
            // The original failure made the letter due at once; back-off
            // counts the failed re-runs: `backoff` after the first, doubling.
            let wait = backoff(
                attempts - 1,
                self.backoff,
                self.max_backoff,
                jitter_unit(letter.id, attempts),
            );
            client
                .execute(
                    "UPDATE dead_letters SET status = 'pending', attempts = $2, error = $3, error_kind = $4,
                            last_run_id = $5, updated_at = now(),
                            next_attempt_at = now() + make_interval(secs => $6::bigint / 1000.0)
                      WHERE id = $1",
                    &[
                        &letter.id,
                        &(attempts as i32),
                        &failure.error,
                        &failure.kind.as_str(),
                        &failure.run_id,
                        &(wait.as_millis() as i64),
                    ],
                )
                .await
                .context("scheduling the letter's next attempt")?;
            tracing::info!(
                letter = letter.id,
                attempts,
                next_in_ms = wait.as_millis() as u64,
                "letter failed again; next attempt scheduled"
            );
        }
        Ok(())
    }
}
