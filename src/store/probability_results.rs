//! `probability_results`: bin probabilities, return levels and fit
//! parameters per grid point, dataset, hazard and year, written per chunk
//! with binary COPY; re-running a chunk replaces its rows.

use anyhow::{Context, Result};
use tokio_postgres::Transaction;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::bulk::ChunkTable;

/// One row to write.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbabilityRow {
    pub grid_id: i32,
    /// The dataset (scenario, model, member) the window came from.
    pub dataset_id: i32,
    pub scenario: String,
    pub risk_type: String,
    pub year: i16,
    pub method: &'static str,
    pub sample_size: i16,
    pub bin_edges: Vec<f64>,
    pub bin_probs: Vec<f64>,
    pub return_levels: [f64; 3],
    /// GEV parameters in scipy's convention (c = −ξ), for GEV fits.
    pub gev_c: Option<f64>,
    pub gev_loc: Option<f64>,
    pub gev_scale: Option<f64>,
}

const TABLE: ChunkTable = ChunkTable {
    table: "probability_results",
    stage: "probability_stage",
    columns: "grid_id, scenario, risk_type, year, method, sample_size, bin_edges, bin_probs, \
              return_level_10, return_level_50, return_level_100, gev_c, gev_loc, gev_scale, run_id, \
              dataset_id",
    types: &[
        Type::INT4,
        Type::TEXT,
        Type::TEXT,
        Type::INT2,
        Type::TEXT,
        Type::INT2,
        Type::FLOAT8_ARRAY,
        Type::FLOAT8_ARRAY,
        Type::FLOAT8,
        Type::FLOAT8,
        Type::FLOAT8,
        Type::FLOAT8,
        Type::FLOAT8,
        Type::FLOAT8,
        Type::UUID,
        Type::INT4,
    ],
    on_conflict: "(grid_id, dataset_id, risk_type, year) DO UPDATE
        SET method = EXCLUDED.method, sample_size = EXCLUDED.sample_size,
            bin_edges = EXCLUDED.bin_edges, bin_probs = EXCLUDED.bin_probs,
            return_level_10 = EXCLUDED.return_level_10, return_level_50 = EXCLUDED.return_level_50,
            return_level_100 = EXCLUDED.return_level_100, gev_c = EXCLUDED.gev_c,
            gev_loc = EXCLUDED.gev_loc, gev_scale = EXCLUDED.gev_scale, run_id = EXCLUDED.run_id",
};

/// Writes the rows of the grid points `first_id..=last_id`.
pub async fn write_chunk(
    tx: &Transaction<'_>,
    first_id: i32,
    last_id: i32,
    run_id: Uuid,
    rows: &[ProbabilityRow],
) -> Result<u64> {
    let existing: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM probability_results WHERE grid_id BETWEEN $1 AND $2)",
            &[&first_id, &last_id],
        )
        .await
        .context("checking for existing probability_results")?
        .get(0);
    TABLE
        .write(tx, !existing, rows, |r| {
            [
                &r.grid_id,
                &r.scenario,
                &r.risk_type,
                &r.year,
                &r.method,
                &r.sample_size,
                &r.bin_edges,
                &r.bin_probs,
                &r.return_levels[0],
                &r.return_levels[1],
                &r.return_levels[2],
                &r.gev_c,
                &r.gev_loc,
                &r.gev_scale,
                &run_id,
                &r.dataset_id,
            ]
        })
        .await
}
