//! `jobs.yaml`: every job's schedule, deadlines, resources and arguments —
//! the single source the deploy manifests are rendered from.
//!
//! Parsing is strict and every problem names the job and the field, because
//! a typo in a deploy manifest otherwise shows up as a job that silently
//! never runs (an unknown key ignored) or one killed mid-write (deadlines
//! not layered).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde_json::Value;

use crate::harness::args::{format_duration, parse_duration};

/// Azure Container Apps kills a replica 30 s after SIGTERM; the grace we
/// ask for must end before that, with room to record the run.
pub const MAX_GRACE: Duration = Duration::from_secs(25);

/// Kubernetes appends 11 characters to a CronJob's name for its Jobs and
/// names must fit in 63: 52 is the documented CronJob name limit.
pub const MAX_NAME_LEN: usize = 52;

/// One job of jobs.yaml.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    pub name: String,
    pub description: Option<String>,
    /// The binary in the image that runs it.
    pub binary: String,
    /// 5-field cron expression, evaluated in UTC.
    pub schedule: String,
    pub timeout: Duration,
    pub task_timeout: Duration,
    pub grace: Duration,
    pub concurrency: u16,
    /// Extra command-line arguments (a subcommand first, for jobctl).
    pub args: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobsFile {
    pub jobs: Vec<JobSpec>,
}

/// One problem in jobs.yaml, pinned to a job and a field where it applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    pub job: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.job, &self.field) {
            (Some(job), Some(field)) => write!(f, "job `{job}`, field `{field}`: {}", self.message),
            (Some(job), None) => write!(f, "job `{job}`: {}", self.message),
            (None, Some(field)) => write!(f, "field `{field}`: {}", self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

const FIELDS: &[&str] = &[
    "description",
    "binary",
    "schedule",
    "timeout",
    "task_timeout",
    "grace",
    "concurrency",
    "args",
];

/// Parses and validates jobs.yaml text; returns every problem found, not
/// just the first, so one `jobctl check` shows all there is to fix.
pub fn parse(text: &str) -> Result<JobsFile, Vec<ManifestError>> {
    let doc: Value = serde_saphyr::from_str(text).map_err(|e| {
        vec![ManifestError {
            job: None,
            field: None,
            message: format!("not valid YAML: {e}"),
        }]
    })?;
    let top_error = |field: Option<&str>, message: String| ManifestError {
        job: None,
        field: field.map(String::from),
        message,
    };
    let Value::Object(top) = doc else {
        return Err(vec![top_error(
            None,
            "expected a mapping with a `jobs` key".into(),
        )]);
    };
    let mut errors = Vec::new();
    for key in top.keys().filter(|k| k.as_str() != "jobs") {
        errors.push(top_error(
            Some(key),
            "unknown top-level key (expected only `jobs`)".into(),
        ));
    }
    let jobs = match top.get("jobs") {
        Some(Value::Object(jobs)) => jobs.clone(),
        Some(_) => {
            errors.push(top_error(
                Some("jobs"),
                "expected a mapping from job name to job".into(),
            ));
            return Err(errors);
        }
        None => {
            errors.push(top_error(Some("jobs"), "missing".into()));
            return Err(errors);
        }
    };
    let mut specs = Vec::new();
    for (name, body) in &jobs {
        match parse_job(name, body) {
            Ok(spec) => specs.push(spec),
            Err(mut errs) => errors.append(&mut errs),
        }
    }
    if errors.is_empty() {
        Ok(JobsFile { jobs: specs })
    } else {
        Err(errors)
    }
}

fn parse_job(name: &str, body: &Value) -> Result<JobSpec, Vec<ManifestError>> {
    let mut errors = Vec::new();
    let err = |field: Option<&str>, message: String| ManifestError {
        job: Some(name.to_string()),
        field: field.map(String::from),
        message,
    };
    if name.len() > MAX_NAME_LEN
        || name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || name.starts_with('-')
        || name.ends_with('-')
    {
        errors.push(err(
            None,
            format!("job names must be 1–{MAX_NAME_LEN} characters of a-z, 0-9 and '-' (a Kubernetes name)"),
        ));
    }
    let Value::Object(fields) = body else {
        return Err(vec![err(None, "expected a mapping of job fields".into())]);
    };
    for key in fields.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
        errors.push(err(
            Some(key),
            format!("unknown key (expected one of: {})", FIELDS.join(", ")),
        ));
    }
    let string = |field: &str, errors: &mut Vec<ManifestError>| -> Option<String> {
        match fields.get(field) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                errors.push(err(
                    Some(field),
                    format!("expected a string, found {other}"),
                ));
                None
            }
            None => None,
        }
    };
    let required = |field: &str, v: Option<String>, errors: &mut Vec<ManifestError>| {
        if v.is_none() && !fields.contains_key(field) {
            errors.push(err(Some(field), "missing".into()));
        }
        v
    };
    let duration = |field: &str, errors: &mut Vec<ManifestError>| -> Option<Duration> {
        let s = required(field, string(field, errors), errors)?;
        match parse_duration(&s) {
            Ok(d) if d.is_zero() => {
                errors.push(err(Some(field), "must be greater than zero".into()));
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                errors.push(err(Some(field), format!("{s:?}: {e}")));
                None
            }
        }
    };

    let description = string("description", &mut errors);
    let binary = required("binary", string("binary", &mut errors), &mut errors);
    let schedule = required("schedule", string("schedule", &mut errors), &mut errors);
    if let Some(expr) = &schedule
        && let Err(msg) = check_cron(expr)
    {
        errors.push(err(Some("schedule"), msg));
    }
    let timeout = duration("timeout", &mut errors);
    let task_timeout = duration("task_timeout", &mut errors);
    let grace = duration("grace", &mut errors);
    let concurrency = match fields.get("concurrency") {
        Some(Value::Number(n)) => match n.as_u64().and_then(|n| u16::try_from(n).ok()) {
            Some(c) if (1..=256).contains(&c) => Some(c),
            _ => {
                errors.push(err(
                    Some("concurrency"),
                    format!("{n}: expected an integer from 1 to 256"),
                ));
                None
            }
        },
        Some(other) => {
            errors.push(err(
                Some("concurrency"),
                format!("expected an integer, found {other}"),
            ));
            None
        }
        None => Some(4),
    };
    let args = match fields.get("args") {
        None => Some(Vec::new()),
        Some(Value::Array(items)) => {
            let strings: Option<Vec<String>> =
                items.iter().map(|v| v.as_str().map(String::from)).collect();
            if strings.is_none() {
                errors.push(err(
                    Some("args"),
                    "expected a list of strings (quote numbers: \"20\")".into(),
                ));
            }
            strings
        }
        Some(other) => {
            errors.push(err(
                Some("args"),
                format!("expected a list of strings, found {other}"),
            ));
            None
        }
    };
    if let (Some(task), Some(total)) = (task_timeout, timeout)
        && task >= total
    {
        errors.push(err(
            Some("task_timeout"),
            format!(
                "{} is not below timeout {}: deadlines must be layered (task timeout < run timeout)",
                format_duration(task),
                format_duration(total)
            ),
        ));
    }
    if let Some(g) = grace
        && g > MAX_GRACE
    {
        errors.push(err(
            Some("grace"),
            format!(
                "{} is more than {}: Azure Container Apps kills a replica 30 s after SIGTERM",
                format_duration(g),
                format_duration(MAX_GRACE)
            ),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    match (
        binary,
        schedule,
        timeout,
        task_timeout,
        grace,
        concurrency,
        args,
    ) {
        (
            Some(binary),
            Some(schedule),
            Some(timeout),
            Some(task_timeout),
            Some(grace),
            Some(concurrency),
            Some(args),
        ) => Ok(JobSpec {
            name: name.to_string(),
            description,
            binary,
            schedule,
            timeout,
            task_timeout,
            grace,
            concurrency,
            args,
        }),
        _ => Err(vec![err(None, "incomplete job".into())]),
    }
}

/// A 5-field cron expression (minute hour day-of-month month day-of-week),
/// as both Kubernetes and Azure Container Apps take it.
pub fn check_cron(expr: &str) -> Result<croner::Cron, String> {
    let fields = expr.split_whitespace().count();
    if fields != 5 {
        return Err(format!(
            "{expr:?} has {fields} field(s); expected 5 (minute hour day-of-month month day-of-week, UTC)"
        ));
    }
    croner::Cron::from_str(expr)
        .map_err(|e| format!("{expr:?} is not a valid cron expression: {e}"))
}

/// The next time a schedule fires after `after`, in UTC.
pub fn next_run(
    schedule: &str,
    after: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    check_cron(schedule)
        .ok()?
        .find_next_occurrence(&after, false)
        .ok()
}

/// Job names in file order are not kept by the JSON map; sort for stable output.
pub fn by_name(file: &JobsFile) -> BTreeMap<&str, &JobSpec> {
    file.jobs.iter().map(|j| (j.name.as_str(), j)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
jobs:
  canary:
    binary: jobctl
    schedule: "*/15 * * * *"
    timeout: 5m
    task_timeout: 30s
    grace: 20s
    concurrency: 4
    args: ["canary", "--tasks", "20"]
"#;

    #[test]
    fn a_valid_file_parses_with_durations() {
        let file = parse(GOOD).unwrap();
        let job = &file.jobs[0];
        assert_eq!(job.name, "canary");
        assert_eq!(job.timeout, Duration::from_secs(300));
        assert_eq!(job.task_timeout, Duration::from_secs(30));
        assert_eq!(job.args, ["canary", "--tasks", "20"]);
    }

    fn messages(text: &str) -> Vec<String> {
        parse(text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn an_unknown_key_names_the_job_and_key() {
        let errs = messages(&GOOD.replace("grace: 20s", "grace: 20s\n    timout: 5m"));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("job `canary`, field `timout`: unknown key"),
            "{errs:?}"
        );
    }

    #[test]
    fn a_bad_cron_expression_names_the_schedule() {
        let errs = messages(&GOOD.replace("*/15 * * * *", "*/15 * * *"));
        assert!(
            errs[0].starts_with("job `canary`, field `schedule`:"),
            "{errs:?}"
        );
        let errs = messages(&GOOD.replace("*/15 * * * *", "61 * * * *"));
        assert!(errs[0].contains("not a valid cron expression"), "{errs:?}");
    }

    #[test]
    fn task_timeout_must_be_below_timeout() {
        let errs = messages(&GOOD.replace("task_timeout: 30s", "task_timeout: 10m"));
        assert!(
            errs[0].starts_with("job `canary`, field `task_timeout`:"),
            "{errs:?}"
        );
        assert!(errs[0].contains("layered"), "{errs:?}");
    }

    #[test]
    fn grace_over_25s_is_rejected() {
        let errs = messages(&GOOD.replace("grace: 20s", "grace: 30s"));
        assert!(
            errs[0].starts_with("job `canary`, field `grace`:"),
            "{errs:?}"
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = GOOD
            .replace("grace: 20s", "grace: 1m")
            .replace("*/15 * * * *", "often")
            .replace("concurrency: 4", "concurrency: 0");
        assert_eq!(messages(&text).len(), 3);
    }

    #[test]
    fn next_run_follows_the_schedule_in_utc() {
        let after = chrono::DateTime::parse_from_rfc3339("2026-11-22T01:07:00Z")
            .unwrap()
            .to_utc();
        let next = next_run("*/15 * * * *", after).unwrap();
        assert_eq!(next.to_rfc3339(), "2026-11-22T01:15:00+00:00");
    }
}
