//! The canary job: N small tasks, each waiting a while and making one round
//! trip to the database, through the full harness. It proves the wiring
//! (image, scheduler, secret, network, database, lock, ledger) without
//! touching data, and the harness's own tests drive it.

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;

use crate::harness::{CommonArgs, Job, Plan, PlanContext, TaskContext, TaskOutput, TaskSpec};

#[derive(Debug, Clone)]
pub struct Canary {
    pub tasks: u32,
    pub task_duration: Duration,
    pub common: CommonArgs,
}

impl Job for Canary {
    fn name(&self) -> &'static str {
        "canary"
    }

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn args(&self) -> serde_json::Value {
        json!({
            "tasks": self.tasks,
            "task_duration_ms": self.task_duration.as_millis() as u64,
        })
    }

    async fn plan(&self, _ctx: &PlanContext) -> Result<Plan> {
        let tasks = (0..self.tasks)
            .map(|i| TaskSpec {
                key: format!("canary-{i:05}"),
                payload: json!({ "index": i, "duration_ms": self.task_duration.as_millis() as u64 }),
            })
            .collect();
        Ok(Plan {
            description: vec![format!(
                "{} task(s), each waits {} then runs SELECT 1",
                self.tasks,
                crate::harness::args::format_duration(self.task_duration)
            )],
            tasks,
            ..Plan::default()
        })
    }

    async fn run_task(&self, ctx: TaskContext) -> Result<TaskOutput> {
        // The payload, not the flags, says what to do: a dead letter re-runs it.
        let wait = ctx
            .payload
            .get("duration_ms")
            .and_then(|v| v.as_u64())
            .map(Duration::from_millis)
            .unwrap_or(self.task_duration);
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
