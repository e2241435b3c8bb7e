//! `hazard_results`: one row per series (grid point, dataset, hazard) with
//! the first year and the yearly values and scores as arrays (a missing
//! year is a NULL element; see migrations/0007_series.sql). Written per
//! chunk in one transaction with binary COPY. Readers outside the jobs use
//! the `hazard_values` view.
//!
//! How a chunk is written, decided by one query on the chunk's existing
//! series:
//! * none: COPY straight into the table (a first run);
//! * every existing series lies within the years this chunk computed
//!   (`--force`, a rerun, a DLQ repair): DELETE them and COPY, which costs
//!   the server less than staging + upsert (bench/results/README.md);
//! * otherwise (a `--years` subset of a longer series): COPY into a
//!   staging table and one INSERT … ON CONFLICT that merges each series,
//!   so the years outside the subset are kept.

use anyhow::{Context, Result};
use tokio_postgres::Transaction;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::bulk::ChunkTable;

/// One stored series: the years `first_year ..` of one grid point and hazard
/// (`None` for a year without a value).
#[derive(Debug, Clone, PartialEq)]
pub struct Series<'a> {
    pub grid_id: i32,
    pub risk_type: &'a str,
    pub first_year: i16,
    pub values: Vec<Option<f64>>,
    pub scores: Vec<Option<f32>>,
}

const TABLE: ChunkTable = ChunkTable {
    table: "hazard_results",
    stage: "hazard_stage",
    columns: "grid_id, dataset_id, risk_type, first_year, values_by_year, scores_by_year, run_id",
    types: &[
        Type::INT4,
        Type::INT4,
        Type::TEXT,
        Type::INT2,
        Type::FLOAT8_ARRAY,
        Type::FLOAT4_ARRAY,
        Type::UUID,
    ],
};

/// Merges staged series into the table (the `--years` subset path).
const MERGE: &str = "
INSERT INTO hazard_results AS h
SELECT * FROM hazard_stage
ON CONFLICT (grid_id, dataset_id, risk_type) DO UPDATE
   SET first_year = least(h.first_year, EXCLUDED.first_year),
       values_by_year = hazard_series_merge(h.first_year, h.values_by_year,
                                            EXCLUDED.first_year, EXCLUDED.values_by_year),
       scores_by_year = hazard_series_merge(h.first_year, h.scores_by_year,
                                            EXCLUDED.first_year, EXCLUDED.scores_by_year),
       run_id = EXCLUDED.run_id";

/// Writes the series of one chunk: grid ids `grid_ids`, dataset
/// `dataset_id`, hazards `risk_types` (series, not yearly rows: a
/// 5,000-point chunk's rows alone were ~80 MB). Returns the number of yearly
/// values written.
pub async fn write_series(
    tx: &Transaction<'_>,
    dataset_id: i32,
    grid_ids: &[i32],
    risk_types: &[&str],
    run_id: Uuid,
    mut series: Vec<Series<'_>>,
) -> Result<u64> {
    // In primary-key order the B-tree fills left to right.
    if !series.is_sorted_by_key(|s| (s.grid_id, s.risk_type)) {
        series.sort_unstable_by(|a, b| (a.grid_id, a.risk_type).cmp(&(b.grid_id, b.risk_type)));
    }
    let written: usize = series
        .iter()
        .map(|s| s.values.iter().filter(|v| v.is_some()).count())
        .sum();
    let (Some(first), Some(last)) = (
        series.iter().map(|s| s.first_year).min(),
        series
            .iter()
            .map(|s| i32::from(s.first_year) + s.values.len() as i32 - 1)
            .max(),
    ) else {
        return Ok(0);
    };
    // (existing series, of which reach outside first..=last)
    let existing = tx
        .query_one(
            "SELECT count(*),
                    count(*) FILTER (WHERE first_year < $4::integer
                                        OR first_year + cardinality(values_by_year) - 1 > $5::integer)
               FROM hazard_results
              WHERE dataset_id = $1 AND grid_id = ANY($2) AND risk_type = ANY($3)",
            &[
                &dataset_id,
                &grid_ids,
                &risk_types,
                &i32::from(first),
                &last,
            ],
        )
        .await
        .context("checking for existing hazard_results")?;
    let (count, reaching_out): (i64, i64) = (existing.get(0), existing.get(1));
    let into = if count == 0 {
        TABLE.table
    } else if reaching_out == 0 {
        tx.execute(
            "DELETE FROM hazard_results WHERE dataset_id = $1 AND grid_id = ANY($2) AND risk_type = ANY($3)",
            &[&dataset_id, &grid_ids, &risk_types],
        )
        .await
        .context("deleting the chunk's hazard_results before rewriting them")?;
        TABLE.table
    } else {
        TABLE.stage(tx).await?;
        TABLE.stage
    };
    TABLE
        .copy(tx, into, &series, |s| {
            [
                &s.grid_id,
                &dataset_id,
                &s.risk_type,
                &s.first_year,
                &s.values,
                &s.scores,
                &run_id,
            ]
        })
        .await?;
    if into == TABLE.stage {
        tx.execute(MERGE, &[])
            .await
            .context("merging the chunk's years into existing hazard_results")?;
    }
    Ok(written as u64)
}
