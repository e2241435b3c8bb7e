//! The scheduler's own limits, derived from a job's deadlines so that they
//! stay layered: the process ends itself first, the
//! scheduler's limit only catches what the process could not.
//!
//! For one attempt (one pod / one ACA replica):
//!
//! ```text
//! task_timeout < timeout                      the run deadline (exit 124)
//!              < timeout + grace              the watchdog ends the process
//!              < timeout + grace + 60 s       ATTEMPT: ACA replicaTimeout;
//!                                             one pod's share of activeDeadlineSeconds
//! ```
//!
//! Kubernetes' `activeDeadlineSeconds` bounds the whole Job, every retry
//! included, so it is `(retries + 1) × ATTEMPT` plus the pod-failure back-off
//! Kubernetes waits between attempts (10 s, doubling, at most 6 min).
//!
//! Maximum: neither scheduler documents one (the `Microsoft.App/jobs` REST
//! spec, api-version 2024-03-01, types `replicaTimeout` as a plain int32),
//! so jobctl sets its own: no rendered limit may exceed [`MAX_SCHEDULER_LIMIT`]
//! (24 h). A batch that needs longer should be split into chunks that resume
//! (they do), not given a day-long deadline.

use std::time::Duration;

/// What the scheduler allows on top of deadline + grace for one attempt:
/// pulling the image, starting the container, connecting, recording the run.
pub const START_MARGIN: Duration = Duration::from_secs(60);

/// Seconds Kubernetes waits after SIGTERM beyond the job's grace: the
/// process needs a moment after its grace to record the run and exit.
/// With grace ≤ 25 s this is at most 30 s, the same as Azure Container Apps.
pub const KILL_MARGIN: Duration = Duration::from_secs(5);

/// The largest `replicaTimeout` / `activeDeadlineSeconds` jobctl renders.
pub const MAX_SCHEDULER_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// Kubernetes' pod-failure back-off: 10 s, doubled per failure, capped at 6 min.
const BACKOFF_FIRST: u64 = 10;
const BACKOFF_CAP: u64 = 360;

/// A finished Job is deleted after a day; the run history lives in `job_runs`.
pub const TTL_AFTER_FINISHED_SECS: u64 = 24 * 3600;
pub const SUCCESSFUL_JOBS_HISTORY: u32 = 3;
pub const FAILED_JOBS_HISTORY: u32 = 5;

/// Bounds for `startingDeadlineSeconds` (see [`starting_deadline_secs`]).
const STARTING_DEADLINE_MIN: u64 = 60;
const STARTING_DEADLINE_MAX: u64 = 3600;

/// One attempt's limit in whole seconds (rounded up).
pub fn attempt_secs(timeout: Duration, grace: Duration) -> u64 {
    ceil_secs(timeout + grace + START_MARGIN)
}

/// Kubernetes' back-off between `retries + 1` attempts, in seconds.
pub fn backoff_total_secs(retries: u32) -> u64 {
    (0..retries)
        .map(|i| {
            BACKOFF_FIRST
                .saturating_mul(1u64 << i.min(32))
                .min(BACKOFF_CAP)
        })
        .sum()
}

/// `activeDeadlineSeconds`: every attempt's limit plus the back-off between them.
pub fn active_deadline_secs(timeout: Duration, grace: Duration, retries: u32) -> u64 {
    attempt_secs(timeout, grace)
        .saturating_mul(u64::from(retries) + 1)
        .saturating_add(backoff_total_secs(retries))
}

/// `terminationGracePeriodSeconds`: the grace plus [`KILL_MARGIN`].
pub fn termination_grace_secs(grace: Duration) -> u64 {
    ceil_secs(grace + KILL_MARGIN)
}

/// `startingDeadlineSeconds`: how late a missed schedule may still start.
/// Half the shortest gap between two runs of the schedule, between 1 min and
/// 1 h: a run that could not start on time still starts, but never so late
/// that it runs into the next one. (Without it a CronJob that missed more
/// than 100 schedules never starts again.)
pub fn starting_deadline_secs(schedule: &str) -> u64 {
    let half_gap = min_gap_secs(schedule).map_or(STARTING_DEADLINE_MAX, |g| g / 2);
    half_gap.clamp(STARTING_DEADLINE_MIN, STARTING_DEADLINE_MAX)
}

/// The shortest interval between consecutive runs over the next 64 runs
/// after a fixed instant (fixed, so rendering is deterministic).
fn min_gap_secs(schedule: &str) -> Option<u64> {
    let start = chrono::DateTime::from_timestamp(1_767_225_600, 0)?; // 2026-01-01T00:00Z
    let mut prev = super::next_run(schedule, start)?;
    let mut best: Option<u64> = None;
    for _ in 0..64 {
        let next = super::next_run(schedule, prev)?;
        let gap = u64::try_from((next - prev).num_seconds()).ok()?;
        best = Some(best.map_or(gap, |b| b.min(gap)));
        prev = next;
    }
    best
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_and_backoff_add_up() {
        let t = Duration::from_secs(600);
        let g = Duration::from_secs(15);
        assert_eq!(attempt_secs(t, g), 675);
        assert_eq!(backoff_total_secs(0), 0);
        assert_eq!(backoff_total_secs(2), 30);
        assert_eq!(
            backoff_total_secs(8),
            10 + 20 + 40 + 80 + 160 + 320 + 360 + 360
        );
        assert_eq!(active_deadline_secs(t, g, 2), 3 * 675 + 30);
        assert_eq!(termination_grace_secs(Duration::from_secs(25)), 30);
        assert_eq!(
            attempt_secs(Duration::from_millis(1500), Duration::ZERO),
            62
        );
    }

    #[test]
    fn starting_deadline_follows_the_schedule() {
        assert_eq!(starting_deadline_secs("*/30 * * * *"), 900);
        assert_eq!(starting_deadline_secs("* * * * *"), 60);
        assert_eq!(starting_deadline_secs("0 2 * * *"), 3600);
    }
}
