//! The canary job: N small tasks, each waiting a while and making one round
//! trip to the database, through the full harness. It proves the wiring
//! (image, scheduler, secret, network, database, lock, ledger) without
//! touching data, and the harness's own tests drive it.

use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::harness::args::{duration_text, parse_duration};
use crate::harness::{CommonArgs, Job, Plan, PlanContext, TaskContext, TaskOutput, TaskSpec};

/// `jobctl canary`'s flags.
#[derive(Debug, Clone, clap::Args, Serialize, Deserialize)]
pub struct CanaryArgs {
    /// Number of tasks.
    #[arg(long, default_value_t = 20)]
    pub tasks: u32,
    /// How long each task waits before its database round trip.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    #[serde(with = "duration_text")]
    pub task_duration: Duration,
}

/// One canary chunk: which one, and how long it waits (the payload, not
/// the flags, says what to do: a dead letter re-runs it as it was).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CanaryChunk {
    pub index: u32,
    pub duration_ms: u64,
}

pub const JOB_NAME: &str = "canary";

#[derive(Debug, Clone)]
pub struct Canary {
    pub args: CanaryArgs,
    pub common: CommonArgs,
}

impl Job for Canary {
    type Args = CanaryArgs;
    type Chunk = CanaryChunk;

    fn name(&self) -> &'static str {
        JOB_NAME
    }

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn args(&self) -> &CanaryArgs {
        &self.args
    }

    async fn plan(&self, _ctx: &PlanContext) -> Result<Plan> {
        let duration_ms = u64::try_from(self.args.task_duration.as_millis()).unwrap_or(u64::MAX);
        let tasks = (0..self.args.tasks)
            .map(|index| {
                TaskSpec::new(
                    format!("canary-{index:05}"),
                    &CanaryChunk { index, duration_ms },
                )
            })
            .collect::<Result<_>>()?;
        Ok(Plan {
            description: vec![format!(
                "{} task(s), each waits {} then runs SELECT 1",
                self.args.tasks,
                crate::harness::args::format_duration(self.args.task_duration)
            )],
            tasks,
            ..Plan::default()
        })
    }

    async fn run_task(&self, ctx: TaskContext, chunk: CanaryChunk) -> Result<TaskOutput> {
        let wait = Duration::from_millis(chunk.duration_ms);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = ctx.cancel.cancelled() => anyhow::bail!("cancelled while waiting"),
        }
        let client = ctx
            .pool
            .get()
            .await
            .context("getting a database connection")?;
        let one: i32 = client
            .query_one("SELECT 1", &[])
            .await
            .context("round trip to the database")?
            .get(0);
        anyhow::ensure!(one == 1, "SELECT 1 returned {one}");
        Ok(TaskOutput::default())
    }
}
