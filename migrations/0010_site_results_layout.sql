-- site_results, compact layout (issue 15, benchmark item).
--
-- Every per-year series of a site's hazard row (AAL rate, damage ratios at
-- the return levels, hazard score) depends only on the nearest grid point,
-- the dataset, the hazard and the vulnerability curve, not on the site: the
-- sites sharing a grid point and an asset class shared identical 80-year
-- arrays, stored and copied once per site. Now each series is stored once per
-- chunk in site_hazard_series and site_results keeps one narrow row per site,
-- dataset and hazard (the site's own E and V scores, its distance and which
-- series it uses). The all_hazards totals are no longer stored: the views
-- compute them (sum of the per-hazard AAL rates, highest per-hazard risk
-- index, number of hazards) from the per-hazard rows. The views keep their
-- columns and one row per value.
--
-- Existing rows are converted in place: each per-hazard row gets its own
-- series (no merging, so no value changes), the all_hazards rows are
-- dropped (the views recompute them), and the numbers of hazard rows,
-- site-years and site × dataset totals are checked to be unchanged before
-- the transaction commits. On a large table raise `jobctl migrate
-- --statement-timeout`: the conversion rewrites every row once.

-- What the views show, counted on the stored rows (counting the views
-- themselves would unnest every array twice): per-hazard rows and their
-- site-years, and the site × dataset totals.
CREATE TEMP TABLE site_results_before ON COMMIT DROP AS
SELECT count(*) FILTER (WHERE risk_type <> 'all_hazards') AS hazard_rows,
       COALESCE(sum(cardinality(years)) FILTER (WHERE risk_type <> 'all_hazards'), 0) AS hazard_years,
       count(*) FILTER (WHERE risk_type = 'all_hazards') AS totals
  FROM site_results;

DROP VIEW site_risk_values;
DROP VIEW site_aal_cache;

-- One per (chunk, grid point, dataset, hazard, curve): the site rows of a
-- chunk point at it by id. Ids come from the sequence, so two chunks writing
-- the same grid point at the same time never collide; a series no site row
-- points at any more is deleted by the job.
CREATE TABLE site_hazard_series (
    id                 bigint           PRIMARY KEY,
    grid_id            integer          NOT NULL,
    risk_type          text             NOT NULL,
    curve_fingerprint  text             NOT NULL,
    years              smallint[]       NOT NULL,
    -- Σ pᵢ f(xᵢ), the expected damage ratio of the year (× asset value = AAL);
    -- double precision for its 1e-9 parity with CLIMADA
    aal_rate           double precision[] NOT NULL,
    -- f(RL_T), the damage ratio at the 10/50/100-year return levels
    damage_rl10        real[]           NOT NULL,
    damage_rl50        real[]           NOT NULL,
    damage_rl100       real[]           NOT NULL,
    -- expected index score (0–100) over the intensity bins
    hazard_score       real[]           NOT NULL,
    run_id             uuid             NOT NULL
)
-- ~2 kB rows: kept inline and uncompressed (pglz gains little on floats).
WITH (toast_tuple_target = 8160);
CREATE SEQUENCE site_hazard_series_id_seq OWNED BY site_hazard_series.id;

ALTER TABLE site_results ADD COLUMN series_id bigint DEFAULT nextval('site_hazard_series_id_seq');
INSERT INTO site_hazard_series (id, grid_id, risk_type, curve_fingerprint, years, aal_rate,
                                damage_rl10, damage_rl50, damage_rl100, hazard_score, run_id)
SELECT series_id, COALESCE(grid_id, 0), risk_type, COALESCE(curve_fingerprint, ''), years, aal_rate,
       COALESCE(damage_rl10, array_fill(NULL::real, ARRAY[cardinality(years)])),
       COALESCE(damage_rl50, array_fill(NULL::real, ARRAY[cardinality(years)])),
       COALESCE(damage_rl100, array_fill(NULL::real, ARRAY[cardinality(years)])),
       COALESCE(hazard_score, array_fill(NULL::real, ARRAY[cardinality(years)])),
       run_id
  FROM site_results
 WHERE risk_type <> 'all_hazards';
DELETE FROM site_results WHERE risk_type = 'all_hazards';
ALTER TABLE site_results
    ALTER COLUMN series_id DROP DEFAULT,
    ALTER COLUMN series_id SET NOT NULL,
    DROP COLUMN years,
    DROP COLUMN aal_rate,
    DROP COLUMN damage_rl10,
    DROP COLUMN damage_rl50,
    DROP COLUMN damage_rl100,
    DROP COLUMN hazard_score,
    DROP COLUMN risk_index,
    DROP COLUMN hazard_count,
    RESET (toast_tuple_target);
CREATE INDEX site_results_series ON site_results (series_id);

-- Per site, dataset, hazard and year (the inner query of both views):
-- the site's row joined to its series; the all_hazards rows aggregate it.
-- One row per value: what the API and reports read.
-- metric / unit: aal_rate (ratio of asset value per year), aal_value
-- (currency per year), loss_rl10 / loss_rl50 / loss_rl100 (currency),
-- hazard_score, e_score, v_score, risk_index (0–100), hazards_summed
-- (count, totals only). basis says what kind of figure it is. A hazard's
-- risk index is (hazard_score · e_score · v_score)^⅓ as src/risk/scores.rs
-- computes it; the all_hazards row's is the highest of them, its aal_rate
-- the sum of the per-hazard expectations.
CREATE VIEW site_risk_values AS
WITH per_hazard AS NOT MATERIALIZED (
    SELECT r.site_id, r.scenario, r.model, r.member, r.risk_type, y.year, y.aal_rate,
           y.d10, y.d50, y.d100, y.hazard_score,
           cbrt(y.hazard_score::float8 * r.e_score * r.v_score) AS risk_index,
           r.e_score, r.v_score, r.grid_id, r.distance_km, r.computed_at
      FROM site_results r
      JOIN site_hazard_series h ON h.id = r.series_id
     CROSS JOIN LATERAL unnest(h.years, h.aal_rate, h.damage_rl10, h.damage_rl50, h.damage_rl100, h.hazard_score)
           AS y(year, aal_rate, d10, d50, d100, hazard_score)
), per_row AS NOT MATERIALIZED (
    SELECT site_id, scenario, model, member, risk_type, year, aal_rate, d10, d50, d100,
           hazard_score, risk_index, e_score, v_score, NULL::bigint AS hazard_count,
           grid_id, distance_km, computed_at
      FROM per_hazard
    UNION ALL
    SELECT site_id, scenario, model, member, 'all_hazards', year, sum(aal_rate), NULL, NULL, NULL,
           NULL, max(risk_index), NULL, max(v_score), count(aal_rate),
           max(grid_id), max(distance_km), max(computed_at)
      FROM per_hazard
     GROUP BY site_id, scenario, model, member, year
)
SELECT r.site_id, r.scenario, r.model, r.member, r.risk_type, r.year::smallint AS year,
       m.metric, m.value, m.unit, m.basis, r.grid_id, r.distance_km, r.computed_at
  FROM per_row r
  JOIN sites s USING (site_id)
  CROSS JOIN LATERAL (VALUES
       ('aal_rate',     r.aal_rate,                 'ratio/year',       CASE WHEN r.risk_type = 'all_hazards' THEN 'sum of per-hazard expectations' ELSE 'expectation over intensity bins' END),
       ('aal_value',    r.aal_rate * s.asset_value, s.currency || '/year', CASE WHEN r.risk_type = 'all_hazards' THEN 'sum of per-hazard expectations' ELSE 'expectation over intensity bins' END),
       ('loss_rl10',    r.d10::float8 * s.asset_value,      s.currency,         'damage at the 10-year return level'),
       ('loss_rl50',    r.d50::float8 * s.asset_value,      s.currency,         'damage at the 50-year return level'),
       ('loss_rl100',   r.d100::float8 * s.asset_value,     s.currency,         'damage at the 100-year return level'),
       ('hazard_score', r.hazard_score::float8,     'score 0-100',      'expected index score over intensity bins'),
       ('e_score',      r.e_score::float8,          'score 0-100',      'exposure rule on site attributes'),
       ('v_score',      r.v_score::float8,          'score 0-100',      'vulnerability rule on site attributes'),
       ('risk_index',   r.risk_index,               'score 0-100',      CASE WHEN r.risk_type = 'all_hazards' THEN 'highest per-hazard risk index' ELSE 'geometric mean of hazard, E and V scores' END),
       ('hazards_summed', r.hazard_count::float8,   'count',            'hazards in the total')
  ) AS m(metric, value, unit, basis)
 WHERE m.value IS NOT NULL;

-- What the API serves next to region_hazard_cache: per site, dataset,
-- hazard (and 'all_hazards') and year, the AAL and the scores.
CREATE VIEW site_aal_cache AS
WITH per_hazard AS NOT MATERIALIZED (
    SELECT r.site_id, r.scenario, r.model, r.member, r.risk_type, y.year, y.aal_rate,
           cbrt(y.hazard_score::float8 * r.e_score * r.v_score) AS risk_index,
           r.e_score, r.v_score, r.grid_id, r.distance_km, r.computed_at
      FROM site_results r
      JOIN site_hazard_series h ON h.id = r.series_id
     CROSS JOIN LATERAL unnest(h.years, h.aal_rate, h.hazard_score) AS y(year, aal_rate, hazard_score)
), per_row AS NOT MATERIALIZED (
    SELECT site_id, scenario, model, member, risk_type, year, aal_rate, risk_index, e_score, v_score,
           grid_id, distance_km, computed_at
      FROM per_hazard
    UNION ALL
    SELECT site_id, scenario, model, member, 'all_hazards', year, sum(aal_rate), max(risk_index),
           NULL, max(v_score), max(grid_id), max(distance_km), max(computed_at)
      FROM per_hazard
     GROUP BY site_id, scenario, model, member, year
)
SELECT r.site_id, s.name, s.lat, s.lon, r.scenario, r.model, r.member, r.risk_type,
       r.year::smallint AS year, s.currency, r.aal_rate, r.aal_rate * s.asset_value AS aal_value,
       r.risk_index, r.e_score::real AS e_score, r.v_score::real AS v_score, r.grid_id,
       r.distance_km::real AS distance_km, r.computed_at
  FROM per_row r
  JOIN sites s USING (site_id);

DO $$
DECLARE
    before record;
    after record;
BEGIN
    SELECT * INTO before FROM site_results_before;
    SELECT count(*) AS hazard_rows, COALESCE(sum(cardinality(h.years)), 0) AS hazard_years,
           count(DISTINCT (r.site_id, r.scenario, r.model, r.member)) AS totals
      INTO after
      FROM site_results r JOIN site_hazard_series h ON h.id = r.series_id;
    IF after.hazard_rows <> before.hazard_rows OR after.hazard_years <> before.hazard_years
       OR after.totals <> before.totals THEN
        RAISE EXCEPTION 'site_results layout conversion: % hazard rows, % site-years, % totals after; % , %, % before; rolled back',
            after.hazard_rows, after.hazard_years, after.totals,
            before.hazard_rows, before.hazard_years, before.totals;
    END IF;
END $$;
