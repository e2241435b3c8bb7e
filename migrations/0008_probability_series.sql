-- Probability results as one row per series: (grid point, dataset, hazard)
-- with the first year and the per-year results as arrays, like
-- hazard_results (0007). 80 yearly rows under a four-column primary key cost
-- PostgreSQL most of probability-batch's time, and deleting them most of a
-- --force run (bench/results/README.md).
--
-- Element i (1-based) of every *_by_year array is the year first_year + i - 1.
-- A year without a window (too few values, or a gap between two --years
-- runs) is a NULL element in every one of them. bin_probs_by_year is the
-- years' bin probabilities one after the other, bin_count per year (year i
-- is elements (i-1)*bin_count+1 .. i*bin_count). bin_edges is stored once
-- per series: it is the hazard's configuration, the same for every year.
-- gev_*_by_year elements are NULL for years not fitted with a GEV.
-- Readers use the probability_values view, which unnests the arrays and
-- leaves the years without a result out, so it has exactly the rows and
-- columns it had before.
--
-- Existing rows are converted in place in this migration's transaction and
-- the number of results is checked against the number of rows before.

DROP VIEW probability_values;
DROP TRIGGER probability_results_version ON probability_results;
ALTER TABLE probability_results RENAME TO probability_results_yearly;
ALTER TABLE probability_results_yearly RENAME CONSTRAINT probability_results_pkey
    TO probability_results_yearly_pkey;

CREATE TABLE probability_results (
    grid_id                  integer            NOT NULL, -- no FK, as hazard_results
    dataset_id               integer            NOT NULL,
    scenario                 text               NOT NULL, -- the dataset's, for scenario filters
    risk_type                text               NOT NULL,
    first_year               smallint           NOT NULL,
    bin_edges                double precision[] NOT NULL,
    bin_count                smallint           NOT NULL CHECK (bin_count >= 1),
    method_by_year           text[]             NOT NULL
                             CHECK (array_remove(method_by_year, NULL)
                                    <@ ARRAY['gev', 'empirical', 'degenerate', 'empirical_fallback']),
    sample_size_by_year      smallint[]         NOT NULL,
    bin_probs_by_year        double precision[] NOT NULL,
    return_level_10_by_year  double precision[] NOT NULL,
    return_level_50_by_year  double precision[] NOT NULL,
    return_level_100_by_year double precision[] NOT NULL,
    gev_c_by_year            double precision[] NOT NULL,
    gev_loc_by_year          double precision[] NOT NULL,
    gev_scale_by_year        double precision[] NOT NULL,
    run_id                   uuid               NOT NULL,
    PRIMARY KEY (grid_id, dataset_id, risk_type),
    CHECK (cardinality(method_by_year) BETWEEN 1 AND 10000),
    CHECK (cardinality(sample_size_by_year) = cardinality(method_by_year)
       AND cardinality(return_level_10_by_year) = cardinality(method_by_year)
       AND cardinality(return_level_50_by_year) = cardinality(method_by_year)
       AND cardinality(return_level_100_by_year) = cardinality(method_by_year)
       AND cardinality(gev_c_by_year) = cardinality(method_by_year)
       AND cardinality(gev_loc_by_year) = cardinality(method_by_year)
       AND cardinality(gev_scale_by_year) = cardinality(method_by_year)
       AND cardinality(bin_probs_by_year) = cardinality(method_by_year) * bin_count)
);

-- The arrays make each row ~10 kB, so they are TOASTed; lz4 compresses
-- them smaller than the default pglz and cost the server a third less CPU
-- in probability-batch (bench/results/README.md). A server built without
-- lz4 keeps pglz.
DO $$
BEGIN
    ALTER TABLE probability_results
        ALTER COLUMN method_by_year SET COMPRESSION lz4,
        ALTER COLUMN sample_size_by_year SET COMPRESSION lz4,
        ALTER COLUMN bin_probs_by_year SET COMPRESSION lz4,
        ALTER COLUMN return_level_10_by_year SET COMPRESSION lz4,
        ALTER COLUMN return_level_50_by_year SET COMPRESSION lz4,
        ALTER COLUMN return_level_100_by_year SET COMPRESSION lz4,
        ALTER COLUMN gev_c_by_year SET COMPRESSION lz4,
        ALTER COLUMN gev_loc_by_year SET COMPRESSION lz4,
        ALTER COLUMN gev_scale_by_year SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'probability_results keeps pglz compression: %', SQLERRM;
END
$$;

-- Merges two series whose years are `per_year` elements each (1 for the
-- per-year arrays, bin_count for bin_probs_by_year): the years the new
-- series spans take its elements (NULL included: a rewrite of a year
-- replaces it), every other year keeps the old elements, and years between
-- the two spans are NULL. Used by the writer for --years subsets.
CREATE FUNCTION series_merge(old_first integer, old_elems anycompatiblearray,
                             new_first integer, new_elems anycompatiblearray,
                             per_year integer)
RETURNS anycompatiblearray LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_agg(CASE WHEN y BETWEEN new_first AND new_first + cardinality(new_elems) / per_year - 1
                          THEN new_elems[(y - new_first) * per_year + k]
                          WHEN y >= old_first
                          THEN old_elems[(y - old_first) * per_year + k] END ORDER BY y, k)
      FROM generate_series(least(old_first, new_first),
                           greatest(old_first + cardinality(old_elems) / per_year,
                                    new_first + cardinality(new_elems) / per_year) - 1) AS y,
           generate_series(1, per_year) AS k
$$;

-- A series whose years have different bin edges or bin counts cannot be
-- stored with one bin_edges; probability-batch has always written the
-- hazard's configured edges, so this only stops on hand-made rows.
DO $$
DECLARE
    bad record;
BEGIN
    SELECT grid_id, dataset_id, risk_type INTO bad
      FROM probability_results_yearly
     GROUP BY grid_id, dataset_id, risk_type
    HAVING count(DISTINCT bin_edges) > 1 OR count(DISTINCT cardinality(bin_probs)) > 1
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'converting probability_results: grid % dataset % % has years with different bin_edges or numbers of bin_probs; delete that series'' rows (probability-batch rewrites them) and migrate again',
            bad.grid_id, bad.dataset_id, bad.risk_type;
    END IF;
END
$$;

INSERT INTO probability_results
WITH series AS (
    SELECT grid_id, dataset_id, risk_type, min(scenario) AS scenario,
           min(year)::integer AS first_year, max(year)::integer AS last_year,
           min(bin_edges) AS bin_edges, min(cardinality(bin_probs)) AS bin_count,
           (array_agg(run_id ORDER BY year DESC))[1] AS run_id
      FROM probability_results_yearly
     GROUP BY grid_id, dataset_id, risk_type
), by_year AS (
    SELECT s.grid_id, s.dataset_id, s.risk_type, s.scenario, s.first_year, s.bin_edges, s.bin_count,
           s.run_id,
           array_agg(o.method ORDER BY y) AS methods,
           array_agg(o.sample_size ORDER BY y) AS sample_sizes,
           -- one row of bin_count per year, flattened below
           array_agg(coalesce(o.bin_probs, array_fill(NULL::float8, ARRAY[s.bin_count])) ORDER BY y) AS probs,
           array_agg(o.return_level_10 ORDER BY y) AS rl10,
           array_agg(o.return_level_50 ORDER BY y) AS rl50,
           array_agg(o.return_level_100 ORDER BY y) AS rl100,
           array_agg(o.gev_c ORDER BY y) AS gev_c,
           array_agg(o.gev_loc ORDER BY y) AS gev_loc,
           array_agg(o.gev_scale ORDER BY y) AS gev_scale
      FROM series s
     CROSS JOIN LATERAL generate_series(s.first_year, s.last_year) AS y
      LEFT JOIN probability_results_yearly o
             ON o.grid_id = s.grid_id AND o.dataset_id = s.dataset_id
            AND o.risk_type = s.risk_type AND o.year = y
     GROUP BY s.grid_id, s.dataset_id, s.risk_type, s.scenario, s.first_year, s.bin_edges,
              s.bin_count, s.run_id
)
SELECT grid_id, dataset_id, scenario, risk_type, first_year, bin_edges, bin_count, methods,
       sample_sizes, ARRAY(SELECT unnest(probs)), rl10, rl50, rl100, gev_c, gev_loc, gev_scale, run_id
  FROM by_year
 ORDER BY grid_id, dataset_id, risk_type;

DO $$
DECLARE
    before bigint;
    after  bigint;
BEGIN
    SELECT count(*) INTO before FROM probability_results_yearly;
    SELECT count(*) INTO after
      FROM probability_results p, unnest(p.method_by_year) AS m WHERE m IS NOT NULL;
    IF before <> after THEN
        RAISE EXCEPTION 'converting probability_results: % yearly rows before, % results after', before, after;
    END IF;
END
$$;

DROP TABLE probability_results_yearly;

-- Created after the conversion: the same results are not a change, so
-- cache-refresh and site-risk-batch do not redo their work for it.
CREATE TRIGGER probability_results_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON probability_results
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();

-- The reading contract, unchanged: one row per (grid point, dataset,
-- hazard, year) result, the same columns and types as before.
CREATE VIEW probability_values AS
SELECT g.lat, g.lon, p.grid_id, d.scenario, d.model, d.member, p.dataset_id, p.risk_type,
       (p.first_year + u.i - 1)::integer AS year, u.method, u.gev_c, u.gev_loc, u.gev_scale,
       p.bin_edges,
       b.probs[((u.i - 1) * p.bin_count + 1)::integer : (u.i * p.bin_count)::integer] AS bin_probs,
       u.return_level_10, u.return_level_50, u.return_level_100,
       u.sample_size::integer AS sample_size
  FROM probability_results p
  JOIN grid_points g ON g.id = p.grid_id
  JOIN datasets d ON d.id = p.dataset_id
 -- The series' bin probabilities (TOASTed: ~4.5 kB for 80 years) fetched
 -- and decompressed once per series rather than once per year's slice
 -- (the concatenation returns the detoasted array; OFFSET 0 keeps the
 -- subquery from being flattened into the per-year expression).
 CROSS JOIN LATERAL (SELECT p.bin_probs_by_year || '{}'::float8[] AS probs OFFSET 0) b
 CROSS JOIN LATERAL unnest(p.method_by_year, p.sample_size_by_year, p.return_level_10_by_year,
                           p.return_level_50_by_year, p.return_level_100_by_year,
                           p.gev_c_by_year, p.gev_loc_by_year, p.gev_scale_by_year)
       WITH ORDINALITY AS u(method, sample_size, return_level_10, return_level_50, return_level_100,
                            gev_c, gev_loc, gev_scale, i)
 WHERE u.method IS NOT NULL;

COMMENT ON VIEW probability_values IS
    'One row per grid point, dataset, hazard and year: lat, lon, grid_id, scenario, model, member, '
    'dataset_id, risk_type, year, method (gev, empirical, degenerate, empirical_fallback), '
    'gev_c/gev_loc/gev_scale (scipy convention, GEV fits only), bin_edges, bin_probs, '
    'return_level_10/50/100, sample_size (years in the window). The stable reading contract.';
