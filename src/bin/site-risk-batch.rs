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

use clap::Parser;

use climate_jobs::harness::{self, CommonArgs};
use climate_jobs::jobs::site_risk::{SiteRiskArgs, SiteRiskBatch};

/// Assess every site: AAL, losses at return levels, E/V scores, risk index.
#[derive(Parser)]
#[command(name = "site-risk-batch", version)]
struct Cli {
    #[command(flatten)]
    args: SiteRiskArgs,

    #[command(flatten)]
    common: CommonArgs,
}

fn main() {
    let cli = Cli::parse();
    harness::run(SiteRiskBatch::new(cli.args, cli.common))
}
