//! site-risk-batch: for every site, dataset, hazard and year, from the
//! nearest grid point's probability result and the site's vulnerability
//! curve, the AAL rate, the damage at the 10/50/100-year return levels, the
//! hazard, exposure and vulnerability scores and the risk index
//! (`crate::risk`), written to `site_results` (one row per site, dataset and
//! hazard: the site's scores and its series) and `site_hazard_series` (the
//! per-year arrays of a grid point, dataset, hazard and curve, computed and
//! stored once per chunk whatever the number of sites sharing them); the
//! views add the `all_hazards` totals.
//!
//! Plan: validate the curves (a bad line exits 65 naming file and line) and
//! that every site's asset class has a curve for every hazard (exit 65
//! naming the sites file and line); skip when `sites` and
//! `probability_results` are unchanged since the last full run (their
//! versions in `data_versions`, recorded in `input_files`) and no curve
//! changed (`site_risk_curves`); when only curves changed, only the sites of
//! the asset classes whose curves changed are recomputed. Chunks of sites.
//! Task: the chunk's sites, their nearest grid points, those points'
//! probability series (through `store::site_results::read_probabilities`,
//! the one seam, reading the `probability_series` view), the pure computation on a blocking thread, then delete-and-COPY of
//! the chunk's rows and series in one transaction.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::OnceCell;

use crate::cache::nearest_point;
use crate::harness::ledger::RunMetrics;
use crate::harness::{
    BadInput, CommonArgs, Job, Plan, PlanContext, TaskContext, TaskOutput, TaskSpec, UsageError,
};
use crate::hazard::{Hazard, default_hazards};
use crate::risk::scores::{exposure_score, vulnerability_score};
use crate::risk::{
    AssetClass, BinProbabilities, Curve, CurveSet, DEFAULT_CURVES, DEFAULT_CURVES_PATH,
    PreparedBins, Site, apply_curve, parse_curves_csv, prepare,
};
use crate::store::input_files::{self, stable_hash};
use crate::store::site_results::{
    self, ChunkResults, HazardSeries, ProbabilitySeries, SeriesYear, SiteResultRow,
    read_probabilities, recorded_curves, replace_chunk, table_version,
};
use crate::store::sites::{StoredSite, load};

pub const JOB_NAME: &str = "site-risk-batch";

/// `input_files.path` under which the source tables' versions are recorded.
const SOURCE: &str = "table:sites+probability_results";

/// `risk_type` of the per-site total over hazards (computed by the views).
pub const ALL_HAZARDS: &str = "all_hazards";

/// site-risk-batch's flags.
#[derive(Debug, Clone, clap::Args, Serialize, Deserialize)]
pub struct SiteRiskArgs {
    /// Vulnerability curve file (CSV: hazard,asset_class,intensity,
    /// damage_ratio,unit,proxy,source; see README). Default: the curves built
    /// into the binary, data/vulnerability/curves.csv of the repository.
    /// `jobctl check --curves FILE` validates one.
    #[arg(long, env = "CLIMATE_JOBS_CURVES")]
    pub curves: Option<PathBuf>,

    /// Only these scenarios (comma-separated); each must have probability results.
    #[arg(long = "scenario", value_name = "SCENARIO", value_delimiter = ',')]
    pub scenarios: Option<Vec<String>>,

    /// Sites per chunk: the unit of commit, resume and retry.
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u32).range(1..))]
    pub chunk_sites: u32,

    /// Recompute every site even if nothing changed since the last full run.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug)]
pub struct SiteRiskBatch {
    pub args: SiteRiskArgs,
    pub common: CommonArgs,
    planned: Mutex<Option<Planned>>,
    grid: OnceCell<Arc<Vec<(i32, f64, f64)>>>,
    /// The plan's nearest grid point of each site (index into `grid`), by
    /// site id and exact coordinates, so this process's chunks need not
    /// search all the grid again (a chunk run elsewhere searches).
    nearest: Mutex<HashMap<(String, u64, u64), usize>>,
    without_probabilities: AtomicU64,
}

#[derive(Debug, Clone)]
struct Planned {
    fingerprint: String,
    scope: String,
    sites: usize,
    curves: Vec<(String, String, String)>,
}

/// One chunk: the sites to assess, the scope, and the curves (their text
/// when they came from a file, so a dead letter re-runs with the same ones).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChunkPayload {
    pub site_ids: Vec<String>,
    pub scenarios: Option<Vec<String>>,
    pub curves_name: String,
    pub curves_csv: Option<String>,
}

impl SiteRiskBatch {
    pub fn new(args: SiteRiskArgs, common: CommonArgs) -> Self {
        Self {
            args,
            common,
            planned: Mutex::new(None),
            grid: OnceCell::new(),
            nearest: Mutex::new(HashMap::new()),
            without_probabilities: AtomicU64::new(0),
        }
    }

    /// The grid points (id, lat, lon), read once per process.
    async fn grid_points(
        &self,
        client: &tokio_postgres::Client,
    ) -> Result<Arc<Vec<(i32, f64, f64)>>> {
        Ok(self
            .grid
            .get_or_try_init(|| async {
                let rows = client
                    .query("SELECT id, lat, lon FROM grid_points ORDER BY id", &[])
                    .await
                    .context("reading grid_points")?;
                Ok::<_, anyhow::Error>(Arc::new(
                    rows.iter()
                        .map(|r| (r.get(0), r.get(1), r.get(2)))
                        .collect::<Vec<_>>(),
                ))
            })
            .await?
            .clone())
    }

    /// (name for messages, text when from a file, parsed curves).
    fn load_curves(&self) -> Result<(String, Option<String>, CurveSet)> {
        let (name, text) = match &self.args.curves {
            None => (DEFAULT_CURVES_PATH.to_string(), None),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| {
                    UsageError(format!("--curves {}: cannot read: {e}", p.display()))
                })?;
                (p.display().to_string(), Some(text))
            }
        };
        let set = parse_curves(&name, text.as_deref())?;
        Ok((name, text, set))
    }
}

/// Parses curves (`text` None: the built-in ones); every problem named by
/// file and line, as bad input.
fn parse_curves(name: &str, text: Option<&str>) -> Result<CurveSet> {
    parse_curves_csv(text.unwrap_or(DEFAULT_CURVES)).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|e| format!("{name}: {e}")).collect();
        BadInput(format!(
            "{} problem(s) in the curve file; nothing was written: {}",
            errors.len(),
            lines.join("; ")
        ))
        .into()
    })
}

fn hazard_names() -> Vec<String> {
    default_hazards()
        .iter()
        .map(|h| h.risk_type.to_string())
        .collect()
}

/// Every (hazard, class) used by `sites` needs a curve: the missing ones as
/// one bad-input error naming, for each, the first site's file and line.
fn check_coverage(sites: &[StoredSite], curves: &CurveSet, curves_name: &str) -> Result<()> {
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for s in sites {
        for h in hazard_names() {
            if curves.get(&h, s.site.asset_class).is_none()
                && seen.insert((h.clone(), s.site.asset_class))
            {
                let n = sites
                    .iter()
                    .filter(|o| o.site.asset_class == s.site.asset_class)
                    .count();
                problems.push(format!(
                    "{}: line {}: site {:?} has asset class {}, which has no {h} curve in {curves_name} ({n} site(s) of that class)",
                    s.source_file, s.site.line, s.site.site_id, s.site.asset_class
                ));
            }
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(BadInput(format!(
        "{} asset class/hazard pair(s) without a curve; nothing was written: {}",
        problems.len(),
        problems.join("; ")
    ))
    .into())
}

/// Everything one chunk computes, from the chunk's sites, their nearest
/// grid points (`nearest[i]` for `sites[i]`: grid id and distance) and those
/// points' probability series (ordered by grid, dataset and hazard).
/// Pure: the task's blocking half. Each series (grid point, dataset, hazard,
/// curve) is computed once, whatever the number of the chunk's sites using
/// it; each site gets one row per dataset and hazard pointing at it. The
/// totals over hazards are the views' (see migrations/0010). Returns the
/// results and the number of sites whose grid point has no probability
/// result.
pub fn assess_sites(
    sites: &[Site],
    nearest: &[Option<(i32, f64)>],
    probabilities: &[ProbabilitySeries],
    curves: &CurveSet,
) -> Result<(ChunkResults, u64)> {
    let hazards: HashMap<String, Hazard> = default_hazards()
        .into_iter()
        .map(|h| (h.risk_type.to_string(), h))
        .collect();
    // Each year's bins prepared once, whatever the number of its sites;
    // per grid point, its series of a known hazard.
    let mut prepared: Vec<Vec<PreparedBins>> = Vec::with_capacity(probabilities.len());
    let mut groups: HashMap<i32, Vec<usize>> = HashMap::new();
    for (i, s) in probabilities.iter().enumerate() {
        let mut years = Vec::new();
        if let Some(h) = hazards.get(&s.risk_type) {
            years.reserve_exact(s.years.len());
            for y in &s.years {
                let mut p = PreparedBins::default();
                prepare(&view(s, y), h, &mut p).map_err(|e| {
                    anyhow!(
                        "probability_results grid {} scenario {} {} {}: {e}",
                        s.grid_id,
                        s.dataset.scenario,
                        s.risk_type,
                        y.year
                    )
                })?;
                years.push(p);
            }
            if !s.years.is_empty() {
                groups.entry(s.grid_id).or_default().push(i);
            }
        }
        prepared.push(years);
    }
    let mut out = ChunkResults::default();
    // (series index, asset class) -> index in out.series.
    let mut computed: HashMap<(usize, AssetClass), usize> = HashMap::new();
    let mut fingerprints: HashMap<(&str, AssetClass), String> = HashMap::new();
    let mut without = 0;
    for (site, near) in sites.iter().zip(nearest) {
        let Some((grid_id, distance)) = *near else {
            without += 1;
            continue;
        };
        let Some(site_groups) = groups.get(&grid_id) else {
            without += 1;
            continue;
        };
        let v = vulnerability_score(site) as f32;
        for &i in site_groups {
            let probs = &probabilities[i];
            let risk_type = probs.risk_type.as_str();
            let curve = curves.get(risk_type, site.asset_class).ok_or_else(|| {
                anyhow!(
                    "site {:?}: no {risk_type} curve for asset class {}",
                    site.site_id,
                    site.asset_class
                )
            })?;
            let fingerprint = fingerprints
                .entry((risk_type, site.asset_class))
                .or_insert_with(|| curve.fingerprint())
                .clone();
            let series = *computed.entry((i, site.asset_class)).or_insert_with(|| {
                out.series.push(series_of(
                    grid_id,
                    probs,
                    &prepared[i],
                    curve,
                    fingerprint.clone(),
                ));
                out.series.len() - 1
            });
            out.rows.push(SiteResultRow {
                site_id: site.site_id.clone(),
                scenario: probs.dataset.scenario.clone(),
                model: probs.dataset.model.clone(),
                member: probs.dataset.member.clone(),
                risk_type: probs.risk_type.clone(),
                grid_id,
                distance_km: distance as f32,
                e_score: exposure_score(site, risk_type) as f32,
                v_score: v,
                curve_fingerprint: fingerprint,
                series,
            });
        }
    }
    Ok((out, without))
}

/// One grid point's series for one dataset and hazard (`probs` and its
/// years' `prepared` bins) through `curve`.
fn series_of(
    grid_id: i32,
    probs: &ProbabilitySeries,
    prepared: &[PreparedBins],
    curve: &Curve,
    curve_fingerprint: String,
) -> HazardSeries {
    let n = probs.years.len();
    let mut s = HazardSeries {
        grid_id,
        risk_type: probs.risk_type.clone(),
        curve_fingerprint,
        years: Vec::with_capacity(n),
        aal_rate: Vec::with_capacity(n),
        damage_rl10: Vec::with_capacity(n),
        damage_rl50: Vec::with_capacity(n),
        damage_rl100: Vec::with_capacity(n),
        hazard_score: Vec::with_capacity(n),
    };
    for (y, p) in probs.years.iter().zip(prepared) {
        let o = apply_curve(&view(probs, y), p, curve);
        let [d10, d50, d100] = o.damage_at_return_levels;
        s.years.push(y.year);
        s.aal_rate.push(o.aal_rate);
        s.damage_rl10.push(d10 as f32);
        s.damage_rl50.push(d50 as f32);
        s.damage_rl100.push(d100 as f32);
        s.hazard_score.push(o.hazard_score as f32);
    }
    s
}

/// Key of [`SiteRiskBatch::nearest`]: a site moved since the plan misses.
fn nearest_key(site: &Site) -> (String, u64, u64) {
    (site.site_id.clone(), site.lat.to_bits(), site.lon.to_bits())
}

fn view<'a>(s: &'a ProbabilitySeries, y: &SeriesYear) -> BinProbabilities<'a> {
    BinProbabilities {
        method: y.method,
        bin_edges: &s.bin_edges,
        bin_probs: s.probs_of(y),
        return_levels: y.return_levels,
        gev: y.gev,
    }
}

impl Job for SiteRiskBatch {
    type Args = SiteRiskArgs;
    type Chunk = ChunkPayload;

    fn name(&self) -> &'static str {
        JOB_NAME
    }

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn args(&self) -> &SiteRiskArgs {
        &self.args
    }

    fn counters(&self) -> serde_json::Value {
        json!({ "sites_without_probabilities": self.without_probabilities.load(Ordering::Relaxed) })
    }

    async fn plan(&self, ctx: &PlanContext) -> Result<Plan> {
        let (curves_name, curves_text, curves) = self.load_curves()?;
        let client = ctx
            .pool
            .get()
            .await
            .context("getting a database connection")?;
        if let Some(scenarios) = &self.args.scenarios {
            for s in scenarios {
                let exists: bool = client
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM probability_series WHERE scenario = $1)",
                        &[s],
                    )
                    .await
                    .context("checking --scenario")?
                    .get(0);
                if !exists {
                    return Err(UsageError(format!(
                        "--scenario {s:?}: no probability_results for it (run probability-batch first, or check the name)"
                    ))
                    .into());
                }
            }
        }
        let sites = load(&**client, None).await?;
        let mut plan = Plan::default();
        if sites.is_empty() {
            plan.up_to_date =
                Some("no sites imported (jobctl sites import FILE.csv); nothing to do".into());
            return Ok(plan);
        }
        check_coverage(&sites, &curves, &curves_name)?;
        let sites_version = table_version(&**client, "sites").await?;
        let probability_version = site_results::probability_version(&**client).await?;
        let fingerprint =
            format!("sites v{sites_version};probability_results v{probability_version}");
        let scope = format!(
            "scenarios={}",
            self.args
                .scenarios
                .as_ref()
                .map(|s| s.join(","))
                .unwrap_or_else(|| "all".into())
        );
        let current: Vec<(String, String, String)> = curves
            .curves
            .values()
            .map(|c| {
                (
                    c.risk_type.clone(),
                    c.asset_class.as_str().to_string(),
                    c.fingerprint(),
                )
            })
            .collect();
        let mut selected: Vec<&StoredSite> = sites.iter().collect();
        let mut why = "sites or probabilities changed since the last full run".to_string();
        if self.args.force {
            why = "--force".into();
        } else if let Some(prev) = input_files::lookup(&**client, JOB_NAME, SOURCE).await?
            && prev.fingerprint == fingerprint
            && prev.scope == scope
        {
            let recorded = recorded_curves(&**client).await?;
            let changed: BTreeSet<&str> = current
                .iter()
                .filter(|(h, c, f)| recorded.get(&(h.clone(), c.clone())) != Some(f))
                .map(|(_, c, _)| c.as_str())
                .collect();
            selected.retain(|s| changed.contains(s.site.asset_class.as_str()));
            if selected.is_empty() {
                plan.up_to_date = Some(format!(
                    "sites, probability_results and the curves used are unchanged since run {} at {} UTC; nothing to do (--force redoes it)",
                    prev.run_id, prev.processed_at
                ));
                return Ok(plan);
            }
            why = format!(
                "curves changed for asset class(es) {}",
                changed.into_iter().collect::<Vec<_>>().join(", ")
            );
        }
        // Sites in the order of their nearest grid point, so a chunk reads
        // the probabilities of few grid points and each point's once.
        let grid = self.grid_points(&client).await?;
        let located: Vec<(i32, &StoredSite)> = {
            let coords: Vec<(f64, f64)> =
                selected.iter().map(|s| (s.site.lat, s.site.lon)).collect();
            let by_id: HashMap<i32, usize> =
                grid.iter().enumerate().map(|(i, p)| (p.0, i)).collect();
            let nearest = tokio::task::spawn_blocking(move || {
                coords
                    .iter()
                    .map(|&(lat, lon)| nearest_point(lat, lon, &grid).map_or(-1, |n| n.0))
                    .collect::<Vec<i32>>()
            })
            .await
            .context("nearest-point thread")?;
            let mut cache = self.nearest.lock().unwrap_or_else(|p| p.into_inner());
            for (g, s) in nearest.iter().zip(&selected) {
                if let Some(&i) = by_id.get(g) {
                    cache.insert(nearest_key(&s.site), i);
                }
            }
            drop(cache);
            let mut v: Vec<(i32, &StoredSite)> =
                nearest.into_iter().zip(selected.iter().copied()).collect();
            v.sort_by(|a, b| (a.0, &a.1.site.site_id).cmp(&(b.0, &b.1.site.site_id)));
            v
        };
        let payload_curves = curves_text.clone();
        for (n, chunk) in located
            .chunks(usize::try_from(self.args.chunk_sites).unwrap_or(1).max(1))
            .enumerate()
        {
            let ids: Vec<String> = chunk.iter().map(|s| s.1.site.site_id.clone()).collect();
            let key = format!("sites:{n:05}:{}..{}", ids[0], ids[ids.len() - 1]);
            let payload = ChunkPayload {
                site_ids: ids,
                scenarios: self.args.scenarios.clone(),
                curves_name: curves_name.clone(),
                curves_csv: payload_curves.clone(),
            };
            plan.tasks.push(TaskSpec::new(key, &payload)?);
        }
        plan.description.push(format!(
            "{} of {} site(s) in {} chunk(s) ({why}); curves {curves_name}; sites version {sites_version}, probability_results version {probability_version}",
            selected.len(),
            sites.len(),
            plan.tasks.len()
        ));
        let curves_hash = stable_hash(
            &current
                .iter()
                .map(|(h, c, f)| format!("{h}/{c}={f}"))
                .collect::<Vec<_>>()
                .join(";"),
        );
        let mut key = format!("{}|{curves_hash}|{scope}", stable_hash(&fingerprint));
        if self.args.force {
            key.push_str(&format!("|force:{}", ctx.execution));
        }
        plan.resume_key = Some(key);
        *self.planned.lock().unwrap_or_else(|p| p.into_inner()) = Some(Planned {
            fingerprint,
            scope,
            sites: selected.len(),
            curves: current,
        });
        Ok(plan)
    }

    async fn run_task(&self, ctx: TaskContext, chunk: ChunkPayload) -> Result<TaskOutput> {
        if chunk.site_ids.is_empty() {
            return Ok(TaskOutput::default());
        }
        let curves = parse_curves(&chunk.curves_name, chunk.curves_csv.as_deref())?;
        let mut client = ctx
            .pool
            .get()
            .await
            .context("getting a database connection")?;
        let grid = self.grid_points(&client).await?;
        let sites: Vec<Site> = load(&**client, Some(&chunk.site_ids))
            .await?
            .into_iter()
            .map(|s| s.site)
            .collect();
        let known: Vec<Option<usize>> = {
            let cache = self.nearest.lock().unwrap_or_else(|p| p.into_inner());
            sites
                .iter()
                .map(|s| cache.get(&nearest_key(s)).copied())
                .collect()
        };
        let located = {
            let sites = sites.clone();
            tokio::task::spawn_blocking(move || {
                sites
                    .iter()
                    .zip(known)
                    .map(|(s, known)| match known.and_then(|i| grid.get(i)) {
                        // The distance to the point the plan found.
                        Some(&point) => nearest_point(s.lat, s.lon, &[point]),
                        None => nearest_point(s.lat, s.lon, &grid),
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .context("nearest-point thread")?
        };
        let mut grid_ids: Vec<i32> = located.iter().flatten().map(|n| n.0).collect();
        grid_ids.sort_unstable();
        grid_ids.dedup();
        let probabilities =
            read_probabilities(&**client, &grid_ids, chunk.scenarios.as_deref()).await?;
        let (results, without) = tokio::task::spawn_blocking(move || {
            assess_sites(&sites, &located, &probabilities, &curves)
        })
        .await
        .context("assessment thread")??;
        self.without_probabilities
            .fetch_add(without, Ordering::Relaxed);
        let tx = client
            .transaction()
            .await
            .context("starting the chunk transaction")?;
        let rows_written = replace_chunk(
            &tx,
            &chunk.site_ids,
            chunk.scenarios.as_deref(),
            ctx.run_id,
            &results,
        )
        .await?;
        tx.commit().await.context("committing the chunk")?;
        Ok(TaskOutput { rows_written })
    }

    /// Called only once every chunk of the plan is done.
    async fn after_tasks(&self, ctx: &PlanContext, metrics: &RunMetrics) -> Result<()> {
        let Some(planned) = self
            .planned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        else {
            return Ok(());
        };
        let mut client = ctx
            .pool
            .get()
            .await
            .context("getting a database connection")?;
        site_results::record_curves(&mut client, &planned.curves, ctx.run_id).await?;
        site_results::delete_orphan_series(&**client).await?;
        input_files::record(
            &**client,
            &input_files::Processed {
                job: JOB_NAME,
                path: SOURCE,
                fingerprint: &planned.fingerprint,
                scope: &planned.scope,
                scenario: "*",
                points: i32::try_from(planned.sites).unwrap_or(i32::MAX),
                rows_written: i64::try_from(metrics.rows_written).unwrap_or(i64::MAX),
                run_id: ctx.run_id,
            },
        )
        .await
    }
}
