//! cache-refresh: rebuilds `region_hazard_cache` — every region ×
//! (dataset, hazard, year) present in `hazard_results` (a dataset is one
//! scenario × model × member), from the region's
//! nearest grid point — in one set-based pass, verifies the row count, and
//! swaps it in atomically. Skips when no source table changed.

use anyhow::{Context, Result};
use serde_json::json;

use crate::cache::nearest_point;
use crate::cache::query::{
    GENERATION_SIZE, build_sql, combinations_table_sql, short_combinations_sql,
};
use crate::harness::{
    AbortRun, CommonArgs, Job, Plan, PlanContext, TaskContext, TaskOutput, TaskSpec,
};

pub const JOB_NAME: &str = "cache-refresh";

/// The tables the cache is built from; a change to any forces a rebuild.
const SOURCES: [&str; 3] = ["regions", "hazard_results", "probability_results"];

/// cache-refresh's flags.
#[derive(Debug, Clone, clap::Args, serde::Serialize, serde::Deserialize)]
pub struct CacheRefreshArgs {
    /// Rebuild even if no source table changed since the last refresh.
    #[arg(long)]
    pub force: bool,
}

/// The one chunk: the source versions the build starts from, recorded with
/// the cache so the next run knows whether anything changed.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Rebuild {
    pub source_versions: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct CacheRefresh {
    pub args: CacheRefreshArgs,
    pub common: CommonArgs,
}

/// The source versions, as recorded with the cache.
async fn source_versions(client: &impl tokio_postgres::GenericClient) -> Result<serde_json::Value> {
    let rows = client
        .query(
            "SELECT t.name, coalesce(v.version, 0)
               FROM unnest($1::text[]) AS t(name) LEFT JOIN data_versions v ON v.table_name = t.name
              ORDER BY t.name",
            &[&SOURCES.as_slice()],
        )
        .await
        .context("reading data_versions")?;
    Ok(serde_json::Value::Object(
        rows.iter()
            .map(|r| (r.get::<_, String>(0), json!(r.get::<_, i64>(1))))
            .collect(),
    ))
}

impl Job for CacheRefresh {
    type Args = CacheRefreshArgs;
    type Chunk = Rebuild;

    fn name(&self) -> &'static str {
        JOB_NAME
    }

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn args(&self) -> &CacheRefreshArgs {
        &self.args
    }

    async fn plan(&self, ctx: &PlanContext) -> Result<Plan> {
        let client = ctx
            .pool
            .get()
            .await
            .context("getting a database connection")?;
        let versions = source_versions(&**client).await?;
        let state = client
            .query_opt(
                "SELECT source_versions, rows, generation, refreshed_at::text FROM region_hazard_cache_state",
                &[],
            )
            .await
            .context("reading region_hazard_cache_state")?;
        let regions: i64 = client
            .query_one("SELECT count(*) FROM regions", &[])
            .await?
            .get(0);
        let mut plan = Plan::default();
        if let Some(state) = &state {
            let (built_from, rows, generation, at): (serde_json::Value, i64, i64, String) =
                (state.get(0), state.get(1), state.get(2), state.get(3));
            plan.description.push(format!(
                "current cache: generation {generation}, {rows} rows, refreshed {at}"
            ));
            if built_from == versions && !self.args.force {
                plan.up_to_date = Some(format!(
                    "regions, hazard_results and probability_results unchanged since the refresh at {at}; nothing to do (--force rebuilds)"
                ));
                return Ok(plan);
            }
        }
        plan.description.push(format!(
            "rebuild from {regions} region(s); source versions {versions}"
        ));
        plan.tasks.push(TaskSpec::new(
            "rebuild",
            &Rebuild {
                source_versions: versions,
            },
        )?);
        Ok(plan)
    }

    async fn run_task(&self, ctx: TaskContext, chunk: Rebuild) -> Result<TaskOutput> {
        let versions = chunk.source_versions;
        let mut client = ctx
            .pool
            .get()
            .await
            .context("getting a database connection")?;
        // One snapshot for the build, the count and the swap: the count is
        // checked against exactly the data the build saw.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .start()
            .await
            .context("starting the cache transaction")?;
        let generation: i64 = tx
            .query_one("SELECT nextval('region_hazard_cache_generation')", &[])
            .await?
            .get(0);
        // Sorting the build's rows needs more than the default 4 MB.
        // JIT: the planner's row estimates for the build (tens of millions)
        // made it compile the query, which took longer (1.1 s) than running it.
        tx.batch_execute("SET LOCAL work_mem = '256MB'; SET LOCAL jit = off")
            .await
            .context("setting work_mem and jit")?;
        let region_rows = tx
            .query("SELECT code, lat, lon FROM regions ORDER BY code", &[])
            .await
            .context("reading regions")?;
        let regions = region_rows.len() as i64;
        if regions == 0 {
            return Err(AbortRun(
                "no regions: import them with `jobctl regions import FILE.csv`".into(),
            )
            .into());
        }
        let points: Vec<(i32, f64, f64)> = tx
            .query("SELECT id, lat, lon FROM grid_points", &[])
            .await
            .context("reading grid_points")?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let (mut codes, mut grid_ids, mut distances) = (Vec::new(), Vec::new(), Vec::new());
        for r in &region_rows {
            let Some((id, km)) = nearest_point(r.get(1), r.get(2), &points) else {
                return Err(
                    AbortRun("no grid points: run hazard-timeseries-batch first".into()).into(),
                );
            };
            codes.push(r.get::<_, String>(0));
            grid_ids.push(id);
            distances.push(km);
        }
        tx.batch_execute(&combinations_table_sql())
            .await
            .context("listing (dataset, risk_type, year) combinations")?;
        let counted = tx
            .query_one(
                "SELECT count(*), count(DISTINCT (dataset_id, risk_type)) FROM cache_combinations",
                &[],
            )
            .await
            .context("counting (dataset, risk_type, year) combinations")?;
        let (combinations, series_per_region): (i64, i64) = (counted.get(0), counted.get(1));
        let started = std::time::Instant::now();
        tx.execute(&build_sql(), &[&generation, &codes, &grid_ids, &distances])
            .await
            .context("building the cache")?;
        // Checked on what was stored: one series per region × (dataset,
        // hazard), one yearly row in the view per region × combination.
        let size = tx
            .query_one(GENERATION_SIZE, &[&generation])
            .await
            .context("counting the new cache generation")?;
        let (series, built): (i64, i64) = (size.get(0), size.get(1));
        let expected = regions * combinations;
        tracing::info!(
            generation,
            rows = built,
            series,
            expected,
            regions,
            combinations,
            seconds = started.elapsed().as_secs_f64(),
            "cache built"
        );
        if built != expected || series != regions * series_per_region {
            let short = tx
                .query(&short_combinations_sql(), &[&generation, &regions])
                .await
                .context("finding the short combinations")?;
            let list: Vec<String> = short
                .iter()
                .map(|r| {
                    format!(
                        "{}/{}/{}: {} of {regions}",
                        r.get::<_, String>(0),
                        r.get::<_, String>(1),
                        r.get::<_, i32>(2),
                        r.get::<_, i64>(3)
                    )
                })
                .collect();
            let short_total = short.first().map_or(0, |r| r.get::<_, i64>(4));
            // Rolling back keeps the old cache in place, untouched.
            return Err(AbortRun(format!(
                "cache verification failed: built {built} rows in {series} series, expected {expected} rows ({regions} regions × {combinations} dataset × hazard × year combinations) in {} series; the old cache is kept. {short_total} combinations short, the first {} with the regions they got: {}",
                regions * series_per_region,
                list.len(),
                list.join("; ")
            ))
            .into());
        }
        tx.execute(
            "INSERT INTO region_hazard_cache_state (only_row, generation, rows, source_versions, run_id, refreshed_at)
             VALUES (true, $1, $2, $3, $4, now())
             ON CONFLICT (only_row) DO UPDATE SET generation = EXCLUDED.generation, rows = EXCLUDED.rows,
                 source_versions = EXCLUDED.source_versions, run_id = EXCLUDED.run_id, refreshed_at = now()",
            &[&generation, &built, &versions, &ctx.run_id],
        )
        .await
        .context("swapping in the new cache generation")?;
        tx.commit().await.context("committing the cache swap")?;
        // Old generations are invisible from here on; removing them can take
        // its time without holding up readers.
        let removed = client
            .execute(
                "DELETE FROM region_hazard_cache_series WHERE generation < $1",
                &[&generation],
            )
            .await
            .context("removing old cache generations")?;
        tracing::info!(generation, removed, "new cache generation in place");
        Ok(TaskOutput {
            rows_written: u64::try_from(built).unwrap_or(0),
        })
    }
}
