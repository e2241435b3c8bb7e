//! Operator commands of `jobctl` that are not jobs: schema migrations and
//! reading the run history.

pub mod check;
pub mod curves;
pub mod datasets;
pub mod demo_data;
pub mod dlq;
pub mod metrics_push;
pub mod migrate;
pub mod regions;
pub mod render;
pub mod report;
pub mod runs;
pub mod sites;
pub mod smoke;
pub mod status;
pub mod throwaway_pg;
