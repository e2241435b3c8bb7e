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
use super::pg_array::Float8Array;

/// One year's result (a reader's view of a series year: tests compare
/// these with the stored `probability_values`).
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

/// One series to write: the years `first_year ..` of one grid point,
/// dataset and hazard, built year by year straight into the column arrays
/// COPY sends (no per-year row objects). It spans its first to its last
/// result; a year without a result in between is None in every array.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbabilitySeries {
    pub grid_id: i32,
    pub dataset_id: i32,
    pub scenario: String,
    pub risk_type: String,
    first_year: i16,
    bin_edges: Vec<f64>,
    bin_count: i16,
    methods: Vec<Option<&'static str>>,
    sample_sizes: Vec<Option<i16>>,
    /// `bin_count` per year, year after year.
    bin_probs: Float8Array,
    return_levels: [Float8Array; 3],
    gev: [Float8Array; 3],
    /// Years without a result after the last one pushed: written as None
    /// only if a later year has a result, so the series ends on a result.
    pending_gaps: usize,
    fitted: u64,
}

/// One year's fit, as [`ProbabilitySeries::push_year`] takes it.
#[derive(Debug, Clone, Copy)]
pub struct YearFit<'a> {
    pub method: &'static str,
    pub sample_size: i16,
    pub bin_probs: &'a [f64],
    pub return_levels: [f64; 3],
    /// GEV parameters (c, loc, scale), for GEV fits.
    pub gev: Option<[f64; 3]>,
}

impl ProbabilitySeries {
    /// An empty series with the hazard's bin edges; `capacity` years are
    /// reserved in each array.
    pub fn new(
        grid_id: i32,
        dataset_id: i32,
        scenario: String,
        risk_type: String,
        bin_edges: &[f64],
        capacity: usize,
    ) -> Result<Self> {
        let bins = bin_edges.len() + 1;
        let bin_count = i16::try_from(bins).with_context(|| {
            format!("grid {grid_id} dataset {dataset_id} {risk_type}: {bins} bins")
        })?;

        Ok(Self {
            grid_id,
            dataset_id,
            scenario,
            risk_type,
            first_year: 0,
            bin_edges: bin_edges.to_vec(),
            bin_count,
            methods: Vec::with_capacity(capacity),
            sample_sizes: Vec::with_capacity(capacity),
            bin_probs: Float8Array(Vec::with_capacity(capacity * bins)),
            return_levels: std::array::from_fn(|_| Float8Array(Vec::with_capacity(capacity))),
            gev: std::array::from_fn(|_| Float8Array(Vec::with_capacity(capacity))),
            pending_gaps: 0,
            fitted: 0,
        })
    }

    /// The next year has no result (call in year order, after or before
    /// [`push_year`](Self::push_year)).
    pub fn skip_year(&mut self) {
        if !self.methods.is_empty() {
            self.pending_gaps += 1;
        }
    }

    /// The next year's result: `year` is the series' first year when it is
    /// its first result, else it must follow the previous years (checked).
    pub fn push_year(&mut self, year: i16, fit: &YearFit<'_>) -> Result<()> {
        let bins = usize::try_from(self.bin_count).unwrap_or(0);
        if fit.bin_probs.len() != bins {
            bail!(
                "grid {} dataset {} {} year {year}: {} bin probabilities, the series has {bins}",
                self.grid_id,
                self.dataset_id,
                self.risk_type,
                fit.bin_probs.len()
            );
        }
        if self.methods.is_empty() {
            self.first_year = year;
        } else {
            let expected =
                i64::from(self.first_year) + self.methods.len() as i64 + self.pending_gaps as i64;
            if i64::from(year) != expected {
                bail!(
                    "grid {} dataset {} {}: year {year} pushed where year {expected} was due",
                    self.grid_id,
                    self.dataset_id,
                    self.risk_type
                );
            }
            let gaps = std::mem::take(&mut self.pending_gaps);
            for _ in 0..gaps {
                self.methods.push(None);
                self.sample_sizes.push(None);
                self.bin_probs.0.extend(std::iter::repeat_n(None, bins));
                for a in self.return_levels.iter_mut().chain(self.gev.iter_mut()) {
                    a.0.push(None);
                }
            }
        }
        self.methods.push(Some(fit.method));
        self.sample_sizes.push(Some(fit.sample_size));
        self.bin_probs
            .0
            .extend(fit.bin_probs.iter().map(|&p| Some(p)));
        for (a, &level) in self.return_levels.iter_mut().zip(&fit.return_levels) {
            a.0.push(Some(level));
        }
        for (k, a) in self.gev.iter_mut().enumerate() {
            a.0.push(fit.gev.map(|g| g[k]));
        }
        self.fitted += 1;
        Ok(())
    }

    /// Whether no year has a result (such a series is not written).
    pub fn is_empty(&self) -> bool {
        self.methods.is_empty()
    }

    /// Number of years with a result.
    pub fn fitted_years(&self) -> u64 {
        self.fitted
    }

    /// The years with a result as rows.
    pub fn rows(&self) -> Vec<ProbabilityRow> {
        let bins = usize::try_from(self.bin_count).unwrap_or(0);
        (0..self.methods.len())
            .filter_map(|i| {
                Some(ProbabilityRow {
                    grid_id: self.grid_id,
                    dataset_id: self.dataset_id,
                    scenario: self.scenario.clone(),
                    risk_type: self.risk_type.clone(),
                    year: i16::try_from(i64::from(self.first_year) + i as i64).ok()?,
                    method: self.methods[i]?,
                    sample_size: self.sample_sizes[i]?,
                    bin_edges: self.bin_edges.clone(),
                    bin_probs: self.bin_probs.0[i * bins..(i + 1) * bins]
                        .iter()
                        .map(|p| p.unwrap_or(f64::NAN))
                        .collect(),
                    return_levels: self
                        .return_levels
                        .each_ref()
                        .map(|a| a.0[i].unwrap_or(f64::NAN)),
                    gev_c: self.gev[0].0[i],
                    gev_loc: self.gev[1].0[i],
                    gev_scale: self.gev[2].0[i],
                })
            })
            .collect()
    }

    fn key(&self) -> (i32, i32, &str) {
        (self.grid_id, self.dataset_id, &self.risk_type)
    }
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

/// The per-year arrays, each with the elements one year holds in it.
const PER_YEAR: [(&str, &str); 9] = [
    ("method_by_year", "1"),
    ("sample_size_by_year", "1"),
    ("bin_probs_by_year", "p.bin_count"),
    ("return_level_10_by_year", "1"),
    ("return_level_50_by_year", "1"),
    ("return_level_100_by_year", "1"),
    ("gev_c_by_year", "1"),
    ("gev_loc_by_year", "1"),
    ("gev_scale_by_year", "1"),
];

/// Inserts the series `source` (a query with the table's columns, in
/// order) into the table, merging each into its stored series where there
/// is one: the years the new series spans replace the stored years, the
/// others are kept (the `--years` subset path; tests add single years with
/// it too). The new series must have the stored series' bin edges.
pub fn merge_sql(source: &str) -> String {
    let merged: Vec<String> = PER_YEAR
        .iter()
        .map(|(column, per_year)| {
            format!(
                "{column} = series_merge(p.first_year, p.{column}, \
                 EXCLUDED.first_year, EXCLUDED.{column}, {per_year})"
            )
        })
        .collect();
    format!(
        "
INSERT INTO probability_results AS p
{source}
ON CONFLICT (grid_id, dataset_id, risk_type) DO UPDATE
   SET first_year = least(p.first_year, EXCLUDED.first_year),
       {},
       run_id = EXCLUDED.run_id",
        merged.join(",\n       ")
    )
}

/// Writes one chunk's series (see the module comment for how), in the
/// caller's transaction, in primary-key order (grid_id, dataset_id,
/// risk_type: the B-tree fills left to right); series without a result are
/// left out. Returns the number of yearly results written.
pub async fn write_chunk(
    tx: &Transaction<'_>,
    run_id: Uuid,
    scope: &ChunkScope<'_>,
    series: &mut Vec<ProbabilitySeries>,
) -> Result<u64> {
    series.retain(|s| !s.is_empty());
    if !series.is_sorted_by(|a, b| a.key() <= b.key()) {
        series.sort_unstable_by(|a, b| a.key().cmp(&b.key()));
    }
    let series: &[ProbabilitySeries] = series;
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
            series.iter().map(|s| s.risk_type.as_str()).collect(),
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
        .copy(tx, into, series, |s| {
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
    Ok(series.iter().map(ProbabilitySeries::fitted_years).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit(probs: &'static [f64]) -> YearFit<'static> {
        YearFit {
            method: "gev",
            sample_size: 30,
            bin_probs: probs,
            return_levels: [1.0, 2.0, 3.0],
            gev: None,
        }
    }

    fn series() -> ProbabilitySeries {
        ProbabilitySeries::new(1, 1, "ssp245".into(), "drought".into(), &[1.0], 4).unwrap()
    }

    #[test]
    fn years_without_a_result_are_none_inside_and_trimmed_at_the_ends() {
        let mut s = series();
        s.skip_year(); // 2020: before the first result, not stored
        s.push_year(2021, &fit(&[0.75, 0.25])).unwrap();
        s.skip_year();
        s.push_year(2023, &fit(&[0.25, 0.75])).unwrap();
        s.skip_year(); // 2024: after the last result, not stored
        assert_eq!(s.first_year, 2021);
        assert_eq!(s.methods, vec![Some("gev"), None, Some("gev")]);
        assert_eq!(
            s.bin_probs.0,
            vec![Some(0.75), Some(0.25), None, None, Some(0.25), Some(0.75)]
        );
        assert_eq!(s.bin_count, 2);
        assert_eq!(s.return_levels[2].0, vec![Some(3.0), None, Some(3.0)]);
        assert_eq!(s.gev[1].0, vec![None, None, None]);
        assert_eq!(s.fitted_years(), 2);
        let rows = s.rows();
        assert_eq!(
            rows.iter().map(|r| r.year).collect::<Vec<_>>(),
            vec![2021, 2023]
        );
        assert_eq!(rows[1].bin_probs, vec![0.25, 0.75]);
    }

    #[test]
    fn a_year_with_other_bins_or_out_of_order_is_an_error_naming_it() {
        let mut s = series();
        s.push_year(2021, &fit(&[0.5, 0.5])).unwrap();
        let three = YearFit {
            bin_probs: &[0.5, 0.25, 0.25],
            ..fit(&[0.5, 0.5])
        };
        let err = s.push_year(2022, &three).unwrap_err().to_string();
        assert!(err.contains("year 2022"), "{err}");
        let err = s
            .push_year(2024, &fit(&[0.5, 0.5]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("year 2024") && err.contains("2022"), "{err}");
    }
}
