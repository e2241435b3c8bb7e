#!/usr/bin/env bash
# Benchmark of issue 3 (hazard-timeseries-batch), recorded in bench/results/.
#
#   bench/hazard/run.sh
#
# On one generated file per size (jobctl demo-data, one scenario, 2021..2100, reused from
# bench/work/ when present) it measures, REPS times each, round-robin so that load from other
# processes spreads over all measurements, and reports the median:
#   (a) xclim: bench/hazard/xclim_reference.py (numpy, no dask), with OPENBLAS_CORETYPE and
#       OPENBLAS_L2_SIZE unset for that command only; only up to XCLIM_MAX_POINTS points;
#   (b) hazard-timeseries-batch end to end into a freshly created and migrated database
#       (one per repetition), at each concurrency in CONCURRENCY;
#   (c) the floor: bench/hazard/floor.rs (read the three variables once + binary COPY of the
#       same number of rows into a table shaped like hazard_results).
# Every command runs under /usr/bin/time -v (wall time measured outside the process, peak RSS);
# the Postgres CPU time each run causes is recorded too (server backends are other processes).
# The file is in the page cache for every measurement (it was just written or read).
#
# Environment (all optional):
#   REPS=3  SIZES="1000 5000"  CONCURRENCY="1 2"  XCLIM_MAX_POINTS=5000  YEARS=2021..2100
#   XCLIM_PYTHON=.venv/bin/python (a venv with xclim 0.62, see tools/fixtures/requirements.txt)
#   CARGO_TARGET_DIR=target
#
# Writes bench/results/hazard-YYYY-MM-DD.json (raw figures + machine info), appends the table to
# bench/results/README.md and prints it. Raw logs of every run stay in bench/work/raw-*/.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
REPS=${REPS:-3}
SIZES=${SIZES:-"1000 5000"}
CONCURRENCY=${CONCURRENCY:-"1 2"}
XCLIM_MAX_POINTS=${XCLIM_MAX_POINTS:-5000}
YEARS=${YEARS:-2021..2100}
XCLIM_PYTHON=${XCLIM_PYTHON:-$root/.venv/bin/python}

work=$root/bench/work
stamp=$(date -u +%Y%m%dT%H%M%SZ)
raw=$work/raw-$stamp
mkdir -p "$raw"

echo "== building release binaries" >&2
cargo build --release --bins --examples
bin=$CARGO_TARGET_DIR/release

declare -A file_of
for n in $SIZES; do
  dir=$work/demo-p$n-y${YEARS/../-}
  if [ ! -f "$dir/ssp585.nc" ]; then
    echo "== generating $n points × $YEARS in $dir" >&2
    "$bin/jobctl" demo-data --out "$dir" --points "$n" --years "$YEARS" --scenarios ssp585 >&2
  fi
  file_of[$n]=$dir/ssp585.nc
done

load_before=$(cat /proc/loadavg)

# shellcheck source=scripts/throwaway-pg.sh
source "$root/scripts/throwaway-pg.sh" # exports DATABASE_URL; stops and removes it on exit
base_url=${DATABASE_URL%/*}
pg_version=$("$pg_bin/postgres" --version)

# measure TAG CMD...: runs CMD under /usr/bin/time -v, keeps stdout/stderr/time in $raw.
measure() {
  local tag=$1
  shift
  local s0 s1
  s0=$(server_ticks)
  if ! /usr/bin/time -v -o "$raw/$tag.time" "$@" >"$raw/$tag.out" 2>"$raw/$tag.err"; then
    echo "!! $tag failed; last lines of its stderr ($raw/$tag.err):" >&2
    tail -n 20 "$raw/$tag.err" >&2
    exit 1
  fi
  sleep 1 # let the postmaster reap the run's backends, so their CPU time is counted
  s1=$(server_ticks)
  echo "$(((s1 - s0) * 1000 / clk_tck))" >"$raw/$tag.server_cpu_ms"
  local wall rss
  wall=$(sed -n 's/.*Elapsed (wall clock) time.*: //p' "$raw/$tag.time")
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$raw/$tag.time")
  echo "   $tag: wall $wall, peak RSS $((rss / 1024)) MB, Postgres CPU $(awk "{printf \"%.2f\", \$1 / 1000}" "$raw/$tag.server_cpu_ms") s" >&2
}

# CPU time (clock ticks) of the server's exited children (backends, autovacuum workers): the
# postmaster's cutime + cstime. The difference around a run is the Postgres CPU it caused.
postmaster_pid=$(head -n 1 "$pg_dir/data/postmaster.pid")
clk_tck=$(getconf CLK_TCK)
server_ticks() {
  awk '{print $16 + $17}' "/proc/$postmaster_pid/stat"
}

for rep in $(seq 1 "$REPS"); do
  for n in $SIZES; do
    f=${file_of[$n]}
    echo "== repetition $rep/$REPS, $n points (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    if [ "$n" -le "$XCLIM_MAX_POINTS" ]; then
      measure "xclim-p$n-r$rep" env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
        "$XCLIM_PYTHON" bench/hazard/xclim_reference.py "$f"
    fi
    for c in $CONCURRENCY; do
      db=bench_p${n}_c${c}_r${rep}
      "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres "$db"
      DATABASE_URL=$base_url/$db "$bin/jobctl" migrate --log-format json 2>"$raw/migrate-$db.err"
      DATABASE_URL=$base_url/$db measure "job-p$n-c$c-r$rep" \
        "$bin/hazard-timeseries-batch" --input "$f" --concurrency "$c" --log-format json
      rows=$(psql "$base_url/$db" -Atc "SELECT count(*) FROM hazard_results")
      echo "$rows" >"$raw/job-p$n-c$c-r$rep.rows"
      "$pg_bin/dropdb" -h 127.0.0.1 -p "$pg_port" -U postgres "$db"
    done
    measure "floor-p$n-r$rep" "$bin/examples/hazard_floor" "$f"
  done
done

load_after=$(cat /proc/loadavg)

# Machine and run information for the summary.
sizes_json=$(for n in $SIZES; do
  printf '{"points":%s,"file":"%s","bytes":%s}\n' "$n" "${file_of[$n]}" "$(stat -c %s "${file_of[$n]}")"
done | jq -s .)
jq -n \
  --arg date "$(date -u +%Y-%m-%d)" \
  --arg stamp "$stamp" \
  --arg commit "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml bench || echo '+dirty')" \
  --arg nproc "$(nproc)" \
  --arg cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" \
  --arg mem "$(sed -n 's/^MemTotal:[[:space:]]*//p' /proc/meminfo)" \
  --arg kernel "$(uname -r)" \
  --arg rustc "$(rustc --version)" \
  --arg pg "$pg_version" \
  --arg load_before "$load_before" \
  --arg load_after "$load_after" \
  --arg reps "$REPS" \
  --arg years "$YEARS" \
  --arg concurrency "$CONCURRENCY" \
  --argjson sizes "$sizes_json" \
  '{date:$date, stamp:$stamp, commit:$commit, reps:($reps|tonumber), years:$years,
    concurrency:($concurrency|split(" ")|map(tonumber)),
    machine:{nproc:($nproc|tonumber), cpu:$cpu, mem_total:$mem, kernel:$kernel},
    software:{rustc:$rustc, postgres:$pg},
    load_average:{before:$load_before, after:$load_after},
    inputs:$sizes}' >"$raw/meta.json"

python3 bench/hazard/summarize.py "$raw" bench/results
