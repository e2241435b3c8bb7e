//! When a job counts as late, and how old its output data may get: the
//! thresholds `jobctl status` and the rendered Prometheus alert rules use.
//!
//! Lateness is derived from the schedule, never written by hand: a run due
//! at a scheduled time may start up to `startingDeadlineSeconds` late and
//! then take one attempt ([`limits::attempt_secs`]); a success older than
//! that is missing. The data threshold is the job's own `freshness:` field:
//!
//! ```yaml
//! freshness: {table: hazard_results, max_age: 35d}
//! ```
//!
//! (`table`: one of [`DATA_TABLES`], the tables whose last change the
//! ledger knows; `max_age`: how long it may go unchanged before the
//! `ClimateDataStale` alert fires.)

use std::time::Duration;

use serde_json::Value;

use super::{ManifestError, limits};
use crate::harness::args::{format_duration, parse_age};

/// Tables whose last update time is known: the three with a row in
/// `data_versions` (bumped by statement triggers) and the region cache
/// (its `region_hazard_cache_state.refreshed_at`).
pub const DATA_TABLES: &[&str] = &[
    "hazard_results",
    "probability_results",
    "regions",
    "region_hazard_cache",
];

/// A job's output-data threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freshness {
    /// The table the job writes.
    pub table: String,
    /// How long the table may go without a change.
    pub max_age: Duration,
}

/// The longest gap between two consecutive runs of `schedule`, over its
/// next 400 runs after a fixed instant (fixed, so rendering is
/// deterministic; 400 covers a year of a daily job's irregular months).
pub fn max_gap_secs(schedule: &str) -> Option<u64> {
    let start = chrono::DateTime::from_timestamp(1_767_225_600, 0)?; // 2026-01-01T00:00Z
    let mut prev = super::next_run(schedule, start)?;
    let mut best = 0u64;
    for _ in 0..400 {
        let next = super::next_run(schedule, prev)?;
        let gap = u64::try_from((next - prev).num_seconds()).ok()?;
        best = best.max(gap);
        prev = next;
    }
    Some(best)
}

/// Seconds after a scheduled time by which that run should have succeeded:
/// its starting deadline plus one attempt.
pub fn due_within_secs(schedule: &str, timeout: Duration, grace: Duration) -> u64 {
    limits::starting_deadline_secs(schedule).saturating_add(limits::attempt_secs(timeout, grace))
}

/// A success older than this is late whatever the time of day: the
/// schedule's longest gap plus [`due_within_secs`]. The alert rules use it
/// (PromQL knows no cron); `jobctl status` uses the exact schedule.
pub fn late_after_secs(schedule: &str, timeout: Duration, grace: Duration) -> u64 {
    max_gap_secs(schedule)
        .unwrap_or(0)
        .saturating_add(due_within_secs(schedule, timeout, grace))
}

/// Parses the `freshness:` field of one job. `late_after` is the job's
/// derived lateness (None when its schedule or deadlines did not parse).
pub fn parse(
    value: Option<&Value>,
    late_after: Option<u64>,
    err: &dyn Fn(Option<&str>, String) -> ManifestError,
    errors: &mut Vec<ManifestError>,
) -> Option<Option<Freshness>> {
    let fields = match value {
        None => return Some(None),
        Some(Value::Object(fields)) => fields,
        Some(other) => {
            errors.push(err(
                Some("freshness"),
                format!("expected a mapping {{table: NAME, max_age: DURATION}}, found {other}"),
            ));
            return None;
        }
    };
    let before = errors.len();
    for key in fields
        .keys()
        .filter(|k| !matches!(k.as_str(), "table" | "max_age"))
    {
        errors.push(err(
            Some(&format!("freshness.{key}")),
            "unknown key (expected table, max_age)".into(),
        ));
    }
    let table = match fields.get("table") {
        Some(Value::String(t)) if DATA_TABLES.contains(&t.as_str()) => Some(t.clone()),
        Some(Value::String(t)) => {
            errors.push(err(
                Some("freshness.table"),
                format!(
                    "{t:?}: not a table whose last update is tracked (one of: {})",
                    DATA_TABLES.join(", ")
                ),
            ));
            None
        }
        Some(other) => {
            errors.push(err(
                Some("freshness.table"),
                format!("expected a table name, found {other}"),
            ));
            None
        }
        None => {
            errors.push(err(Some("freshness.table"), "missing".into()));
            None
        }
    };
    let max_age = match fields.get("max_age") {
        Some(Value::String(s)) => match parse_age(s) {
            Ok(d) if d.is_zero() => {
                errors.push(err(
                    Some("freshness.max_age"),
                    "must be greater than zero".into(),
                ));
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                errors.push(err(Some("freshness.max_age"), format!("{s:?}: {e}")));
                None
            }
        },
        Some(other) => {
            errors.push(err(
                Some("freshness.max_age"),
                format!("expected a duration like 26h or 35d, found {other}"),
            ));
            None
        }
        None => {
            errors.push(err(Some("freshness.max_age"), "missing".into()));
            None
        }
    };
    // Data younger than one late interval is always possible for a healthy
    // job; a smaller limit would alert between two good runs.
    if let (Some(age), Some(late)) = (max_age, late_after)
        && age.as_secs() < late
    {
        errors.push(err(
            Some("freshness.max_age"),
            format!(
                "{} is shorter than the job's late threshold {} (longest schedule gap + \
                 starting deadline + one attempt): it would fire between two healthy runs",
                format_duration(age),
                format_duration(Duration::from_secs(late))
            ),
        ));
    }
    if errors.len() > before {
        return None;
    }
    Some(Some(Freshness {
        table: table?,
        max_age: max_age?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_threshold_follows_schedule_and_deadlines() {
        assert_eq!(max_gap_secs("15 * * * *"), Some(3600));
        assert_eq!(max_gap_secs("0 2 * * *"), Some(86_400));
        assert_eq!(max_gap_secs("0 2 1 * *"), Some(31 * 86_400));
        // hourly: gap 1 h + starting deadline 30 min + one attempt (10m + 15s + 60s)
        let late = late_after_secs(
            "15 * * * *",
            Duration::from_secs(600),
            Duration::from_secs(15),
        );
        assert_eq!(late, 3600 + 1800 + 675);
    }

    const JOB: &str = r#"
jobs:
  canary:
    binary: jobctl
    schedule: "0 * * * *"
    timeout: 5m
    task_timeout: 30s
    grace: 20s
    secrets:
      DATABASE_URL: {secret: climate-jobs, key: database-url}
"#;

    fn errors(freshness: &str) -> Vec<String> {
        match super::super::parse(&format!("{JOB}    freshness: {freshness}\n")) {
            Ok(_) => Vec::new(),
            Err(errs) => errs.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn freshness_parses_and_bad_ones_name_the_field() {
        let file = super::super::parse(&format!(
            "{JOB}    freshness: {{table: regions, max_age: 2d}}\n"
        ))
        .unwrap();
        assert_eq!(
            file.jobs[0].freshness,
            Some(Freshness {
                table: "regions".into(),
                max_age: Duration::from_secs(2 * 86_400)
            })
        );
        let errs = errors("{table: job_runs, max_age: 2d, every: 1h}");
        assert!(
            errs.iter()
                .any(|e| e.contains("field `freshness.table`: \"job_runs\": not a table")),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.contains("field `freshness.every`: unknown key")),
            "{errs:?}"
        );
        // hourly, 5m timeout: late after 1h + 30m + 5m20s + 60s
        let errs = errors("{table: regions, max_age: 1h}");
        assert!(
            errs.iter().any(|e| e.contains(
                "field `freshness.max_age`: 1h is shorter than the job's late threshold"
            )),
            "{errs:?}"
        );
        assert!(!errors("{table: regions}").is_empty());
    }
}
