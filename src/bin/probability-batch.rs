//! `probability-batch` — hazard time series → P(intensity bin) and return levels.
//!
//! For each grid point, scenario, hazard and year, takes the annual values
//! of the years around it from `hazard_results` (`--window 30`: y−15 …
//! y+14, shifted to stay inside the series near its ends; missing years
//! skipped; fewer than `--min-years` values → no row, counted in the
//! summary), fits the hazard's distribution (GEV by L-moments for annual
//! maxima: urban_flood, river_flood, drought; empirical for day counts:
//! extreme_heat, extreme_cold; `degenerate` when every value is equal), and
//! writes the probability of each intensity bin, the 10/50/100-year return
//! levels and the fit to `probability_results`. Skips when `hazard_results`
//! has not changed since the last full run with the same scope.
//!
//! By hand: `DATABASE_URL=postgres://… probability-batch --years 2030..2050`

use clap::Parser;

use climate_jobs::harness::{self, CommonArgs};
use climate_jobs::jobs::probability_batch::{ProbabilityArgs, ProbabilityBatch};

/// Fit yearly hazard windows and write bin probabilities and return levels.
#[derive(Parser)]
#[command(name = "probability-batch", version)]
struct Cli {
    #[command(flatten)]
    args: ProbabilityArgs,

    #[command(flatten)]
    common: CommonArgs,
}

fn main() {
    let cli = Cli::parse();
    harness::run(ProbabilityBatch::new(cli.args, cli.common))
}
