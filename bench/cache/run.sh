#!/usr/bin/env bash
# cache-refresh benchmark (issue 5): 250 regions x 4 scenarios x 5 hazards x
# 80 years from a 10,000-point grid. Loads synthetic hazard_results (16M
# values, 200,000 series rows) and their probabilities (200,000 series) with SQL, then times cache-refresh --force three times and records
# the figures in bench/results/. Target: under 5 s (issue 5), 1.5 s (issue 10).
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/ensure-deps.sh
cargo build --release --locked --bins
export PATH="$PWD/target/release:$PATH"
# shellcheck source=scripts/throwaway-pg.sh
source scripts/throwaway-pg.sh
export CLIMATE_JOBS_LOG_FORMAT=json
jobctl migrate >/dev/null

echo "loading 10,000 grid points, 16,000,000 hazard values (200,000 series), 250 regions ..." >&2
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
load_start=$(date +%s.%N)
psql -q "$DATABASE_URL" <<'SQL'
INSERT INTO grid_points (id, lat, lon)
SELECT i, 33.0 + (i / 100) * 0.055, 125.5 + (i % 100) * 0.04 FROM generate_series(0, 9999) AS i;
INSERT INTO datasets (id, scenario, model, member, convention)
SELECT i, s, 'BENCH', 'r1i1p1f1', 'bench'
  FROM unnest(ARRAY['ssp126','ssp245','ssp370','ssp585']) WITH ORDINALITY AS t(s, i);
-- One row per grid point, dataset and hazard, 80 yearly values each
-- (16M values, the readers' hazard_values rows).
INSERT INTO hazard_results (grid_id, dataset_id, risk_type, first_year, values_by_year, scores_by_year, run_id)
SELECT g, d, r, 2021,
       array_agg((hashint4(g * 7919 + y) % 1000) / 10.0 ORDER BY y)::float8[],
       array_agg(abs(((hashint4(g * 104729 + y) % 1000 + 1000) % 1000) / 10.0) ORDER BY y)::real[],
       '00000000-0000-7000-8000-000000000000'
  FROM generate_series(0, 9999) g, generate_series(1, 4) d,
       unnest(ARRAY['extreme_heat','extreme_cold','drought','urban_flood','river_flood']) r,
       generate_series(2021, 2100) y
 GROUP BY g, d, r
 ORDER BY g, d, r;
-- Probabilities for every series too (one row per grid point, dataset and
-- hazard, migration 0008): the cache copies the nearest points' bin
-- probabilities and return levels. 97 variants per hazard, built once.
CREATE TEMP TABLE pv AS
SELECT r, v, ARRAY(SELECT x / sum(x) OVER () FROM unnest(ARRAY[6.0, 5.0, 4.0, 2.0, 1.0,
                     0.5 + (y - 2021) / 80.0, 0.1 + ((hashint4(v * 13 + y) % 100 + 100) % 100) / 500.0]) AS x)::float8[] AS probs,
       y
  FROM unnest(ARRAY['extreme_heat','extreme_cold','drought','urban_flood','river_flood']) r,
       generate_series(0, 96) v, generate_series(2021, 2100) y;
CREATE TEMP TABLE pseries AS
SELECT r, v, ARRAY(SELECT unnest(array_agg(probs ORDER BY y))) AS probs,
       array_agg(20.0 + v + (y - 2021) * 0.1 ORDER BY y)::float8[] AS rl10,
       array_agg(30.0 + v + (y - 2021) * 0.1 ORDER BY y)::float8[] AS rl50,
       array_agg(35.0 + v + (y - 2021) * 0.1 ORDER BY y)::float8[] AS rl100
  FROM pv GROUP BY r, v;
INSERT INTO probability_results
SELECT g, d, (ARRAY['ssp126','ssp245','ssp370','ssp585'])[d], p.r, 2021, '{0,5,10,20,30,60}', 7,
       array_fill('empirical'::text, ARRAY[80]), array_fill(30::smallint, ARRAY[80]), p.probs,
       p.rl10, p.rl50, p.rl100, array_fill(NULL::float8, ARRAY[80]),
       array_fill(NULL::float8, ARRAY[80]), array_fill(NULL::float8, ARRAY[80]),
       '00000000-0000-7000-8000-000000000000'
  FROM generate_series(0, 9999) g, generate_series(1, 4) d, pseries p
 WHERE p.v = (g + d) % 97
 ORDER BY g, d, p.r;
INSERT INTO regions (code, name, lat, lon)
SELECT 'R' || lpad(i::text, 3, '0'), 'Region ' || i, 33.1 + (i % 16) * 0.33, 125.6 + (i / 16) * 0.25 FROM generate_series(0, 249) i;
VACUUM ANALYZE;
SQL
load_s=$(echo "$(date +%s.%N) - $load_start" | bc)
echo "loaded in ${load_s}s" >&2

times=()
for i in 1 2 3; do
  start=$(date +%s.%N)
  out=$(cache-refresh --force 2>/dev/null | tail -n 1)
  secs=$(echo "$(date +%s.%N) - $start" | bc | sed "s/^\./0./")  # JSON needs the leading 0
  rows=$(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["rows_written"], d["status"], d["peak_rss_kb"])')
  echo "run $i: ${secs}s  rows/status/peak_rss_kb: $rows" >&2
  times+=("$secs")
done
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
rows=$(psql -tA "$DATABASE_URL" -c "SELECT count(*) FROM region_hazard_cache")
date_tag=$(date -u +%Y-%m-%d)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
result="bench/results/cache-refresh-$date_tag.json"
cat > "$result" <<JSON
{
  "bench": "cache-refresh --force",
  "grid_points": 10000, "regions": 250, "scenarios": 4, "hazards": 5, "years": 80,
  "hazard_values": 16000000, "hazard_series_rows": 200000, "probability_series_rows": 200000, "cache_rows": $rows, "commit": "$(git rev-parse --short HEAD)",
  "seconds": [$(IFS=,; echo "${times[*]}")], "median_seconds": $median, "target_seconds": 1.5,
  "machine": {"nproc": $(nproc), "cpu": "$cpu", "loadavg_before": "$load_before", "loadavg_after": "$(cut -d' ' -f1-3 /proc/loadavg)"},
  "postgres": "$(psql -tA "$DATABASE_URL" -c 'SHOW server_version')"
}
JSON
echo "cache-refresh: median ${median}s over 3 runs for $rows cache rows (target <= 1.5 s); recorded in $result"
