-- site-risk-batch: business sites, their expected losses and scores per
-- dataset, hazard and year, and what the last full run was computed from.

-- Imported by `jobctl sites import FILE.csv` (src/risk/sites.rs documents
-- the columns). source_file / source_line name where each site came from,
-- so a later run can name the line of a site it cannot assess.
CREATE TABLE sites (
    site_id              text             PRIMARY KEY,
    name                 text             NOT NULL,
    lat                  double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon                  double precision NOT NULL CHECK (lon BETWEEN -180 AND 360),
    asset_value          double precision NOT NULL CHECK (asset_value > 0),
    currency             text             NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    asset_class          text             NOT NULL,
    structure_type       text             NOT NULL,
    year_built           smallint         NOT NULL,
    floors               smallint         NOT NULL CHECK (floors >= 1),
    distance_to_river_km double precision CHECK (distance_to_river_km >= 0),
    distance_to_coast_km double precision CHECK (distance_to_coast_km >= 0),
    source_file          text             NOT NULL,
    source_line          integer          NOT NULL
);

CREATE TRIGGER sites_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON sites
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();

-- One row per site, dataset (scenario, model, member) and hazard, with the
-- years as arrays: 10,000 sites × 4 scenarios × 5 hazards × 80 years is 16
-- million site-years, which as single rows would be ~1 GB of tuple headers
-- and keys. risk_type 'all_hazards' is the per-site total: aal_rate is the
-- sum of the per-hazard expectations (hazard_count says how many hazards
-- had a value that year), risk_index the highest per-hazard index; its
-- per-hazard columns are NULL. A hazard's own risk index is not stored: the
-- views compute it, (hazard_score · e_score · v_score)^⅓ as
-- src/risk/scores.rs does, from what is stored.
-- model and member come from the probability rows' dataset (datasets).
CREATE TABLE site_results (
    site_id            text             NOT NULL REFERENCES sites ON DELETE CASCADE,
    scenario           text             NOT NULL,
    model              text             NOT NULL DEFAULT '',
    member             text             NOT NULL DEFAULT '',
    risk_type          text             NOT NULL,
    grid_id            integer,
    distance_km        real,
    e_score            real,
    v_score            real             NOT NULL,
    curve_fingerprint  text,
    years              smallint[]       NOT NULL,
    -- Σ pᵢ f(xᵢ), the expected damage ratio of the year (× asset value = AAL)
    aal_rate           double precision[] NOT NULL,
    -- f(RL_T), the damage ratio at the 10/50/100-year return levels
    -- (real: a damage ratio needs no more than 7 digits; aal_rate keeps
    -- double precision for its 1e-9 parity with CLIMADA)
    damage_rl10        real[],
    damage_rl50        real[],
    damage_rl100       real[],
    hazard_score       real[],
    risk_index         real[],
    hazard_count       smallint[],
    run_id             uuid             NOT NULL,
    computed_at        timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, scenario, model, member, risk_type)
)
-- A row is ~2.5 kB: above the default 2 kB target Postgres would try to
-- compress its arrays (pglz gains little on floats and costs the writer);
-- up to 8 kB rows stay inline and uncompressed.
WITH (toast_tuple_target = 8160);

CREATE TRIGGER site_results_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON site_results
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();

-- The fingerprint of each curve the last full run used: a run whose sites
-- and probabilities are unchanged recomputes only the asset classes whose
-- curves changed.
CREATE TABLE site_risk_curves (
    risk_type   text NOT NULL,
    asset_class text NOT NULL,
    fingerprint text NOT NULL,
    run_id      uuid NOT NULL,
    PRIMARY KEY (risk_type, asset_class)
);

-- One row per value: what the API and reports read.
-- metric / unit: aal_rate (ratio of asset value per year), aal_value
-- (currency per year), loss_rl10 / loss_rl50 / loss_rl100 (currency),
-- hazard_score, e_score, v_score, risk_index (0–100), hazards_summed
-- (count, totals only). basis says what kind of figure it is.
CREATE VIEW site_risk_values AS
SELECT r.site_id, r.scenario, r.model, r.member, r.risk_type, y.year::smallint AS year,
       m.metric, m.value, m.unit, m.basis, r.grid_id, r.distance_km, r.computed_at
  FROM site_results r
  JOIN sites s USING (site_id)
  CROSS JOIN LATERAL unnest(r.years, r.aal_rate, r.damage_rl10, r.damage_rl50, r.damage_rl100,
                            r.hazard_score, r.risk_index, r.hazard_count)
       AS y(year, aal_rate, d10, d50, d100, hazard_score, risk_index, hazard_count)
  CROSS JOIN LATERAL (VALUES
       ('aal_rate',     y.aal_rate,                 'ratio/year',       CASE WHEN r.risk_type = 'all_hazards' THEN 'sum of per-hazard expectations' ELSE 'expectation over intensity bins' END),
       ('aal_value',    y.aal_rate * s.asset_value, s.currency || '/year', CASE WHEN r.risk_type = 'all_hazards' THEN 'sum of per-hazard expectations' ELSE 'expectation over intensity bins' END),
       ('loss_rl10',    y.d10::float8 * s.asset_value,      s.currency,         'damage at the 10-year return level'),
       ('loss_rl50',    y.d50::float8 * s.asset_value,      s.currency,         'damage at the 50-year return level'),
       ('loss_rl100',   y.d100::float8 * s.asset_value,     s.currency,         'damage at the 100-year return level'),
       ('hazard_score', y.hazard_score::float8,     'score 0-100',      'expected index score over intensity bins'),
       ('e_score',      r.e_score::float8,          'score 0-100',      'exposure rule on site attributes'),
       ('v_score',      r.v_score::float8,          'score 0-100',      'vulnerability rule on site attributes'),
       ('risk_index',   COALESCE(y.risk_index::float8, cbrt(y.hazard_score::float8 * r.e_score * r.v_score)),       'score 0-100',      CASE WHEN r.risk_type = 'all_hazards' THEN 'highest per-hazard risk index' ELSE 'geometric mean of hazard, E and V scores' END),
       ('hazards_summed', y.hazard_count::float8,   'count',            'hazards in the total')
  ) AS m(metric, value, unit, basis)
 WHERE m.value IS NOT NULL;

-- What the API serves next to region_hazard_cache: per site, dataset,
-- hazard (and 'all_hazards') and year, the AAL and the scores.
CREATE VIEW site_aal_cache AS
SELECT r.site_id, s.name, s.lat, s.lon, r.scenario, r.model, r.member, r.risk_type,
       y.year::smallint AS year, s.currency, y.aal_rate, y.aal_rate * s.asset_value AS aal_value,
       COALESCE(y.risk_index::float8, cbrt(y.hazard_score::float8 * r.e_score * r.v_score)) AS risk_index,
       r.e_score, r.v_score, r.grid_id, r.distance_km, r.computed_at
  FROM site_results r
  JOIN sites s USING (site_id)
  CROSS JOIN LATERAL unnest(r.years, r.aal_rate, r.hazard_score, r.risk_index)
       AS y(year, aal_rate, hazard_score, risk_index);
