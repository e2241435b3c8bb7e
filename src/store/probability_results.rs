//! `probability_results`: one row per series (grid point, dataset, hazard)
//! with the first year and the per-year bin probabilities, return levels
//! and fit parameters as arrays (a year without a window is a NULL
//! element; see migrations/0008_probability_series.sql). Written per chunk
//! in one transaction with binary COPY. Readers outside the jobs use the
//! `probability_values` view.
//!
//! How a chunk is written:
//! * a full run (no `--years`), `--force`, a rerun or a DLQ repair: DELETE
//!   the chunk's series (its grid points, scenarios and hazards) and COPY
//!   the new ones, which costs the server less than staging + upsert
//!   (bench/results/README.md);
//! * a `--years` subset: COPY straight into the table when none of its
//!   series exists yet, else into a staging table and one
//!   INSERT … ON CONFLICT that merges each series, so the years outside the
//!   subset are kept.

use anyhow::{Context, Result, bail};
use tokio_postgres::Transaction;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::bulk::ChunkTable;

/// One year's result to write.
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

/// What a chunk covers: the series a full write replaces.
#[derive(Debug, Clone, Copy)]
pub struct ChunkScope<'a> {
    pub grid_ids: &'a [i32],
    /// None: every scenario.
    pub scenarios: Option<&'a [String]>,
    pub hazards: &'a [String],
    /// A `--years` subset: merge into the stored series instead of replacing them.
    pub partial: bool,
}

/// One stored series: the years `first_year ..` of one grid point, dataset and hazard.
#[derive(Debug, Clone, PartialEq)]
struct Series<'a> {
    grid_id: i32,
    dataset_id: i32,
    scenario: &'a str,
    risk_type: &'a str,
    first_year: i16,
    bin_edges: &'a [f64],
    bin_count: i16,
    methods: Vec<Option<&'static str>>,
    sample_sizes: Vec<Option<i16>>,
    /// `bin_count` per year, year after year.
    bin_probs: Vec<Option<f64>>,
    return_levels: [Vec<Option<f64>>; 3],
    gev: [Vec<Option<f64>>; 3],
}

const TABLE: ChunkTable = ChunkTable {
    table: "probability_results",
    stage: "probability_stage",
    columns: "grid_id, dataset_id, scenario, risk_type, first_year, bin_edges, bin_count, \
              method_by_year, sample_size_by_year, bin_probs_by_year, return_level_10_by_year, \
              return_level_50_by_year, return_level_100_by_year, gev_c_by_year, gev_loc_by_year, \
              gev_scale_by_year, run_id",
    types: &[
        Type::INT4,
        Type::INT4,
        Type::TEXT,
        Type::TEXT,
        Type::INT2,
        Type::FLOAT8_ARRAY,
        Type::INT2,
        Type::TEXT_ARRAY,
        Type::INT2_ARRAY,
        Type::FLOAT8_ARRAY,
        Type::FLOAT8_ARRAY,
        Type::FLOAT8_ARRAY,
        Type::FLOAT8_ARRAY,
        Type::FLOAT8_ARRAY,
        Type::FLOAT8_ARRAY,
        Type::FLOAT8_ARRAY,
        Type::UUID,
    ],
};

/// Staged series whose stored series has other bin edges: their years
/// cannot share one `bin_edges`, so a `--years` subset cannot merge them.
const EDGES_DIFFER: &str = "
SELECT s.grid_id, s.dataset_id, s.risk_type
  FROM probability_stage s
  JOIN probability_results p USING (grid_id, dataset_id, risk_type)
 WHERE p.bin_edges <> s.bin_edges OR p.bin_count <> s.bin_count
 LIMIT 1";

/// Inserts the series `source` (a query with the table's columns, in
/// order) into the table, merging each into its stored series where there
/// is one: the years the new series spans replace the stored years, the
/// others are kept (the `--years` subset path; tests add single years with
/// it too). The new series must have the stored series' bin edges.
pub fn merge_sql(source: &str) -> String {
    format!(
        "
INSERT INTO probability_results AS p
{source}
ON CONFLICT (grid_id, dataset_id, risk_type) DO UPDATE
   SET first_year = least(p.first_year, EXCLUDED.first_year),
       method_by_year = series_merge(p.first_year, p.method_by_year,
                                     EXCLUDED.first_year, EXCLUDED.method_by_year, 1),
       sample_size_by_year = series_merge(p.first_year, p.sample_size_by_year,
                                          EXCLUDED.first_year, EXCLUDED.sample_size_by_year, 1),
       bin_probs_by_year = series_merge(p.first_year, p.bin_probs_by_year,
                                        EXCLUDED.first_year, EXCLUDED.bin_probs_by_year, p.bin_count),
       return_level_10_by_year = series_merge(p.first_year, p.return_level_10_by_year,
                                              EXCLUDED.first_year, EXCLUDED.return_level_10_by_year, 1),
       return_level_50_by_year = series_merge(p.first_year, p.return_level_50_by_year,
                                              EXCLUDED.first_year, EXCLUDED.return_level_50_by_year, 1),
       return_level_100_by_year = series_merge(p.first_year, p.return_level_100_by_year,
                                               EXCLUDED.first_year, EXCLUDED.return_level_100_by_year, 1),
       gev_c_by_year = series_merge(p.first_year, p.gev_c_by_year,
                                    EXCLUDED.first_year, EXCLUDED.gev_c_by_year, 1),
       gev_loc_by_year = series_merge(p.first_year, p.gev_loc_by_year,
                                      EXCLUDED.first_year, EXCLUDED.gev_loc_by_year, 1),
       gev_scale_by_year = series_merge(p.first_year, p.gev_scale_by_year,
                                        EXCLUDED.first_year, EXCLUDED.gev_scale_by_year, 1),
       run_id = EXCLUDED.run_id"
    )
}

/// Groups yearly rows into series in primary-key order (grid_id,
/// dataset_id, risk_type): in key order the B-tree fills left to right.
/// A series' bin edges are its first year's (every year of a series has
/// its hazard's configured edges); a row with a different number of bins
/// is an error rather than a misaligned array.
fn series_of(rows: &[ProbabilityRow]) -> Result<Vec<Series<'_>>> {
    let mut sorted: Vec<&ProbabilityRow> = rows.iter().collect();
    let order = |a: &&ProbabilityRow, b: &&ProbabilityRow| {
        (a.grid_id, a.dataset_id, &a.risk_type, a.year).cmp(&(
            b.grid_id,
            b.dataset_id,
            &b.risk_type,
            b.year,
        ))
    };
    if !sorted.is_sorted_by(|a, b| order(a, b).is_le()) {
        sorted.sort_unstable_by(order);
    }
    let mut out = Vec::new();
    for group in sorted.chunk_by(|a, b| {
        (a.grid_id, a.dataset_id, &a.risk_type) == (b.grid_id, b.dataset_id, &b.risk_type)
    }) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        let len = usize::try_from(i32::from(last.year) - i32::from(first.year) + 1).unwrap_or(0);
        let bins = first.bin_probs.len();
        let bin_count = i16::try_from(bins)
            .ok()
            .filter(|&n| n >= 1)
            .with_context(|| {
                format!(
                    "grid {} dataset {} {}: {bins} bin probabilities",
                    first.grid_id, first.dataset_id, first.risk_type
                )
            })?;
        let mut s = Series {
            grid_id: first.grid_id,
            dataset_id: first.dataset_id,
            scenario: &first.scenario,
            risk_type: &first.risk_type,
            first_year: first.year,
            bin_edges: &first.bin_edges,
            bin_count,
            methods: vec![None; len],
            sample_sizes: vec![None; len],
            bin_probs: vec![None; len * bins],
            return_levels: std::array::from_fn(|_| vec![None; len]),
            gev: std::array::from_fn(|_| vec![None; len]),
        };
        for r in group {
            if r.bin_probs.len() != bins || r.bin_edges != first.bin_edges {
                bail!(
                    "grid {} dataset {} {} year {}: bin edges or number of bins differ from year {}",
                    r.grid_id,
                    r.dataset_id,
                    r.risk_type,
                    r.year,
                    first.year
                );
            }
            // In range: the group is sorted by year.
            let i = usize::try_from(r.year - first.year).unwrap_or(0);
            s.methods[i] = Some(r.method);
            s.sample_sizes[i] = Some(r.sample_size);
            for (slot, p) in s.bin_probs[i * bins..(i + 1) * bins]
                .iter_mut()
                .zip(&r.bin_probs)
            {
                *slot = Some(*p);
            }
            for (k, level) in r.return_levels.iter().enumerate() {
                s.return_levels[k][i] = Some(*level);
            }
            s.gev[0][i] = r.gev_c;
            s.gev[1][i] = r.gev_loc;
            s.gev[2][i] = r.gev_scale;
        }
        out.push(s);
    }
    Ok(out)
}

/// Writes the yearly results of one chunk as series (see the module
/// comment for how), in the caller's transaction. Returns the number of
/// yearly results written.
pub async fn write_chunk(
    tx: &Transaction<'_>,
    run_id: Uuid,
    scope: &ChunkScope<'_>,
    rows: &[ProbabilityRow],
) -> Result<u64> {
    let series = series_of(rows)?;
    let into = if !scope.partial {
        tx.execute(
            "DELETE FROM probability_results
              WHERE grid_id = ANY($1) AND risk_type = ANY($2)
                AND ($3::text[] IS NULL OR scenario = ANY($3))",
            &[&scope.grid_ids, &scope.hazards, &scope.scenarios],
        )
        .await
        .context("deleting the chunk's probability_results before rewriting them")?;
        TABLE.table
    } else {
        let keys: (Vec<i32>, Vec<i32>, Vec<&str>) = (
            series.iter().map(|s| s.grid_id).collect(),
            series.iter().map(|s| s.dataset_id).collect(),
            series.iter().map(|s| s.risk_type).collect(),
        );
        let existing: i64 = tx
            .query_one(
                "SELECT count(*) FROM probability_results p
                   JOIN unnest($1::int[], $2::int[], $3::text[]) AS k(grid_id, dataset_id, risk_type)
                  USING (grid_id, dataset_id, risk_type)",
                &[&keys.0, &keys.1, &keys.2],
            )
            .await
            .context("checking for existing probability_results")?
            .get(0);
        if existing == 0 {
            TABLE.table
        } else {
            TABLE.stage(tx).await?;
            TABLE.stage
        }
    };
    TABLE
        .copy(tx, into, &series, |s| {
            [
                &s.grid_id,
                &s.dataset_id,
                &s.scenario,
                &s.risk_type,
                &s.first_year,
                &s.bin_edges,
                &s.bin_count,
                &s.methods,
                &s.sample_sizes,
                &s.bin_probs,
                &s.return_levels[0],
                &s.return_levels[1],
                &s.return_levels[2],
                &s.gev[0],
                &s.gev[1],
                &s.gev[2],
                &run_id,
            ]
        })
        .await?;
    if into == TABLE.stage {
        if let Some(r) = tx
            .query_opt(EDGES_DIFFER, &[])
            .await
            .context("comparing the chunk's bin edges with the stored series")?
        {
            bail!(
                "grid {} dataset {} {}: the stored series has other bin edges than this run's; \
                 a --years subset cannot merge into it (run without --years to rewrite the series)",
                r.get::<_, i32>(0),
                r.get::<_, i32>(1),
                r.get::<_, String>(2)
            );
        }
        tx.execute(&merge_sql("SELECT * FROM probability_stage"), &[])
            .await
            .context("merging the chunk's years into existing probability_results")?;
    }
    Ok(rows.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(grid_id: i32, risk_type: &str, year: i16, p: f64) -> ProbabilityRow {
        ProbabilityRow {
            grid_id,
            dataset_id: 1,
            scenario: "ssp245".into(),
            risk_type: risk_type.into(),
            year,
            method: "gev",
            sample_size: 30,
            bin_edges: vec![1.0],
            bin_probs: vec![p, 1.0 - p],
            return_levels: [1.0, 2.0, 3.0],
            gev_c: Some(0.1),
            gev_loc: None,
            gev_scale: Some(2.0),
        }
    }

    #[test]
    fn rows_become_series_in_key_order_with_missing_years_none() {
        let rows = [
            row(2, "drought", 2021, 0.5),
            row(1, "drought", 2023, 0.25),
            row(1, "drought", 2021, 0.75),
            row(1, "cold", 2022, 0.5),
        ];
        let s = series_of(&rows).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(
            (s[0].grid_id, s[0].risk_type, s[0].first_year),
            (1, "cold", 2022)
        );
        assert_eq!(
            (s[1].grid_id, s[1].risk_type, s[1].first_year),
            (1, "drought", 2021)
        );
        assert_eq!(s[1].methods, vec![Some("gev"), None, Some("gev")]);
        assert_eq!(
            s[1].bin_probs,
            vec![Some(0.75), Some(0.25), None, None, Some(0.25), Some(0.75)]
        );
        assert_eq!(s[1].bin_count, 2);
        assert_eq!(s[1].return_levels[2], vec![Some(3.0), None, Some(3.0)]);
        assert_eq!(s[1].gev[1], vec![None, None, None]);
        assert_eq!(s[2].sample_sizes, vec![Some(30)]);
    }

    #[test]
    fn a_year_with_other_bins_is_an_error_naming_it() {
        let mut odd = row(1, "drought", 2022, 0.5);
        odd.bin_probs.push(0.0);
        let err = series_of(&[row(1, "drought", 2021, 0.5), odd])
            .unwrap_err()
            .to_string();
        assert!(err.contains("year 2022"), "{err}");
    }
}
