//! `jobctl metrics push`: publishes what the ledger knows about each job,
//! for the runs that could not publish themselves (killed by the OOM
//! killer or SIGKILL, evicted nodes, lost pods). It first marks `running`
//! rows whose heartbeat stopped as `abandoned`, as the job's next run
//! would, so an operator (or a small CronJob of its own) sees them now.

use std::time::Duration;

use anyhow::{Context, Result};

use crate::harness::ExitCode;
use crate::harness::args::{DatabaseArgs, format_duration};
use crate::harness::database::Database;
use crate::manifest::JobsFile;
use crate::metrics::exposition::{Info, JobMetrics};
use crate::metrics::ledger;
use crate::metrics::publish::{self, MetricsArgs, PUSH_BUDGET, Replace};

pub struct PushOptions<'a> {
    pub jobs: &'a [String],
    pub file: Option<&'a JobsFile>,
    /// A `running` row silent for this long belongs to a dead process.
    pub stale_after: Duration,
}

/// Marks runs whose heartbeat is older than `stale_after` abandoned.
pub async fn abandon_silent_runs(
    client: &tokio_postgres::Client,
    stale_after: Duration,
) -> Result<Vec<(String, String)>> {
    let secs = stale_after.as_secs_f64();
    let rows = client
        .query(
            "UPDATE job_runs
                SET status = 'abandoned', finished_at = now(),
                    error = coalesce(error, 'process gone: no heartbeat since ' || heartbeat_at
                                     || ', found by jobctl metrics push')
              WHERE status = 'running' AND heartbeat_at < now() - make_interval(secs => $1)
              RETURNING job, run_id::text",
            &[&secs],
        )
        .await
        .context("marking silent runs abandoned in job_runs")?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

pub async fn run(
    database: &DatabaseArgs,
    dest: &MetricsArgs,
    opts: &PushOptions<'_>,
) -> Result<ExitCode> {
    if !dest.enabled() {
        eprintln!(
            "jobctl metrics push: nowhere to publish: give --pushgateway-url (PUSHGATEWAY_URL) \
             and/or --metrics-textfile DIR"
        );
        return Ok(ExitCode::Usage);
    }
    let db = Database::from_args(database)?;
    let client = db.connect("jobctl/metrics-push").await?;
    for (job, run_id) in abandon_silent_runs(&client, opts.stale_after).await? {
        tracing::warn!(job = %job, run_id = %run_id, "marked a silent run abandoned (no heartbeat for {})", format_duration(opts.stale_after));
    }
    let known: Vec<String> = client
        .query("SELECT DISTINCT job FROM job_runs ORDER BY job", &[])
        .await
        .context("listing the jobs in job_runs")?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut jobs: Vec<String> = if opts.jobs.is_empty() {
        let mut all = known.clone();
        if let Some(file) = opts.file {
            all.extend(file.jobs.iter().map(|j| j.name.clone()));
        }
        all
    } else {
        let in_file = |j: &String| {
            opts.file
                .is_some_and(|f| f.jobs.iter().any(|s| &s.name == j))
        };
        let unknown: Vec<&String> = opts
            .jobs
            .iter()
            .filter(|j| !known.contains(j) && !in_file(j))
            .collect();
        if !unknown.is_empty() {
            eprintln!(
                "jobctl metrics push: --job {}: no such job in job_runs{} (known: {})",
                unknown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                if opts.file.is_some() {
                    " or the jobs file"
                } else {
                    ""
                },
                known.join(", ")
            );
            return Ok(ExitCode::Usage);
        }
        opts.jobs.to_vec()
    };
    jobs.sort();
    jobs.dedup();
    if jobs.is_empty() {
        eprintln!(
            "jobctl metrics push: no job has run yet and no --file names any: nothing to publish"
        );
        return Ok(ExitCode::Usage);
    }
    let mut failed = 0;
    for job in &jobs {
        let mut m = JobMetrics {
            job: job.clone(),
            last_run: ledger::last_run(&client, job, None).await?,
            ..JobMetrics::default()
        };
        ledger::enrich(&client, &mut m).await?;
        if let Some(spec) = opts
            .file
            .and_then(|f| f.jobs.iter().find(|s| &s.name == job))
        {
            m.info = Some(Info {
                version: env!("CARGO_PKG_VERSION").to_string(),
                schedule: spec.schedule.clone(),
                timeout_seconds: spec.timeout.as_secs(),
            });
            m.memory_limit_bytes = Some(spec.memory_bytes);
        }
        // Everything known about the job: replace the whole group.
        match publish::publish(dest, &m, Replace::Group, PUSH_BUDGET) {
            Ok(()) => println!(
                "{job}: published (last run {})",
                m.last_run.as_ref().map_or("none", |r| r.status.as_str())
            ),
            Err(e) => {
                failed += 1;
                tracing::error!(job = %job, error = %format!("{e:#}"), "metrics push failed");
            }
        }
    }
    Ok(if failed > 0 {
        ExitCode::Failed
    } else {
        ExitCode::Success
    })
}
