-- The region cache as one row per (generation, region, dataset, hazard)
-- with the years as arrays, like hazard_results (0007) and
-- probability_results (0008). Inserting 400,000 yearly rows under a
-- five-column text primary key was most of cache-refresh's time
-- (bench/results/README.md); the same cache is 5,000 rows as series.
--
-- `years` lists the years of the (dataset, hazard) present in
-- hazard_results at any grid point, ascending (not necessarily
-- contiguous); element i of every *_by_year array belongs to years[i].
-- values_by_year / scores_by_year are NULL as a whole when the region's
-- nearest point has no series for the dataset and hazard, and hold NULL
-- elements for years that point has no value. The probability arrays are
-- NULL as a whole when the point has no probability series; a year without
-- a result is a NULL element (return levels) and bin_count NULLs
-- (bin_probs_by_year, bin_count per year, year after year).
-- Readers use the region_hazard_cache view: one row per region, dataset,
-- hazard and year, exactly the columns it had before.
--
-- Existing cache rows are converted in place in this migration's
-- transaction and the number of rows the view shows is checked against the
-- number of rows before.

DROP VIEW region_hazard_cache;

CREATE TABLE region_hazard_cache_series (
    generation               bigint             NOT NULL,
    region_code              text               NOT NULL,
    dataset_id               integer            NOT NULL,
    scenario                 text               NOT NULL,
    model                    text               NOT NULL,
    member                   text               NOT NULL,
    risk_type                text               NOT NULL,
    grid_id                  integer            NOT NULL,
    distance_km              real               NOT NULL,
    years                    smallint[]         NOT NULL CHECK (cardinality(years) BETWEEN 1 AND 10000),
    values_by_year           double precision[],
    scores_by_year           real[],
    bin_count                smallint           CHECK (bin_count >= 1),
    bin_probs_by_year        double precision[],
    return_level_10_by_year  double precision[],
    return_level_50_by_year  double precision[],
    return_level_100_by_year double precision[],
    PRIMARY KEY (generation, region_code, dataset_id, risk_type),
    CHECK (cardinality(values_by_year) = cardinality(years)
       AND cardinality(scores_by_year) = cardinality(years)),
    CHECK ((values_by_year IS NULL) = (scores_by_year IS NULL)),
    CHECK (cardinality(return_level_10_by_year) = cardinality(years)
       AND cardinality(return_level_50_by_year) = cardinality(years)
       AND cardinality(return_level_100_by_year) = cardinality(years)
       AND cardinality(bin_probs_by_year) = cardinality(years) * bin_count),
    CHECK ((return_level_10_by_year IS NULL) = (bin_probs_by_year IS NULL)
       AND (return_level_10_by_year IS NULL) = (bin_count IS NULL))
);

-- TOASTed arrays: lz4 where the server has it, as probability_results (0008).
DO $$
BEGIN
    ALTER TABLE region_hazard_cache_series
        ALTER COLUMN values_by_year SET COMPRESSION lz4,
        ALTER COLUMN scores_by_year SET COMPRESSION lz4,
        ALTER COLUMN bin_probs_by_year SET COMPRESSION lz4,
        ALTER COLUMN return_level_10_by_year SET COMPRESSION lz4,
        ALTER COLUMN return_level_50_by_year SET COMPRESSION lz4,
        ALTER COLUMN return_level_100_by_year SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'region_hazard_cache_series keeps pglz compression: %', SQLERRM;
END
$$;

DO $$
DECLARE
    bad record;
BEGIN
    SELECT generation, region_code, dataset_id, risk_type INTO bad
      FROM region_hazard_cache_rows
     GROUP BY generation, region_code, dataset_id, risk_type
    HAVING count(DISTINCT grid_id) > 1 OR count(DISTINCT cardinality(bin_probs)) > 1
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'converting region_hazard_cache_rows: generation % region % dataset % % has more than one grid point or number of bins; run cache-refresh --force after deleting that generation''s rows',
            bad.generation, bad.region_code, bad.dataset_id, bad.risk_type;
    END IF;
END
$$;

INSERT INTO region_hazard_cache_series
WITH series AS (
    SELECT generation, region_code, dataset_id, min(scenario) AS scenario, min(model) AS model,
           min(member) AS member, risk_type, min(grid_id) AS grid_id, min(distance_km) AS distance_km,
           max(cardinality(bin_probs)) AS bin_count,
           bool_or(value IS NOT NULL OR score IS NOT NULL) AS has_values,
           bool_or(return_level_10 IS NOT NULL OR bin_probs IS NOT NULL) AS has_probabilities,
           array_agg(year ORDER BY year) AS years,
           array_agg(value ORDER BY year) AS vals,
           array_agg(score ORDER BY year) AS scores,
           array_agg(return_level_10 ORDER BY year) AS rl10,
           array_agg(return_level_50 ORDER BY year) AS rl50,
           array_agg(return_level_100 ORDER BY year) AS rl100
      FROM region_hazard_cache_rows
     GROUP BY generation, region_code, dataset_id, risk_type
)
SELECT s.generation, s.region_code, s.dataset_id, s.scenario, s.model, s.member, s.risk_type,
       s.grid_id, s.distance_km, s.years,
       CASE WHEN s.has_values THEN s.vals END,
       CASE WHEN s.has_values THEN s.scores END,
       CASE WHEN s.has_probabilities THEN coalesce(s.bin_count, 1) END,
       CASE WHEN s.has_probabilities THEN
            ARRAY(SELECT CASE WHEN r.return_level_10 IS NOT NULL THEN r.bin_probs[k] END
                    FROM region_hazard_cache_rows r, generate_series(1, coalesce(s.bin_count, 1)) AS k
                   WHERE r.generation = s.generation AND r.region_code = s.region_code
                     AND r.dataset_id = s.dataset_id AND r.risk_type = s.risk_type
                   ORDER BY r.year, k) END,
       CASE WHEN s.has_probabilities THEN s.rl10 END,
       CASE WHEN s.has_probabilities THEN s.rl50 END,
       CASE WHEN s.has_probabilities THEN s.rl100 END
  FROM series s
 ORDER BY s.generation, s.region_code, s.dataset_id, s.risk_type;

DO $$
DECLARE
    before bigint;
    after  bigint;
BEGIN
    SELECT count(*) INTO before FROM region_hazard_cache_rows;
    SELECT count(*) INTO after
      FROM region_hazard_cache_series r, unnest(r.years) AS y;
    IF before <> after THEN
        RAISE EXCEPTION 'converting region_hazard_cache_rows: % rows before, % after', before, after;
    END IF;
END
$$;

DROP TABLE region_hazard_cache_rows;

-- The reading contract, unchanged: one row per region, dataset, hazard and
-- year of the current generation.
CREATE VIEW region_hazard_cache AS
SELECT r.region_code, r.scenario, r.model, r.member, r.risk_type, u.year, r.grid_id,
       r.distance_km, u.value, u.score,
       CASE WHEN u.return_level_10 IS NOT NULL
            THEN b.probs[((u.i - 1) * r.bin_count + 1)::integer : (u.i * r.bin_count)::integer]
       END AS bin_probs,
       u.return_level_10, u.return_level_50, u.return_level_100, s.refreshed_at, r.dataset_id
  FROM region_hazard_cache_series r
  JOIN region_hazard_cache_state s ON s.generation = r.generation
 -- Detoasted once per series, not once per year (as probability_values).
 CROSS JOIN LATERAL (SELECT r.bin_probs_by_year || '{}'::float8[] AS probs OFFSET 0) b
 CROSS JOIN LATERAL unnest(r.years, r.values_by_year, r.scores_by_year, r.return_level_10_by_year,
                           r.return_level_50_by_year, r.return_level_100_by_year)
       WITH ORDINALITY AS u(year, value, score, return_level_10, return_level_50, return_level_100, i);

