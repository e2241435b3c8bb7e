//! The dead-letter queue: a task that failed or timed out is kept with what
//! it needs to run again, instead of being only a log line.

use anyhow::{Context, Result};
use tokio_postgres::Client;
use uuid::Uuid;

/// Why a task ended up here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LetterKind {
    Error,
    Timeout,
    Infrastructure,
}

impl LetterKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LetterKind::Error => "error",
            LetterKind::Timeout => "timeout",
            LetterKind::Infrastructure => "infrastructure",
        }
    }
}

/// A failed task, as written to `dead_letters`.
#[derive(Debug, Clone)]
pub struct DeadLetter<'a> {
    pub job: &'a str,
    pub task_key: &'a str,
    pub payload: &'a serde_json::Value,
    pub kind: LetterKind,
    pub error: &'a str,
    pub run_id: Uuid,
}

/// Writes a letter; if the task already has an open letter, counts another
/// attempt on it instead. Returns the letter id.
pub async fn post(client: &Client, letter: &DeadLetter<'_>) -> Result<i64> {
    let row = client
        .query_one(
            "INSERT INTO dead_letters (job, task_key, payload, error_kind, error, first_run_id, last_run_id)
             VALUES ($1, $2, $3, $4, $5, $6, $6)
             ON CONFLICT (job, task_key) WHERE status IN ('pending', 'running') DO UPDATE
                SET attempts = dead_letters.attempts + 1, payload = EXCLUDED.payload,
                    error_kind = EXCLUDED.error_kind, error = EXCLUDED.error,
                    last_run_id = EXCLUDED.last_run_id, updated_at = now()
             RETURNING id",
            &[
                &letter.job,
                &letter.task_key,
                letter.payload,
                &letter.kind.as_str(),
                &letter.error,
                &letter.run_id,
            ],
        )
        .await
        .with_context(|| format!("writing the dead letter for task {}", letter.task_key))?;
    Ok(row.get(0))
}
