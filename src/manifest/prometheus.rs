//! `jobctl render prometheus-rules`: jobs.yaml → one Prometheus rule file
//! of alerts on the metrics every run pushes (`crate::metrics`).
//!
//! Per job, from its schedule and deadlines: `ClimateJobLate` (no success
//! for [`JobSpec::late_after_secs`], or none at all for that long),
//! `ClimateJobStuck` (running past timeout + grace) and, with
//! `freshness:`, `ClimateDataStale`. For every job at once:
//! `ClimateJobFailed` (the last run did not succeed) and
//! `ClimateJobDeadLettersGrowing`. Each links to the README section that
//! says what it means and what to do.

use serde_json::{Value, json};

use super::{JobSpec, JobsFile};

pub const GROUP: &str = "climate-jobs";

/// Statuses of a finished run that count as a failure (`RunStatus`).
pub const FAILED_STATUSES: &str = "failed|partial|timed_out|cancelled|abandoned";

/// Every alert, with its README anchor (a GitHub heading slug).
pub const ALERTS: &[(&str, &str)] = &[
    ("ClimateJobLate", "climatejoblate"),
    ("ClimateJobFailed", "climatejobfailed"),
    ("ClimateJobStuck", "climatejobstuck"),
    (
        "ClimateJobDeadLettersGrowing",
        "climatejobdeadlettersgrowing",
    ),
    ("ClimateDataStale", "climatedatastale"),
];

pub struct RulesOptions {
    /// Where the README is served, e.g. `https://git.example/climate-jobs/blob/main/README.md`;
    /// each alert links to `<base>#<anchor>`.
    pub runbook_base: String,
}

impl RulesOptions {
    pub fn check(&self) -> Result<(), String> {
        let b = self.runbook_base.trim();
        if !(b.starts_with("https://") || b.starts_with("http://")) || b.contains('#') {
            return Err(format!(
                "--runbook-base {b:?}: expected the README's http(s) URL without an anchor, \
                 e.g. https://git.example/climate-jobs/blob/main/README.md"
            ));
        }
        Ok(())
    }

    fn runbook(&self, alert: &str) -> String {
        let anchor = ALERTS
            .iter()
            .find(|(a, _)| *a == alert)
            .map_or("alerts", |(_, anchor)| anchor);
        format!("{}#{anchor}", self.runbook_base.trim())
    }
}

/// Seconds as a Prometheus duration.
fn dur(secs: u64) -> String {
    format!("{secs}s")
}

fn alert(
    opts: &RulesOptions,
    name: &str,
    expr: String,
    for_secs: Option<u64>,
    labels: Value,
    summary: &str,
) -> Value {
    let mut rule = json!({
        "alert": name,
        "expr": expr,
        "labels": labels,
        "annotations": {
            "summary": summary,
            "runbook_url": opts.runbook(name),
        },
    });
    if let (Some(secs), Some(map)) = (for_secs, rule.as_object_mut()) {
        map.insert("for".into(), json!(dur(secs)));
    }
    rule
}

fn job_rules(job: &JobSpec, opts: &RulesOptions, rules: &mut Vec<Value>) {
    let name = &job.name;
    let late = job.late_after_secs();
    let labels = |severity: &str| json!({"severity": severity, "cronjob": name});
    // Two rules of one alert: `reason` tells them apart (and promtool's lint).
    let late_labels =
        |reason: &str| json!({"severity": "warning", "cronjob": name, "reason": reason});
    rules.push(alert(
        opts,
        "ClimateJobLate",
        format!(
            "time() - climate_job_last_success_timestamp_seconds{{cronjob=\"{name}\"}} > {late}"
        ),
        None,
        late_labels("last-success-too-old"),
        &format!(
            "{name} has not succeeded for {{{{ $value | humanizeDuration }}}} \
             (schedule {:?}: late after {})",
            job.schedule,
            dur(late)
        ),
    ));
    // No success ever pushed: a job that never started (image pull, suspended
    // CronJob, missed schedules) or whose pushes do not arrive.
    rules.push(alert(
        opts,
        "ClimateJobLate",
        format!("absent(climate_job_last_success_timestamp_seconds{{cronjob=\"{name}\"}})"),
        Some(late),
        late_labels("no-success-recorded"),
        &format!(
            "{name} has no recorded success for {} (schedule {:?})",
            dur(late),
            job.schedule
        ),
    ));
    let stuck = job.timeout.as_secs() + job.grace.as_secs();
    rules.push(alert(
        opts,
        "ClimateJobStuck",
        format!(
            "time() - climate_job_last_run_timestamp_seconds{{cronjob=\"{name}\",status=\"running\"}} > {stuck}"
        ),
        None,
        labels("critical"),
        &format!(
            "{name} has been running for {{{{ $value | humanizeDuration }}}}, past its timeout + grace ({})",
            dur(stuck)
        ),
    ));
    if let Some(f) = &job.freshness {
        let table = &f.table;
        let max_age = f.max_age.as_secs();
        rules.push(alert(
            opts,
            "ClimateDataStale",
            format!(
                "time() - max(climate_data_last_update_timestamp_seconds{{table=\"{table}\"}}) > {max_age}"
            ),
            None,
            json!({"severity": "warning", "cronjob": name, "table": table}),
            &format!(
                "{table} (written by {name}) last changed {{{{ $value | humanizeDuration }}}} ago, \
                 more than {}",
                dur(max_age)
            ),
        ));
    }
}

/// The rule file: one group, per-job rules in name order, then the shared ones.
pub fn render(file: &JobsFile, opts: &RulesOptions) -> Value {
    let mut rules = Vec::new();
    for job in super::by_name(file).values() {
        job_rules(job, opts, &mut rules);
    }
    rules.push(alert(
        opts,
        "ClimateJobFailed",
        format!("climate_job_last_run_timestamp_seconds{{status=~\"{FAILED_STATUSES}\"}}"),
        None,
        json!({"severity": "warning"}),
        "the last run of {{ $labels.cronjob }} ended {{ $labels.status }}",
    ));
    rules.push(alert(
        opts,
        "ClimateJobDeadLettersGrowing",
        "sum by (cronjob) (delta(climate_job_dead_letters{status=~\"pending|running|dead\"}[1h])) > 0"
            .into(),
        None,
        json!({"severity": "warning"}),
        "{{ $labels.cronjob }} has about {{ printf \"%.0f\" $value }} more open dead letters than an hour ago",
    ));
    json!({"groups": [{"name": GROUP, "rules": rules}]})
}
