//! Each job: its arguments, its plan, and the code of one task, over the
//! harness. The binaries in `src/bin/` only parse flags into these.

pub mod cache_refresh;
pub mod canary;
pub mod dlq_reprocess;
pub mod hazard_timeseries;
pub mod inputs;
pub mod probability_batch;
pub mod site_risk;

use crate::climate::VariableNames;
use crate::harness::{CommonArgs, TaskExecutor};
use crate::scope::PointSelection;
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
        "canary",
        hazard_timeseries::JOB_NAME,
        probability_batch::JOB_NAME,
        site_risk::JOB_NAME,
    ]
}

/// The task code of `job`, for re-running its dead letters. A letter's
/// payload carries everything the task needs, so the executor is built with
/// neutral arguments.
pub fn executor_for(job: &str, common: &CommonArgs) -> Option<Box<dyn TaskExecutor>> {
    match job {
        "canary" => Some(Box::new(Canary {
            tasks: 0,
            task_duration: std::time::Duration::ZERO,
            common: common.clone(),
        })),
        hazard_timeseries::JOB_NAME => Some(Box::new(hazard_timeseries::HazardBatch::new(
            Vec::new(),
            hazard_timeseries::Labels::default(),
            None,
            None,
            PointSelection::All,
            1,
            false,
            VariableNames::default(),
            common.clone(),
        ))),
        probability_batch::JOB_NAME => Some(Box::new(probability_batch::ProbabilityBatch::new(
            None,
            None,
            None,
            PointSelection::All,
            crate::probability::DEFAULT_WINDOW,
            crate::probability::DEFAULT_MIN_YEARS,
            1,
            false,
            common.clone(),
        ))),
        site_risk::JOB_NAME => Some(Box::new(site_risk::SiteRiskBatch::new(
            None,
            None,
            1,
            false,
            common.clone(),
        ))),
        _ => None,
    }
}
