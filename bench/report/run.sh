#!/usr/bin/env bash
# jobctl report benchmark (issue 13): a ledger of 250 runs over 5 jobs
# (bench/report/seed.sql, the rows tests/it/report.rs uses), then
# `jobctl report --out … --days 7` five times; prints the figures and
# records them in bench/results/. Target: the page written in under 1 s.
#   --screenshot   also render the page with headless Chromium into
#                  docs/report.png (the picture in the README)
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/ensure-deps.sh
cargo build --release --locked --bin jobctl
export PATH="$PWD/target/release:$PATH"
# shellcheck source=scripts/throwaway-pg.sh
source scripts/throwaway-pg.sh
export CLIMATE_JOBS_LOG_FORMAT=json
jobctl migrate >/dev/null 2>&1
psql -q "$DATABASE_URL" -f bench/report/seed.sql
runs=$(psql -tA "$DATABASE_URL" -c "SELECT count(*) FROM job_runs")
jobs=$(psql -tA "$DATABASE_URL" -c "SELECT count(DISTINCT job) FROM job_runs")

work=$(mktemp -d)
trap 'rm -rf "$work"; stop_throwaway_pg' EXIT
out="$work/report.html"
times=()
for i in 1 2 3 4 5; do
  start=$(date +%s.%N)
  line=$(jobctl report --out "$out" --days 7 --jobs-file jobs.yaml 2>/dev/null)
  secs=$(printf '%.4f' "$(echo "$(date +%s.%N) - $start" | bc)")
  echo "run $i: ${secs}s  $line" >&2
  times+=("$secs")
done
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p)
bytes=$(stat -c %s "$out")

if [ "${1:-}" = "--screenshot" ]; then
  chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$work/profile" \
    --window-size=1200,1400 --screenshot="$PWD/docs/report.png" "file://$out" 2>/dev/null
  echo "wrote docs/report.png" >&2
fi

date_tag=$(date -u +%Y-%m-%d)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
result="bench/results/report-$date_tag.json"
cat > "$result" <<JSON
{
  "bench": "jobctl report --days 7 (process start to exit, including connect and query)",
  "runs": $runs, "jobs": $jobs, "page_bytes": $bytes,
  "seconds": [$(IFS=,; echo "${times[*]}")], "median_seconds": $median, "target_seconds": 1,
  "machine": {"nproc": $(nproc), "cpu": "$cpu", "loadavg": "$(cut -d' ' -f1-3 /proc/loadavg)"},
  "postgres": "$(psql -tA "$DATABASE_URL" -c 'SHOW server_version')"
}
JSON
echo "jobctl report: median ${median}s over 5 runs for $runs runs of $jobs jobs, ${bytes} bytes (target < 1 s); recorded in $result"
