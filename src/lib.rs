//! climate-jobs: cron job binaries for a climate physical-risk platform.
//!
//! `harness` is the run contract every binary keeps; `manifest` is
//! jobs.yaml; `ops` the operator commands. Domain code is pure: `climate`
//! reads gridded daily input, `hazard` defines the indices, `probability`
//! fits their distributions. `store` is what
//! the jobs read and write in Postgres; `jobs` ties a domain to the harness.

pub mod cache;
pub mod climate;
pub mod demo;
pub mod fingerprint;
pub mod harness;
pub mod hazard;
pub mod jobs;
pub mod manifest;
pub mod metrics;
pub mod notify;
pub mod ops;
pub mod probability;
pub mod risk;
pub mod scope;
pub mod store;
