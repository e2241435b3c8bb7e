//! `dlq-reprocess` — re-runs dead letters through the job code that wrote them.
//!
//! Claims pending letters whose next attempt is due (in batches, `FOR UPDATE
//! SKIP LOCKED`, leased for the run), re-runs each with the task code of
//! its job (canary, hazard-timeseries-batch), under the full harness.
//! Success → `resolved`; failure → another attempt after an exponential
//! back-off with jitter; after `--max-attempts` failures → `dead`, listed by
//! `jobctl dlq list` until an operator redrives or purges it.
//!
//! By hand: `DATABASE_URL=postgres://… dlq-reprocess [--job NAME] [--dry-run]`

use clap::Parser;

use climate_jobs::harness::{self, CommonArgs};
use climate_jobs::jobs::dlq_reprocess::{DlqReprocess, DlqReprocessArgs};

/// Re-run due dead letters with back-off; give up (dead) after --max-attempts.
#[derive(Parser)]
#[command(name = "dlq-reprocess", version)]
struct Cli {
    #[command(flatten)]
    args: DlqReprocessArgs,

    #[command(flatten)]
    common: CommonArgs,
}

fn main() {
    let cli = Cli::parse();
    harness::run(DlqReprocess {
        args: cli.args,
        common: cli.common,
    })
}
