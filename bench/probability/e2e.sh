#!/usr/bin/env bash
# probability-batch end to end (issues 4 and 10): 1,000 grid points x 5
# hazards x 80 years = ~400,000 windows, from hazard_results to
# probability_results in a throw-away PostgreSQL, against lmoments3's
# lmom_fit over the same windows. hazard_results is synthetic (SQL: GEV-like
# maxima and Poisson-like counts, about 1 year in 200 missing), loaded once
# as series (one row per grid point and hazard). Interleaved REPS times:
#   fresh  — probability_results emptied first (TRUNCATE, not timed), then the batch;
#   force  — the batch again over the rows just written (each chunk deletes + COPYs);
#   lmoments3 — bench/probability/lmoments3_windows.py, fits only.
# Medians recorded in bench/results/probability-e2e-DATE.json. Targets (issue 10):
# batch end to end >= 20x lmoments3; --force within 1.3x of fresh.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPS=${REPS:-3}
PY=${PY:-/opt/fixtures-venv/bin/python}
scripts/ensure-deps.sh
cargo build --release --locked --bins
export PATH="$PWD/target/release:$PATH"
# shellcheck source=scripts/throwaway-pg.sh
source scripts/throwaway-pg.sh
export CLIMATE_JOBS_LOG_FORMAT=json
jobctl migrate >/dev/null 2>&1
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

psql -q "$DATABASE_URL" <<'SQL'
INSERT INTO grid_points (id, lat, lon)
SELECT i, 33.0 + (i / 40) * 0.22, 125.5 + (i % 40) * 0.1 FROM generate_series(1, 1000) AS i;
INSERT INTO datasets (id, scenario, model, member, convention) VALUES (1, 'ssp245', 'BENCH', 'r1i1p1f1', 'bench');
-- Deterministic pseudo-random values: maxima via a Gumbel-like transform,
-- counts via a rounded transform; about 1 year in 200 missing (NULL).
INSERT INTO hazard_results (grid_id, dataset_id, risk_type, first_year, values_by_year, scores_by_year, run_id)
SELECT g, 1, r, 2021,
       array_agg(CASE WHEN (hashint4(g * 101 + y) % 200) = 0 THEN NULL
                      WHEN r IN ('extreme_heat', 'extreme_cold')
            THEN floor(10 * -ln(-ln(least(0.999, greatest(0.001, ((hashint4(g * 31 + y * 7 + length(r)) % 1000 + 1000) % 1000) / 1000.0)))))
            ELSE 80 + 25 * -ln(-ln(least(0.999, greatest(0.001, ((hashint4(g * 17 + y * 3 + length(r)) % 1000 + 1000) % 1000) / 1000.0)))) END
                 ORDER BY y)::float8[],
       array_agg(CASE WHEN (hashint4(g * 101 + y) % 200) = 0 THEN NULL ELSE 50 END ORDER BY y)::real[],
       '00000000-0000-7000-8000-000000000000'
  FROM generate_series(1, 1000) g,
       unnest(ARRAY['extreme_heat','extreme_cold','drought','urban_flood','river_flood']) r,
       generate_series(2021, 2100) y
 GROUP BY g, r
 ORDER BY g, r;
VACUUM ANALYZE;
SQL
values_in=$(psql -tA "$DATABASE_URL" -c "SELECT count(*) FROM hazard_values")
series=$(mktemp)
psql -tA "$DATABASE_URL" -c "\\copy (SELECT grid_id, risk_type, first_year, values_by_year FROM hazard_results) TO '$series' (FORMAT csv)"
echo "hazard_results: $values_in values" >&2

fresh=(); force=(); lm=(); rss=()
timed() { # timed ARRAY_NAME: runs probability-batch --force, appends its wall seconds
  local timing summary secs kb
  timing=$(mktemp)
  summary=$(/usr/bin/time -o "$timing" -f '%e %M' probability-batch --force --concurrency 2 2>/dev/null | tail -n 1)
  read -r secs kb < "$timing"
  rm -f "$timing"
  echo "  $1: ${secs}s, peak RSS ${kb} kB: $summary" >&2
  eval "$1+=(\"$secs\")"
  rss+=("$kb")
}
for i in $(seq 1 "$REPS"); do
  echo "repetition $i/$REPS (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  psql -q "$DATABASE_URL" -c "TRUNCATE probability_results"
  timed fresh
  timed force
  out=$("$PY" bench/probability/lmoments3_windows.py "$series" --runs 1)
  echo "  lmoments3: $out" >&2
  lm+=("$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["median_seconds"])')")
  windows=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["windows"])')
done
rm -f "$series"
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
m_fresh=$(med "${fresh[@]}"); m_force=$(med "${force[@]}"); m_lm=$(med "${lm[@]}")
max_rss=$(printf '%s\n' "${rss[@]}" | sort -n | tail -n 1)
rows_out=$(psql -tA "$DATABASE_URL" -c "SELECT count(*) FROM probability_values")
speedup=$(echo "scale=2; $m_lm / $m_fresh" | bc | sed "s/^\./0./")  # JSON needs the leading 0
force_ratio=$(echo "scale=3; $m_force / $m_fresh" | bc | sed "s/^\./0./")
result="bench/results/probability-e2e-$(date -u +%Y-%m-%d).json"
cat > "$result" <<JSON
{
  "bench": "bench/probability/e2e.sh: probability-batch --concurrency 2, fresh and --force, vs lmoments3 lmom_fit over the same windows",
  "commit": "$(git rev-parse --short HEAD)",
  "grid_points": 1000, "hazards": 5, "years": 80,
  "hazard_values": $values_in, "probability_rows": $rows_out, "lmoments3_windows": $windows,
  "fresh_seconds": [$(IFS=,; echo "${fresh[*]}")], "median_fresh_seconds": $m_fresh,
  "force_seconds": [$(IFS=,; echo "${force[*]}")], "median_force_seconds": $m_force,
  "lmoments3_fit_seconds": [$(IFS=,; echo "${lm[*]}")], "median_lmoments3_seconds": $m_lm,
  "lmoments3_over_fresh": $speedup, "target_lmoments3_over_fresh": 20,
  "force_over_fresh": $force_ratio, "target_force_over_fresh": 1.3,
  "peak_rss_kb": [$(IFS=,; echo "${rss[*]}")],
  "machine": {"nproc": $(nproc), "cpu": "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)",
              "loadavg_before": "$load_before", "loadavg_after": "$(cut -d' ' -f1-3 /proc/loadavg)"}
}
JSON
echo "probability-batch: fresh median ${m_fresh}s, --force ${m_force}s (${force_ratio}x fresh, target <= 1.3x); lmoments3 fits alone ${m_lm}s over $windows windows (${speedup}x, target >= 20x); max peak RSS ${max_rss} kB; recorded in $result"
