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

pub mod aca;
pub mod freshness;
pub mod k8s;
pub mod limits;
pub mod notify;
pub mod prometheus;
pub mod quantity;

use quantity::Quantity;

/// Every binary the image carries (`src/bin/*.rs`; the Dockerfile copies
/// each to /usr/local/bin). A unit test compares it with the directory so
/// it cannot drift; `binary:` in jobs.yaml must name one of them.
pub const IMAGE_BINARIES: &[&str] = &[
    "cache-refresh",
    "dlq-reprocess",
    "hazard-timeseries-batch",
    "jobctl",
    "probability-batch",
    "site-risk-batch",
];

/// Environment variables jobctl renders from the job's own fields; `env:`
/// and `secrets:` may not set them.
pub const RENDERED_ENV: &[&str] = &[
    "CLIMATE_JOBS_TIMEOUT",
    "CLIMATE_JOBS_TASK_TIMEOUT",
    "CLIMATE_JOBS_GRACE",
    "CLIMATE_JOBS_CONCURRENCY",
    "CLIMATE_JOBS_LOG_FORMAT",
    notify::NOTIFY_ENV,
];

/// Defaults of the optional fields (stated in jobs.yaml's header too).
pub const DEFAULT_CONCURRENCY: u16 = 4;
pub const DEFAULT_REPLICAS: u16 = 1;
pub const MAX_REPLICAS: u16 = 64;
pub const DEFAULT_RETRIES: u32 = 2;
pub const MAX_RETRIES: u32 = 10;
/// The smallest Azure Container Apps consumption size.
pub const DEFAULT_CPU: &str = "250m";
pub const DEFAULT_MEMORY: &str = "512Mi";

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
    /// Processes started together for one run (Indexed Job pods / ACA
    /// replicas); default 1.
    pub replicas: u16,
    /// Attempts after the first for a retryable exit code; default 2.
    pub retries: u32,
    /// CPU as written (a Kubernetes quantity) and in millicores.
    pub cpu: String,
    pub cpu_millis: u64,
    /// Memory as written (a Kubernetes quantity) and in bytes.
    pub memory: String,
    pub memory_bytes: u64,
    /// Environment variables read from secrets; DATABASE_URL is one.
    pub secrets: BTreeMap<String, SecretRef>,
    /// Plain environment variables.
    pub env: BTreeMap<String, String>,
    /// Read-only data volumes (e.g. the hazard batch's NetCDF inputs), by
    /// name; none by default.
    pub volumes: BTreeMap<String, VolumeSpec>,
    /// How old its output data may get (`freshness:`); none by default.
    pub freshness: Option<freshness::Freshness>,
    /// Failure alerts (`notify.rs`); none by default.
    pub notify: Option<notify::NotifySpec>,
    /// Check-in pings; none by default.
    pub heartbeat: Option<notify::HeartbeatSpec>,
}

/// A read-only data volume: a PersistentVolumeClaim on Kubernetes, an
/// Azure Files share (an environment storage) on Container Apps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    /// Absolute path in the container.
    pub mount_path: String,
    /// Kubernetes PersistentVolumeClaim name.
    pub claim: String,
    /// Container Apps environment storage name (`az containerapp env storage set`).
    pub aca_storage: String,
}

/// One environment variable's secret: a Kubernetes Secret and its key. On
/// Azure Container Apps the secret is a Key Vault reference named
/// [`SecretRef::aca_name`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub secret: String,
    pub key: String,
}

impl SecretRef {
    /// `<secret>-<key>`, lower case, `_` and `.` as `-`: a name both an ACA
    /// secret and a Key Vault secret accept.
    pub fn aca_name(&self) -> String {
        format!("{}-{}", self.secret, self.key)
            .chars()
            .map(|c| match c {
                '_' | '.' => '-',
                c => c.to_ascii_lowercase(),
            })
            .collect()
    }
}

impl JobSpec {
    /// ACA `replicaTimeout` and one pod's share of `activeDeadlineSeconds`.
    pub fn attempt_secs(&self) -> u64 {
        limits::attempt_secs(self.timeout, self.grace)
    }

    /// A success older than this is late (see [`freshness::late_after_secs`]).
    pub fn late_after_secs(&self) -> u64 {
        freshness::late_after_secs(&self.schedule, self.timeout, self.grace)
    }

    pub fn active_deadline_secs(&self) -> u64 {
        limits::active_deadline_secs(self.timeout, self.grace, self.retries)
    }

    /// The environment every rendering sets from the job's own fields.
    pub fn rendered_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CLIMATE_JOBS_TIMEOUT", format_duration(self.timeout)),
            (
                "CLIMATE_JOBS_TASK_TIMEOUT",
                format_duration(self.task_timeout),
            ),
            ("CLIMATE_JOBS_GRACE", format_duration(self.grace)),
            ("CLIMATE_JOBS_CONCURRENCY", self.concurrency.to_string()),
            ("CLIMATE_JOBS_LOG_FORMAT", "json".to_string()),
        ]
        .into_iter()
        .chain(
            notify::rendered_value(self.replicas, self.notify.as_ref(), self.heartbeat.as_ref())
                .map(|v| (notify::NOTIFY_ENV, v)),
        )
        .collect()
    }

    /// Every plain (non-secret) variable of the container: the rendered
    /// ones, then the job's own `env:`, as scheduler env entries.
    pub fn plain_env_entries(&self) -> Vec<serde_json::Value> {
        let rendered = self
            .rendered_env()
            .into_iter()
            .map(|(n, v)| (n.to_string(), v));
        let own = self.env.iter().map(|(n, v)| (n.clone(), v.clone()));
        rendered
            .chain(own)
            .map(|(name, value)| serde_json::json!({"name": name, "value": value}))
            .collect()
    }
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
    "replicas",
    "retries",
    "cpu",
    "memory",
    "secrets",
    "env",
    "volumes",
    "freshness",
    "notify",
    "heartbeat",
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
    check_name(name, &err, &mut errors);
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
    let integer =
        |field: &str, default: u64, min: u64, max: u64, errors: &mut Vec<ManifestError>| {
            match fields.get(field) {
                None => Some(default),
                Some(Value::Number(n)) => match n.as_u64() {
                    Some(v) if (min..=max).contains(&v) => Some(v),
                    _ => {
                        errors.push(err(
                            Some(field),
                            format!("{n}: expected an integer from {min} to {max}"),
                        ));
                        None
                    }
                },
                Some(other) => {
                    errors.push(err(
                        Some(field),
                        format!("expected an integer, found {other}"),
                    ));
                    None
                }
            }
        };
    let concurrency = integer(
        "concurrency",
        u64::from(DEFAULT_CONCURRENCY),
        1,
        256,
        &mut errors,
    )
    .and_then(|v| u16::try_from(v).ok());
    let replicas = integer(
        "replicas",
        u64::from(DEFAULT_REPLICAS),
        1,
        u64::from(MAX_REPLICAS),
        &mut errors,
    )
    .and_then(|v| u16::try_from(v).ok());
    let retries = integer(
        "retries",
        u64::from(DEFAULT_RETRIES),
        0,
        u64::from(MAX_RETRIES),
        &mut errors,
    )
    .and_then(|v| u32::try_from(v).ok());
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
    if let Some(b) = &binary
        && !IMAGE_BINARIES.contains(&b.as_str())
    {
        errors.push(err(
            Some("binary"),
            format!(
                "{b:?} is not a binary in the image (one of: {})",
                IMAGE_BINARIES.join(", ")
            ),
        ));
    }

    let cpu = string("cpu", &mut errors).unwrap_or_else(|| DEFAULT_CPU.to_string());
    let memory = string("memory", &mut errors).unwrap_or_else(|| DEFAULT_MEMORY.to_string());
    let (cpu_millis, memory_bytes) = check_resources(&cpu, &memory, &err, &mut errors);

    let volumes = volume_map(fields.get("volumes"), &err, &mut errors);
    let env = string_map("env", fields.get("env"), &err, &mut errors);
    let secrets = secret_map(fields.get("secrets"), &err, &mut errors);
    let mut notify_problems = Vec::new();
    let (notify, heartbeat) = notify::parse(
        fields.get("notify"),
        fields.get("heartbeat"),
        secrets.as_ref(),
        &mut notify_problems,
    );
    for (field, message) in notify_problems {
        errors.push(err(Some(&field), message));
    }
    if let (Some(env), Some(secrets)) = (&env, &secrets) {
        check_env_and_secrets(env, secrets, &err, &mut errors);
    }

    check_deadlines(
        Deadlines {
            timeout,
            task_timeout,
            grace,
            retries,
        },
        &err,
        &mut errors,
    );
    let late_after = match (&schedule, timeout, grace) {
        (Some(s), Some(t), Some(g)) if check_cron(s).is_ok() => {
            Some(freshness::late_after_secs(s, t, g))
        }
        _ => None,
    };
    let freshness = freshness::parse(fields.get("freshness"), late_after, &err, &mut errors);
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
        (replicas, retries, cpu_millis, memory_bytes),
        (env, secrets, volumes, freshness),
    ) {
        (
            Some(binary),
            Some(schedule),
            Some(timeout),
            Some(task_timeout),
            Some(grace),
            Some(concurrency),
            Some(args),
            (Some(replicas), Some(retries), Some(cpu_millis), Some(memory_bytes)),
            (Some(env), Some(secrets), Some(volumes), Some(freshness)),
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
            replicas,
            retries,
            cpu,
            cpu_millis,
            memory,
            memory_bytes,
            secrets,
            env,
            volumes,
            freshness,
            notify,
            heartbeat,
        }),
        _ => Err(vec![err(None, "incomplete job".into())]),
    }
}

type ErrorAt<'a> = dyn Fn(Option<&str>, String) -> ManifestError + 'a;

/// A job's name is a Kubernetes name (the CronJob's, with room for the
/// suffix its Jobs get).
fn check_name(name: &str, err: &ErrorAt<'_>, errors: &mut Vec<ManifestError>) {
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
}

/// `cpu` and `memory`: Kubernetes quantities, and a pair Azure Container
/// Apps runs. Returns (millicores, bytes) where they parse.
fn check_resources(
    cpu: &str,
    memory: &str,
    err: &ErrorAt<'_>,
    errors: &mut Vec<ManifestError>,
) -> (Option<u64>, Option<u64>) {
    let cpu_millis = match Quantity::parse(cpu).map(Quantity::millis) {
        Ok(Some(m)) => Some(m),
        Ok(None) => {
            errors.push(err(Some("cpu"), format!("{cpu:?}: finer than 1m")));
            None
        }
        Err(e) => {
            errors.push(err(Some("cpu"), e));
            None
        }
    };
    let memory_bytes = match Quantity::parse(memory).map(Quantity::bytes) {
        Ok(Some(b)) => Some(b),
        Ok(None) => {
            errors.push(err(
                Some("memory"),
                format!("{memory:?}: not a whole number of bytes"),
            ));
            None
        }
        Err(e) => {
            errors.push(err(Some("memory"), e));
            None
        }
    };
    if let (Some(m), Some(b)) = (cpu_millis, memory_bytes)
        && let Err(msg) = aca::check_resources(m, b)
    {
        let field = if aca::check_resources(m, aca::memory_for_cpu(m)).is_ok() {
            "memory"
        } else {
            "cpu"
        };
        errors.push(err(
            Some(field),
            format!("cpu {cpu:?} with memory {memory:?}: {msg}"),
        ));
    }

    (cpu_millis, memory_bytes)
}

/// `env` and `secrets` together: one place per variable, the database URL
/// from a secret, and nothing the renderers set from the job's own fields.
fn check_env_and_secrets(
    env: &BTreeMap<String, String>,
    secrets: &BTreeMap<String, SecretRef>,
    err: &ErrorAt<'_>,
    errors: &mut Vec<ManifestError>,
) {
    for name in env.keys() {
        if secrets.contains_key(name) {
            errors.push(err(
                Some(&format!("env.{name}")),
                "also set in `secrets`; set it in one place".into(),
            ));
        }
        if name == "DATABASE_URL" {
            errors.push(err(
                Some("env.DATABASE_URL"),
                "the database URL holds a password: take it from `secrets`".into(),
            ));
        }
    }
    if !secrets.contains_key("DATABASE_URL") {
        errors.push(err(
            Some("secrets.DATABASE_URL"),
            "missing: every job reads DATABASE_URL from a secret \
             (DATABASE_URL: {secret: NAME, key: KEY})"
                .into(),
        ));
    }
    for name in env.keys().chain(secrets.keys()) {
        if RENDERED_ENV.contains(&name.as_str()) {
            let which = if env.contains_key(name) {
                "env"
            } else {
                "secrets"
            };
            errors.push(err(
                Some(&format!("{which}.{name}")),
                "rendered from the job's own fields (timeout, task_timeout, grace, \
                 concurrency, notify, heartbeat; logs are json): set those instead"
                    .into(),
            ));
        }
    }
}

/// The job's own deadlines, as parsed (None where a field was wrong).
struct Deadlines {
    timeout: Option<Duration>,
    task_timeout: Option<Duration>,
    grace: Option<Duration>,
    retries: Option<u32>,
}

/// Deadlines are layered (task timeout < timeout), the grace fits ACA's 30 s,
/// and the scheduler limits rendered above them stay under our cap.
fn check_deadlines(d: Deadlines, err: &ErrorAt<'_>, errors: &mut Vec<ManifestError>) {
    let Deadlines {
        timeout,
        task_timeout,
        grace,
        retries,
    } = d;
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
    // The scheduler's limits sit above the job's own deadline (limits.rs);
    // refuse a job whose rendered limit would pass the documented maximum.
    let max = limits::MAX_SCHEDULER_LIMIT.as_secs();
    if let (Some(t), Some(g), Some(r)) = (timeout, grace, retries) {
        let attempt = limits::attempt_secs(t, g);
        let active = limits::active_deadline_secs(t, g, r);
        if attempt > max {
            errors.push(err(
                Some("timeout"),
                format!(
                    "timeout {} + grace {} + {} s start margin = {attempt} s per attempt \
                     (ACA replicaTimeout) exceeds the {max} s maximum",
                    format_duration(t),
                    format_duration(g),
                    limits::START_MARGIN.as_secs()
                ),
            ));
        } else if active > max {
            errors.push(err(
                Some("retries"),
                format!(
                    "{} attempts of {attempt} s plus back-off = {active} s \
                     (Kubernetes activeDeadlineSeconds) exceeds the {max} s maximum",
                    r + 1
                ),
            ));
        }
    }
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_uppercase() || c == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// A mapping of environment variable name to a value `parse` reads (it
/// reports its own problems under the entry's path). Every problem is
/// collected; None when there was any.
fn env_mapping<T>(
    field: &str,
    shape: &str,
    value: Option<&Value>,
    err: &dyn Fn(Option<&str>, String) -> ManifestError,
    errors: &mut Vec<ManifestError>,
    mut parse: impl FnMut(&str, &Value, &mut Vec<ManifestError>) -> Option<T>,
) -> Option<BTreeMap<String, T>> {
    let map = match value {
        None => return Some(BTreeMap::new()),
        Some(Value::Object(map)) => map,
        Some(other) => {
            errors.push(err(
                Some(field),
                format!("expected a mapping of NAME: {shape}, found {other}"),
            ));
            return None;
        }
    };
    let before = errors.len();
    let mut out = BTreeMap::new();
    for (name, v) in map {
        let path = format!("{field}.{name}");
        if !is_env_name(name) {
            errors.push(err(
                Some(&path),
                "environment variable names are A-Z, 0-9 and _, not starting with a digit".into(),
            ));
        }
        if let Some(parsed) = parse(&path, v, errors) {
            out.insert(name.clone(), parsed);
        }
    }
    (errors.len() == before).then_some(out)
}

/// `env:` — a mapping of variable name to string value.
fn string_map(
    field: &str,
    value: Option<&Value>,
    err: &dyn Fn(Option<&str>, String) -> ManifestError,
    errors: &mut Vec<ManifestError>,
) -> Option<BTreeMap<String, String>> {
    env_mapping(
        field,
        "value",
        value,
        err,
        errors,
        |path, v, errors| match v {
            Value::String(s) => Some(s.clone()),
            other => {
                errors.push(err(
                    Some(path),
                    format!("expected a string (quote numbers and booleans: \"1\"), found {other}"),
                ));
                None
            }
        },
    )
}

/// `secrets:` — a mapping of variable name to `{secret: NAME, key: KEY}`.
fn secret_map(
    value: Option<&Value>,
    err: &dyn Fn(Option<&str>, String) -> ManifestError,
    errors: &mut Vec<ManifestError>,
) -> Option<BTreeMap<String, SecretRef>> {
    env_mapping(
        "secrets",
        "{secret: S, key: K}",
        value,
        err,
        errors,
        |path, v, errors| {
            let Value::Object(r) = v else {
                errors.push(err(
                    Some(path),
                    format!("expected {{secret: NAME, key: KEY}}, found {v}"),
                ));
                return None;
            };
            for k in r
                .keys()
                .filter(|k| !["secret", "key"].contains(&k.as_str()))
            {
                errors.push(err(
                    Some(&format!("{path}.{k}")),
                    "unknown key (expected secret, key)".into(),
                ));
            }
            let part = |k: &str,
                        valid: fn(&str) -> bool,
                        rule: &str,
                        errors: &mut Vec<ManifestError>| match r.get(k) {
                Some(Value::String(s)) if valid(s) => Some(s.clone()),
                Some(Value::String(s)) => {
                    errors.push(err(Some(&format!("{path}.{k}")), format!("{s:?}: {rule}")));
                    None
                }
                Some(other) => {
                    errors.push(err(
                        Some(&format!("{path}.{k}")),
                        format!("expected a string, found {other}"),
                    ));
                    None
                }
                None => {
                    errors.push(err(Some(&format!("{path}.{k}")), "missing".into()));
                    None
                }
            };
            let secret = part(
                "secret",
                is_secret_name,
                "a Secret name is 1–63 characters of a-z, 0-9 and '-', starting and ending \
             with a letter or digit",
                errors,
            );
            let key = part(
                "key",
                is_secret_key,
                "a Secret key is 1–63 characters of A-Z, a-z, 0-9, '-', '_' and '.', \
             ending with a letter or digit",
                errors,
            );
            Some(SecretRef {
                secret: secret?,
                key: key?,
            })
        },
    )
}

/// `volumes:` — a mapping of volume name to `{mount_path, claim, aca_storage}`.
fn volume_map(
    value: Option<&Value>,
    err: &dyn Fn(Option<&str>, String) -> ManifestError,
    errors: &mut Vec<ManifestError>,
) -> Option<BTreeMap<String, VolumeSpec>> {
    let map = match value {
        None => return Some(BTreeMap::new()),
        Some(Value::Object(map)) => map,
        Some(other) => {
            errors.push(err(
                Some("volumes"),
                format!(
                    "expected a mapping of NAME: {{mount_path, claim, aca_storage}}, found {other}"
                ),
            ));
            return None;
        }
    };
    let before = errors.len();
    let mut out = BTreeMap::new();
    let mut paths: BTreeMap<String, String> = BTreeMap::new();
    for (name, v) in map {
        let path = format!("volumes.{name}");
        // "tmp" is the rendered scratch volume.
        if !is_secret_name(name) || name == "tmp" {
            errors.push(err(
                Some(&path),
                "a volume name is 1–63 characters of a-z, 0-9 and '-' (and not `tmp`)".into(),
            ));
        }
        let Value::Object(fields) = v else {
            errors.push(err(
                Some(&path),
                format!("expected {{mount_path, claim, aca_storage}}, found {v}"),
            ));
            continue;
        };
        for k in fields
            .keys()
            .filter(|k| !["mount_path", "claim", "aca_storage"].contains(&k.as_str()))
        {
            errors.push(err(
                Some(&format!("{path}.{k}")),
                "unknown key (expected mount_path, claim, aca_storage)".into(),
            ));
        }
        let text = |k: &str, errors: &mut Vec<ManifestError>| match fields.get(k) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                errors.push(err(
                    Some(&format!("{path}.{k}")),
                    format!("expected a string, found {other}"),
                ));
                None
            }
            None => {
                errors.push(err(Some(&format!("{path}.{k}")), "missing".into()));
                None
            }
        };
        let mount_path = text("mount_path", errors);
        if let Some(m) = &mount_path {
            if !m.starts_with('/')
                || m == "/"
                || m.contains(':')
                || m == "/tmp"
                || m.starts_with("/tmp/")
            {
                errors.push(err(
                    Some(&format!("{path}.mount_path")),
                    format!("{m:?}: an absolute path other than / and /tmp, without ':'"),
                ));
            } else if let Some(other) = paths.insert(m.clone(), name.clone()) {
                errors.push(err(
                    Some(&format!("{path}.mount_path")),
                    format!("{m:?} is also the mount path of volume {other:?}"),
                ));
            }
        }
        let claim = text("claim", errors);
        let aca_storage = text("aca_storage", errors);
        for (k, v) in [("claim", &claim), ("aca_storage", &aca_storage)] {
            if let Some(v) = v
                && !is_secret_name(v)
            {
                errors.push(err(
                    Some(&format!("{path}.{k}")),
                    format!("{v:?}: 1–63 characters of a-z, 0-9 and '-'"),
                ));
            }
        }
        if let (Some(mount_path), Some(claim), Some(aca_storage)) = (mount_path, claim, aca_storage)
        {
            out.insert(
                name.clone(),
                VolumeSpec {
                    mount_path,
                    claim,
                    aca_storage,
                },
            );
        }
    }
    (errors.len() == before).then_some(out)
}

/// A Kubernetes Secret name, kept to a DNS label so the derived ACA / Key
/// Vault name (`<secret>-<key>`) stays valid too.
fn is_secret_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_secret_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
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

/// Rendered manifests as multi-document YAML, deterministic: keys sorted
/// (serde_json's map), plain scalars, strings that look like numbers or
/// booleans quoted.
pub fn to_yaml(docs: &[Value]) -> Result<String, String> {
    let options = serde_saphyr::ser_options! { prefer_block_scalars: false };
    serde_saphyr::to_string_multiple_with_options(docs, options)
        .map_err(|e| format!("cannot write YAML: {e}"))
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
    secrets:
      DATABASE_URL: {secret: climate-jobs, key: database-url}
"#;

    #[test]
    fn volumes_parse_and_bad_ones_name_the_volume_and_key() {
        let with = |v: &str| format!("{GOOD}    volumes:\n{v}");
        let file = parse(&with(
            "      data: {mount_path: /data, claim: inputs, aca_storage: inputs}\n",
        ))
        .unwrap();
        assert_eq!(file.jobs[0].volumes["data"].mount_path, "/data");
        let errs = messages(&with(
            "      a: {mount_path: data, claim: c, aca_storage: s}\n      \
             b: {mount_path: /x, claim: C_1, aca_storage: s, size: 1}\n      \
             c: {mount_path: /x, claim: c, aca_storage: s}\n",
        ));
        let has = |needle: &str| errs.iter().any(|e| e.contains(needle));
        assert!(
            has("field `volumes.a.mount_path`: \"data\": an absolute path"),
            "{errs:?}"
        );
        assert!(has("field `volumes.b.claim`"), "{errs:?}");
        assert!(has("field `volumes.b.size`: unknown key"), "{errs:?}");
        assert!(
            has("field `volumes.c.mount_path`: \"/x\" is also the mount path of volume \"b\""),
            "{errs:?}"
        );
    }

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
    fn defaults_of_the_optional_fields() {
        let job = &parse(GOOD).unwrap().jobs[0];
        assert_eq!(job.replicas, 1);
        assert_eq!(job.retries, 2);
        assert_eq!((job.cpu.as_str(), job.cpu_millis), ("250m", 250));
        assert_eq!(
            (job.memory.as_str(), job.memory_bytes),
            ("512Mi", 512 << 20)
        );
        assert!(job.env.is_empty());
        assert_eq!(
            job.secrets["DATABASE_URL"].aca_name(),
            "climate-jobs-database-url"
        );
    }

    #[test]
    fn image_binaries_match_src_bin() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/bin");
        let mut found: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        found.sort();
        assert_eq!(
            found, IMAGE_BINARIES,
            "update IMAGE_BINARIES and the Dockerfile"
        );
    }

    #[test]
    fn an_unknown_binary_is_rejected() {
        let errs = messages(&GOOD.replace("binary: jobctl", "binary: jobctrl"));
        assert!(
            errs[0].starts_with("job `canary`, field `binary`:"),
            "{errs:?}"
        );
    }

    #[test]
    fn database_url_must_come_from_a_secret() {
        let text = GOOD.replace(
            "    secrets:\n      DATABASE_URL: {secret: climate-jobs, key: database-url}\n",
            "    env:\n      DATABASE_URL: postgres://x\n",
        );
        let errs = messages(&text);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs.iter().any(|e| e.contains("field `env.DATABASE_URL`")),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.contains("field `secrets.DATABASE_URL`")),
            "{errs:?}"
        );
    }

    #[test]
    fn scheduler_limits_have_a_maximum() {
        let errs = messages(&GOOD.replace("timeout: 5m", "timeout: 24h"));
        assert!(
            errs[0].starts_with("job `canary`, field `timeout`:"),
            "{errs:?}"
        );
        let errs = messages(&GOOD.replace("timeout: 5m", "timeout: 9h"));
        assert!(
            errs[0].starts_with("job `canary`, field `retries`:"),
            "{errs:?}"
        );
        assert!(
            parse(
                &GOOD
                    .replace("timeout: 5m", "timeout: 9h")
                    .replace("concurrency: 4", "concurrency: 4\n    retries: 1")
            )
            .is_ok()
        );
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
