//! `grid_points`: one row per (lat, lon), ids stable across runs.

use anyhow::{Context, Result};
use tokio_postgres::GenericClient;

/// Ids of `points` in the same order, inserting the ones not yet known.
pub async fn ensure_points(client: &impl GenericClient, points: &[(f64, f64)]) -> Result<Vec<i32>> {
    let lats: Vec<f64> = points.iter().map(|p| p.0).collect();
    let lons: Vec<f64> = points.iter().map(|p| p.1).collect();
    client
        .execute(
            "INSERT INTO grid_points (lat, lon)
             SELECT lat, lon FROM unnest($1::float8[], $2::float8[]) AS t(lat, lon)
             ORDER BY lat, lon
             ON CONFLICT (lat, lon) DO NOTHING",
            &[&lats, &lons],
        )
        .await
        .context("inserting grid_points")?;
    let rows = client
        .query(
            "SELECT g.id FROM unnest($1::float8[], $2::float8[]) WITH ORDINALITY AS t(lat, lon, n)
               JOIN grid_points g ON g.lat = t.lat AND g.lon = t.lon
              ORDER BY t.n",
            &[&lats, &lons],
        )
        .await
        .context("reading grid_points ids")?;
    anyhow::ensure!(
        rows.len() == points.len(),
        "grid_points: expected {} ids, got {} (duplicate coordinates in the input?)",
        points.len(),
        rows.len()
    );
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
