//! The cache's SQL. One set-based pass builds a generation (one row per
//! region, dataset and hazard, the years as arrays); a skip scan lists the
//! (dataset, risk_type, year) combinations present, which the verification
//! counts against.

/// Every (dataset_id, risk_type, year) with a value in `hazard_results`.
/// A series without missing years contributes its whole span, and the
/// points of a dataset share their spans, so those are a handful of
/// distinct spans found without unnesting; only series with a missing year
/// (a NULL element) are unnested. A dataset is one scenario × model ×
/// member, so two models of one experiment are two combinations.
pub const COMBINATIONS: &str = "
SELECT s.dataset_id, s.risk_type, y::smallint AS year
  FROM (SELECT DISTINCT dataset_id, risk_type, first_year, cardinality(values_by_year) AS years
          FROM hazard_results WHERE array_position(values_by_year, NULL) IS NULL) s
 CROSS JOIN LATERAL generate_series(s.first_year::integer, s.first_year + s.years - 1) AS y
UNION
SELECT h.dataset_id, h.risk_type, (h.first_year + u.i - 1)::smallint
  FROM hazard_results h
 CROSS JOIN LATERAL unnest(h.values_by_year) WITH ORDINALITY AS u(value, i)
 WHERE array_position(h.values_by_year, NULL) IS NOT NULL AND u.value IS NOT NULL";

/// Builds generation `$1`: one row per region × (dataset, hazard), holding
/// the combination's years (every year with a value at any point) and the
/// region's nearest grid point's values, scores, bin probabilities and
/// return levels for those years as arrays; the `region_hazard_cache` view
/// unnests them (migrations/0009_cache_series.sql). The nearest points are
/// given as arrays `$2` region codes (in code order), `$3` grid ids, `$4`
/// distances in km (see [`super::nearest_point`]: computing 2.5M
/// haversines in Rust takes milliseconds, in SQL with a sort per region a
/// second). The combinations are read from the temporary table
/// `cache_combinations` (filled from [`COMBINATIONS`] once per build, so the
/// count check and the build share one scan).
///
/// The nearest points' series are fetched through the primary key
/// (grid_id first). Where a point's series spans exactly the
/// combination's years (the usual case) its arrays are copied as they are;
/// otherwise each year is picked out of them (NULL where the point has no
/// value or no probability result that year).
pub fn build_sql() -> String {
    "
INSERT INTO region_hazard_cache_series
    (generation, region_code, dataset_id, scenario, model, member, risk_type, grid_id, distance_km,
     years, values_by_year, scores_by_year, bin_count, bin_probs_by_year, return_level_10_by_year,
     return_level_50_by_year, return_level_100_by_year)
WITH nearest AS MATERIALIZED (
    SELECT * FROM unnest($2::text[], $3::int[], $4::float8[])
           WITH ORDINALITY AS n(code, grid_id, distance_km, region_no)
), combo AS MATERIALIZED (
    SELECT c.dataset_id, c.risk_type, d.scenario, d.model, d.member,
           array_agg(c.year ORDER BY c.year) AS years, min(c.year)::integer AS first_year,
           max(c.year) - min(c.year) + 1 = count(*) AS contiguous,
           row_number() OVER (ORDER BY c.dataset_id, c.risk_type) AS combo_no
      FROM cache_combinations c JOIN datasets d ON d.id = c.dataset_id
     GROUP BY c.dataset_id, c.risk_type, d.scenario, d.model, d.member
), series AS MATERIALIZED (
    SELECT h.grid_id, h.dataset_id, h.risk_type, h.first_year::integer AS first_year,
           h.values_by_year, h.scores_by_year
      FROM hazard_results h WHERE h.grid_id = ANY($3)
), probability AS MATERIALIZED (
    SELECT p.grid_id, p.dataset_id, p.risk_type, p.first_year::integer AS first_year, p.bin_count,
           p.method_by_year, p.bin_probs_by_year, p.return_level_10_by_year,
           p.return_level_50_by_year, p.return_level_100_by_year
      FROM probability_results p WHERE p.grid_id = ANY($3)
), joined AS (
    SELECT n.code, n.grid_id, n.distance_km, n.region_no, c.*, h.first_year AS h_first,
           h.values_by_year, h.scores_by_year,
           c.contiguous AND h.first_year = c.first_year
               AND cardinality(h.values_by_year) = cardinality(c.years) AS h_aligned,
           p.grid_id IS NOT NULL AS has_p, p.first_year AS p_first, p.bin_count, p.method_by_year,
           p.bin_probs_by_year, p.return_level_10_by_year, p.return_level_50_by_year,
           p.return_level_100_by_year,
           c.contiguous AND p.first_year = c.first_year
               AND cardinality(p.method_by_year) = cardinality(c.years) AS p_aligned
      FROM nearest n
     CROSS JOIN combo c
      LEFT JOIN series h
             ON h.grid_id = n.grid_id AND h.dataset_id = c.dataset_id AND h.risk_type = c.risk_type
      LEFT JOIN probability p
             ON p.grid_id = n.grid_id AND p.dataset_id = c.dataset_id AND p.risk_type = c.risk_type
)
SELECT $1, j.code, j.dataset_id, j.scenario, j.model, j.member, j.risk_type, j.grid_id, j.distance_km,
       j.years,
       CASE WHEN j.h_aligned THEN j.values_by_year
            WHEN j.values_by_year IS NOT NULL
            THEN ARRAY(SELECT j.values_by_year[y - j.h_first + 1] FROM unnest(j.years) WITH ORDINALITY AS u(y, i) ORDER BY i)
       END,
       CASE WHEN j.h_aligned THEN j.scores_by_year
            WHEN j.scores_by_year IS NOT NULL
            THEN ARRAY(SELECT j.scores_by_year[y - j.h_first + 1] FROM unnest(j.years) WITH ORDINALITY AS u(y, i) ORDER BY i)
       END,
       j.bin_count,
       CASE WHEN j.p_aligned THEN j.bin_probs_by_year
            WHEN j.has_p
            THEN ARRAY(SELECT CASE WHEN j.method_by_year[y - j.p_first + 1] IS NOT NULL
                                   THEN j.bin_probs_by_year[(y - j.p_first) * j.bin_count + k] END
                         FROM unnest(j.years) WITH ORDINALITY AS u(y, i), generate_series(1, j.bin_count) AS k
                        ORDER BY i, k)
       END,
       CASE WHEN j.p_aligned THEN j.return_level_10_by_year
            WHEN j.has_p
            THEN ARRAY(SELECT j.return_level_10_by_year[y - j.p_first + 1] FROM unnest(j.years) WITH ORDINALITY AS u(y, i) ORDER BY i)
       END,
       CASE WHEN j.p_aligned THEN j.return_level_50_by_year
            WHEN j.has_p
            THEN ARRAY(SELECT j.return_level_50_by_year[y - j.p_first + 1] FROM unnest(j.years) WITH ORDINALITY AS u(y, i) ORDER BY i)
       END,
       CASE WHEN j.p_aligned THEN j.return_level_100_by_year
            WHEN j.has_p
            THEN ARRAY(SELECT j.return_level_100_by_year[y - j.p_first + 1] FROM unnest(j.years) WITH ORDINALITY AS u(y, i) ORDER BY i)
       END
  FROM joined j
 ORDER BY j.region_no, j.combo_no"
        .to_string()
}

/// Fills the temporary table `cache_combinations` (dropped at commit) with
/// [`COMBINATIONS`]; returns its SQL.
pub fn combinations_table_sql() -> String {
    format!("CREATE TEMP TABLE cache_combinations ON COMMIT DROP AS {COMBINATIONS}")
}

/// The number of series rows and of yearly rows (what the view shows) in
/// generation `$1`.
pub const GENERATION_SIZE: &str = "
SELECT count(*), coalesce(sum(cardinality(years)), 0)::bigint
  FROM region_hazard_cache_series WHERE generation = $1";

/// Combinations with a row count other than `$2` (the number of regions)
/// in generation `$1`, for the error message when the total is off: the
/// first 20, each with how many combinations are short in all.
pub fn short_combinations_sql() -> String {
    "
SELECT d.scenario || '/' || d.model || '/' || d.member, c.risk_type, c.year::int, count(r.region_code),
       count(*) OVER () AS short
  FROM cache_combinations c
  JOIN datasets d ON d.id = c.dataset_id
  LEFT JOIN (SELECT s.region_code, s.dataset_id, s.risk_type, y.year
               FROM region_hazard_cache_series s CROSS JOIN LATERAL unnest(s.years) AS y(year)
              WHERE s.generation = $1) r
         ON r.dataset_id = c.dataset_id AND r.risk_type = c.risk_type AND r.year = c.year
 GROUP BY d.scenario, d.model, d.member, c.risk_type, c.year
HAVING count(r.region_code) <> $2
 ORDER BY 1, 2, 3
 LIMIT 20"
        .to_string()
}
