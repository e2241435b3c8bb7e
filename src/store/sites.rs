//! `sites`: replaced as a whole by `jobctl sites import`, read by
//! site-risk-batch.

use anyhow::{Context, Result, anyhow};
use tokio_postgres::{Client, GenericClient};

use crate::risk::{AssetClass, Site, StructureType};

/// A site as stored, with the file it was imported from.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSite {
    pub site: Site,
    pub source_file: String,
}

/// Replaces the sites with `sites` in one transaction: sites in the file
/// are inserted or updated, sites not in it deleted (with their results).
/// A reader sees the old set or the new one. Returns (upserted, deleted).
pub async fn replace_all(
    client: &mut Client,
    sites: &[Site],
    source_file: &str,
) -> Result<(u64, u64)> {
    let tx = client
        .transaction()
        .await
        .context("starting the sites import transaction")?;
    let col = |f: fn(&Site) -> String| sites.iter().map(f).collect::<Vec<String>>();
    let ids = col(|s| s.site_id.clone());
    let names = col(|s| s.name.clone());
    let currencies = col(|s| s.currency.clone());
    let classes = col(|s| s.asset_class.as_str().to_string());
    let structures = col(|s| s.structure_type.as_str().to_string());
    let f = |g: fn(&Site) -> f64| sites.iter().map(g).collect::<Vec<f64>>();
    let (lats, lons, values) = (f(|s| s.lat), f(|s| s.lon), f(|s| s.asset_value));
    let years: Vec<i16> = sites.iter().map(|s| s.year_built as i16).collect();
    let floors: Vec<i16> = sites.iter().map(|s| s.floors as i16).collect();
    let river: Vec<Option<f64>> = sites.iter().map(|s| s.distance_to_river_km).collect();
    let coast: Vec<Option<f64>> = sites.iter().map(|s| s.distance_to_coast_km).collect();
    let lines: Vec<i32> = sites
        .iter()
        .map(|s| i32::try_from(s.line).unwrap_or(i32::MAX))
        .collect();
    let deleted = tx
        .execute("DELETE FROM sites WHERE NOT (site_id = ANY($1))", &[&ids])
        .await
        .context("deleting sites not in the file")?;
    // Only rows that differ are written, so re-importing the same file
    // changes nothing (and bumps no data version).
    let upserted = tx
        .execute(
            "INSERT INTO sites (site_id, name, lat, lon, asset_value, currency, asset_class, structure_type,
                                year_built, floors, distance_to_river_km, distance_to_coast_km, source_file, source_line)
             SELECT t.site_id, t.name, t.lat, t.lon, t.asset_value, t.currency, t.asset_class, t.structure_type,
                    t.year_built, t.floors, t.river, t.coast, $13::text, t.l FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[], $5::float8[],
                                  $6::text[], $7::text[], $8::text[], $9::int2[], $10::int2[], $11::float8[], $12::float8[], $14::int4[])
                  AS t(site_id, name, lat, lon, asset_value, currency, asset_class, structure_type,
                       year_built, floors, river, coast, l)
             ON CONFLICT (site_id) DO UPDATE SET
                 name = EXCLUDED.name, lat = EXCLUDED.lat, lon = EXCLUDED.lon, asset_value = EXCLUDED.asset_value,
                 currency = EXCLUDED.currency, asset_class = EXCLUDED.asset_class,
                 structure_type = EXCLUDED.structure_type, year_built = EXCLUDED.year_built,
                 floors = EXCLUDED.floors, distance_to_river_km = EXCLUDED.distance_to_river_km,
                 distance_to_coast_km = EXCLUDED.distance_to_coast_km,
                 source_file = EXCLUDED.source_file, source_line = EXCLUDED.source_line
             WHERE (sites.name, sites.lat, sites.lon, sites.asset_value, sites.currency, sites.asset_class,
                    sites.structure_type, sites.year_built, sites.floors, sites.distance_to_river_km,
                    sites.distance_to_coast_km, sites.source_file, sites.source_line)
                IS DISTINCT FROM
                   (EXCLUDED.name, EXCLUDED.lat, EXCLUDED.lon, EXCLUDED.asset_value, EXCLUDED.currency,
                    EXCLUDED.asset_class, EXCLUDED.structure_type, EXCLUDED.year_built, EXCLUDED.floors,
                    EXCLUDED.distance_to_river_km, EXCLUDED.distance_to_coast_km,
                    EXCLUDED.source_file, EXCLUDED.source_line)",
            &[
                &ids, &names, &lats, &lons, &values, &currencies, &classes, &structures, &years,
                &floors, &river, &coast, &source_file, &lines,
            ],
        )
        .await
        .context("inserting sites")?;
    tx.commit().await.context("committing the sites import")?;
    Ok((upserted, deleted))
}

const COLUMNS: &str = "site_id, name, lat, lon, asset_value, currency, asset_class, structure_type, \
                       year_built, floors, distance_to_river_km, distance_to_coast_km, source_file, source_line";

/// Sites, all (`ids` None) or those listed, ordered by id.
pub async fn load(client: &impl GenericClient, ids: Option<&[String]>) -> Result<Vec<StoredSite>> {
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM sites WHERE ($1::text[] IS NULL OR site_id = ANY($1)) ORDER BY site_id"
            ),
            &[&ids],
        )
        .await
        .context("reading sites")?;
    rows.iter()
        .map(|r| {
            let site_id: String = r.get(0);
            let class: String = r.get(6);
            let structure: String = r.get(7);
            let asset_class = AssetClass::parse(&class).ok_or_else(|| {
                anyhow!("sites: site {site_id:?} has unknown asset_class {class:?}")
            })?;
            let structure_type = StructureType::parse(&structure).ok_or_else(|| {
                anyhow!("sites: site {site_id:?} has unknown structure_type {structure:?}")
            })?;
            Ok(StoredSite {
                site: Site {
                    name: r.get(1),
                    lat: r.get(2),
                    lon: r.get(3),
                    asset_value: r.get(4),
                    currency: r.get(5),
                    asset_class,
                    structure_type,
                    year_built: i32::from(r.get::<_, i16>(8)),
                    floors: i32::from(r.get::<_, i16>(9)),
                    distance_to_river_km: r.get(10),
                    distance_to_coast_km: r.get(11),
                    line: u64::try_from(r.get::<_, i32>(13)).unwrap_or(0),
                    site_id,
                },
                source_file: r.get(12),
            })
        })
        .collect()
}
