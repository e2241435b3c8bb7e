//! `hazard-timeseries-batch` — daily climate projections → yearly hazard indices.
//!
//! Reads CF-convention NetCDF files of daily `tasmax`, `tasmin` and `pr`
//! (any CF calendar; K or degC; kg m-2 s-1 or mm/day), computes per grid
//! point and calendar year the five hazard indices exactly as xclim 0.62
//! does (extreme_heat, extreme_cold, drought, urban_flood = Rx1day,
//! river_flood = Rx5day) with a 0–100 score, and writes `grid_points` and
//! `hazard_results`. Inputs unchanged since their last full run are
//! skipped (`input_files`); `--force` redoes them.
//!
//! By hand:
//! `DATABASE_URL=postgres://… hazard-timeseries-batch --input ssp245.nc --years 2030..2040`

use std::path::PathBuf;

use clap::Parser;

use climate_jobs::climate::VariableNames;
use climate_jobs::harness::{self, CommonArgs};
use climate_jobs::jobs::hazard_timeseries::HazardBatch;
use climate_jobs::scope::{PointSelection, YearRange};

/// Compute yearly hazard indices from daily climate projections (CF NetCDF).
#[derive(Parser)]
#[command(name = "hazard-timeseries-batch", version)]
struct Args {
    /// CF NetCDF input file(s): daily tasmax, tasmin, pr on a (time, lat, lon)
    /// or (time, point) grid.
    #[arg(long = "input", value_name = "FILE", required = true, num_args = 1.., env = "HAZARD_INPUTS", value_delimiter = ',')]
    inputs: Vec<PathBuf>,

    /// Scenario of inputs without an `experiment_id` attribute; inputs whose
    /// `experiment_id` differs are skipped as out of scope.
    #[arg(long)]
    scenario: Option<String>,

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
    harness::run(HazardBatch::new(
        a.inputs,
        a.scenario,
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
