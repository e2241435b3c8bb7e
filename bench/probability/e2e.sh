#!/usr/bin/env bash
# probability-batch end to end (issue 4): 1,000 grid points x 5 hazards x
# 80 years = 400,000 windows, from hazard_results to probability_results in
# a throw-away PostgreSQL. hazard_results is synthetic (SQL: GEV-like
# maxima and Poisson-like counts, a few missing years), loaded once; the
# timed part is `probability-batch --force`, three times, median recorded
# in bench/results/. Target: under 5 s, peak RSS under 300 MB.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/ensure-deps.sh
cargo build --release --locked --bins
export PATH="$PWD/target/release:$PATH"
# shellcheck source=scripts/throwaway-pg.sh
source scripts/throwaway-pg.sh
export CLIMATE_JOBS_LOG_FORMAT=json
jobctl migrate >/dev/null 2>&1

psql -q "$DATABASE_URL" <<'SQL'
INSERT INTO grid_points (id, lat, lon)
SELECT i, 33.0 + (i / 40) * 0.22, 125.5 + (i % 40) * 0.1 FROM generate_series(1, 1000) AS i;
-- Deterministic pseudo-random values: maxima via a Gumbel-like transform,
-- counts via a rounded transform; about 1 year in 200 missing.
INSERT INTO hazard_results (grid_id, scenario, risk_type, year, value, score, run_id)
SELECT g, 'ssp245', r, y,
       CASE WHEN r IN ('extreme_heat', 'extreme_cold')
            THEN floor(10 * -ln(-ln(least(0.999, greatest(0.001, ((hashint4(g * 31 + y * 7 + length(r)) % 1000 + 1000) % 1000) / 1000.0)))))
            ELSE 80 + 25 * -ln(-ln(least(0.999, greatest(0.001, ((hashint4(g * 17 + y * 3 + length(r)) % 1000 + 1000) % 1000) / 1000.0)))) END,
       50, '00000000-0000-7000-8000-000000000000'
  FROM generate_series(1, 1000) g,
       unnest(ARRAY['extreme_heat','extreme_cold','drought','urban_flood','river_flood']) r,
       generate_series(2021, 2100) y
 WHERE (hashint4(g * 101 + y) % 200) <> 0
 ORDER BY 1, 2, 3, 4;
VACUUM ANALYZE;
SQL
rows_in=$(psql -tA "$DATABASE_URL" -c "SELECT count(*) FROM hazard_results")
echo "hazard_results: $rows_in rows" >&2

times=(); rss=()
for i in 1 2 3; do
  timing=$(mktemp)
  summary=$(/usr/bin/time -o "$timing" -f '%e %M' probability-batch --force --concurrency 2 2>/dev/null | tail -n 1)
  read -r secs kb < "$timing"
  rm -f "$timing"
  echo "run $i: ${secs}s, peak RSS ${kb} kB: $summary" >&2
  times+=("$secs"); rss+=("$kb")
done
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
max_rss=$(printf '%s\n' "${rss[@]}" | sort -n | tail -n 1)
rows_out=$(psql -tA "$DATABASE_URL" -c "SELECT count(*) FROM probability_results")
result="bench/results/probability-e2e-$(date -u +%Y-%m-%d).json"
cat > "$result" <<JSON
{
  "bench": "probability-batch --force --concurrency 2",
  "grid_points": 1000, "hazards": 5, "years": 80,
  "hazard_results_rows": $rows_in, "probability_results_rows": $rows_out,
  "seconds": [$(IFS=,; echo "${times[*]}")], "median_seconds": $median, "target_seconds": 5,
  "peak_rss_kb": [$(IFS=,; echo "${rss[*]}")], "target_rss_kb": 307200,
  "machine": {"nproc": $(nproc), "cpu": "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)", "loadavg": "$(cut -d' ' -f1-3 /proc/loadavg)"}
}
JSON
echo "probability-batch: median ${median}s, max peak RSS ${max_rss} kB for $rows_out windows (targets < 5 s, < 300 MB); recorded in $result"
