//! The cache's SQL. One set-based pass builds a generation; a skip scan
//! lists the (dataset, risk_type, year) combinations present, which the
//! verification counts against independently of the build.

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

/// Builds generation `$1`: every region × combination, from the region's
/// nearest grid point, given as arrays `$2` region codes (in code order),
/// `$3` grid ids, `$4` distances in km (see [`super::nearest_point`]:
/// computing 2.5M haversines in Rust takes milliseconds, in SQL with a sort
/// per region a second). The combinations are read from the temporary
/// table `cache_combinations` (filled from [`COMBINATIONS`] once per build,
/// so the count check and the build share one scan).
/// Value and score are NULL where that point has no value for the year
/// (missing input data); probabilities where probability-batch has none.
///
/// The nearest points' series are fetched through the primary key
/// (grid_id first) and each cache row picks its year out of the series'
/// arrays, so no yearly rows are unnested or hashed; rows are inserted in
/// key order, sorted on two integers (region ordinal, combination ordinal)
/// rather than on the text keys.
pub fn build_sql() -> String {
    "
INSERT INTO region_hazard_cache_rows
    (generation, region_code, dataset_id, scenario, model, member, risk_type, year, grid_id,
     distance_km, value, score, bin_probs, return_level_10, return_level_50, return_level_100)
WITH nearest AS MATERIALIZED (
    SELECT * FROM unnest($2::text[], $3::int[], $4::float8[])
           WITH ORDINALITY AS n(code, grid_id, distance_km, region_no)
), combo AS MATERIALIZED (
    SELECT c.dataset_id, c.risk_type, c.year, d.scenario, d.model, d.member,
           row_number() OVER (ORDER BY c.dataset_id, c.risk_type, c.year) AS combo_no
      FROM cache_combinations c JOIN datasets d ON d.id = c.dataset_id
), series AS MATERIALIZED (
    SELECT h.grid_id, h.dataset_id, h.risk_type, h.first_year, h.values_by_year, h.scores_by_year
      FROM hazard_results h WHERE h.grid_id = ANY($3)
), probability AS MATERIALIZED (
    SELECT p.grid_id, p.dataset_id, p.risk_type, p.first_year, p.bin_count, p.method_by_year,
           p.bin_probs_by_year, p.return_level_10_by_year, p.return_level_50_by_year,
           p.return_level_100_by_year
      FROM probability_results p WHERE p.grid_id = ANY($3)
)
SELECT $1, n.code, c.dataset_id, c.scenario, c.model, c.member, c.risk_type, c.year, n.grid_id,
       n.distance_km, h.values_by_year[c.year - h.first_year + 1],
       h.scores_by_year[c.year - h.first_year + 1],
       CASE WHEN p.method_by_year[c.year - p.first_year + 1] IS NOT NULL
            THEN p.bin_probs_by_year[(c.year::integer - p.first_year) * p.bin_count + 1
                                     : (c.year::integer - p.first_year + 1) * p.bin_count] END,
       p.return_level_10_by_year[c.year - p.first_year + 1],
       p.return_level_50_by_year[c.year - p.first_year + 1],
       p.return_level_100_by_year[c.year - p.first_year + 1]
  FROM nearest n
  CROSS JOIN combo c
  LEFT JOIN series h
         ON h.grid_id = n.grid_id AND h.dataset_id = c.dataset_id AND h.risk_type = c.risk_type
  LEFT JOIN probability p
         ON p.grid_id = n.grid_id AND p.dataset_id = c.dataset_id AND p.risk_type = c.risk_type
 ORDER BY n.region_no, c.combo_no"
        .to_string()
}

/// Fills the temporary table `cache_combinations` (dropped at commit) with
/// [`COMBINATIONS`]; returns its SQL.
pub fn combinations_table_sql() -> String {
    format!("CREATE TEMP TABLE cache_combinations ON COMMIT DROP AS {COMBINATIONS}")
}

/// Combinations with a row count other than `$2` (the number of regions)
/// in generation `$1`, for the error message when the total is off.
pub fn short_combinations_sql() -> String {
    "
SELECT d.scenario || '/' || d.model || '/' || d.member, c.risk_type, c.year::int, count(r.region_code)
  FROM cache_combinations c
  JOIN datasets d ON d.id = c.dataset_id
  LEFT JOIN region_hazard_cache_rows r
         ON r.generation = $1 AND r.dataset_id = c.dataset_id
        AND r.risk_type = c.risk_type AND r.year = c.year
 GROUP BY d.scenario, d.model, d.member, c.risk_type, c.year
HAVING count(r.region_code) <> $2
 ORDER BY 1, 2, 3
 LIMIT 20"
        .to_string()
}
