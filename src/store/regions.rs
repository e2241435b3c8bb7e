//! `regions`: replaced as a whole by `jobctl regions import`.

use anyhow::{Context, Result};
use tokio_postgres::Client;

use crate::cache::Region;

/// Replaces every region with `regions` in one transaction: a reader sees
/// the old set or the new one.
pub async fn replace_all(client: &mut Client, regions: &[Region]) -> Result<u64> {
    let tx = client
        .transaction()
        .await
        .context("starting the import transaction")?;
    tx.execute("DELETE FROM regions", &[])
        .await
        .context("clearing regions")?;
    let codes: Vec<&str> = regions.iter().map(|r| r.code.as_str()).collect();
    let names: Vec<&str> = regions.iter().map(|r| r.name.as_str()).collect();
    let lats: Vec<f64> = regions.iter().map(|r| r.lat).collect();
    let lons: Vec<f64> = regions.iter().map(|r| r.lon).collect();
    let n = tx
        .execute(
            "INSERT INTO regions (code, name, lat, lon)
             SELECT * FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[])",
            &[&codes, &names, &lats, &lons],
        )
        .await
        .context("inserting regions")?;
    tx.commit().await.context("committing the regions import")?;
    Ok(n)
}
