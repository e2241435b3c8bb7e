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

use crate::harness::args::{duration_text, parse_duration};
use crate::harness::chunks;
use crate::harness::dead_letter::{
    self, ClaimedLetter, DeadLetter, DueFilter, FailedAttempt, backoff, jitter_unit,
};
use crate::harness::{CommonArgs, Job, Plan, PlanContext, TaskContext, TaskOutput, TaskSpec};

pub const JOB_NAME: &str = "dlq-reprocess";

/// dlq-reprocess's flags.
#[derive(Debug, Clone, clap::Args, serde::Serialize, serde::Deserialize)]
pub struct DlqReprocessArgs {
    /// Only letters of this job.
    #[arg(long)]
    pub job: Option<String>,

    /// At most this many letters per run.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..))]
    pub limit: i64,

    /// Failed attempts (the original failure included) after which a letter is dead.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: u32,

    /// Wait after the first failed re-run (between half and all of it: jitter);
    /// doubles after each further failure.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    #[serde(with = "duration_text")]
    pub backoff: Duration,

    /// Longest wait between attempts.
    #[arg(long, default_value = "6h", value_parser = parse_duration)]
    #[serde(with = "duration_text")]
    pub max_backoff: Duration,
}

#[derive(Debug, Clone)]
pub struct DlqReprocess {
    pub args: DlqReprocessArgs,
    pub common: CommonArgs,
}

impl DlqReprocess {
    fn lease(&self) -> Duration {
        self.common.run.timeout + self.common.run.grace
    }
}

impl Job for DlqReprocess {
    type Args = DlqReprocessArgs;
    type Chunk = ClaimedLetter;

    fn name(&self) -> &'static str {
        JOB_NAME
    }

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn args(&self) -> &DlqReprocessArgs {
        &self.args
    }

    async fn plan(&self, ctx: &PlanContext) -> Result<Plan> {
        let client = ctx
            .pool
            .get()
            .await
            .context("getting a database connection")?;
        let filter = DueFilter {
            job: self.args.job.as_deref(),
            jobs: super::reprocessable_jobs(),
            limit: self.args.limit,
        };
        let letters = if ctx.dry_run {
            dead_letter::peek_due(&client, filter).await?
        } else {
            dead_letter::claim_due(&client, filter, ctx.run_id, self.lease()).await?
        };
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
            .map(|l| TaskSpec::new(format!("letter-{}", l.id), &l))
            .collect::<Result<_>>()?;
        Ok(plan)
    }

    async fn run_task(&self, ctx: TaskContext, letter: ClaimedLetter) -> Result<TaskOutput> {
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
        dead_letter::resolve(&client, letter.id, ctx.run_id).await?;
        chunks::mark_done_by_key(&client, &letter.job, &letter.task_key, ctx.run_id)
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
        let attempts = u32::try_from(letter.attempts)
            .unwrap_or(0)
            .saturating_add(1);
        let attempt = FailedAttempt {
            id: letter.id,
            attempts: i32::try_from(attempts).unwrap_or(i32::MAX),
            kind: failure.kind,
            error: failure.error,
            run_id: failure.run_id,
        };
        if attempts >= self.args.max_attempts {
            dead_letter::bury(client, &attempt).await?;
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
                self.args.backoff,
                self.args.max_backoff,
                jitter_unit(letter.id, attempts),
            );
            dead_letter::reschedule(client, &attempt, wait).await?;
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
