//! Writing a chunk of rows with binary COPY, into its table or into a
//! temporary staging table for a statement that merges it in.

use anyhow::{Context, Result};
use tokio_postgres::Transaction;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

/// A result table written by chunks. Every name is a constant of the
/// code, never data, so formatting them into SQL is safe.
pub struct ChunkTable {
    pub table: &'static str,
    pub stage: &'static str,
    pub columns: &'static str,
    pub types: &'static [Type],
}

impl ChunkTable {
    /// Creates the (empty) staging table for this transaction.
    pub async fn stage(&self, tx: &Transaction<'_>) -> Result<()> {
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS",
            self.stage, self.table
        ))
        .await
        .with_context(|| format!("creating the staging table for {}", self.table))
    }

    /// COPYs `rows` into `into` (the table or its stage); `fields` gives a
    /// row's values in `columns` order.
    pub async fn copy<'a, R, const N: usize>(
        &self,
        tx: &Transaction<'_>,
        into: &str,
        rows: &'a [R],
        fields: impl Fn(&'a R) -> [&'a (dyn ToSql + Sync); N],
    ) -> Result<u64> {
        let sink = tx
            .copy_in(&format!(
                "COPY {into} ({}) FROM STDIN (FORMAT binary)",
                self.columns
            ))
            .await
            .with_context(|| format!("starting COPY into {into}"))?;
        let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, self.types));
        for row in rows {
            writer
                .as_mut()
                .write(&fields(row))
                .await
                .with_context(|| format!("COPY into {into}"))?;
        }
        writer
            .finish()
            .await
            .with_context(|| format!("finishing COPY into {into}"))
    }
}
