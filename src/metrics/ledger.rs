//! Reading a job's metrics from what the database knows: `job_runs`,
//! `dead_letters`, `data_versions` and the region cache's state.

use anyhow::{Context, Result};
use tokio_postgres::Client;
use uuid::Uuid;

use super::exposition::{JobMetrics, LastRun};
use crate::harness::dead_letter;

/// The ledger's statuses that count as a success for lateness: a skipped
/// run had nothing to do (its inputs unchanged) or found a live run.
pub const SUCCESS_STATUSES: &[&str] = &["succeeded", "skipped"];

/// The latest run of `job` (or run `run_id`) as a [`LastRun`]; None if the
/// ledger has none.
pub async fn last_run(client: &Client, job: &str, run_id: Option<Uuid>) -> Result<Option<LastRun>> {
    let row = client
        .query_opt(
            "SELECT run_id, status,
                    extract(epoch FROM coalesce(finished_at, started_at))::float8,
                    extract(epoch FROM started_at)::float8,
                    duration_ms, exit_code, tasks_total, tasks_done, tasks_failed,
                    tasks_timed_out, tasks_skipped, rows_written, peak_rss_kb
               FROM job_runs
              WHERE job = $1 AND ($2::uuid IS NULL OR run_id = $2)
              ORDER BY started_at DESC, run_id DESC
              LIMIT 1",
            &[&job, &run_id],
        )
        .await
        .with_context(|| format!("reading the last run of {job} from job_runs"))?;
    let Some(r) = row else { return Ok(None) };
    let id: Uuid = r.get(0);
    let status: String = r.get(1);
    let running = status == "running";
    let count = |i: usize| u64::try_from(r.get::<_, i32>(i)).unwrap_or(0);
    let mut run = LastRun {
        at: if running { r.get(3) } else { r.get(2) },
        ..LastRun::default()
    };
    if !running {
        run.duration_seconds = r
            .get::<_, Option<i64>>(4)
            .map(|ms| ms as f64 / 1000.0)
            .or_else(|| Some((r.get::<_, f64>(2) - r.get::<_, f64>(3)).max(0.0)));
        run.exit_code = r.get(5);
        run.tasks = vec![
            ("total", count(6)),
            ("done", count(7)),
            ("failed", count(8)),
            ("timed_out", count(9)),
            ("skipped", count(10)),
        ];
        run.rows_written = u64::try_from(r.get::<_, i64>(11)).ok();
        run.peak_rss_bytes = r
            .get::<_, Option<i64>>(12)
            .and_then(|kb| u64::try_from(kb).ok())
            .map(|kb| kb.saturating_mul(1024));
        run.db_connection_errors =
            Some(db_connection_errors(client, job, id, run.exit_code).await?);
    }
    run.status = status;
    Ok(Some(run))
}

/// Chunks of run `run_id` dead-lettered as infrastructure failures, plus
/// one when the run exited 69 (could not reach the database at all).
pub async fn db_connection_errors(
    client: &Client,
    job: &str,
    run_id: Uuid,
    exit_code: Option<i32>,
) -> Result<u64> {
    let n = dead_letter::count_infrastructure_failures(client, job, run_id).await?;
    Ok(n + u64::from(exit_code == Some(69)))
}

/// Adds what the database knows beyond the run itself: last success, dead
/// letters, data ages.
pub async fn enrich(client: &Client, m: &mut JobMetrics) -> Result<()> {
    let success: Option<f64> = client
        .query_one(
            "SELECT extract(epoch FROM max(finished_at))::float8 FROM job_runs
              WHERE job = $1 AND status = ANY($2)",
            &[&m.job, &SUCCESS_STATUSES],
        )
        .await
        .context("reading the last success from job_runs")?
        .get(0);
    m.last_success = success;
    m.dead_letters = dead_letter::count_by_status(client, &m.job)
        .await?
        .into_iter()
        .map(|(status, n)| (status.as_str().to_string(), n))
        .collect();
    m.data_updates = data_updates(client).await?;
    Ok(())
}

/// When each tracked table last changed, by name.
pub async fn data_updates(client: &Client) -> Result<Vec<(String, f64)>> {
    let rows = client
        .query(
            "SELECT table_name, extract(epoch FROM changed_at)::float8 FROM data_versions
             UNION ALL
             SELECT 'region_hazard_cache', extract(epoch FROM refreshed_at)::float8
               FROM region_hazard_cache_state
             ORDER BY 1",
            &[],
        )
        .await
        .context("reading data_versions and region_hazard_cache_state")?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
