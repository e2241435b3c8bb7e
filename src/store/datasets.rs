//! `datasets` and `dataset_files`: the identity every result row belongs to, and the files it
//! was computed from.

use anyhow::{Context, Result};
use tokio_postgres::GenericClient;

use crate::climate::dataset::DatasetKey;

/// The id of the dataset `key`, created if new. Looked up first (an `INSERT … ON CONFLICT`
/// would use up an identity value on every call); `ON CONFLICT DO NOTHING` takes no row lock
/// on an existing row, so concurrent chunks of one dataset do not queue on it.
pub async fn ensure(
    client: &impl GenericClient,
    key: &DatasetKey,
    convention: &str,
    attributes: &serde_json::Value,
) -> Result<i32> {
    const SELECT: &str =
        "SELECT id FROM datasets WHERE scenario = $1 AND model = $2 AND member = $3 AND grid = $4";
    let ident: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
        [&key.scenario, &key.model, &key.member, &key.grid];
    if let Some(row) = client
        .query_opt(SELECT, &ident)
        .await
        .with_context(|| format!("looking up dataset {key}"))?
    {
        return Ok(row.get(0));
    }
    let inserted = client
        .query_opt(
            "INSERT INTO datasets (scenario, model, member, grid, convention, attributes)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (scenario, model, member, grid) DO NOTHING RETURNING id",
            &[
                &key.scenario,
                &key.model,
                &key.member,
                &key.grid,
                &convention,
                attributes,
            ],
        )
        .await
        .with_context(|| format!("recording dataset {key}"))?;
    if let Some(row) = inserted {
        return Ok(row.get(0));
    }
    // A concurrent chunk inserted it first.
    let row = client
        .query_one(SELECT, &ident)
        .await
        .with_context(|| format!("reading the id of dataset {key}"))?;
    Ok(row.get(0))
}

/// One file of a dataset as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetFile {
    pub path: String,
    pub fingerprint: String,
    pub variables: Vec<String>,
    pub first_date: String,
    pub last_date: String,
}

/// Replaces the dataset's file list (after a full run over those files). Upserts rather than
/// delete-and-insert, so two replicas recording the same run concurrently both succeed.
pub async fn record_files(
    client: &impl GenericClient,
    id: i32,
    attributes: &serde_json::Value,
    files: &[DatasetFile],
) -> Result<()> {
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    client
        .execute(
            "DELETE FROM dataset_files WHERE dataset_id = $1 AND NOT (path = ANY($2))",
            &[&id, &paths],
        )
        .await
        .context("removing files no longer in the dataset")?;
    for f in files {
        client
            .execute(
                "INSERT INTO dataset_files (dataset_id, path, fingerprint, variables, first_date, last_date)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (dataset_id, path) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,
                     variables = EXCLUDED.variables, first_date = EXCLUDED.first_date,
                     last_date = EXCLUDED.last_date, recorded_at = now()",
                &[&id, &f.path, &f.fingerprint, &f.variables, &f.first_date, &f.last_date],
            )
            .await
            .with_context(|| format!("recording {} in dataset_files", f.path))?;
    }
    client
        .execute(
            "UPDATE datasets SET attributes = $2, updated_at = now() WHERE id = $1",
            &[&id, attributes],
        )
        .await
        .context("updating the dataset")?;
    Ok(())
}

/// A dataset as `jobctl datasets` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DatasetSummary {
    pub id: i32,
    pub scenario: String,
    pub model: String,
    pub member: String,
    pub grid: String,
    pub convention: String,
    pub attributes: serde_json::Value,
    pub files: Vec<String>,
    pub hazard_rows: i64,
    pub probability_rows: i64,
    pub updated_at: String,
}

pub async fn list(client: &impl GenericClient) -> Result<Vec<DatasetSummary>> {
    let rows = client
        .query(
            "SELECT d.id, d.scenario, d.model, d.member, d.grid, d.convention, d.attributes,
                    coalesce((SELECT array_agg(f.path ORDER BY f.path) FROM dataset_files f
                               WHERE f.dataset_id = d.id), '{}'::text[]),
                    (SELECT count(v) FROM hazard_results h, unnest(h.values_by_year) v WHERE h.dataset_id = d.id),
                    (SELECT count(*) FROM probability_results p WHERE p.dataset_id = d.id),
                    to_char(d.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
               FROM datasets d ORDER BY d.scenario, d.model, d.member, d.grid",
            &[],
        )
        .await
        .context("reading datasets")?;
    Ok(rows
        .iter()
        .map(|r| DatasetSummary {
            id: r.get(0),
            scenario: r.get(1),
            model: r.get(2),
            member: r.get(3),
            grid: r.get(4),
            convention: r.get(5),
            attributes: r.get(6),
            files: r.get(7),
            hazard_rows: r.get(8),
            probability_rows: r.get(9),
            updated_at: r.get(10),
        })
        .collect())
}
