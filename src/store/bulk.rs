//! Writing a chunk of rows: binary COPY straight into the table when the
//! chunk's rows do not exist yet (the common first run), otherwise COPY
//! into a temporary staging table and one upsert, so re-running a chunk
//! replaces its rows and never duplicates them.

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
    /// What follows `ON CONFLICT` in the upsert: the key and the SET list.
    pub on_conflict: &'static str,
}

impl ChunkTable {
    /// Writes `rows`; `fresh` says the chunk has no rows in the table yet.
    /// `fields` gives a row's values in `columns` order.
    pub async fn write<'a, R, const N: usize>(
        &self,
        tx: &Transaction<'_>,
        fresh: bool,
        rows: &'a [R],
        fields: impl Fn(&'a R) -> [&'a (dyn ToSql + Sync); N],
    ) -> Result<u64> {
        if fresh {
            return self.copy(tx, self.table, rows, fields).await;
        }
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS",
            self.stage, self.table
        ))
        .await
        .with_context(|| format!("creating the staging table for {}", self.table))?;
        self.copy(tx, self.stage, rows, fields).await?;
        tx.execute(
            &format!(
                "INSERT INTO {} SELECT * FROM {} ON CONFLICT {}",
                self.table, self.stage, self.on_conflict
            ),
            &[],
        )
        .await
        .with_context(|| format!("upserting {} from its staging table", self.table))
    }

    async fn copy<'a, R, const N: usize>(
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
