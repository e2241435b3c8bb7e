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

use clap::Parser;

use climate_jobs::harness::{self, CommonArgs};
use climate_jobs::jobs::hazard_timeseries::{HazardArgs, HazardBatch};

/// Compute yearly hazard indices from daily climate projections (CF NetCDF).
#[derive(Parser)]
#[command(name = "hazard-timeseries-batch", version)]
struct Cli {
    #[command(flatten)]
    args: HazardArgs,

    #[command(flatten)]
    common: CommonArgs,
}

fn main() {
    let cli = Cli::parse();
    harness::run(HazardBatch::new(cli.args, cli.common))
}
