//! `site-risk-batch` — hazard probabilities → per-site expected losses and scores.
//!
//! For each imported site (`jobctl sites import`), dataset, hazard and year,
//! from the nearest grid point's `probability_results` and the site's
//! vulnerability curve: the AAL rate Σ pᵢ f(xᵢ) and AAL (× asset value), the
//! damage at the 10/50/100-year return levels, the hazard, exposure and
//! vulnerability scores and the risk index; per site, the total AAL over
//! hazards (a sum of per-hazard expectations). Results in `site_results`,
//! read through the `site_risk_values` view. Skips when sites, probabilities
//! and curves are unchanged since the last full run; a changed curve
//! recomputes only the sites of its asset class.
//!
//! By hand: `DATABASE_URL=postgres://… site-risk-batch [--curves my-curves.csv]`

use std::path::PathBuf;

use clap::Parser;

use climate_jobs::harness::{self, CommonArgs};
use climate_jobs::jobs::site_risk::SiteRiskBatch;

/// Assess every site: AAL, losses at return levels, E/V scores, risk index.
#[derive(Parser)]
#[command(name = "site-risk-batch", version)]
struct Args {
    /// Vulnerability curve file (CSV: hazard,asset_class,intensity,
    /// damage_ratio,unit,proxy,source; see README). Default: the curves built
    /// into the binary, data/vulnerability/curves.csv of the repository.
    /// `jobctl check --curves FILE` validates one.
    #[arg(long, env = "CLIMATE_JOBS_CURVES")]
    curves: Option<PathBuf>,

    /// Only these scenarios (comma-separated); each must have probability results.
    #[arg(long, value_delimiter = ',')]
    scenario: Option<Vec<String>>,

    /// Sites per chunk: the unit of commit, resume and retry.
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u32).range(1..))]
    chunk_sites: u32,

    /// Recompute every site even if nothing changed since the last full run.
    #[arg(long)]
    force: bool,

    #[command(flatten)]
    common: CommonArgs,
}

fn main() {
    let a = Args::parse();
    harness::run(SiteRiskBatch::new(
        a.curves,
        a.scenario,
        a.chunk_sites as usize,
        a.force,
        a.common,
    ))
}
