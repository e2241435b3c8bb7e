//! The last line on stdout: one JSON object saying how the run ended, for
//! CI and for people.

use serde::Serialize;
use uuid::Uuid;

use super::ledger::RunMetrics;
use super::outcome::RunStatus;

#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub job: String,
    pub run_id: Uuid,
    pub status: RunStatus,
    pub exit_code: i32,
    #[serde(flatten)]
    pub metrics: RunMetrics,
    pub duration_ms: u64,
    pub peak_rss_kb: Option<u64>,
    pub dry_run: bool,
    /// The job's own counts, if it keeps any.
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub counters: serde_json::Value,
    /// Why a skipped run did nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RunSummary {
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(
                r#"{{"job":"{}","status":"{}","exit_code":{},"error":"summary: {e}"}}"#,
                self.job, self.status, self.exit_code
            )
        })
    }
}
