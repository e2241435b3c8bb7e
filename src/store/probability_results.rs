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
};

/// Writes the rows of one chunk, replacing the chunk's earlier rows: the
/// rows of its grid points, datasets and hazards in its years are deleted,
/// then COPYed in (cheaper for the server than staging + upsert:
/// bench/results/README.md), in the caller's transaction.
pub async fn write_chunk(
    tx: &Transaction<'_>,
    run_id: Uuid,
    rows: &[ProbabilityRow],
) -> Result<u64> {
    let (Some(first_year), Some(last_year)) = (
        rows.iter().map(|r| r.year).min(),
        rows.iter().map(|r| r.year).max(),
    ) else {
        return Ok(0);
    };
    let mut grid_ids: Vec<i32> = rows.iter().map(|r| r.grid_id).collect();
    grid_ids.dedup();
    grid_ids.sort_unstable();
    grid_ids.dedup();
    let mut dataset_ids: Vec<i32> = rows.iter().map(|r| r.dataset_id).collect();
    dataset_ids.sort_unstable();
    dataset_ids.dedup();
    let mut risk_types: Vec<&str> = rows.iter().map(|r| r.risk_type.as_str()).collect();
    risk_types.sort_unstable();
    risk_types.dedup();
    tx.execute(
        "DELETE FROM probability_results
          WHERE grid_id = ANY($1) AND dataset_id = ANY($2) AND risk_type = ANY($3)
            AND year BETWEEN $4 AND $5",
        &[
            &grid_ids,
            &dataset_ids,
            &risk_types,
            &first_year,
            &last_year,
        ],
    )
    .await
    .context("deleting the chunk's probability_results before rewriting them")?;
    TABLE
        .copy(tx, TABLE.table, rows, |r| {
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
