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

/// How long to wait after the `retries`-th failed re-run of a letter:
/// exponential from `base` (retries = 1), capped at `cap`, with
/// "equal jitter" (half fixed, half random by `unit` in [0, 1)) so retries
/// of many letters spread out, yet below the cap a wait never shrinks from
/// one attempt to the next.
pub fn backoff(
    retries: u32,
    base: std::time::Duration,
    cap: std::time::Duration,
    unit: f64,
) -> std::time::Duration {
    let exp = retries.saturating_sub(1).min(30);
    let full = base.saturating_mul(1u32 << exp).min(cap);
    let half = full / 2;
    half + half.mul_f64(unit.clamp(0.0, 1.0))
}

/// A number in [0, 1) that differs per letter and attempt (no RNG state to
/// carry; jitter needs spread, not cryptographic quality).
pub fn jitter_unit(letter_id: i64, attempts: u32) -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut x = (letter_id as u64) ^ (u64::from(attempts) << 40) ^ (u64::from(nanos) << 8);
    // splitmix64 finaliser
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn backoff_grows_exponentially_and_is_capped() {
        let (base, cap) = (Duration::from_secs(60), Duration::from_secs(3600));
        let at = |n, u| backoff(n, base, cap, u);
        assert_eq!(at(1, 0.0), Duration::from_secs(30));
        assert_eq!(at(1, 1.0), Duration::from_secs(60));
        assert_eq!(at(3, 0.0), Duration::from_secs(120));
        assert_eq!(at(20, 1.0), cap);
        // Below the cap, whatever the jitter, the next wait is never shorter.
        for n in 1..6 {
            assert!(at(n + 1, 0.0) >= at(n, 1.0), "attempt {n}");
        }
    }

    #[test]
    fn jitter_is_in_the_unit_interval() {
        for id in 0..100 {
            let u = jitter_unit(id, 3);
            assert!((0.0..1.0).contains(&u), "{u}");
        }
    }
}
