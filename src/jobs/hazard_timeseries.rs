//! hazard-timeseries-batch: daily climate projections (CF NetCDF) → yearly
//! hazard indices per grid point, dataset and year in `hazard_results`.
//!
//! Plan: expand the inputs (files, directories, patterns), read every
//! file's identity (global attributes, else its ESGF name, then the
//! operator's labels), group the files into datasets (scenario, model,
//! member, grid), open and validate each dataset — shared grid, time pieces
//! joined in order, overlapping days identical — (a bad one fails the run
//! with exit 65 before anything is written), skip datasets unchanged since
//! their last full run, cut each remaining dataset into chunks of grid
//! points. Task: compute one chunk's indices over the joined series (pure
//! code, on a blocking thread) and write them in one transaction. A chunk's
//! payload names the dataset, its files with their fingerprints and the
//! scope, so a dead letter can redo it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::climate::dataset::{
    DatasetKey, FileIdentity, Label, LabelOutcome, apply_label, group_by_key, identify,
};
use crate::climate::{
    ClimateFile, Dataset, FileAttributes, InputError, Layout, VariableNames, dataset_indices_each,
    read_attributes,
};
use crate::harness::ledger::RunMetrics;
use crate::harness::{
    BadInput, CommonArgs, Job, Plan, PlanContext, TaskContext, TaskOutput, TaskSpec, UsageError,
};
use crate::hazard::{Hazard, Variable, default_hazards};
use crate::scope::{PointSelection, YearRange};
use crate::store::datasets::{self, DatasetFile};
use crate::store::grid::ensure_points;
use crate::store::hazard_results::{Series, write_series};
use crate::store::input_files::{self, fingerprint, stable_hash};

use super::inputs::expand_inputs;

pub const JOB_NAME: &str = "hazard-timeseries-batch";

/// `--scenario`, `--model`, `--member`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Labels {
    pub scenario: Option<Label>,
    pub model: Option<Label>,
    pub member: Option<Label>,
}

/// hazard-timeseries-batch's flags.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct HazardArgs {
    /// CF NetCDF inputs: files, directories (walked recursively for *.nc)
    /// and glob patterns (`*`, `?`, `[..]`); repeat the flag or give several
    /// after it. Paths are never split on commas. Without --input, the
    /// environment variable CLIMATE_JOBS_INPUT is read: inputs separated by
    /// newlines or `:` (never a comma).
    #[arg(long = "input", value_name = "FILE|DIR|PATTERN", num_args = 1..)]
    pub inputs: Vec<PathBuf>,

    /// Scenario. NAME names inputs without an `experiment_id` and selects
    /// those whose experiment is NAME (matching no input is an error, exit
    /// 2); OLD=NEW relabels inputs whose experiment is OLD (logged).
    #[arg(long, value_name = "NAME|OLD=NEW")]
    pub scenario: Option<Label>,

    /// Model, as --scenario: CMIP6 `source_id`; CORDEX
    /// `<driving model>/<regional model>`. Inputs without one are `unknown`.
    #[arg(long, value_name = "NAME|OLD=NEW")]
    pub model: Option<Label>,

    /// Member, as --scenario: CMIP6 `variant_label`; CORDEX the driving
    /// model's member. Inputs without one are `unknown`.
    #[arg(long, value_name = "NAME|OLD=NEW")]
    pub member: Option<Label>,

    /// Only these calendar years, e.g. 2021..2040 (both ends included) or 2030.
    #[arg(long)]
    pub years: Option<YearRange>,

    /// Only these hazards (comma-separated): extreme_heat, extreme_cold,
    /// drought, urban_flood, river_flood.
    #[arg(long, value_delimiter = ',')]
    pub hazards: Option<Vec<String>>,

    /// Only these grid points: `all`, an index range in file order `0..499`
    /// (both ends included), or `bbox:LAT_MIN,LON_MIN,LAT_MAX,LON_MAX`.
    #[arg(long, default_value = "all")]
    pub points: PointSelection,

    /// Grid points per chunk: the unit of commit, resume and retry. 0 (the
    /// default) puts up to 5,000 points in one chunk computed on
    /// --concurrency threads (whole days of the grid are the cheapest reads),
    /// and cuts larger grids into about two chunks per concurrent task,
    /// between 250 and 2,000 points, as many as a multiple of --concurrency.
    #[arg(long, default_value_t = 0)]
    pub chunk_points: u32,

    /// Recompute inputs even if unchanged since their last full run.
    #[arg(long)]
    pub force: bool,

    /// Name of the daily maximum temperature variable.
    #[arg(long, default_value = "tasmax")]
    pub tasmax_var: String,
    /// Name of the daily minimum temperature variable.
    #[arg(long, default_value = "tasmin")]
    pub tasmin_var: String,
    /// Name of the precipitation variable.
    #[arg(long, default_value = "pr")]
    pub pr_var: String,
}

#[derive(Debug)]
pub struct HazardBatch {
    pub args: HazardArgs,
    /// `--scenario`, `--model`, `--member` together.
    pub labels: Labels,
    /// The variable names of `--tasmax-var`, `--tasmin-var`, `--pr-var`.
    pub names: VariableNames,
    pub common: CommonArgs,
    /// Datasets planned in this run, recorded once all their chunks are done.
    planned: Mutex<Vec<PlannedDataset>>,
    rows_by_dataset: Mutex<HashMap<DatasetKey, u64>>,
    /// Per dataset, the hazards it lacks a variable for (for the summary).
    not_computed: Mutex<Vec<serde_json::Value>>,
    datasets_seen: Mutex<usize>,
    /// Compute threads per chunk: the concurrency left over when the plan has fewer chunks
    /// than concurrent tasks (a chunk spanning a whole grid; see [`auto_chunk_points`]).
    compute_threads: AtomicUsize,
}

#[derive(Debug, Clone)]
struct PlannedDataset {
    key: DatasetKey,
    convention: String,
    attributes: serde_json::Value,
    files: Vec<DatasetFile>,
    scope: String,
    points: usize,
}

/// One file of a dataset in a chunk's payload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileRef {
    pub path: String,
    pub fingerprint: String,
    /// The hazard variables (`tasmax`, `tasmin`, `pr`) read from this file.
    pub variables: Vec<String>,
}

/// What one chunk needs: enough for `dlq-reprocess` to redo it later.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChunkPayload {
    pub dataset: DatasetKey,
    pub convention: String,
    /// The identity attributes, as recorded in `datasets.attributes`.
    pub attributes: serde_json::Value,
    /// Every file of the dataset, in path order.
    pub files: Vec<FileRef>,
    /// Point indices `[start, end)` in file order.
    pub points: [usize; 2],
    pub selection: PointSelection,
    pub years: Option<YearRange>,
    pub hazards: Vec<String>,
    pub variables: [String; 3],
}

impl HazardBatch {
    /// The job for these flags. Without `--input`, the inputs come from
    /// `CLIMATE_JOBS_INPUT` (newline- or `:`-separated, never commas), so the
    /// ledger records the inputs the run really read.
    pub fn new(mut args: HazardArgs, common: CommonArgs) -> Self {
        if args.inputs.is_empty()
            && let Ok(v) = std::env::var("CLIMATE_JOBS_INPUT")
        {
            args.inputs = super::inputs::split_env_inputs(&v);
        }
        let labels = Labels {
            scenario: args.scenario.clone(),
            model: args.model.clone(),
            member: args.member.clone(),
        };
        let names = VariableNames {
            tasmax: args.tasmax_var.clone(),
            tasmin: args.tasmin_var.clone(),
            pr: args.pr_var.clone(),
        };
        Self {
            args,
            labels,
            names,
            common,
            planned: Mutex::new(Vec::new()),
            rows_by_dataset: Mutex::new(HashMap::new()),
            not_computed: Mutex::new(Vec::new()),
            datasets_seen: Mutex::new(0),
            compute_threads: AtomicUsize::new(1),
        }
    }

    /// Expands `--input`, reads every file's identity attributes and
    /// variables (on a blocking thread), and keeps the files that hold any
    /// needed variable; the others are named in `description`. A variable
    /// renamed by a flag that no input holds, or no input holding any, is
    /// bad input.
    async fn survey_inputs(
        &self,
        needed: &[Variable],
        description: &mut Vec<String>,
    ) -> Result<Vec<FileSurvey>> {
        let files = expand_inputs(&self.args.inputs)?;
        let (names, v) = (self.names.clone(), needed.to_vec());
        let surveys = tokio::task::spawn_blocking(move || {
            files
                .iter()
                .map(|p| survey_file(p, &names, &v))
                .collect::<Result<Vec<_>>>()
        })
        .await
        .context("input survey thread")??;

        // A variable renamed by a flag that no input holds is a mistake in the flag.
        let defaults = VariableNames::default();
        for &v in needed {
            let name = self.names.get(v);
            if name != defaults.get(v)
                && !surveys.iter().any(|s| s.variables.contains(&v))
                && let Some(first) = surveys.first()
            {
                return Err(BadInput(format!(
                    "{}: variable \"{name}\": variable not found (named by --{v}-var; no input holds it)",
                    first.path.display()
                ))
                .into());
            }
        }
        let (with_vars, without): (Vec<FileSurvey>, Vec<FileSurvey>) =
            surveys.into_iter().partition(|s| !s.variables.is_empty());
        let wanted: Vec<&str> = needed.iter().map(|v| self.names.get(*v)).collect();
        for s in &without {
            description.push(format!(
                "{}: holds none of the variables {}; not read",
                s.path.display(),
                wanted.join(", ")
            ));
        }
        if with_vars.is_empty() {
            let first = without
                .first()
                .map(|s| s.path.display().to_string())
                .unwrap_or_default();
            return Err(BadInput(format!(
                "{first}: no input holds any of the variables {} (variable not found)",
                wanted.join(", ")
            ))
            .into());
        }
        Ok(with_vars)
    }

    /// Whether every file of a dataset was fully processed before with this
    /// fingerprint and scope (and `--force` is not given): the last such run.
    async fn unchanged_since(
        &self,
        client: &impl tokio_postgres::GenericClient,
        files: &[FileRef],
        scope: &str,
    ) -> Result<Option<input_files::ProcessedInput>> {
        if self.args.force {
            return Ok(None);
        }
        let mut last_run = None;
        for f in files {
            match input_files::lookup(client, JOB_NAME, &f.path).await? {
                Some(prev) if prev.fingerprint == f.fingerprint && prev.scope == scope => {
                    last_run = Some(prev)
                }
                _ => return Ok(None),
            }
        }
        Ok(last_run)
    }

    fn selected_hazards(&self) -> Result<Vec<Hazard>> {
        select_hazards(self.args.hazards.as_deref())
    }

    /// Everything that identifies the work apart from the files themselves.
    fn scope(&self, hazards: &[Hazard]) -> String {
        let names: Vec<&str> = hazards.iter().map(|h| h.risk_type.as_ref()).collect();
        format!(
            "hazards={};years={};points={};vars={},{},{}",
            names.join(","),
            self.args
                .years
                .map(|y| y.to_string())
                .unwrap_or_else(|| "all".into()),
            self.args.points,
            self.names.tasmax,
            self.names.tasmin,
            self.names.pr
        )
    }
}

/// One point's yearly values of one hazard as the driver emits them (years ascending), kept
/// compactly until the grid ids are known: a year without a value is `None`.
#[derive(Debug, Clone, Default)]
struct YearSeries {
    first_year: Option<i16>,
    values: Vec<Option<f64>>,
    scores: Vec<Option<f32>>,
}

impl YearSeries {
    fn push(&mut self, year: i32, value: f64, score: f64) {
        let Ok(year) = i16::try_from(year) else {
            return; // outside the table's year type; never written (as before)
        };
        let first = *self.first_year.get_or_insert(year);
        let Ok(slot) = usize::try_from(i32::from(year) - i32::from(first)) else {
            return; // years arrive ascending
        };
        if self.values.len() < slot {
            self.values.resize(slot, None);
            self.scores.resize(slot, None);
        }
        self.values.push(Some(value));
        self.scores.push(Some(score as f32));
    }
}

/// Grid points per chunk when not given. Up to [`WHOLE_GRID_POINTS`], the
/// whole range in one chunk, computed on several threads: in a time-major
/// file a day of a point range is one piece, and a chunk reading only part
/// of each day makes HDF5 read (sieve) the bytes between the pieces too, so
/// four 1,250-point chunks of a 5,000-point grid read the file ~3 times over
/// (bench/results/README.md, issue 10). Beyond it, two chunks per
/// concurrent task so reading, computing and the database's COPY overlap,
/// at least 250 points, at most 2,000 (a year block of 2,000 points × 3
/// variables is ~9 MB, twice with read-ahead, per concurrent task), then
/// evened out so the number of chunks is a multiple of the concurrency: 5
/// chunks on 2 tasks would run the fifth alone, one core idle for a fifth
/// of the run. Rounded up to whole grid rows of `row_points` when that
/// keeps the count a multiple: a chunk cutting rows reads them whole and
/// trims them.
pub fn auto_chunk_points(points: usize, concurrency: usize, row_points: usize) -> usize {
    if points <= WHOLE_GRID_POINTS {
        return points.max(1);
    }
    let tasks = concurrency.max(1);
    let size = (points / (2 * tasks)).clamp(250, 2000);
    let chunks = points.div_ceil(size).next_multiple_of(tasks);
    let even = points.div_ceil(chunks);
    let rows = even.next_multiple_of(row_points.max(1));
    if points.div_ceil(rows).is_multiple_of(tasks) {
        rows
    } else {
        even
    }
}

/// Most points of one auto-sized chunk over the whole range: a year block
/// of 5,000 points × 3 variables is 22 MB (twice with read-ahead) and the
/// chunk's series ~50 MB at 80 years, well inside a 300 MB process.
pub const WHOLE_GRID_POINTS: usize = 5_000;

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

/// Global attributes kept with a dataset (its identity and provenance; not `history`).
const IDENTITY_ATTRIBUTES: &[&str] = &[
    "project_id",
    "project",
    "mip_era",
    "activity_id",
    "institution_id",
    "source_id",
    "model_id",
    "experiment_id",
    "variant_label",
    "grid_label",
    "domain_id",
    "CORDEX_domain",
    "driving_source_id",
    "driving_model_id",
    "driving_variant_label",
    "driving_model_ensemble_member",
    "driving_experiment_id",
    "rcm_version_id",
    "version_realization",
    "frequency",
    "table_id",
];

/// What planning learns about one file before opening its data.
struct FileSurvey {
    path: PathBuf,
    attributes: FileAttributes,
    identity: FileIdentity,
    /// The needed variables the file holds.
    variables: Vec<Variable>,
}

fn survey_file(path: &Path, names: &VariableNames, needed: &[Variable]) -> Result<FileSurvey> {
    let attributes = read_attributes(path).map_err(bad_input)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let identity = identify(&attributes.globals, &file_name);
    let variables = needed
        .iter()
        .copied()
        .filter(|v| attributes.has_variable(names.get(*v)))
        .collect();
    Ok(FileSurvey {
        path: path.to_path_buf(),
        attributes,
        identity,
        variables,
    })
}

/// What planning learns about one dataset (blocking: opens every file).
struct DatasetSurvey {
    files: Vec<(FileRef, DatasetFile)>,
    points: Vec<(f64, f64)>,
    /// Points per grid row (1 for a list of points): chunks of whole rows read whole days' rows.
    row_points: usize,
    calendar: &'static str,
    years: Option<YearRange>,
    span: String,
    variables: Vec<Variable>,
    /// (variable, days inside the span no file covers)
    missing_days: Vec<(Variable, i64)>,
}

fn survey_dataset(members: &[FileSurvey], names: &VariableNames) -> Result<DatasetSurvey> {
    let mut opened = Vec::with_capacity(members.len());
    for m in members {
        let file = ClimateFile::open(&m.path, names, &m.variables).map_err(bad_input)?;
        // Read the first day of every variable too: a truncated file whose
        // header is intact fails here, before anything is written (open
        // reads the last).
        for &v in &m.variables {
            file.read_block(v, 0..1, 0..file.points().len().min(1))
                .map_err(bad_input)?;
        }
        opened.push(file);
    }
    let dataset = Dataset::new(opened.iter().collect()).map_err(bad_input)?;
    dataset.check_overlaps().map_err(bad_input)?;
    let mut files = Vec::with_capacity(members.len());
    for (m, f) in members.iter().zip(&opened) {
        let path = m.path.display().to_string();
        let fp = fingerprint(&m.path).map_err(|e| BadInput(format!("{path}: cannot read: {e}")))?;
        let variables: Vec<String> = m.variables.iter().map(|v| v.to_string()).collect();
        let (first, last) = (f.dates().first(), f.dates().last());
        files.push((
            FileRef {
                path: path.clone(),
                fingerprint: fp.clone(),
                variables: variables.clone(),
            },
            DatasetFile {
                path,
                fingerprint: fp,
                variables,
                first_date: first.map(|d| d.to_string()).unwrap_or_default(),
                last_date: last.map(|d| d.to_string()).unwrap_or_default(),
            },
        ));
    }
    files.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    let span = dataset.span();
    let variables = dataset.variables();
    let row_points = match opened.first().map(ClimateFile::layout) {
        Some(Layout::Grid { nlon, .. }) => nlon,
        _ => 1,
    };
    Ok(DatasetSurvey {
        points: dataset.points().to_vec(),
        row_points,
        calendar: dataset.calendar().name(),
        years: span.map(|(a, b)| YearRange {
            first: a.year,
            last: b.year,
        }),
        span: span
            .map(|(a, b)| format!("{a}..{b}"))
            .unwrap_or_else(|| "empty".into()),
        missing_days: variables
            .iter()
            .map(|&v| (v, dataset.missing_days(v)))
            .filter(|(_, n)| *n > 0)
            .collect(),
        variables,
        files,
    })
}

fn variable_from_name(name: &str) -> Option<Variable> {
    Variable::ALL.into_iter().find(|v| v.to_string() == name)
}

/// Applies the operator's labels to every file; returns the files in scope
/// with their dataset key, and plan lines. A label that matches no input is
/// a usage error.
fn label_files(
    surveys: Vec<FileSurvey>,
    labels: &Labels,
    notes: &mut Vec<String>,
) -> Result<Vec<(DatasetKey, FileSurvey)>> {
    let flags: [(&str, Option<&Label>); 3] = [
        ("scenario", labels.scenario.as_ref()),
        ("model", labels.model.as_ref()),
        ("member", labels.member.as_ref()),
    ];
    let mut matched = [false; 3];
    // What the inputs said per field, for the message when a label matches nothing.
    let mut seen: [BTreeMap<String, usize>; 3] = Default::default();
    let mut kept = Vec::new();
    'files: for mut s in surveys {
        let path = s.path.display().to_string();
        let mut relabelled = Vec::new();
        for (i, (flag, label)) in flags.iter().enumerate() {
            let field = match i {
                0 => &mut s.identity.scenario,
                1 => &mut s.identity.model,
                _ => &mut s.identity.member,
            };
            *seen[i]
                .entry(field.clone().unwrap_or_else(|| "(none)".into()))
                .or_default() += 1;
            match apply_label(field, *label) {
                LabelOutcome::Kept => matched[i] |= matches!(label, Some(Label::Name(_))),
                LabelOutcome::Named => {
                    matched[i] = true;
                    tracing::info!(file = %path, "{flag} named {} by --{flag}", field.as_deref().unwrap_or(""));
                }
                LabelOutcome::Relabelled(old) => {
                    matched[i] = true;
                    let new = field.clone().unwrap_or_default();
                    tracing::warn!(file = %path, "{flag} {old} relabelled {new} by --{flag}");
                    relabelled.push(format!("{flag} {old} relabelled {new}"));
                }
                LabelOutcome::Excluded(value) => {
                    notes.push(format!(
                        "{path}: {flag} {value} is out of scope (--{flag} {}); skipped",
                        label.map(|l| l.to_string()).unwrap_or_default()
                    ));
                    continue 'files;
                }
            }
        }
        if !relabelled.is_empty() {
            notes.push(format!("{path}: {}", relabelled.join(", ")));
        }
        let Some(key) = s.identity.key() else {
            return Err(BadInput(format!(
                "{path}: no experiment_id global attribute (nor an ESGF file name) to name the \
                 scenario: pass --scenario NAME"
            ))
            .into());
        };
        kept.push((key, s));
    }
    for (i, (flag, label)) in flags.iter().enumerate() {
        let Some(label) = label else { continue };
        if matched[i] {
            continue;
        }
        let found: Vec<String> = seen[i]
            .iter()
            .map(|(v, n)| format!("{v} ({n} file(s))"))
            .collect();
        let hint = match label {
            Label::Name(name) => format!("; to relabel an input write --{flag} OLD={name}"),
            Label::Relabel { .. } => String::new(),
        };
        return Err(UsageError(format!(
            "--{flag} {label} matches no input: the inputs' {flag}s are {}{hint}",
            found.join(", ")
        ))
        .into());
    }
    Ok(kept)
}

impl Job for HazardBatch {
    type Args = HazardArgs;
    type Chunk = ChunkPayload;

    fn name(&self) -> &'static str {
        JOB_NAME
    }

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn args(&self) -> &HazardArgs {
        &self.args
    }

    fn counters(&self) -> serde_json::Value {
        json!({
            "datasets": *self.datasets_seen.lock().unwrap_or_else(|p| p.into_inner()),
            "not_computed": self.not_computed.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        })
    }

    async fn plan(&self, ctx: &PlanContext) -> Result<Plan> {
        if self.args.inputs.is_empty() {
            return Err(
                UsageError("no input: give one or more --input FILE|DIR|PATTERN".into()).into(),
            );
        }
        let hazards = self.selected_hazards()?;
        let needed = needed_variables(&hazards);
        let mut plan = Plan::default();
        let with_vars = self.survey_inputs(&needed, &mut plan.description).await?;
        let labelled = label_files(with_vars, &self.labels, &mut plan.description)?;
        let groups = group_by_key(labelled);

        let client = ctx
            .pool
            .get()
            .await
            .context("getting a database connection")?;
        let hazard_scope = self.scope(&hazards);
        let mut planned = Vec::new();
        let mut unchanged = 0;
        let mut out_of_scope = Vec::new();
        let mut key_material = String::new();
        let mut not_computed = Vec::new();
        *self.datasets_seen.lock().unwrap_or_else(|p| p.into_inner()) = groups.len();
        for (key, members) in groups {
            let convention = members[0].identity.convention;
            let attributes: BTreeMap<&str, &str> = IDENTITY_ATTRIBUTES
                .iter()
                .filter_map(|a| members[0].attributes.get(a).map(|v| (*a, v)))
                .collect();
            let attributes = json!(attributes);
            let names = self.names.clone();
            let s = tokio::task::spawn_blocking(move || survey_dataset(&members, &names))
                .await
                .context("dataset survey thread")??;
            let computable: Vec<Hazard> = hazards
                .iter()
                .filter(|h| s.variables.contains(&h.variable))
                .cloned()
                .collect();
            let lacking: Vec<&Hazard> = hazards
                .iter()
                .filter(|h| !s.variables.contains(&h.variable))
                .collect();
            if !lacking.is_empty() {
                let mut vars: Vec<String> = lacking
                    .iter()
                    .map(|h| self.names.get(h.variable).to_string())
                    .collect();
                vars.dedup();
                let names: Vec<String> = lacking.iter().map(|h| h.risk_type.to_string()).collect();
                plan.description.push(format!(
                    "dataset {key}: not computed: {} (no file holds {})",
                    names.join(", "),
                    vars.join(", ")
                ));
                not_computed.push(json!({
                    "scenario": key.scenario, "model": key.model, "member": key.member,
                    "hazards": names, "missing_variables": vars,
                }));
            }
            if computable.is_empty() {
                continue;
            }
            let Some(span_years) = s.years else {
                return Err(BadInput(format!("dataset {key}: the time axis is empty")).into());
            };
            let years = match self.args.years {
                Some(wanted) => match wanted.intersect(&span_years) {
                    Some(y) => Some(y),
                    None => {
                        out_of_scope.push(format!("dataset {key} spans {span_years}"));
                        plan.description.push(format!(
                            "dataset {key}: no years of {wanted} in its span {}; skipped",
                            s.span
                        ));
                        continue;
                    }
                },
                None => None,
            };
            let Some(range) = self.args.points.covering_range(&s.points) else {
                out_of_scope.push(format!(
                    "dataset {key} has no point in {}",
                    self.args.points
                ));
                plan.description.push(format!(
                    "dataset {key}: no grid point selected by --points {}; skipped",
                    self.args.points
                ));
                continue;
            };
            // The skip fingerprint: the identity the rows are written under, the
            // dataset's files and the hazard scope.
            let file_list: String = s
                .files
                .iter()
                .map(|(f, _)| format!("{}={}", f.path, f.fingerprint))
                .collect::<Vec<_>>()
                .join(";");
            let computable_scope = self.scope(&computable);
            let scope = format!(
                "{computable_scope};dataset={}/{}/{}/{};files={}",
                key.scenario,
                key.model,
                key.member,
                key.grid,
                stable_hash(&file_list)
            );
            let file_refs: Vec<FileRef> = s.files.iter().map(|(f, _)| f.clone()).collect();
            if let Some(prev) = self.unchanged_since(&**client, &file_refs, &scope).await? {
                unchanged += 1;
                plan.description.push(format!(
                    "dataset {key}: {} file(s) unchanged since run {} at {} UTC; skipped (--force redoes it)",
                    s.files.len(),
                    prev.run_id,
                    prev.processed_at
                ));
                continue;
            }
            let hazard_names: Vec<String> =
                computable.iter().map(|h| h.risk_type.to_string()).collect();
            let per_chunk = match self.args.chunk_points as usize {
                0 => auto_chunk_points(
                    range.len(),
                    usize::from(self.common.run.concurrency),
                    s.row_points,
                ),
                n => n,
            };
            let mut chunks = 0;
            for start in range.clone().step_by(per_chunk) {
                let end = (start + per_chunk).min(range.end);
                let payload = ChunkPayload {
                    dataset: key.clone(),
                    convention: convention.name().to_string(),
                    attributes: attributes.clone(),
                    files: file_refs.clone(),
                    points: [start, end],
                    selection: self.args.points,
                    years,
                    hazards: hazard_names.clone(),
                    variables: [
                        self.names.tasmax.clone(),
                        self.names.tasmin.clone(),
                        self.names.pr.clone(),
                    ],
                };
                plan.tasks.push(TaskSpec::new(
                    format!(
                        "{}/{}/{}/{}:{start}-{end}",
                        key.scenario, key.model, key.member, key.grid
                    ),
                    &payload,
                )?);
                chunks += 1;
            }
            let gaps: Vec<String> = s
                .missing_days
                .iter()
                .map(|(v, n)| format!("{n} missing day(s) of {v}"))
                .collect();
            plan.description.push(format!(
                "dataset {key} ({}): {} file(s), {} calendar, {} ({}){}, points {}..{} of {} in {chunks} chunk(s), hazards {}",
                convention.name(),
                s.files.len(),
                s.calendar,
                s.span,
                years.unwrap_or(span_years),
                if gaps.is_empty() { String::new() } else { format!(", {}", gaps.join(", ")) },
                range.start,
                range.end,
                s.points.len(),
                hazard_names.join(",")
            ));
            key_material.push_str(&format!("{scope}|{file_list}|{per_chunk};"));
            planned.push(PlannedDataset {
                key,
                convention: convention.name().to_string(),
                attributes,
                files: s.files.into_iter().map(|(_, d)| d).collect(),
                scope,
                points: range.len(),
            });
        }
        *self.not_computed.lock().unwrap_or_else(|p| p.into_inner()) = not_computed;
        if plan.tasks.is_empty() && unchanged == 0 {
            if !out_of_scope.is_empty() {
                return Err(UsageError(format!(
                    "--years {} / --points {} match no input: {}",
                    self.args
                        .years
                        .map(|y| y.to_string())
                        .unwrap_or_else(|| "all".into()),
                    self.args.points,
                    out_of_scope.join("; ")
                ))
                .into());
            }
            let first = plan.description.first().cloned().unwrap_or_default();
            return Err(BadInput(format!(
                "no dataset holds the variables of the selected hazards ({}): {first}",
                hazards
                    .iter()
                    .map(|h| h.risk_type.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into());
        }
        let concurrency = usize::from(self.common.run.concurrency).max(1);
        self.compute_threads.store(
            (concurrency / plan.tasks.len().clamp(1, concurrency)).max(1),
            Ordering::Relaxed,
        );
        if plan.tasks.is_empty() {
            plan.up_to_date = Some(format!(
                "{unchanged} dataset(s) unchanged since their last full run; nothing to do (--force redoes them)"
            ));
        }
        // Same inputs and scope → same key: a run cut short is resumed. A
        // forced run is new work by definition.
        let mut key = format!("{}|{hazard_scope}", stable_hash(&key_material));
        if self.args.force {
            key.push_str(&format!("|force:{}", ctx.execution));
        }
        plan.resume_key = Some(key);
        *self.planned.lock().unwrap_or_else(|p| p.into_inner()) = planned;
        Ok(plan)
    }

    async fn run_task(&self, ctx: TaskContext, chunk: ChunkPayload) -> Result<TaskOutput> {
        let hazards = select_hazards(Some(&chunk.hazards))?;
        let names = VariableNames {
            tasmax: chunk.variables[0].clone(),
            tasmin: chunk.variables[1].clone(),
            pr: chunk.variables[2].clone(),
        };
        let [start, end] = chunk.points;
        let years = chunk.years.map(|y| y.first..=y.last);
        let (files, hz) = (chunk.files.clone(), hazards.clone());
        let workers = self.compute_threads.load(Ordering::Relaxed).max(1);
        let (points, values): (Vec<(f64, f64)>, Vec<YearSeries>) = tokio::task::spawn_blocking(move || -> Result<_> {
            let mut opened = Vec::with_capacity(files.len());
            for f in &files {
                let path = PathBuf::from(&f.path);
                let now = fingerprint(&path).with_context(|| format!("{}: cannot read", f.path))?;
                anyhow::ensure!(
                    now == f.fingerprint,
                    "{}: the file changed since this chunk was planned; run the batch again for the new input",
                    f.path
                );
                let vars: Vec<Variable> = f
                    .variables
                    .iter()
                    .map(|v| {
                        variable_from_name(v)
                            .with_context(|| format!("chunk payload: unknown variable {v:?}"))
                    })
                    .collect::<Result<_>>()?;
                opened.push(ClimateFile::open(&path, &names, &vars)?);
            }
            let dataset = Dataset::new(opened.iter().collect())?;
            let mut series = vec![YearSeries::default(); (end - start) * hz.len()];
            dataset_indices_each(&dataset, &hz, start..end, years, workers, |v| {
                series[(v.point - start) * hz.len() + v.hazard].push(v.year, v.value, v.score);
            })?;
            Ok((dataset.points()[start..end].to_vec(), series))
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
        // Outside the chunk's transaction: an existing dataset row is not locked.
        let dataset_id = datasets::ensure(
            &**client,
            &chunk.dataset,
            &chunk.convention,
            &chunk.attributes,
        )
        .await?;
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
        // Series in (point, hazard) order; grid ids ascend with the point index when the points
        // were new, and write_series sorts otherwise.
        let nh = hazards.len();
        let series: Vec<Series> = values
            .into_iter()
            .enumerate()
            .filter_map(|(i, s)| {
                Some(Series {
                    grid_id: id_of[i / nh]?,
                    risk_type: hazards[i % nh].risk_type.as_ref(),
                    first_year: s.first_year?,
                    values: s.values,
                    scores: s.scores,
                })
            })
            .collect();
        let risk_types: Vec<&str> = hazards.iter().map(|h| h.risk_type.as_ref()).collect();
        let n = write_series(&tx, dataset_id, &ids, &risk_types, ctx.run_id, series).await?;
        tx.commit().await.context("committing the chunk")?;
        *self
            .rows_by_dataset
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(chunk.dataset.clone())
            .or_default() += n;
        Ok(TaskOutput { rows_written: n })
    }

    /// The harness calls this only once every chunk of the plan is done,
    /// so the datasets are fully processed.
    async fn after_tasks(&self, ctx: &PlanContext, _metrics: &RunMetrics) -> Result<()> {
        let planned = self
            .planned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let rows = self
            .rows_by_dataset
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut client = ctx
            .pool
            .get()
            .await
            .context("getting a database connection")?;
        for dataset in planned {
            let written = rows.get(&dataset.key).copied().unwrap_or(0);
            let tx = client
                .transaction()
                .await
                .context("starting the dataset record transaction")?;
            let id = datasets::ensure(&*tx, &dataset.key, &dataset.convention, &dataset.attributes)
                .await?;
            datasets::record_files(&*tx, id, &dataset.attributes, &dataset.files).await?;
            for f in &dataset.files {
                input_files::record(
                    &*tx,
                    &input_files::Processed {
                        job: JOB_NAME,
                        path: &f.path,
                        fingerprint: &f.fingerprint,
                        scope: &dataset.scope,
                        scenario: &dataset.key.scenario,
                        points: i32::try_from(dataset.points).unwrap_or(i32::MAX),
                        rows_written: i64::try_from(written).unwrap_or(i64::MAX),
                        run_id: ctx.run_id,
                    },
                )
                .await?;
            }
            tx.commit().await.context("committing the dataset record")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::auto_chunk_points;

    #[test]
    fn auto_chunks_span_small_grids_else_two_per_task_within_bounds() {
        // (points, concurrency, points per grid row, chunk size)
        let cases = [
            (1000, 2, 1, 1000),
            (5000, 2, 1, 5000),
            (60, 4, 1, 60),
            (0, 2, 1, 1),
            (8000, 2, 1, 2000),
            (6000, 4, 1, 750),
            (1_000_000, 2, 1, 2000),
            // 5 chunks of 2,000 would leave the last alone on one of 2 tasks: 6 of 1,667.
            (10_000, 2, 1, 1667),
            (10_000, 3, 1, 1112),
            // Whole rows of a 100 × 100 grid: 6 chunks of 1,700 (the last 1,500).
            (10_000, 2, 100, 1700),
            // Rows of 400 would make 5 chunks of 2,000: the even split wins.
            (10_000, 2, 400, 1667),
            (8000, 2, 100, 2000),
        ];
        for (points, concurrency, row, size) in cases {
            assert_eq!(
                auto_chunk_points(points, concurrency, row),
                size,
                "{points} points, concurrency {concurrency}, rows of {row}"
            );
        }
    }
}
