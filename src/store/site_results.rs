//! What site-risk-batch reads and writes.
//!
//! [`read_probabilities`] is the one place the job reads hazard
//! probabilities, through the `probability_series` view (the readers'
//! contract, whatever the storage under it: one row per grid point, dataset
//! and hazard, every year in arrays), each with its dataset's identity; the
//! job and the domain code see [`ProbabilitySeries`] only.

use anyhow::{Context, Result};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_postgres::{GenericClient, Transaction};
use uuid::Uuid;

use crate::probability::GevParams;

/// Which projection a value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DatasetKey {
    pub scenario: String,
    pub model: String,
    pub member: String,
}

/// One probability result of a grid point, dataset, hazard and year (a
/// `probability_values` row).
#[derive(Debug, Clone, PartialEq)]
pub struct ProbabilityRecord {
    pub grid_id: i32,
    pub dataset: DatasetKey,
    pub risk_type: String,
    pub year: i16,
    pub method: String,
    pub bin_edges: Vec<f64>,
    pub bin_probs: Vec<f64>,
    pub return_levels: [f64; 3],
    pub gev: Option<GevParams>,
}

/// The `method` values of `probability_results` (its CHECK), so a series
/// keeps a `&'static str` per year rather than a `String`.
const METHODS: [&str; 4] = ["gev", "empirical", "degenerate", "empirical_fallback"];

/// One year's result inside a [`ProbabilitySeries`].
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesYear {
    pub year: i16,
    pub method: &'static str,
    /// Its bin probabilities: `ProbabilitySeries::bin_probs[probs]`.
    pub probs: std::ops::Range<usize>,
    /// 10, 50, 100 years.
    pub return_levels: [f64; 3],
    pub gev: Option<GevParams>,
}

/// Every year's probability result of one grid point, dataset and hazard
/// (a `probability_series` row): the years with a result, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbabilitySeries {
    pub grid_id: i32,
    pub dataset: DatasetKey,
    pub risk_type: String,
    pub bin_edges: Vec<f64>,
    pub years: Vec<SeriesYear>,
    pub bin_probs: Vec<f64>,
}

impl ProbabilitySeries {
    /// The bin probabilities of one of [`Self::years`].
    pub fn probs_of(&self, year: &SeriesYear) -> &[f64] {
        &self.bin_probs[year.probs.clone()]
    }

    /// Groups yearly records (ordered by grid, dataset, hazard and year, as
    /// `probability_values` gives them) into series. A record's bin edges
    /// must be its series' (they are the hazard's configuration).
    pub fn from_records(records: &[ProbabilityRecord]) -> Result<Vec<ProbabilitySeries>> {
        let mut out: Vec<ProbabilitySeries> = Vec::new();
        for r in records {
            let method = METHODS.iter().find(|m| **m == r.method).with_context(|| {
                format!(
                    "grid {} {} {} {}: unknown method {:?}",
                    r.grid_id, r.dataset.scenario, r.risk_type, r.year, r.method
                )
            })?;
            let same = out.last().is_some_and(|s| {
                s.grid_id == r.grid_id && s.dataset == r.dataset && s.risk_type == r.risk_type
            });
            if !same {
                out.push(ProbabilitySeries {
                    grid_id: r.grid_id,
                    dataset: r.dataset.clone(),
                    risk_type: r.risk_type.clone(),
                    bin_edges: r.bin_edges.clone(),
                    years: Vec::new(),
                    bin_probs: Vec::new(),
                });
            }
            let s = out
                .last_mut()
                .context("grouping probability records: no series")?;
            anyhow::ensure!(
                s.bin_edges == r.bin_edges,
                "grid {} {} {} {}: bin edges differ from the series' other years",
                r.grid_id,
                r.dataset.scenario,
                r.risk_type,
                r.year
            );
            let start = s.bin_probs.len();
            s.bin_probs.extend_from_slice(&r.bin_probs);
            s.years.push(SeriesYear {
                year: r.year,
                method,
                probs: start..s.bin_probs.len(),
                return_levels: r.return_levels,
                gev: r.gev,
            });
        }
        Ok(out)
    }
}

/// The probability series of `grid_ids` (scenarios: all, or those listed),
/// through the `probability_series` view, ordered by grid, dataset and
/// hazard; each series' years with a result in order (the years
/// `probability_values` has).
pub async fn read_probabilities(
    client: &impl GenericClient,
    grid_ids: &[i32],
    scenarios: Option<&[String]>,
) -> Result<Vec<ProbabilitySeries>> {
    let rows = client
        .query(
            "SELECT grid_id, scenario, model, member, risk_type, first_year, bin_edges, bin_count,
                    method_by_year, bin_probs_by_year,
                    return_level_10_by_year, return_level_50_by_year, return_level_100_by_year,
                    gev_c_by_year, gev_loc_by_year, gev_scale_by_year
               FROM probability_series
              WHERE grid_id = ANY($1) AND ($2::text[] IS NULL OR scenario = ANY($2))
              ORDER BY grid_id, scenario, model, member, risk_type",
            &[&grid_ids, &scenarios],
        )
        .await
        .context("reading probability_series of the chunk's grid points")?;
    rows.iter().map(decode_series).collect()
}

/// One `probability_series` row, checked: every array as long as its
/// contract says, and every year with a method has its bin probabilities
/// and return levels.
fn decode_series(r: &tokio_postgres::Row) -> Result<ProbabilitySeries> {
    let grid_id: i32 = r.try_get(0).context("probability_series.grid_id")?;
    let dataset = DatasetKey {
        scenario: r.try_get(1).context("probability_series.scenario")?,
        model: r.try_get(2).context("probability_series.model")?,
        member: r.try_get(3).context("probability_series.member")?,
    };
    let risk_type: String = r.try_get(4).context("probability_series.risk_type")?;
    let at = || {
        format!(
            "probability_series grid {grid_id} {} {risk_type}",
            dataset.scenario
        )
    };
    let first_year: i32 = r
        .try_get(5)
        .with_context(|| format!("{}: first_year", at()))?;
    let bin_edges: Vec<f64> = r
        .try_get(6)
        .with_context(|| format!("{}: bin_edges", at()))?;
    let bin_count: i32 = r
        .try_get(7)
        .with_context(|| format!("{}: bin_count", at()))?;
    let methods: Vec<Option<&str>> = r
        .try_get(8)
        .with_context(|| format!("{}: method_by_year", at()))?;
    let probs: Vec<Option<f64>> = r
        .try_get(9)
        .with_context(|| format!("{}: bin_probs_by_year", at()))?;
    let mut by_year: [Vec<Option<f64>>; 6] = Default::default();
    for (k, v) in by_year.iter_mut().enumerate() {
        *v = r
            .try_get(10 + k)
            .with_context(|| format!("{}: column {}", at(), r.columns()[10 + k].name()))?;
        anyhow::ensure!(
            v.len() == methods.len(),
            "{}: {} has {} elements for {} years",
            at(),
            r.columns()[10 + k].name(),
            v.len(),
            methods.len()
        );
    }
    let per_year = usize::try_from(bin_count)
        .ok()
        .filter(|&n| n >= 1)
        .with_context(|| format!("{}: bin_count {bin_count}", at()))?;
    anyhow::ensure!(
        Some(probs.len()) == methods.len().checked_mul(per_year),
        "{}: bin_probs_by_year has {} elements for {} years of {per_year} bins",
        at(),
        probs.len(),
        methods.len()
    );
    let [rl10, rl50, rl100, gev_c, gev_loc, gev_scale] = &by_year;
    let mut years = Vec::new();
    let mut bin_probs = Vec::new();
    for (i, method) in methods.iter().enumerate() {
        let Some(method) = method else { continue };
        let year = i32::try_from(i)
            .ok()
            .and_then(|i| first_year.checked_add(i))
            .and_then(|y| i16::try_from(y).ok())
            .with_context(|| format!("{}: year {i} after {first_year} out of range", at()))?;
        let method = METHODS
            .iter()
            .find(|m| *m == method)
            .with_context(|| format!("{}: {year}: unknown method {method:?}", at()))?;
        let (Some(a), Some(b), Some(c)) = (rl10[i], rl50[i], rl100[i]) else {
            anyhow::bail!("{}: {year}: a NULL return level", at());
        };
        let gev = match (gev_c[i], gev_loc[i], gev_scale[i]) {
            (Some(c), Some(loc), Some(scale)) => Some(GevParams { c, loc, scale }),
            _ => None,
        };
        let start = bin_probs.len();
        for p in &probs[i * per_year..(i + 1) * per_year] {
            bin_probs.push(p.with_context(|| format!("{}: {year}: a NULL bin probability", at()))?);
        }
        years.push(SeriesYear {
            year,
            method,
            probs: start..bin_probs.len(),
            return_levels: [a, b, c],
            gev,
        });
    }
    Ok(ProbabilitySeries {
        grid_id,
        dataset,
        risk_type,
        bin_edges,
        years,
        bin_probs,
    })
}

/// The version of `probability_results` (and of anything else the seam
/// reads) in `data_versions`, for the skip check.
pub async fn probability_version(client: &impl GenericClient) -> Result<i64> {
    table_version(client, "probability_results").await
}

/// A table's version in `data_versions` (0 when never written).
pub async fn table_version(client: &impl GenericClient, table: &str) -> Result<i64> {
    Ok(client
        .query_opt(
            "SELECT version FROM data_versions WHERE table_name = $1",
            &[&table],
        )
        .await
        .context("reading data_versions")?
        .map(|r| r.get(0))
        .unwrap_or(0))
}

/// One per-year series of `site_hazard_series`: what a grid point's
/// probability results, one dataset and hazard, and one vulnerability curve
/// give, whatever the site (so the sites of a chunk sharing them share it).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HazardSeries {
    pub grid_id: i32,
    pub risk_type: String,
    pub curve_fingerprint: String,
    pub years: Vec<i16>,
    pub aal_rate: Vec<f64>,
    pub damage_rl10: Vec<f32>,
    pub damage_rl50: Vec<f32>,
    pub damage_rl100: Vec<f32>,
    pub hazard_score: Vec<f32>,
}

/// One row of `site_results`: a site, dataset and hazard, with the site's
/// own scores and the series (an index into [`ChunkResults::series`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SiteResultRow {
    pub site_id: String,
    pub scenario: String,
    pub model: String,
    pub member: String,
    pub risk_type: String,
    pub grid_id: i32,
    pub distance_km: f32,
    pub e_score: f32,
    pub v_score: f32,
    pub curve_fingerprint: String,
    pub series: usize,
}

/// Everything one chunk writes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChunkResults {
    pub series: Vec<HazardSeries>,
    pub rows: Vec<SiteResultRow>,
}

impl ChunkResults {
    /// The series a row points at.
    pub fn series_of(&self, row: &SiteResultRow) -> &HazardSeries {
        &self.series[row.series]
    }
}

const SERIES_COLUMNS: &str = "id, grid_id, risk_type, curve_fingerprint, years, aal_rate, \
    damage_rl10, damage_rl50, damage_rl100, hazard_score, run_id";

const SERIES_TYPES: &[Type] = &[
    Type::INT8,
    Type::INT4,
    Type::TEXT,
    Type::TEXT,
    Type::INT2_ARRAY,
    Type::FLOAT8_ARRAY,
    Type::FLOAT4_ARRAY,
    Type::FLOAT4_ARRAY,
    Type::FLOAT4_ARRAY,
    Type::FLOAT4_ARRAY,
    Type::UUID,
];

const ROW_COLUMNS: &str = "site_id, scenario, model, member, risk_type, grid_id, distance_km, \
    e_score, v_score, curve_fingerprint, series_id, run_id";

const ROW_TYPES: &[Type] = &[
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT4,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::TEXT,
    Type::INT8,
    Type::UUID,
];

/// Replaces the results of `site_ids` (for `scenarios`, or all) with
/// `results`: re-running a chunk gives the same values. The series the
/// deleted rows pointed at are deleted too once no row points at them.
/// Returns the number of `site_results` rows written.
pub async fn replace_chunk(
    tx: &Transaction<'_>,
    site_ids: &[String],
    scenarios: Option<&[String]>,
    run_id: Uuid,
    results: &ChunkResults,
) -> Result<u64> {
    let mut old: Vec<i64> = tx
        .query(
            "DELETE FROM site_results WHERE site_id = ANY($1) AND ($2::text[] IS NULL OR scenario = ANY($2))
             RETURNING series_id",
            &[&site_ids, &scenarios],
        )
        .await
        .context("clearing the chunk's site_results")?
        .iter()
        .map(|r| r.get(0))
        .collect();
    old.sort_unstable();
    old.dedup();
    let count = i64::try_from(results.series.len()).context("series count")?;
    let ids: Vec<i64> = tx
        .query(
            "SELECT nextval('site_hazard_series_id_seq') FROM generate_series(1, $1::bigint)",
            &[&count],
        )
        .await
        .context("reserving site_hazard_series ids")?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let sink = tx
        .copy_in(&format!(
            "COPY site_hazard_series ({SERIES_COLUMNS}) FROM STDIN (FORMAT binary)"
        ))
        .await
        .context("starting COPY into site_hazard_series")?;
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, SERIES_TYPES));
    for (s, id) in results.series.iter().zip(&ids) {
        writer
            .as_mut()
            .write(&[
                id,
                &s.grid_id,
                &s.risk_type,
                &s.curve_fingerprint,
                &s.years,
                &s.aal_rate,
                &s.damage_rl10,
                &s.damage_rl50,
                &s.damage_rl100,
                &s.hazard_score,
                &run_id,
            ])
            .await
            .context("COPY into site_hazard_series")?;
    }
    writer
        .finish()
        .await
        .context("finishing COPY into site_hazard_series")?;
    let sink = tx
        .copy_in(&format!(
            "COPY site_results ({ROW_COLUMNS}) FROM STDIN (FORMAT binary)"
        ))
        .await
        .context("starting COPY into site_results")?;
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, ROW_TYPES));
    for r in &results.rows {
        let series_id = ids
            .get(r.series)
            .with_context(|| format!("site {:?}: series {} not reserved", r.site_id, r.series))?;
        writer
            .as_mut()
            .write(&[
                &r.site_id,
                &r.scenario,
                &r.model,
                &r.member,
                &r.risk_type,
                &r.grid_id,
                &r.distance_km,
                &r.e_score,
                &r.v_score,
                &r.curve_fingerprint,
                series_id,
                &run_id,
            ])
            .await
            .context("COPY into site_results")?;
    }
    let written = writer
        .finish()
        .await
        .context("finishing COPY into site_results")?;
    if !old.is_empty() {
        tx.execute(
            "DELETE FROM site_hazard_series h WHERE h.id = ANY($1)
                AND NOT EXISTS (SELECT 1 FROM site_results r WHERE r.series_id = h.id)",
            &[&old],
        )
        .await
        .context("deleting the chunk's previous site_hazard_series")?;
    }
    Ok(written)
}

/// Deletes the series no `site_results` row points at (left by sites
/// deleted since, or by chunks of different runs sharing a series):
/// readers never see them (the views join from `site_results`), this only
/// gives the space back.
pub async fn delete_orphan_series(client: &impl GenericClient) -> Result<u64> {
    client
        .execute(
            "DELETE FROM site_hazard_series h
              WHERE NOT EXISTS (SELECT 1 FROM site_results r WHERE r.series_id = h.id)",
            &[],
        )
        .await
        .context("deleting site_hazard_series no site_results row points at")
}

/// The curve fingerprints the last full run used, by (risk_type, asset_class).
pub async fn recorded_curves(
    client: &impl GenericClient,
) -> Result<std::collections::BTreeMap<(String, String), String>> {
    Ok(client
        .query(
            "SELECT risk_type, asset_class, fingerprint FROM site_risk_curves",
            &[],
        )
        .await
        .context("reading site_risk_curves")?
        .iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect())
}

/// Records the curves a full run used (replacing the previous record).
/// Replicas may both call it: an upsert, so neither trips over the other.
pub async fn record_curves(
    client: &mut tokio_postgres::Client,
    curves: &[(String, String, String)],
    run_id: Uuid,
) -> Result<()> {
    let tx = client
        .transaction()
        .await
        .context("starting the site_risk_curves transaction")?;
    let (h, c, f): (Vec<&str>, Vec<&str>, Vec<&str>) = curves
        .iter()
        .map(|(a, b, d)| (a.as_str(), b.as_str(), d.as_str()))
        .fold((vec![], vec![], vec![]), |mut acc, (a, b, d)| {
            acc.0.push(a);
            acc.1.push(b);
            acc.2.push(d);
            acc
        });
    tx.execute(
        "DELETE FROM site_risk_curves
          WHERE (risk_type, asset_class) NOT IN (SELECT * FROM unnest($1::text[], $2::text[]))",
        &[&h, &c],
    )
    .await
    .context("removing curves no longer used from site_risk_curves")?;
    tx.execute(
        "INSERT INTO site_risk_curves (risk_type, asset_class, fingerprint, run_id)
         SELECT h, c, f, $4 FROM unnest($1::text[], $2::text[], $3::text[]) AS t(h, c, f)
         ON CONFLICT (risk_type, asset_class) DO UPDATE
             SET fingerprint = EXCLUDED.fingerprint, run_id = EXCLUDED.run_id",
        &[&h, &c, &f, &run_id],
    )
    .await
    .context("recording site_risk_curves")?;
    tx.commit().await.context("committing site_risk_curves")
}
