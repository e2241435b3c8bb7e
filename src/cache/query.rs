//! The cache's SQL. One set-based pass builds a generation; a skip scan
//! lists the (dataset, risk_type, year) combinations present, which the
//! verification counts against independently of the build.

/// Every (dataset_id, risk_type, year) in `hazard_results`, by walking the
/// (dataset_id, risk_type, year) index one distinct key at a time instead
/// of scanning millions of rows. A dataset is one scenario × model × member,
/// so two models of one experiment are two combinations.
pub const COMBINATIONS: &str = "
WITH RECURSIVE combo AS (
    (SELECT dataset_id, risk_type, year FROM hazard_results
      ORDER BY dataset_id, risk_type, year LIMIT 1)
    UNION ALL
    SELECT n.dataset_id, n.risk_type, n.year
      FROM combo c
      CROSS JOIN LATERAL (
          SELECT h.dataset_id, h.risk_type, h.year FROM hazard_results h
           WHERE (h.dataset_id, h.risk_type, h.year) > (c.dataset_id, c.risk_type, c.year)
           ORDER BY h.dataset_id, h.risk_type, h.year LIMIT 1) n
)
SELECT dataset_id, risk_type, year FROM combo";

/// Builds generation `$1`: every region × combination, from the region's
/// nearest grid point, given as arrays `$2` region codes, `$3` grid ids,
/// `$4` distances in km (see [`super::nearest_point`]: computing 2.5M
/// haversines in Rust takes milliseconds, in SQL with a sort per region a
/// second).
/// Value and score are NULL where that point has no value for the year
/// (missing input data); probabilities where probability-batch has none.
///
/// The nearest points' rows are read with one index range scan per point
/// and hash-joined to region × combination, instead of one index descent
/// per cache row (400,000 of them at full size: most of the time); rows
/// are inserted in key order so the primary key grows at its right edge.
pub fn build_sql() -> String {
    format!(
        "
INSERT INTO region_hazard_cache_rows
    (generation, region_code, dataset_id, scenario, model, member, risk_type, year, grid_id,
     distance_km, value, score, bin_probs, return_level_10, return_level_50, return_level_100)
WITH nearest AS MATERIALIZED (
    SELECT * FROM unnest($2::text[], $3::int[], $4::float8[]) AS n(code, grid_id, distance_km)
), combo AS MATERIALIZED (
    SELECT c.dataset_id, c.risk_type, c.year, d.scenario, d.model, d.member
      FROM ({COMBINATIONS}) c JOIN datasets d ON d.id = c.dataset_id
), hazard AS MATERIALIZED (
    SELECT n.code, h.dataset_id, h.risk_type, h.year, h.value, h.score
      FROM nearest n JOIN hazard_results h ON h.grid_id = n.grid_id
), probability AS MATERIALIZED (
    SELECT n.code, p.dataset_id, p.risk_type, p.year, p.bin_probs,
           p.return_level_10, p.return_level_50, p.return_level_100
      FROM nearest n JOIN probability_results p ON p.grid_id = n.grid_id
)
SELECT $1, n.code, c.dataset_id, c.scenario, c.model, c.member, c.risk_type, c.year, n.grid_id,
       n.distance_km, h.value, h.score, p.bin_probs, p.return_level_10, p.return_level_50,
       p.return_level_100
  FROM nearest n
  CROSS JOIN combo c
  LEFT JOIN hazard h
         ON h.code = n.code AND h.dataset_id = c.dataset_id
        AND h.risk_type = c.risk_type AND h.year = c.year
  LEFT JOIN probability p
         ON p.code = n.code AND p.dataset_id = c.dataset_id
        AND p.risk_type = c.risk_type AND p.year = c.year
 ORDER BY n.code, c.dataset_id, c.risk_type, c.year"
    )
}

/// Combinations with a row count other than `$2` (the number of regions)
/// in generation `$1`, for the error message when the total is off.
pub fn short_combinations_sql() -> String {
    format!(
        "
SELECT d.scenario || '/' || d.model || '/' || d.member, c.risk_type, c.year::int, count(r.region_code)
  FROM ({COMBINATIONS}) c
  JOIN datasets d ON d.id = c.dataset_id
  LEFT JOIN region_hazard_cache_rows r
         ON r.generation = $1 AND r.dataset_id = c.dataset_id
        AND r.risk_type = c.risk_type AND r.year = c.year
 GROUP BY d.scenario, d.model, d.member, c.risk_type, c.year
HAVING count(r.region_code) <> $2
 ORDER BY 1, 2, 3
 LIMIT 20"
    )
}
