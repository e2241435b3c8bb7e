//! hazard-timeseries-batch: daily climate projections (CF NetCDF) → yearly
//! hazard indices per grid point, scenario and year in `hazard_results`.
//!
//! Plan: open and validate every input (a bad one fails the run with exit
//! 65 before anything is written), skip inputs unchanged since their last
//! full run, cut each remaining input into chunks of grid points. Task:
//! compute one chunk's indices (pure code over the file, on a blocking
//! thread) and write them in one transaction. A chunk's payload names the
//! file, its fingerprint and the scope, so a dead letter can redo it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::climate::{ClimateFile, InputError, VariableNames, annual_indices};
use crate::harness::ledger::RunMetrics;
use crate::harness::{
    BadInput, CommonArgs, Job, Plan, PlanContext, TaskContext, TaskOutput, TaskSpec, UsageError,
};
use crate::hazard::{Hazard, Variable, default_hazards};
use crate::scope::{PointSelection, YearRange};
use crate::store::grid::ensure_points;
use crate::store::hazard_results::{HazardRow, write_chunk};
use crate::store::input_files::{self, fingerprint, stable_hash};

pub const JOB_NAME: &str = "hazard-timeseries-batch";

/// The job's own arguments (see the binary's --help).
#[derive(Debug)]
pub struct HazardBatch {
    pub inputs: Vec<PathBuf>,
    /// Scenario for inputs without an `experiment_id`; inputs whose
    /// `experiment_id` differs are out of scope and skipped.
    pub scenario: Option<String>,
    pub years: Option<YearRange>,
    /// Risk types to compute; None = all.
    pub hazards: Option<Vec<String>>,
    pub points: PointSelection,
    /// Grid points per chunk; 0 = [`auto_chunk_points`].
    pub chunk_points: usize,
    pub force: bool,
    pub names: VariableNames,
    pub common: CommonArgs,
    /// Inputs planned in this run, for `input_files` once all their chunks are done.
    planned: Mutex<Vec<PlannedInput>>,
    rows_by_input: Mutex<HashMap<String, u64>>,
}

#[derive(Debug, Clone)]
struct PlannedInput {
    path: String,
    fingerprint: String,
    scope: String,
    scenario: String,
    points: usize,
}

/// What one chunk needs: enough for `dlq-reprocess` to redo it later.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChunkPayload {
    pub file: String,
    pub fingerprint: String,
    pub scenario: String,
    /// Point indices `[start, end)` in file order.
    pub points: [usize; 2],
    pub selection: PointSelection,
    pub years: Option<YearRange>,
    pub hazards: Vec<String>,
    pub variables: [String; 3],
}

impl HazardBatch {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        inputs: Vec<PathBuf>,
        scenario: Option<String>,
        years: Option<YearRange>,
        hazards: Option<Vec<String>>,
        points: PointSelection,
        chunk_points: usize,
        force: bool,
        names: VariableNames,
        common: CommonArgs,
    ) -> Self {
        Self {
            inputs,
            scenario,
            years,
            hazards,
            points,
            chunk_points,
            force,
            names,
            common,
            planned: Mutex::new(Vec::new()),
            rows_by_input: Mutex::new(HashMap::new()),
        }
    }

    fn selected_hazards(&self) -> Result<Vec<Hazard>> {
        select_hazards(self.hazards.as_deref())
    }

    /// Everything that identifies the work apart from the file itself.
    fn scope(&self, hazards: &[Hazard]) -> String {
        let names: Vec<&str> = hazards.iter().map(|h| h.risk_type.as_ref()).collect();
        format!(
            "hazards={};years={};points={};vars={},{},{}",
            names.join(","),
            self.years
                .map(|y| y.to_string())
                .unwrap_or_else(|| "all".into()),
            self.points,
            self.names.tasmax,
            self.names.tasmin,
            self.names.pr
        )
    }
}

/// Grid points per chunk when not given: two chunks per concurrent task
/// so reading, computing and the database's COPY overlap, at least 250
/// points (a chunk reads a year of its points per call: smaller slices of a
/// wide time-major grid cost more in read overhead than they gain), at most
/// 2,000 (a year block of 2,000 points × 3 variables is ~9 MB, twice with
/// read-ahead, per concurrent task).
pub fn auto_chunk_points(points: usize, concurrency: usize) -> usize {
    (points / (2 * concurrency.max(1))).clamp(250, 2000)
}

/// The registry's hazards, narrowed to `names` (unknown names are a usage error).
pub fn select_hazards(names: Option<&[String]>) -> Result<Vec<Hazard>> {
    let all = default_hazards();
    let Some(names) = names else { return Ok(all) };
    let mut selected = Vec::new();
    for name in names {
        match all.iter().find(|h| h.risk_type == name.as_str()) {
            Some(h) => selected.push(h.clone()),
            None => {
                let known: Vec<&str> = all.iter().map(|h| h.risk_type.as_ref()).collect();
                return Err(UsageError(format!(
                    "--hazards: unknown hazard {name:?} (known: {})",
                    known.join(", ")
                ))
                .into());
            }
        }
    }
    Ok(selected)
}

fn needed_variables(hazards: &[Hazard]) -> Vec<Variable> {
    let mut vars: Vec<Variable> = hazards.iter().map(|h| h.variable).collect();
    vars.sort();
    vars.dedup();
    vars
}

fn bad_input(e: InputError) -> anyhow::Error {
    BadInput(e.to_string()).into()
}

/// What planning learns about one input (blocking: opens the file).
struct InputSurvey {
    path: String,
    fingerprint: String,
    scenario: Option<String>,
    points: Vec<(f64, f64)>,
    years: Option<YearRange>,
    calendar: &'static str,
    days: usize,
}

fn survey(path: &Path, names: &VariableNames, vars: &[Variable]) -> Result<InputSurvey> {
    let file = ClimateFile::open(path, names, vars).map_err(bad_input)?;
    // Read the first and last day of every variable: a truncated file whose
    // header is intact fails here, before anything is written.
    let last = file.time_len().saturating_sub(1);
    for &v in vars {
        for t in [0, last] {
            file.read_block(v, t..t + 1, 0..file.points().len().min(1))
                .map_err(bad_input)?;
        }
    }
    let fingerprint =
        fingerprint(path).map_err(|e| BadInput(format!("{}: cannot read: {e}", path.display())))?;
    let dates = file.dates();
    let years = match (dates.first(), dates.last()) {
        (Some(a), Some(b)) => Some(YearRange {
            first: a.year,
            last: b.year,
        }),
        _ => None,
    };
    Ok(InputSurvey {
        path: path.display().to_string(),
        fingerprint,
        scenario: file.scenario().map(String::from),
        points: file.points().to_vec(),
        years,
        calendar: file.calendar().name(),
        days: file.time_len(),
    })
}

impl Job for HazardBatch {
    fn name(&self) -> &'static str {
        JOB_NAME
    }

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn args(&self) -> serde_json::Value {
        json!({
            "inputs": self.inputs,
            "scenario": self.scenario,
            "years": self.years.map(|y| y.to_string()),
            "hazards": self.hazards,
            "points": self.points.to_string(),
            "chunk_points": self.chunk_points,
            "force": self.force,
        })
    }

    async fn plan(&self, ctx: &PlanContext) -> Result<Plan> {
        if self.inputs.is_empty() {
            return Err(UsageError("no input: give one or more --input FILE".into()).into());
        }
        let hazards = self.selected_hazards()?;
        let vars = needed_variables(&hazards);
        let scope = self.scope(&hazards);
        let hazard_names: Vec<String> = hazards.iter().map(|h| h.risk_type.to_string()).collect();
        let client = ctx
            .pool
            .get()
            .await
            .context("getting a database connection")?;

        let mut plan = Plan::default();
        let mut planned = Vec::new();
        let mut unchanged = 0;
        let mut key_material = String::new();
        for path in &self.inputs {
            let (p, names, v) = (path.clone(), self.names.clone(), vars.clone());
            let s = tokio::task::spawn_blocking(move || survey(&p, &names, &v))
                .await
                .context("input survey thread")??;
            let scenario = match (&s.scenario, &self.scenario) {
                (Some(file), Some(flag)) if file != flag => {
                    plan.description.push(format!(
                        "{}: scenario {file} is out of scope (--scenario {flag}); skipped",
                        s.path
                    ));
                    continue;
                }
                (Some(file), _) => file.clone(),
                (None, Some(flag)) => flag.clone(),
                (None, None) => {
                    return Err(BadInput(format!(
                        "{}: no experiment_id global attribute to name the scenario: pass --scenario",
                        s.path
                    ))
                    .into());
                }
            };
            let Some(file_years) = s.years else {
                return Err(BadInput(format!("{}: the time axis is empty", s.path)).into());
            };
            let years = match self.years {
                Some(wanted) => match wanted.intersect(&file_years) {
                    Some(y) => Some(y),
                    None => {
                        plan.description.push(format!(
                            "{}: no years of {wanted} in the file ({file_years}); skipped",
                            s.path
                        ));
                        continue;
                    }
                },
                None => None,
            };
            let Some(range) = self.points.covering_range(&s.points) else {
                plan.description.push(format!(
                    "{}: no grid point selected by --points {}; skipped",
                    s.path, self.points
                ));
                continue;
            };
            if !self.force
                && let Some(prev) = input_files::lookup(&**client, JOB_NAME, &s.path).await?
                && prev.fingerprint == s.fingerprint
                && prev.scope == scope
            {
                unchanged += 1;
                plan.description.push(format!(
                    "{}: unchanged since run {} at {} UTC; skipped (--force redoes it)",
                    s.path, prev.run_id, prev.processed_at
                ));
                continue;
            }
            let mut chunks = 0;
            let per_chunk = match self.chunk_points {
                0 => auto_chunk_points(range.len(), usize::from(self.common.run.concurrency)),
                n => n,
            };
            for start in range.clone().step_by(per_chunk) {
                let end = (start + per_chunk).min(range.end);
                let payload = ChunkPayload {
                    file: s.path.clone(),
                    fingerprint: s.fingerprint.clone(),
                    scenario: scenario.clone(),
                    points: [start, end],
                    selection: self.points,
                    years,
                    hazards: hazard_names.clone(),
                    variables: [
                        self.names.tasmax.clone(),
                        self.names.tasmin.clone(),
                        self.names.pr.clone(),
                    ],
                };
                plan.tasks.push(TaskSpec {
                    key: format!("{scenario}:{}:{start}-{end}", s.path),
                    payload: serde_json::to_value(&payload).context("encoding a chunk payload")?,
                });
                chunks += 1;
            }
            plan.description.push(format!(
                "{}: scenario {scenario}, {} calendar, {} days ({}), points {}..{} of {} in {chunks} chunk(s), hazards {}",
                s.path,
                s.calendar,
                s.days,
                years.unwrap_or(file_years),
                range.start,
                range.end,
                s.points.len(),
                hazard_names.join(",")
            ));
            key_material.push_str(&format!(
                "{}|{}|{scenario}|{per_chunk};",
                s.path, s.fingerprint
            ));
            planned.push(PlannedInput {
                path: s.path.clone(),
                fingerprint: s.fingerprint.clone(),
                scope: scope.clone(),
                scenario,
                points: range.len(),
            });
        }
        if plan.tasks.is_empty() && unchanged > 0 {
            plan.up_to_date = Some(format!(
                "{unchanged} input(s) unchanged since their last full run; nothing to do (--force redoes them)"
            ));
        }
        // Same inputs and scope → same key: a run cut short is resumed. A
        // forced run is new work by definition.
        let mut key = format!("{}|{scope}", stable_hash(&key_material));
        if self.force {
            key.push_str(&format!("|force:{}", ctx.execution));
        }
        plan.resume_key = Some(key);
        *self.planned.lock().unwrap_or_else(|p| p.into_inner()) = planned;
        Ok(plan)
    }

    async fn run_task(&self, ctx: TaskContext) -> Result<TaskOutput> {
        let chunk: ChunkPayload =
            serde_json::from_value(ctx.payload).context("decoding the chunk payload")?;
        let hazards = select_hazards(Some(&chunk.hazards))?;
        let vars = needed_variables(&hazards);
        let names = VariableNames {
            tasmax: chunk.variables[0].clone(),
            tasmin: chunk.variables[1].clone(),
            pr: chunk.variables[2].clone(),
        };
        let (path, [start, end]) = (PathBuf::from(&chunk.file), chunk.points);
        let years = chunk.years.map(|y| y.first..=y.last);
        let (expected_fp, hz) = (chunk.fingerprint.clone(), hazards.clone());
        let (points, values) = tokio::task::spawn_blocking(move || -> Result<_> {
            let now = fingerprint(&path).with_context(|| format!("{}: cannot read", path.display()))?;
            anyhow::ensure!(
                now == expected_fp,
                "{}: the file changed since this chunk was planned; run the batch again for the new input",
                path.display()
            );
            let file = ClimateFile::open(&path, &names, &vars)?;
            let values = annual_indices(&file, &hz, start..end, years)?;
            Ok((file.points()[start..end].to_vec(), values))
        })
        .await
        .context("hazard computation thread")??;

        let selected: Vec<bool> = points
            .iter()
            .enumerate()
            .map(|(i, (lat, lon))| chunk.selection.selects(start + i, *lat, *lon))
            .collect();
        let chosen_points: Vec<(f64, f64)> = points
            .iter()
            .zip(&selected)
            .filter(|(_, s)| **s)
            .map(|(p, _)| *p)
            .collect();

        let mut client = ctx
            .pool
            .get()
            .await
            .context("getting a database connection")?;
        let tx = client
            .transaction()
            .await
            .context("starting the chunk transaction")?;
        let ids = ensure_points(&*tx, &chosen_points).await?;
        // Grid id per point of the chunk (None for points outside the selection).
        let mut id_of = vec![None; points.len()];
        let mut next = ids.iter();
        for (slot, s) in id_of.iter_mut().zip(&selected) {
            if *s {
                *slot = next.next().copied();
            }
        }
        let rows: Vec<HazardRow> = values
            .iter()
            .filter_map(|v| {
                Some(HazardRow {
                    grid_id: id_of[v.point - start]?,
                    risk_type: hazards[v.hazard].risk_type.as_ref(),
                    year: i16::try_from(v.year).ok()?,
                    value: v.value,
                    score: v.score as f32,
                })
            })
            .collect();
        let n = write_chunk(&tx, &chunk.scenario, &ids, ctx.run_id, &rows).await?;
        tx.commit().await.context("committing the chunk")?;
        *self
            .rows_by_input
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(chunk.file.clone())
            .or_default() += n;
        Ok(TaskOutput { rows_written: n })
    }

    /// The harness calls this only once every chunk of the plan is done,
    /// so the inputs are fully processed.
    async fn after_tasks(&self, ctx: &PlanContext, _metrics: &RunMetrics) -> Result<()> {
        let planned = self
            .planned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let rows = self
            .rows_by_input
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let client = ctx
            .pool
            .get()
            .await
            .context("getting a database connection")?;
        for input in planned {
            let written = rows.get(&input.path).copied().unwrap_or(0);
            input_files::record(
                &**client,
                JOB_NAME,
                &input.path,
                &input.fingerprint,
                &input.scope,
                &input.scenario,
                i32::try_from(input.points).unwrap_or(i32::MAX),
                i64::try_from(written).unwrap_or(i64::MAX),
                ctx.run_id,
            )
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::auto_chunk_points;

    #[test]
    fn auto_chunks_give_two_per_task_within_bounds() {
        assert_eq!(auto_chunk_points(1000, 2), 250);
        assert_eq!(auto_chunk_points(5000, 2), 1250);
        assert_eq!(auto_chunk_points(60, 4), 250);
        assert_eq!(auto_chunk_points(1_000_000, 2), 2000);
    }
}
