//! What one job's metrics are, and their Prometheus text exposition.
//!
//! The names are fixed (the README lists them; alert rules and the
//! dashboard depend on them). Every metric is a gauge of the job's latest
//! run, not a counter: a run is one short process, and the Pushgateway /
//! textfile keep only its last values.

use std::fmt::Write as _;

/// Per-job metric names, with their help text.
pub const LAST_RUN: &str = "climate_job_last_run_timestamp_seconds";
pub const LAST_SUCCESS: &str = "climate_job_last_success_timestamp_seconds";
pub const LAST_DURATION: &str = "climate_job_last_duration_seconds";
pub const LAST_EXIT_CODE: &str = "climate_job_last_exit_code";
pub const LAST_TASKS: &str = "climate_job_last_tasks";
pub const LAST_ROWS: &str = "climate_job_last_rows_written";
pub const LAST_PEAK_RSS: &str = "climate_job_last_peak_rss_bytes";
pub const DB_ERRORS: &str = "climate_job_db_connection_errors";
pub const DEAD_LETTERS: &str = "climate_job_dead_letters";
pub const DATA_UPDATE: &str = "climate_data_last_update_timestamp_seconds";
pub const INFO: &str = "climate_job_info";
pub const MEMORY_LIMIT: &str = "climate_job_memory_limit_bytes";

/// Every metric name, in exposition order, with its help text.
pub const METRICS: &[(&str, &str)] = &[
    (
        LAST_RUN,
        "When the last run ended (or started, while status=\"running\"), by its status.",
    ),
    (
        LAST_SUCCESS,
        "When the job last ended succeeded or skipped (nothing to do); absent before the first.",
    ),
    (LAST_DURATION, "Wall time of the last finished run."),
    (LAST_EXIT_CODE, "Exit code of the last finished run."),
    (
        LAST_TASKS,
        "Chunks of the last run by state: total, done, failed, timed_out, skipped (done earlier).",
    ),
    (LAST_ROWS, "Rows the last run wrote."),
    (
        LAST_PEAK_RSS,
        "Peak resident memory of the last run's process.",
    ),
    (
        DB_ERRORS,
        "Database connection errors of the last run: chunks dead-lettered as infrastructure failures, plus one if it could not connect.",
    ),
    (
        DEAD_LETTERS,
        "The job's dead letters by status (pending, running, resolved, dead).",
    ),
    (
        DATA_UPDATE,
        "When each output table last changed (data_versions; the region cache's last swap).",
    ),
    (
        INFO,
        "Always 1: the binary's version, the job's schedule and timeout.",
    ),
    (
        MEMORY_LIMIT,
        "The memory limit the job runs under (its cgroup, or jobs.yaml).",
    ),
];

/// The last run as far as it is known.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LastRun {
    /// `job_runs.status`.
    pub status: String,
    /// Unix seconds: when it ended, or started while running.
    pub at: f64,
    pub duration_seconds: Option<f64>,
    pub exit_code: Option<i32>,
    /// (state, count): total, done, failed, timed_out, skipped.
    pub tasks: Vec<(&'static str, u64)>,
    pub rows_written: Option<u64>,
    pub peak_rss_bytes: Option<u64>,
    pub db_connection_errors: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Info {
    pub version: String,
    /// Empty when the process does not know it (see `CLIMATE_JOBS_SCHEDULE`).
    pub schedule: String,
    pub timeout_seconds: u64,
}

/// Everything pushed for one job (one Pushgateway group).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobMetrics {
    pub job: String,
    pub last_run: Option<LastRun>,
    pub last_success: Option<f64>,
    /// (status, count), every status present, zeros included.
    pub dead_letters: Vec<(String, u64)>,
    /// (table, unix seconds).
    pub data_updates: Vec<(String, f64)>,
    pub info: Option<Info>,
    pub memory_limit_bytes: Option<u64>,
}

/// Escapes a label value (backslash, quote, newline).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// One sample: metric name, its own labels, value.
type Sample = (&'static str, Vec<(&'static str, String)>, f64);

impl JobMetrics {
    /// The samples, by metric name: (labels, value).
    fn samples(&self) -> Vec<Sample> {
        let mut out = Vec::new();
        if let Some(run) = &self.last_run {
            out.push((LAST_RUN, vec![("status", run.status.clone())], run.at));
            if let Some(d) = run.duration_seconds {
                out.push((LAST_DURATION, vec![], d));
            }
            if let Some(c) = run.exit_code {
                out.push((LAST_EXIT_CODE, vec![], f64::from(c)));
            }
            for (state, n) in &run.tasks {
                out.push((LAST_TASKS, vec![("state", state.to_string())], *n as f64));
            }
            if let Some(r) = run.rows_written {
                out.push((LAST_ROWS, vec![], r as f64));
            }
            if let Some(b) = run.peak_rss_bytes {
                out.push((LAST_PEAK_RSS, vec![], b as f64));
            }
            if let Some(e) = run.db_connection_errors {
                out.push((DB_ERRORS, vec![], e as f64));
            }
        }
        if let Some(t) = self.last_success {
            out.push((LAST_SUCCESS, vec![], t));
        }
        for (status, n) in &self.dead_letters {
            out.push((DEAD_LETTERS, vec![("status", status.clone())], *n as f64));
        }
        for (table, t) in &self.data_updates {
            out.push((DATA_UPDATE, vec![("table", table.clone())], *t));
        }
        if let Some(info) = &self.info {
            out.push((
                INFO,
                vec![
                    ("version", info.version.clone()),
                    ("schedule", info.schedule.clone()),
                    ("timeout_seconds", info.timeout_seconds.to_string()),
                ],
                1.0,
            ));
        }
        if let Some(b) = self.memory_limit_bytes {
            out.push((MEMORY_LIMIT, vec![], b as f64));
        }
        out
    }

    /// The text exposition (format 0.0.4). `extra` labels go on every
    /// sample: none for the Pushgateway (the grouping key is in the URL),
    /// `cronjob` for a node_exporter textfile.
    pub fn to_text(&self, extra: &[(&str, &str)]) -> String {
        let samples = self.samples();
        let mut text = String::new();
        for (name, help) in METRICS {
            let mine: Vec<_> = samples.iter().filter(|(n, _, _)| n == name).collect();
            if mine.is_empty() {
                continue;
            }
            let _ = writeln!(text, "# HELP {name} {help}");
            let _ = writeln!(text, "# TYPE {name} gauge");
            for (_, labels, value) in mine {
                let all: Vec<String> = extra
                    .iter()
                    .map(|(k, v)| (*k, v.to_string()))
                    .chain(labels.iter().map(|(k, v)| (*k, v.clone())))
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(&v)))
                    .collect();
                if all.is_empty() {
                    let _ = writeln!(text, "{name} {}", number(*value));
                } else {
                    let _ = writeln!(text, "{name}{{{}}} {}", all.join(","), number(*value));
                }
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_help_type_and_escaped_labels() {
        let m = JobMetrics {
            job: "canary".into(),
            last_run: Some(LastRun {
                status: "succeeded".into(),
                at: 1_767_225_600.0,
                duration_seconds: Some(1.5),
                exit_code: Some(0),
                tasks: vec![("total", 3), ("done", 3)],
                ..LastRun::default()
            }),
            info: Some(Info {
                version: "0.1.0".into(),
                schedule: "*/30 * * * *".into(),
                timeout_seconds: 120,
            }),
            dead_letters: vec![("pending".into(), 0)],
            ..JobMetrics::default()
        };
        let text = m.to_text(&[("cronjob", "can\"ary")]);
        assert!(text.contains("# TYPE climate_job_last_run_timestamp_seconds gauge\n"));
        assert!(text.contains(
            "climate_job_last_run_timestamp_seconds{cronjob=\"can\\\"ary\",status=\"succeeded\"} 1767225600\n"
        ));
        assert!(text.contains("climate_job_last_duration_seconds{cronjob=\"can\\\"ary\"} 1.5\n"));
        assert!(text.contains("climate_job_last_tasks{cronjob=\"can\\\"ary\",state=\"done\"} 3\n"));
        assert!(!text.contains(LAST_SUCCESS), "no success, no sample");
        let bare = m.to_text(&[]);
        assert!(bare.contains("climate_job_last_exit_code 0\n"));
    }
}
