//! What the jobs read and write in Postgres, apart from the harness's own
//! ledger. Bulk writes are binary COPY; no SQL is built from data.

pub mod bulk;
pub mod datasets;
pub mod grid;
pub mod hazard_results;
pub mod input_files;
pub mod pg_array;
pub mod probability_results;
pub mod regions;
pub mod schema;
pub mod site_results;
pub mod sites;
