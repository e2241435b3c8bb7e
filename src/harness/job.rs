//! What a job is to the harness: a name, its arguments, a plan of tasks,
//! and the code that runs one task. Everything else (deadlines, signals,
//! lock, ledger, chunks, dead letters, breaker) the harness does.

use std::future::Future;
use std::pin::Pin;

use anyhow::{Context, Result};
use deadpool_postgres::Pool;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::args::CommonArgs;
use super::dead_letter::{self, DeadLetter};
use super::ledger::RunMetrics;

/// One unit of work: a key (unique within the plan, stable across runs of
/// the same plan) and the payload the task code needs, which is also what a
/// dead letter keeps to run it again later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub key: String,
    pub payload: serde_json::Value,
}

impl TaskSpec {
    /// A chunk of a job under `key`, its payload encoded from the job's
    /// [`Job::Chunk`].
    pub fn new(key: impl Into<String>, chunk: &impl Serialize) -> Result<TaskSpec> {
        let key = key.into();
        let payload = serde_json::to_value(chunk)
            .with_context(|| format!("encoding the payload of chunk {key}"))?;
        Ok(TaskSpec { key, payload })
    }
}

/// What a run will do.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Identifies the logical work (same inputs and scope → same key), so a
    /// later run resumes where a cut-short one stopped. `None`: every
    /// execution is new work (the execution id is used).
    pub resume_key: Option<String>,
    pub tasks: Vec<TaskSpec>,
    /// Set when there is nothing to do (inputs unchanged): the run is
    /// recorded `skipped` and exits 0.
    pub up_to_date: Option<String>,
    /// Lines describing the plan, printed by --dry-run.
    pub description: Vec<String>,
}

/// What planning may use.
pub struct PlanContext {
    pub pool: Pool,
    pub run_id: Uuid,
    /// The scheduler execution (`--execution`), or the run id for a lone
    /// run: replicas of one execution must plan the same work, so keys
    /// that should be new per run (e.g. for `--force`) use this.
    pub execution: String,
    pub dry_run: bool,
}

/// What one task gets.
pub struct TaskContext {
    pub pool: Pool,
    pub run_id: Uuid,
    /// 0-based position in plan order.
    pub ordinal: u64,
    pub key: String,
    pub payload: serde_json::Value,
    /// Cancelled when the run stops (signal, deadline): long tasks should
    /// check it between steps; a task that ignores it is abandoned.
    pub cancel: CancellationToken,
}

/// What one task did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskOutput {
    pub rows_written: u64,
}

/// A job binary's job, defined once by two types: its arguments (the clap
/// flags, also what the ledger records) and its chunk (what one unit of
/// work needs, also the dead letter's payload). `run_task` must be safe to
/// run again for the same chunk (idempotent writes): resumed chunks and
/// dead letters do exactly that.
pub trait Job: Send + Sync + 'static {
    /// The job's own flags (never secrets): parsed by clap in the binary and
    /// recorded as they are in `job_runs.args`.
    type Args: Serialize;
    /// One chunk's payload: written to `run_chunks` and `dead_letters`, and
    /// decoded into this type before `run_task` sees it.
    type Chunk: Serialize + DeserializeOwned + Send + 'static;

    /// The job's name in jobs.yaml, job_runs and dead_letters.
    fn name(&self) -> &'static str;

    fn common(&self) -> &CommonArgs;

    fn args(&self) -> &Self::Args;

    /// Validates inputs and decides the chunks (`TaskSpec::new(key,
    /// &chunk)`). Errors marked `BadInput` end the run with exit 65 before
    /// anything is written.
    fn plan(&self, ctx: &PlanContext) -> impl Future<Output = Result<Plan>> + Send;

    fn run_task(
        &self,
        ctx: TaskContext,
        chunk: Self::Chunk,
    ) -> impl Future<Output = Result<TaskOutput>> + Send;

    /// Decodes the chunk's payload into [`Job::Chunk`] and runs it: a
    /// payload that is not this job's chunk (a hand-edited dead letter) is
    /// an error of that chunk, named, never a panic.
    fn run_payload(&self, ctx: TaskContext) -> impl Future<Output = Result<TaskOutput>> + Send {
        async move {
            let chunk: Self::Chunk =
                serde_json::from_value(ctx.payload.clone()).with_context(|| {
                    format!(
                        "chunk {}: its payload is not a {} chunk",
                        ctx.key,
                        self.name()
                    )
                })?;
            self.run_task(ctx, chunk).await
        }
    }

    /// Job-specific counts for the summary line (e.g. windows too short to
    /// fit); `null` for none.
    fn counters(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Where a failed or timed-out task goes. Default: a dead letter, for
    /// `dlq-reprocess`. (`dlq-reprocess` itself updates the letter it ran.)
    fn on_task_failure(
        &self,
        client: &tokio_postgres::Client,
        letter: &DeadLetter<'_>,
    ) -> impl Future<Output = Result<()>> + Send {
        async move {
            let id = dead_letter::post(client, letter).await?;
            tracing::info!(
                task = letter.task_key,
                dead_letter = id,
                "dead letter written"
            );
            Ok(())
        }
    }

    /// Called when every chunk of the plan is done (by this process or a
    /// replica; a failed chunk is not done), e.g. to record that the inputs
    /// are fully processed. Replicas may both call it: keep it idempotent.
    fn after_tasks(
        &self,
        _ctx: &PlanContext,
        _metrics: &RunMetrics,
    ) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }
}

/// A job's task code behind a trait object, so `dlq-reprocess` can hold a
/// registry of every job's executor and re-run any letter through the very
/// code that failed.
pub trait TaskExecutor: Send + Sync {
    fn execute(
        &self,
        ctx: TaskContext,
    ) -> Pin<Box<dyn Future<Output = Result<TaskOutput>> + Send + '_>>;
}

impl<J: Job> TaskExecutor for J {
    fn execute(
        &self,
        ctx: TaskContext,
    ) -> Pin<Box<dyn Future<Output = Result<TaskOutput>> + Send + '_>> {
        Box::pin(self.run_payload(ctx))
    }
}
