//! probability-batch: for every grid point, dataset (scenario, model,
//! member), hazard and year, fits the window of annual index values of that
//! dataset around the year (`hazard_results`; a window never mixes models
//! or members)
//! and writes bin probabilities, 10/50/100-year return levels and the fit
//! to `probability_results` (one row per grid point, dataset and hazard,
//! the years as arrays).
//!
//! Plan: skip when `hazard_results` has not changed since the last full
//! run with the same scope (its version in `data_versions`, recorded in
//! `input_files` as `table:hazard_results`); cut the grid points into
//! chunks. Task: read the chunk's series in one set-based query, fit every
//! window on a blocking thread (pure code in `probability`), replace the
//! chunk's series in one transaction (a `--years` subset merges into them).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::harness::ledger::RunMetrics;
use crate::harness::{
    CommonArgs, Job, Plan, PlanContext, TaskContext, TaskOutput, TaskSpec, UsageError,
};
use crate::probability::{
    DEFAULT_MIN_YEARS, DEFAULT_WINDOW, Fitted, Fitter, ProbabilityConfig, default_config,
    default_configs, window_into,
};
use crate::scope::{PointSelection, YearRange};
use crate::store::input_files::{self, stable_hash};
use crate::store::probability_results::{
    ChunkScope, ProbabilityRow, ProbabilitySeries, YearFit, write_chunk,
};

pub const JOB_NAME: &str = "probability-batch";

/// `input_files.path` under which the hazard rows' version is recorded.
const SOURCE: &str = "table:hazard_results";

/// probability-batch's flags.
#[derive(Debug, Clone, clap::Args, Serialize, Deserialize)]
pub struct ProbabilityArgs {
    /// Only these scenarios (comma-separated).
    #[arg(long = "scenario", value_name = "SCENARIO", value_delimiter = ',')]
    pub scenarios: Option<Vec<String>>,

    /// Only these target years, e.g. 2030..2050 (windows may reach beyond).
    #[arg(long)]
    pub years: Option<YearRange>,

    /// Only these hazards (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub hazards: Option<Vec<String>>,

    /// Only these grid points: `all`, a grid id range `1..500` (both ends
    /// included), or `bbox:LAT_MIN,LON_MIN,LAT_MAX,LON_MAX`.
    #[arg(long, default_value = "all")]
    pub points: PointSelection,

    /// Window length in years around the target year.
    #[arg(long, default_value_t = DEFAULT_WINDOW)]
    pub window: usize,

    /// Fewest values in a window to fit it.
    #[arg(long, default_value_t = DEFAULT_MIN_YEARS)]
    pub min_years: usize,

    /// Grid points per chunk: the unit of commit, resume and retry.
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u32).range(1..))]
    pub chunk_points: u32,

    /// Recompute even if hazard_results is unchanged since the last full run.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug)]
pub struct ProbabilityBatch {
    pub args: ProbabilityArgs,
    pub common: CommonArgs,
    planned: Mutex<Option<(String, String, usize)>>,
    too_short: AtomicU64,
}

/// One chunk: the grid ids to fit, and the scope.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChunkPayload {
    pub grid_ids: Vec<i32>,
    pub scenarios: Option<Vec<String>>,
    pub hazards: Vec<String>,
    pub years: Option<YearRange>,
    pub window: usize,
    pub min_years: usize,
}

impl ProbabilityBatch {
    pub fn new(args: ProbabilityArgs, common: CommonArgs) -> Self {
        Self {
            args,
            common,
            planned: Mutex::new(None),
            too_short: AtomicU64::new(0),
        }
    }

    /// Grid points per chunk (at least one).
    fn chunk_points(&self) -> usize {
        usize::try_from(self.args.chunk_points).unwrap_or(1).max(1)
    }

    fn configs(&self) -> Result<Vec<ProbabilityConfig>> {
        select_configs(self.args.hazards.as_deref())
    }
}

fn select_configs(names: Option<&[String]>) -> Result<Vec<ProbabilityConfig>> {
    let Some(names) = names else {
        return Ok(default_configs());
    };
    names
        .iter()
        .map(|n| {
            default_config(n).ok_or_else(|| {
                let known: Vec<String> = default_configs()
                    .iter()
                    .map(|c| c.risk_type().to_string())
                    .collect();
                UsageError(format!(
                    "--hazards: unknown hazard {n:?} (known: {})",
                    known.join(", ")
                ))
                .into()
            })
        })
        .collect()
}

/// One annual value: (grid id, dataset id, scenario, risk type, year, value).
pub type SeriesRow = (i32, i32, String, String, i16, f64);

/// One stored hazard series as read: the values of the years
/// `first_year ..`, None for a missing year.
#[derive(Debug, Clone, PartialEq)]
pub struct HazardSeries {
    pub grid_id: i32,
    pub dataset_id: i32,
    pub scenario: String,
    pub risk_type: String,
    pub first_year: i16,
    pub values: Vec<Option<f64>>,
}

/// Fits every window of every series (one per grid point, dataset and
/// hazard, so a window never mixes models or members) straight into the
/// series written, reusing one set of buffers for the whole chunk. Pure:
/// the task's blocking half. Returns the series (those of hazards not in
/// `configs` left out) and the number of windows too short to fit.
pub fn fit_chunk(
    input: Vec<HazardSeries>,
    configs: &[ProbabilityConfig],
    years: Option<YearRange>,
    window: usize,
    min_years: usize,
) -> Result<(Vec<ProbabilitySeries>, u64)> {
    let mut out = Vec::with_capacity(input.len());
    let mut too_short = 0;
    let mut fitter = Fitter::new();
    let mut values = Vec::with_capacity(window);
    let mut fitted = Fitted::default();
    let mut present: Vec<(i32, f64)> = Vec::new();
    for h in input {
        let Some(config) = configs.iter().find(|c| c.risk_type() == h.risk_type) else {
            continue;
        };
        present.clear();
        present.extend(h.values.iter().enumerate().filter_map(|(i, v)| {
            let year = i16::try_from(i64::from(h.first_year) + i as i64).ok()?;
            Some((i32::from(year), (*v)?))
        }));
        let (Some(&(first, _)), Some(&(last, _))) = (present.first(), present.last()) else {
            continue;
        };
        let span = usize::try_from(last - first + 1).unwrap_or(0);
        let mut series = ProbabilitySeries::new(
            h.grid_id,
            h.dataset_id,
            h.scenario,
            h.risk_type,
            config.bin_edges(),
            span,
        )?;
        for year in first..=last {
            if years.is_some_and(|y| !y.contains(year)) {
                series.skip_year();
                continue;
            }
            if !window_into(&present, year, window, min_years, &mut values)
                || fitter.fit_into(&values, config, &mut fitted).is_err()
            {
                too_short += 1;
                series.skip_year();
                continue;
            }
            // first..=last are years of i16 values.
            let year = i16::try_from(year).context("year out of range")?;
            series.push_year(
                year,
                &YearFit {
                    method: fitted.method.as_str(),
                    sample_size: i16::try_from(fitted.n).unwrap_or(i16::MAX),
                    bin_probs: &fitted.bin_probs,
                    return_levels: fitted.return_levels,
                    gev: fitted.params.map(|p| [p.c, p.loc, p.scale]),
                },
            )?;
        }
        out.push(series);
    }
    Ok((out, too_short))
}

/// [`fit_chunk`] over annual values (ordered by grid, dataset, risk, year),
/// as yearly rows: for comparing the stored results with the pure fit.
pub fn fit_series(
    rows: &[SeriesRow],
    configs: &[ProbabilityConfig],
    years: Option<YearRange>,
    window: usize,
    min_years: usize,
) -> Result<(Vec<ProbabilityRow>, u64)> {
    let mut input: Vec<HazardSeries> = Vec::new();
    for group in rows.chunk_by(|a, b| (a.0, a.1, &a.3) == (b.0, b.1, &b.3)) {
        let (first, last) = (&group[0], &group[group.len() - 1]);
        let len = usize::try_from(i32::from(last.4) - i32::from(first.4) + 1).unwrap_or(0);
        let mut values = vec![None; len];
        for r in group {
            if let Some(slot) = usize::try_from(r.4 - first.4)
                .ok()
                .and_then(|i| values.get_mut(i))
            {
                *slot = Some(r.5);
            }
        }
        input.push(HazardSeries {
            grid_id: first.0,
            dataset_id: first.1,
            scenario: first.2.clone(),
            risk_type: first.3.clone(),
            first_year: first.4,
            values,
        });
    }
    let (series, too_short) = fit_chunk(input, configs, years, window, min_years)?;
    Ok((series.iter().flat_map(|s| s.rows()).collect(), too_short))
}

impl Job for ProbabilityBatch {
    type Args = ProbabilityArgs;
    type Chunk = ChunkPayload;

    fn name(&self) -> &'static str {
        JOB_NAME
    }

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn args(&self) -> &ProbabilityArgs {
        &self.args
    }

    fn counters(&self) -> serde_json::Value {
        json!({ "windows_too_short": self.too_short.load(Ordering::Relaxed) })
    }

    async fn plan(&self, ctx: &PlanContext) -> Result<Plan> {
        if self.args.min_years == 0 || self.args.min_years > self.args.window {
            return Err(UsageError(format!(
                "--min-years {} must be between 1 and --window {}",
                self.args.min_years, self.args.window
            ))
            .into());
        }
        let configs = self.configs()?;
        let hazards: Vec<String> = configs.iter().map(|c| c.risk_type().to_string()).collect();
        let client = ctx
            .pool
            .get()
            .await
            .context("getting a database connection")?;
        let version: i64 = client
            .query_opt(
                "SELECT version FROM data_versions WHERE table_name = 'hazard_results'",
                &[],
            )
            .await
            .context("reading data_versions")?
            .map(|r| r.get(0))
            .unwrap_or(0);
        let fingerprint = format!("v{version}");
        let scope = format!(
            "scenarios={};hazards={};years={};points={};window={};min_years={}",
            self.args
                .scenarios
                .as_ref()
                .map(|s| s.join(","))
                .unwrap_or_else(|| "all".into()),
            hazards.join(","),
            self.args
                .years
                .map(|y| y.to_string())
                .unwrap_or_else(|| "all".into()),
            self.args.points,
            self.args.window,
            self.args.min_years
        );
        let mut plan = Plan::default();
        if !self.args.force
            && let Some(prev) = input_files::lookup(&**client, JOB_NAME, SOURCE).await?
            && prev.fingerprint == fingerprint
            && prev.scope == scope
        {
            plan.up_to_date = Some(format!(
                "hazard_results unchanged since run {} at {} UTC; nothing to do (--force redoes it)",
                prev.run_id, prev.processed_at
            ));
            return Ok(plan);
        }
        let ids: Vec<i32> = client
            .query("SELECT id, lat, lon FROM grid_points ORDER BY id", &[])
            .await
            .context("reading grid_points")?
            .iter()
            .filter(|r| {
                self.args
                    .points
                    .selects(r.get::<_, i32>(0) as usize, r.get(1), r.get(2))
            })
            .map(|r| r.get(0))
            .collect();
        for chunk in ids.chunks(self.chunk_points()) {
            let (first, last) = (chunk[0], chunk[chunk.len() - 1]);
            let payload = ChunkPayload {
                grid_ids: chunk.to_vec(),
                scenarios: self.args.scenarios.clone(),
                hazards: hazards.clone(),
                years: self.args.years,
                window: self.args.window,
                min_years: self.args.min_years,
            };
            plan.tasks
                .push(TaskSpec::new(format!("grid:{first}-{last}"), &payload)?);
        }
        plan.description.push(format!(
            "{} grid point(s) in {} chunk(s); hazards {}; window {} years, at least {}; hazard_results version {version}",
            ids.len(),
            plan.tasks.len(),
            hazards.join(","),
            self.args.window,
            self.args.min_years
        ));
        let mut key = format!("{}|{scope}", stable_hash(&fingerprint));
        if self.args.force {
            key.push_str(&format!("|force:{}", ctx.execution));
        }
        plan.resume_key = Some(key);
        *self.planned.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((fingerprint, scope, ids.len()));
        Ok(plan)
    }

    async fn run_task(&self, ctx: TaskContext, chunk: ChunkPayload) -> Result<TaskOutput> {
        if chunk.grid_ids.is_empty() {
            return Ok(TaskOutput::default());
        }
        let configs = select_configs(Some(&chunk.hazards))?;
        let mut client = ctx
            .pool
            .get()
            .await
            .context("getting a database connection")?;
        // One row per stored series, fitted as it is (no yearly rows).
        let stored = client
            .query(
                "SELECT h.grid_id, h.dataset_id, d.scenario, h.risk_type, h.first_year, h.values_by_year
                   FROM hazard_results h JOIN datasets d ON d.id = h.dataset_id
                  WHERE h.grid_id = ANY($1) AND ($2::text[] IS NULL OR d.scenario = ANY($2))
                    AND h.risk_type = ANY($3)
                  ORDER BY h.grid_id, h.dataset_id, h.risk_type",
                &[&chunk.grid_ids, &chunk.scenarios, &chunk.hazards],
            )
            .await
            .context("reading the chunk's hazard_results")?;
        let input = stored
            .iter()
            .map(|r| {
                Ok(HazardSeries {
                    grid_id: r.try_get(0)?,
                    dataset_id: r.try_get(1)?,
                    scenario: r.try_get(2)?,
                    risk_type: r.try_get(3)?,
                    first_year: r.try_get(4)?,
                    values: r.try_get(5)?,
                })
            })
            .collect::<Result<Vec<_>, tokio_postgres::Error>>()
            .context("decoding the chunk's hazard_results")?;
        drop(stored);
        let (years, window, min_years) = (chunk.years, chunk.window, chunk.min_years);
        let (mut series, too_short) = tokio::task::spawn_blocking(move || {
            fit_chunk(input, &configs, years, window, min_years)
        })
        .await
        .context("fitting thread")??;
        self.too_short.fetch_add(too_short, Ordering::Relaxed);
        let tx = client
            .transaction()
            .await
            .context("starting the chunk transaction")?;
        let scope = ChunkScope {
            grid_ids: &chunk.grid_ids,
            scenarios: chunk.scenarios.as_deref(),
            hazards: &chunk.hazards,
            partial: chunk.years.is_some(),
        };
        let n = write_chunk(&tx, ctx.run_id, &scope, &mut series).await?;
        tx.commit().await.context("committing the chunk")?;
        Ok(TaskOutput { rows_written: n })
    }

    /// Called only once every chunk of the plan is done.
    async fn after_tasks(&self, ctx: &PlanContext, metrics: &RunMetrics) -> Result<()> {
        let Some((fingerprint, scope, points)) = self
            .planned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        else {
            return Ok(());
        };
        let client = ctx
            .pool
            .get()
            .await
            .context("getting a database connection")?;
        input_files::record(
            &**client,
            &input_files::Processed {
                job: JOB_NAME,
                path: SOURCE,
                fingerprint: &fingerprint,
                scope: &scope,
                scenario: "*",
                points: i32::try_from(points).unwrap_or(i32::MAX),
                rows_written: i64::try_from(metrics.rows_written).unwrap_or(i64::MAX),
                run_id: ctx.run_id,
            },
        )
        .await
    }
}
