//! climate-jobs: cron job binaries for a climate physical-risk platform.
//!
//! `harness` is the run contract every binary keeps; `manifest` is
//! jobs.yaml; `ops` the operator commands; the rest is domain code.

pub mod canary;
pub mod harness;
pub mod manifest;
pub mod ops;
