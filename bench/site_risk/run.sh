#!/usr/bin/env bash
# site-risk-batch end to end (issue 15): 10,000 sites x 4 scenarios x 5
# hazards x 80 years = 16,000,000 site-hazard-years, from probability_results
# to site_results in a throw-away PostgreSQL. probability_results is
# synthetic (SQL: 1,000 grid points x 4 scenarios x 5 hazards x 80 years =
# 1.6M yearly results in 20,000 series rows, with the real bin edges, GEV
# parameters for the GEV hazards so the conditional-mean path runs), sites come from a generated CSV through
# `jobctl sites import`; both are loaded once. The timed part is
# `site-risk-batch --force --concurrency 2`, three times (the first into an
# empty table), median recorded in bench/results/. Targets: <= 10 s, peak
# RSS <= 300 MB.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/ensure-deps.sh
cargo build --release --locked --bins
export PATH="$PWD/target/release:$PATH"
# shellcheck source=scripts/throwaway-pg.sh
source scripts/throwaway-pg.sh
export CLIMATE_JOBS_LOG_FORMAT=json
jobctl migrate >/dev/null 2>&1
work=$(mktemp -d /tmp/site-risk-bench.XXXXXX)
trap 'rm -rf "$work"; stop_throwaway_pg' EXIT

t0=$(date +%s.%N)
psql -q "$DATABASE_URL" <<'SQL'
INSERT INTO grid_points (id, lat, lon)
SELECT i, 33.0 + (i / 40) * 0.22, 125.5 + (i % 40) * 0.1 FROM generate_series(1, 1000) AS i;
INSERT INTO datasets (id, scenario, model, member, convention)
SELECT i, s, 'BENCH', 'r1i1p1f1', 'bench'
  FROM unnest(ARRAY['ssp126', 'ssp245', 'ssp370', 'ssp585']) WITH ORDINALITY AS t(s, i);
CREATE TEMP TABLE hz (risk_type text, method text, edges float8[], loc float8, scale float8);
INSERT INTO hz VALUES
  ('extreme_heat', 'empirical', '{0,5,10,20,30,60}', 12, 6),
  ('extreme_cold', 'empirical', '{0,5,10,20,30,60}', 6, 4),
  ('drought', 'gev', '{10,20,30,45,60,90}', 22, 7),
  ('urban_flood', 'gev', '{25,50,100,150,200,300}', 45, 20),
  ('river_flood', 'gev', '{50,100,200,300,400,600}', 90, 35);
-- One series per grid point, dataset and hazard, 2021-2100: seven bin
-- probabilities a year summing to 1, varying with point, scenario and year.
INSERT INTO probability_results
SELECT g, d, s, hz.risk_type, 2021, hz.edges, 7,
       array_agg(hz.method ORDER BY y), array_agg(30::smallint ORDER BY y),
       ARRAY(SELECT unnest(array_agg(ARRAY(SELECT w / sum(w) OVER () FROM unnest(ARRAY[
               6.0, 5.0, 4.0, 2.0, 1.0, 0.5 + (y - 2021) / 80.0, 0.1 + ((hashint4(g * 13 + y) % 100 + 100) % 100) / 500.0]) AS w)::float8[]
             ORDER BY y))),
       array_agg(hz.loc + hz.scale * 2.25 ORDER BY y), array_agg(hz.loc + hz.scale * 3.9 ORDER BY y),
       array_agg(hz.loc + hz.scale * 4.6 ORDER BY y),
       array_agg(CASE WHEN hz.method = 'gev' THEN ((hashint4(g * 7 + y) % 300 + 300) % 300 - 150) / 1000.0 END ORDER BY y),
       array_agg(CASE WHEN hz.method = 'gev' THEN hz.loc END ORDER BY y),
       array_agg(CASE WHEN hz.method = 'gev' THEN hz.scale END ORDER BY y),
       '00000000-0000-7000-8000-000000000000'
  FROM generate_series(1, 1000) g,
       unnest(ARRAY['ssp126', 'ssp245', 'ssp370', 'ssp585']) WITH ORDINALITY AS t(s, d),
       hz, generate_series(2021, 2100) y
 GROUP BY g, d, s, hz.risk_type, hz.edges
 ORDER BY g, d, hz.risk_type;
VACUUM ANALYZE;
SQL
# 10,000 sites in the grid's box, every asset class and structure type.
psql -q "$DATABASE_URL" -c "COPY (
  SELECT 'B' || lpad(i::text, 5, '0') AS site_id, 'Bench site ' || i AS name,
         round((33.0 + ((hashint4(i) % 1000 + 1000) % 1000) / 1000.0 * 5.4)::numeric, 4) AS lat,
         round((125.5 + ((hashint4(i * 3) % 1000 + 1000) % 1000) / 1000.0 * 3.9)::numeric, 4) AS lon,
         1000000 * (1 + i % 997) AS asset_value, 'KRW' AS currency,
         (ARRAY['residential','commercial','industrial','infrastructure','agriculture'])[1 + i % 5] AS asset_class,
         (ARRAY['wood','masonry','light_metal','mixed','steel','reinforced_concrete'])[1 + i % 6] AS structure_type,
         1900 + i % 125 AS year_built, 1 + i % 30 AS floors,
         CASE WHEN i % 4 = 0 THEN NULL ELSE (i % 150) / 10.0 END AS distance_to_river_km,
         (i % 800) / 10.0 AS distance_to_coast_km
    FROM generate_series(1, 10000) i) TO STDOUT WITH CSV HEADER" > "$work/sites.csv"
jobctl sites import "$work/sites.csv" >&2
rows_in=$(psql -tA "$DATABASE_URL" -c "SELECT count(*) FROM probability_values")
sites=$(psql -tA "$DATABASE_URL" -c "SELECT count(*) FROM sites")
echo "setup: $rows_in probability_values rows, $sites sites in $(echo "$(date +%s.%N) - $t0" | bc)s" >&2

times=(); rss=(); cpu=()
for i in 1 2 3; do
  timing=$(mktemp)
  summary=$(/usr/bin/time -o "$timing" -f '%e %M %U %S' site-risk-batch --force --concurrency 2 2>/dev/null | tail -n 1)
  read -r secs kb user sys < "$timing"
  rm -f "$timing"
  echo "run $i: ${secs}s, peak RSS ${kb} kB, CPU ${user}s user ${sys}s sys: $summary" >&2
  times+=("$secs"); rss+=("$kb"); cpu+=("$(echo "$user + $sys" | bc)")
  # The next --force run deletes these rows: start it from a vacuumed table.
  psql -q "$DATABASE_URL" -c "VACUUM site_results, site_hazard_series" >/dev/null
done
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
max_rss=$(printf '%s\n' "${rss[@]}" | sort -n | tail -n 1)
rows_out=$(psql -tA "$DATABASE_URL" -c "SELECT count(*) FROM site_results")
series_out=$(psql -tA "$DATABASE_URL" -c "SELECT count(*) FROM site_hazard_series")
site_years=$(psql -tA "$DATABASE_URL" -c "SELECT sum(cardinality(h.years)) FROM site_results r JOIN site_hazard_series h ON h.id = r.series_id")
table_mb=$(psql -tA "$DATABASE_URL" -c "SELECT (pg_total_relation_size('site_results') + pg_total_relation_size('site_hazard_series')) / 1048576")
result="bench/results/site-risk-$(date -u +%Y-%m-%d).json"
cat > "$result" <<JSON
{
  "bench": "site-risk-batch --force --concurrency 2",
  "sites": $sites, "scenarios": 4, "hazards": 5, "years": 80, "grid_points": 1000,
  "probability_results_rows": $rows_in, "site_results_rows": $rows_out, "site_hazard_series_rows": $series_out,
  "site_hazard_years": $site_years, "site_results_mb": $table_mb,
  "seconds": [$(IFS=,; echo "${times[*]}")], "median_seconds": $median, "target_seconds": 10,
  "peak_rss_kb": [$(IFS=,; echo "${rss[*]}")], "target_rss_kb": 307200,
  "job_cpu_seconds": [$(IFS=,; echo "${cpu[*]}")],
  "machine": {"nproc": $(nproc), "cpu": "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)", "loadavg": "$(cut -d' ' -f1-3 /proc/loadavg)"}
}
JSON
echo "site-risk-batch: median ${median}s, max peak RSS ${max_rss} kB for $site_years site-hazard-years in $rows_out site_results rows and $series_out series ($table_mb MB) (targets <= 10 s, <= 300 MB); recorded in $result"
