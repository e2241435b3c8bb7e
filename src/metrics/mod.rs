//! Prometheus metrics of every run: pushed to a Pushgateway and/or written
//! as a node_exporter textfile when a run starts and when it ends, and
//! republished from the ledger by `jobctl metrics push` for runs that
//! could not (killed, abandoned).
//!
//! A push is bounded ([`publish::PUSH_BUDGET`], and never more than the
//! run's grace), never changes the exit code, and a failed one is logged.

pub mod exposition;
pub mod ledger;
pub mod publish;

use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;

use crate::harness::database::Database;
use crate::harness::summary::RunSummary;
use crate::harness::{CommonArgs, RunStatus};
use exposition::{Info, JobMetrics, LastRun};
use publish::{PUSH_BUDGET, Replace};

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn info(common: &CommonArgs) -> Info {
    Info {
        version: env!("CARGO_PKG_VERSION").to_string(),
        schedule: common.metrics.job_schedule.clone().unwrap_or_default(),
        timeout_seconds: common.run.timeout.as_secs(),
    }
}

/// How long a push at the start or end of a run may take: at most 5 s and
/// a quarter of the grace (after a signal the drain leaves that much of it
/// to record the run), at least 500 ms.
fn budget(common: &CommonArgs) -> Duration {
    PUSH_BUDGET
        .min(common.run.grace / 4)
        .max(Duration::from_millis(500))
}

/// Runs `work` on a thread of its own and waits for it at most `limit`:
/// neither a stalled gateway nor a stalled database can hold the run.
fn bounded(
    what: &'static str,
    limit: Duration,
    work: impl FnOnce() -> Result<String> + Send + 'static,
) {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            let _ = tx.send(work());
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "{what}: cannot start the metrics thread");
        return;
    }
    match rx.recv_timeout(limit) {
        Ok(Ok(done)) => tracing::info!("{what}: {done}"),
        Ok(Err(e)) => tracing::warn!(error = %format!("{e:#}"), "{what} failed"),
        Err(_) => tracing::warn!(
            "{what} failed: not done within {}",
            crate::harness::args::format_duration(limit)
        ),
    }
}

/// At the start of a run: `climate_job_last_run_timestamp_seconds{status="running"}`
/// (what the `ClimateJobStuck` alert watches) and the info metric. Only
/// those names are replaced; the last finished run's other metrics stay.
pub async fn publish_run_start(common: &CommonArgs, job: &str) {
    if !common.metrics.publish.enabled() {
        return;
    }
    let m = JobMetrics {
        job: job.to_string(),
        last_run: Some(LastRun {
            status: RunStatus::Running.as_str().into(),
            at: unix_now(),
            ..LastRun::default()
        }),
        info: Some(info(common)),
        ..JobMetrics::default()
    };
    let args = common.metrics.publish.clone();
    let limit = budget(common);
    // Awaited (bounded), so it can never land after the end-of-run push.
    let _ = tokio::task::spawn_blocking(move || {
        bounded("metrics push (run started)", limit, move || {
            publish::publish(&args, &m, Replace::Names, limit)?;
            Ok("published the running run".into())
        })
    })
    .await;
}

/// At the end of a run (after its ledger row is final): the run's metrics
/// from its summary, and from the ledger what it knows besides (last
/// success, dead letters, data ages). If the database cannot be read the
/// run's own metrics are still pushed, replacing only their names.
pub fn publish_run_end(common: &CommonArgs, summary: &RunSummary) {
    if !common.metrics.publish.enabled() || summary.dry_run {
        return;
    }
    let limit = budget(common);
    let common = common.clone();
    let summary = summary.clone();
    bounded("metrics push (run ended)", limit, move || {
        let started = Instant::now();
        let mut m = from_summary(&common, &summary);
        // The ledger gets at most half the budget; the push the rest.
        let read = read_ledger(&common, &summary, &mut m, limit / 2);
        let replace = match &read {
            Ok(()) => Replace::Group,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "metrics: cannot read the ledger; pushing the run's own metrics only");
                Replace::Names
            }
        };
        let left = limit
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(200));
        publish::publish(&common.metrics.publish, &m, replace, left)?;
        Ok(format!("published {} ({})", summary.status, summary.job))
    });
}

fn from_summary(common: &CommonArgs, s: &RunSummary) -> JobMetrics {
    let t = &s.metrics;
    JobMetrics {
        job: s.job.clone(),
        last_run: Some(LastRun {
            status: s.status.as_str().into(),
            at: unix_now(),
            duration_seconds: Some(s.duration_ms as f64 / 1000.0),
            exit_code: Some(s.exit_code),
            tasks: vec![
                ("total", t.tasks_total),
                ("done", t.tasks_done),
                ("failed", t.tasks_failed),
                ("timed_out", t.tasks_timed_out),
                ("skipped", t.tasks_skipped),
            ],
            rows_written: Some(t.rows_written),
            peak_rss_bytes: s.peak_rss_kb.map(|kb| kb.saturating_mul(1024)),
            db_connection_errors: Some(u64::from(s.exit_code == 69)),
        }),
        info: Some(info(common)),
        memory_limit_bytes: publish::cgroup_memory_limit(),
        ..JobMetrics::default()
    }
}

fn read_ledger(
    common: &CommonArgs,
    s: &RunSummary,
    m: &mut JobMetrics,
    limit: Duration,
) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let work = async {
            let db = Database::from_args(&common.database)?;
            let client = db.connect(&format!("{}/metrics", s.job)).await?;
            ledger::enrich(&client, m).await?;
            let exit = Some(s.exit_code);
            let errors = ledger::db_connection_errors(&client, &s.job, s.run_id, exit).await?;
            if let Some(run) = m.last_run.as_mut() {
                run.db_connection_errors = Some(errors);
            }
            anyhow::Ok(())
        };
        match tokio::time::timeout(limit, work).await {
            Ok(r) => r,
            Err(_) => anyhow::bail!(
                "the database did not answer within {}",
                crate::harness::args::format_duration(limit)
            ),
        }
    })
}
