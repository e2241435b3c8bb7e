//! Each job: its arguments, its plan, and the code of one task, over the
//! harness. The binaries in `src/bin/` only parse flags into these.

pub mod cache_refresh;
pub mod canary;
pub mod dlq_reprocess;
pub mod hazard_timeseries;
pub mod inputs;
pub mod probability_batch;
pub mod site_risk;

use crate::harness::{CommonArgs, TaskExecutor};
use canary::Canary;

/// Every job with a binary of its own (`src/bin/<name>.rs`), by its name in
/// jobs.yaml, job_runs and dead_letters. `canary` runs through `jobctl`.
/// CONTRIBUTING.md lists the other places a job lives; a test checks them.
pub const JOB_NAMES: &[&str] = &[
    cache_refresh::JOB_NAME,
    dlq_reprocess::JOB_NAME,
    hazard_timeseries::JOB_NAME,
    probability_batch::JOB_NAME,
    site_risk::JOB_NAME,
];

/// Jobs whose dead letters `dlq-reprocess` can re-run.
pub fn reprocessable_jobs() -> &'static [&'static str] {
    &[
        canary::JOB_NAME,
        hazard_timeseries::JOB_NAME,
        probability_batch::JOB_NAME,
        site_risk::JOB_NAME,
    ]
}

/// The arguments a job gets when no flag is given: the defaults declared on
/// its clap fields, so they are written once. For re-running dead letters,
/// whose payload carries everything the chunk needs; environment fallbacks
/// are read as for any run.
pub fn default_args<A: clap::Args + clap::FromArgMatches>() -> Option<A> {
    let command = A::augment_args(clap::Command::new("defaults")).mut_args(|a| a.required(false));
    let matches = command.try_get_matches_from(["defaults"]).ok()?;
    A::from_arg_matches(&matches).ok()
}

/// The task code of `job`, for re-running its dead letters. A letter's
/// payload carries everything the chunk needs, so the executor is built with
/// default arguments.
pub fn executor_for(job: &str, common: &CommonArgs) -> Option<Box<dyn TaskExecutor>> {
    let common = common.clone();
    match job {
        canary::JOB_NAME => Some(Box::new(Canary {
            args: default_args()?,
            common,
        })),
        hazard_timeseries::JOB_NAME => Some(Box::new(hazard_timeseries::HazardBatch::new(
            default_args()?,
            common,
        ))),
        probability_batch::JOB_NAME => Some(Box::new(probability_batch::ProbabilityBatch::new(
            default_args()?,
            common,
        ))),
        site_risk::JOB_NAME => Some(Box::new(site_risk::SiteRiskBatch::new(
            default_args()?,
            common,
        ))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonArgs,
    }

    /// Every job whose letters dlq-reprocess takes has task code to run
    /// them with: its arguments' declared defaults parse without a flag.
    #[test]
    fn every_reprocessable_job_has_an_executor() {
        let common = Cli::parse_from(["test"]).common;
        for job in reprocessable_jobs() {
            assert!(executor_for(job, &common).is_some(), "{job}");
        }
        assert!(executor_for("no-such-job", &common).is_none());
    }
}
