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
use climate_jobs::jobs::probability_batch::ProbabilityBatch;
use climate_jobs::probability::{DEFAULT_MIN_YEARS, DEFAULT_WINDOW};
use climate_jobs::scope::{PointSelection, YearRange};

/// Fit yearly hazard windows and write bin probabilities and return levels.
#[derive(Parser)]
#[command(name = "probability-batch", version)]
struct Args {
    /// Only these scenarios (comma-separated).
    #[arg(long, value_delimiter = ',')]
    scenario: Option<Vec<String>>,

    /// Only these target years, e.g. 2030..2050 (windows may reach beyond).
    #[arg(long)]
    years: Option<YearRange>,

    /// Only these hazards (comma-separated).
    #[arg(long, value_delimiter = ',')]
    hazards: Option<Vec<String>>,

    /// Only these grid points: `all`, a grid id range `1..500` (both ends
    /// included), or `bbox:LAT_MIN,LON_MIN,LAT_MAX,LON_MAX`.
    #[arg(long, default_value = "all")]
    points: PointSelection,

    /// Window length in years around the target year.
    #[arg(long, default_value_t = DEFAULT_WINDOW)]
    window: usize,

    /// Fewest values in a window to fit it.
    #[arg(long, default_value_t = DEFAULT_MIN_YEARS)]
    min_years: usize,

    /// Grid points per chunk: the unit of commit, resume and retry.
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u32).range(1..))]
    chunk_points: u32,

    /// Recompute even if hazard_results is unchanged since the last full run.
    #[arg(long)]
    force: bool,

    #[command(flatten)]
    common: CommonArgs,
}

fn main() {
    let a = Args::parse();
    harness::run(ProbabilityBatch::new(
        a.scenario,
        a.years,
        a.hazards,
        a.points,
        a.window,
        a.min_years,
        a.chunk_points as usize,
        a.force,
        a.common,
    ))
}
