//! `hazard-timeseries-batch` — daily climate projections → yearly hazard indices.
//!
//! Reads CF-convention NetCDF files of daily `tasmax`, `tasmin` and `pr`
//! (any CF calendar; K or degC; kg m-2 s-1 or mm/day) as ESGF and CORDEX
//! serve them — one or several variables per file, split in time — groups
//! them into datasets (scenario, model, member, grid), computes per grid
//! point and calendar year the five hazard indices over each dataset's
//! joined series exactly as xclim 0.62 does (extreme_heat, extreme_cold,
//! drought, urban_flood = Rx1day, river_flood = Rx5day) with a 0–100 score,
//! and writes `grid_points`, `datasets` and `hazard_results` (read through
//! the `hazard_values` view). Datasets unchanged since their last full run
//! are skipped (`input_files`); `--force` redoes them.
//!
//! By hand:
//! `DATABASE_URL=postgres://… hazard-timeseries-batch --input /data/cmip6/ --years 2030..2040`

use std::path::PathBuf;

use clap::Parser;

use climate_jobs::climate::VariableNames;
use climate_jobs::climate::dataset::Label;
use climate_jobs::harness::{self, CommonArgs};
use climate_jobs::jobs::hazard_timeseries::{HazardBatch, Labels};
use climate_jobs::jobs::inputs::split_env_inputs;
use climate_jobs::scope::{PointSelection, YearRange};

/// Compute yearly hazard indices from daily climate projections (CF NetCDF).
#[derive(Parser)]
#[command(name = "hazard-timeseries-batch", version)]
struct Args {
    /// CF NetCDF inputs: files, directories (walked recursively for *.nc)
    /// and glob patterns (`*`, `?`, `[..]`); repeat the flag or give several
    /// after it. Paths are never split on commas. Without --input, the
    /// environment variable CLIMATE_JOBS_INPUT is read: inputs separated by
    /// newlines or `:` (never a comma).
    #[arg(long = "input", value_name = "FILE|DIR|PATTERN", num_args = 1..)]
    inputs: Vec<PathBuf>,

    /// Scenario. NAME names inputs without an `experiment_id` and selects
    /// those whose experiment is NAME (matching no input is an error, exit
    /// 2); OLD=NEW relabels inputs whose experiment is OLD (logged).
    #[arg(long, value_name = "NAME|OLD=NEW")]
    scenario: Option<Label>,

    /// Model, as --scenario: CMIP6 `source_id`; CORDEX
    /// `<driving model>/<regional model>`. Inputs without one are `unknown`.
    #[arg(long, value_name = "NAME|OLD=NEW")]
    model: Option<Label>,

    /// Member, as --scenario: CMIP6 `variant_label`; CORDEX the driving
    /// model's member. Inputs without one are `unknown`.
    #[arg(long, value_name = "NAME|OLD=NEW")]
    member: Option<Label>,

    /// Only these calendar years, e.g. 2021..2040 (both ends included) or 2030.
    #[arg(long)]
    years: Option<YearRange>,

    /// Only these hazards (comma-separated): extreme_heat, extreme_cold,
    /// drought, urban_flood, river_flood.
    #[arg(long, value_delimiter = ',')]
    hazards: Option<Vec<String>>,

    /// Only these grid points: `all`, an index range in file order `0..499`
    /// (both ends included), or `bbox:LAT_MIN,LON_MIN,LAT_MAX,LON_MAX`.
    #[arg(long, default_value = "all")]
    points: PointSelection,

    /// Grid points per chunk: the unit of commit, resume and retry. 0 (the
    /// default) picks two chunks per concurrent task, between 250 and 2,000.
    #[arg(long, default_value_t = 0)]
    chunk_points: u32,

    /// Recompute inputs even if unchanged since their last full run.
    #[arg(long)]
    force: bool,

    /// Name of the daily maximum temperature variable.
    #[arg(long, default_value = "tasmax")]
    tasmax_var: String,
    /// Name of the daily minimum temperature variable.
    #[arg(long, default_value = "tasmin")]
    tasmin_var: String,
    /// Name of the precipitation variable.
    #[arg(long, default_value = "pr")]
    pr_var: String,

    #[command(flatten)]
    common: CommonArgs,
}

fn main() {
    let a = Args::parse();
    let inputs = if a.inputs.is_empty() {
        std::env::var("CLIMATE_JOBS_INPUT")
            .map(|v| split_env_inputs(&v))
            .unwrap_or_default()
    } else {
        a.inputs
    };
    harness::run(HazardBatch::new(
        inputs,
        Labels {
            scenario: a.scenario,
            model: a.model,
            member: a.member,
        },
        a.years,
        a.hazards,
        a.points,
        a.chunk_points as usize,
        a.force,
        VariableNames {
            tasmax: a.tasmax_var,
            tasmin: a.tasmin_var,
            pr: a.pr_var,
        },
        a.common,
    ))
}
