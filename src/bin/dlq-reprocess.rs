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

use std::time::Duration;

use clap::Parser;

use climate_jobs::harness::args::parse_duration;
use climate_jobs::harness::{self, CommonArgs};
use climate_jobs::jobs::dlq_reprocess::DlqReprocess;

/// Re-run due dead letters with back-off; give up (dead) after --max-attempts.
#[derive(Parser)]
#[command(name = "dlq-reprocess", version)]
struct Args {
    /// Only letters of this job.
    #[arg(long)]
    job: Option<String>,

    /// At most this many letters per run.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..))]
    limit: i64,

    /// Failed attempts (the original failure included) after which a letter is dead.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    max_attempts: u32,

    /// Wait after the first failed re-run (between half and all of it: jitter);
    /// doubles after each further failure.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    backoff: Duration,

    /// Longest wait between attempts.
    #[arg(long, default_value = "6h", value_parser = parse_duration)]
    max_backoff: Duration,

    #[command(flatten)]
    common: CommonArgs,
}

fn main() {
    let a = Args::parse();
    harness::run(DlqReprocess {
        job: a.job,
        limit: a.limit,
        max_attempts: a.max_attempts,
        backoff: a.backoff,
        max_backoff: a.max_backoff,
        common: a.common,
    })
}
