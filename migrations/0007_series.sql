-- Hazard results as one row per series: (grid point, dataset, hazard) with
-- the first year and the yearly values and scores as arrays. 80 yearly rows
-- under a text primary key and a second text index cost PostgreSQL most of
-- the hazard batch's time (bench/results/README.md); one row per series
-- holds the same values in a twentieth of the rows.
--
-- Element i (1-based) of values_by_year / scores_by_year is the year
-- first_year + i - 1. A year without a value (missing input data, or a gap
-- left between two --years runs) is a NULL element; values are never NaN.
-- Readers use the hazard_values view, which unnests the arrays and leaves
-- the NULL elements out, so it has exactly the rows it had before.
--
-- Existing rows are converted in place in this migration's transaction and
-- the number of values is checked against the number of rows before.

DROP VIEW hazard_values;
DROP TRIGGER hazard_results_version ON hazard_results;
ALTER TABLE hazard_results RENAME TO hazard_results_yearly;

CREATE TABLE hazard_results (
    grid_id        integer            NOT NULL, -- no FK: see 0002_hazard.sql
    dataset_id     integer            NOT NULL,
    risk_type      text               NOT NULL,
    first_year     smallint           NOT NULL,
    values_by_year double precision[] NOT NULL,
    scores_by_year real[]             NOT NULL,
    run_id         uuid               NOT NULL,
    PRIMARY KEY (grid_id, dataset_id, risk_type),
    CHECK (cardinality(values_by_year) = cardinality(scores_by_year)),
    CHECK (cardinality(values_by_year) BETWEEN 1 AND 10000)
);

-- Merges two series of one (grid point, dataset, hazard): the years the new
-- series spans take its elements (NULL included: a rewrite of a year
-- replaces it), every other year keeps the old element, and years between
-- the two spans are NULL. Used by the writer for --years subsets.
CREATE FUNCTION hazard_series_merge(old_first integer, old_elems anycompatiblearray,
                                    new_first integer, new_elems anycompatiblearray)
RETURNS anycompatiblearray LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_agg(CASE WHEN y BETWEEN new_first AND new_first + cardinality(new_elems) - 1
                          THEN new_elems[y - new_first + 1]
                          ELSE old_elems[y - old_first + 1] END ORDER BY y)
      FROM generate_series(least(old_first, new_first),
                           greatest(old_first + cardinality(old_elems),
                                    new_first + cardinality(new_elems)) - 1) AS y
$$;

INSERT INTO hazard_results (grid_id, dataset_id, risk_type, first_year, values_by_year,
                            scores_by_year, run_id)
WITH series AS (
    SELECT grid_id, dataset_id, risk_type, min(year)::integer AS first_year, max(year)::integer AS last_year,
           array_agg(year ORDER BY year) AS years, array_agg(value ORDER BY year) AS vals,
           array_agg(score ORDER BY year) AS scores, (array_agg(run_id ORDER BY year DESC))[1] AS run_id
      FROM hazard_results_yearly
     GROUP BY grid_id, dataset_id, risk_type
)
SELECT grid_id, dataset_id, risk_type, first_year,
       CASE WHEN cardinality(years) = last_year - first_year + 1 THEN vals
            ELSE (SELECT array_agg(u.v ORDER BY y)
                    FROM generate_series(first_year, last_year) AS y
                    LEFT JOIN unnest(years, vals) AS u(uy, v) ON u.uy = y) END,
       CASE WHEN cardinality(years) = last_year - first_year + 1 THEN scores
            ELSE (SELECT array_agg(u.s ORDER BY y)
                    FROM generate_series(first_year, last_year) AS y
                    LEFT JOIN unnest(years, scores) AS u(uy, s) ON u.uy = y) END,
       run_id
  FROM series
 ORDER BY grid_id, dataset_id, risk_type;

DO $$
DECLARE
    before bigint;
    after  bigint;
BEGIN
    SELECT count(*) INTO before FROM hazard_results_yearly;
    SELECT count(*) INTO after
      FROM hazard_results h, unnest(h.values_by_year) AS v WHERE v IS NOT NULL;
    IF before <> after THEN
        RAISE EXCEPTION 'converting hazard_results: % yearly rows before, % values after', before, after;
    END IF;
END
$$;

DROP TABLE hazard_results_yearly;

-- Created after the conversion: the same values are not a change, so
-- probability-batch and cache-refresh do not redo their work for it.
CREATE TRIGGER hazard_results_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON hazard_results
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();

-- The reading contract, unchanged: one row per hazard value.
CREATE VIEW hazard_values AS
SELECT g.lat, g.lon, d.scenario, d.model, d.member, h.risk_type,
       (h.first_year + u.i - 1)::integer AS year, u.value, u.score
  FROM hazard_results h
  JOIN grid_points g ON g.id = h.grid_id
  JOIN datasets d ON d.id = h.dataset_id
 CROSS JOIN LATERAL unnest(h.values_by_year, h.scores_by_year) WITH ORDINALITY AS u(value, score, i)
 WHERE u.value IS NOT NULL;

COMMENT ON VIEW hazard_values IS
    'One row per yearly hazard index value: lat, lon (degrees), scenario, model, member, '
    'risk_type, year, value (days or mm), score (0-100). The stable reading contract.';

-- The reading contract for probabilities: one row per (grid point, dataset,
-- hazard, year) value.
CREATE VIEW probability_values AS
SELECT g.lat, g.lon, p.grid_id, d.scenario, d.model, d.member, p.dataset_id, p.risk_type,
       p.year::integer AS year, p.method, p.gev_c, p.gev_loc, p.gev_scale, p.bin_edges,
       p.bin_probs, p.return_level_10, p.return_level_50, p.return_level_100,
       p.sample_size::integer AS sample_size
  FROM probability_results p
  JOIN grid_points g ON g.id = p.grid_id
  JOIN datasets d ON d.id = p.dataset_id;

COMMENT ON VIEW probability_values IS
    'One row per grid point, dataset, hazard and year: lat, lon, grid_id, scenario, model, member, '
    'dataset_id, risk_type, year, method (gev, empirical, degenerate, empirical_fallback), '
    'gev_c/gev_loc/gev_scale (scipy convention, GEV fits only), bin_edges, bin_probs, '
    'return_level_10/50/100, sample_size (years in the window). The stable reading contract.';
