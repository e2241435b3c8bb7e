//! The integration tests: one binary, so the crate and its dependencies are
//! linked once and every test shares one throw-away PostgreSQL cluster
//! (`support`), with a database of its own cloned from a migrated template.
//! Each module covers one concern; `support`, `common` and `deploy_support`
//! are the shared helpers.

mod common;
mod deploy_support;
mod prometheus_support;
mod support;

mod alert_rules;
mod architecture;
mod cache_and_dlq;
mod check;
mod cli;
mod climate_input;
mod dockerfile;
mod faults;
mod harness;
mod hazard_batch;
mod hazard_fixtures;
mod monitoring;
mod notify;
mod probability_batch;
mod probability_fixtures;
mod render;
mod replicas;
mod report;
mod site_risk;
mod smoke;
mod status;
