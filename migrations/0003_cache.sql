-- probability-batch output, regions, the per-region cache, and change
-- tracking so cache-refresh can skip when nothing changed.

-- P(intensity bin) and return levels per grid point, scenario, hazard and
-- year, from the window of annual values around the year.
CREATE TABLE probability_results (
    grid_id         integer          NOT NULL, -- no FK, as hazard_results
    scenario        text             NOT NULL,
    risk_type       text             NOT NULL,
    year            smallint         NOT NULL,
    method          text             NOT NULL
                    CHECK (method IN ('gev', 'empirical', 'degenerate', 'empirical_fallback')),
    sample_size     smallint         NOT NULL,
    bin_edges       double precision[] NOT NULL,
    bin_probs       double precision[] NOT NULL,
    return_level_10  double precision NOT NULL,
    return_level_50  double precision NOT NULL,
    return_level_100 double precision NOT NULL,
    gev_c           double precision,
    gev_loc         double precision,
    gev_scale       double precision,
    run_id          uuid             NOT NULL,
    PRIMARY KEY (grid_id, scenario, risk_type, year)
);

CREATE TABLE regions (
    code text PRIMARY KEY,
    name text NOT NULL,
    lat  double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon  double precision NOT NULL CHECK (lon BETWEEN -180 AND 360)
);

-- The cache is built as a new generation beside the current one; the swap
-- is a one-row update of region_hazard_cache_state, so a reader of the
-- region_hazard_cache view sees the old generation or the new one, never a
-- mix and never an empty table, and never waits on a rename or a drop.
CREATE TABLE region_hazard_cache_rows (
    generation       bigint           NOT NULL,
    region_code      text             NOT NULL,
    scenario         text             NOT NULL,
    risk_type        text             NOT NULL,
    year             smallint         NOT NULL,
    grid_id          integer          NOT NULL,
    distance_km      real             NOT NULL,
    value            double precision,
    score            real,
    bin_probs        double precision[],
    return_level_10  double precision,
    return_level_50  double precision,
    return_level_100 double precision,
    PRIMARY KEY (generation, region_code, scenario, risk_type, year)
);

CREATE TABLE region_hazard_cache_state (
    only_row        boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
    generation      bigint      NOT NULL,
    rows            bigint      NOT NULL,
    source_versions jsonb       NOT NULL,
    run_id          uuid        NOT NULL,
    refreshed_at    timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE region_hazard_cache_generation;

CREATE VIEW region_hazard_cache AS
SELECT r.region_code, r.scenario, r.risk_type, r.year, r.grid_id, r.distance_km,
       r.value, r.score, r.bin_probs, r.return_level_10, r.return_level_50,
       r.return_level_100, s.refreshed_at
  FROM region_hazard_cache_rows r
  JOIN region_hazard_cache_state s ON s.generation = r.generation;

-- A version per source table, bumped by every statement that changes it
-- (in the writer's transaction, so a refresh never records a change it
-- cannot see yet). cache-refresh compares them with what it built from.
CREATE TABLE data_versions (
    table_name text        PRIMARY KEY,
    version    bigint      NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION bump_data_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO data_versions (table_name, version) VALUES (TG_TABLE_NAME, 1)
    ON CONFLICT (table_name) DO UPDATE
        SET version = data_versions.version + 1, changed_at = now();
    RETURN NULL;
END
$$;

CREATE TRIGGER hazard_results_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON hazard_results
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
CREATE TRIGGER probability_results_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON probability_results
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
CREATE TRIGGER regions_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON regions
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
