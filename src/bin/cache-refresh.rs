//! `cache-refresh` — rebuilds the per-region hazard cache the API reads.
//!
//! For every region (`regions`, loaded by `jobctl regions import`) and every
//! (scenario, hazard, year) present in `hazard_results`, takes the value and
//! score of the region's nearest grid point (great-circle distance, ties to
//! the lower grid id) and its bin probabilities and return levels from
//! `probability_results`, in one set-based pass into a new generation;
//! checks the row count is exactly regions × combinations (else exits 1 and
//! keeps the old cache, naming the short combinations); then swaps the new
//! generation in, in one transaction. Readers of the `region_hazard_cache`
//! view see the old cache or the new one, never a mix or an empty one.
//! Skips when neither `regions` nor the source tables changed.
//!
//! By hand: `DATABASE_URL=postgres://… cache-refresh [--force]`

use clap::Parser;

use climate_jobs::harness::{self, CommonArgs};
use climate_jobs::jobs::cache_refresh::{CacheRefresh, CacheRefreshArgs};

/// Rebuild region_hazard_cache from hazard_results, probability_results and regions.
#[derive(Parser)]
#[command(name = "cache-refresh", version)]
struct Cli {
    #[command(flatten)]
    args: CacheRefreshArgs,

    #[command(flatten)]
    common: CommonArgs,
}

fn main() {
    let cli = Cli::parse();
    harness::run(CacheRefresh {
        args: cli.args,
        common: cli.common,
    })
}
