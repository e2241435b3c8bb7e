//! `probability_results`: bin probabilities, return levels and fit
//! parameters per grid point, scenario, hazard and year, written per chunk
//! with binary COPY; re-running a chunk replaces its rows.

use anyhow::{Context, Result};
use tokio_postgres::Transaction;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use uuid::Uuid;

/// One row to write.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbabilityRow {
    pub grid_id: i32,
    pub scenario: String,
    pub risk_type: String,
    pub year: i16,
    pub method: &'static str,
    pub sample_size: i16,
    pub bin_edges: Vec<f64>,
    pub bin_probs: Vec<f64>,
    pub return_levels: [f64; 3],
    /// (c, loc, scale) in scipy's convention, for GEV fits.
    pub gev: Option<(f64, f64, f64)>,
}

const COLUMNS: &str = "grid_id, scenario, risk_type, year, method, sample_size, bin_edges, bin_probs, \
                       return_level_10, return_level_50, return_level_100, gev_c, gev_loc, gev_scale, run_id";
const TYPES: [Type; 15] = [
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
];

/// Writes the rows of the grid points `first_id..=last_id`: straight into
/// the table when those points have no rows yet, else through a staging
/// table and an upsert.
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
    if !existing {
        return copy_into(tx, "probability_results", run_id, rows).await;
    }
    tx.batch_execute(
        "CREATE TEMP TABLE IF NOT EXISTS probability_stage (LIKE probability_results) ON COMMIT DELETE ROWS",
    )
    .await
    .context("creating the probability staging table")?;
    copy_into(tx, "probability_stage", run_id, rows).await?;
    tx.execute(
        "INSERT INTO probability_results SELECT * FROM probability_stage
         ON CONFLICT (grid_id, scenario, risk_type, year) DO UPDATE
            SET method = EXCLUDED.method, sample_size = EXCLUDED.sample_size,
                bin_edges = EXCLUDED.bin_edges, bin_probs = EXCLUDED.bin_probs,
                return_level_10 = EXCLUDED.return_level_10, return_level_50 = EXCLUDED.return_level_50,
                return_level_100 = EXCLUDED.return_level_100, gev_c = EXCLUDED.gev_c,
                gev_loc = EXCLUDED.gev_loc, gev_scale = EXCLUDED.gev_scale, run_id = EXCLUDED.run_id",
        &[],
    )
    .await
    .context("upserting probability_results from the staging table")
}

async fn copy_into(
    tx: &Transaction<'_>,
    table: &str,
    run_id: Uuid,
    rows: &[ProbabilityRow],
) -> Result<u64> {
    // `table` is one of two constants above, never data.
    let sink = tx
        .copy_in(&format!(
            "COPY {table} ({COLUMNS}) FROM STDIN (FORMAT binary)"
        ))
        .await
        .with_context(|| format!("starting COPY into {table}"))?;
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &TYPES));
    for r in rows {
        let (c, loc, scale) = match r.gev {
            Some((c, loc, scale)) => (Some(c), Some(loc), Some(scale)),
            None => (None, None, None),
        };
        writer
            .as_mut()
            .write(&[
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
                &c,
                &loc,
                &scale,
                &run_id,
            ])
            .await
            .with_context(|| format!("COPY into {table}"))?;
    }
    writer
        .finish()
        .await
        .with_context(|| format!("finishing COPY into {table}"))
}
