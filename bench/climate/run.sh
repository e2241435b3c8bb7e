#!/usr/bin/env bash
# Benchmark of issue 9 (reader memory on files chunked along time), recorded in bench/results/.
#
#   bench/climate/run.sh
#
# Two files with the same values, POINTS points × YEARS:
#   plain   — jobctl demo-data output (netCDF-4, contiguous float32 tasmax/tasmin/pr);
#   chunked — the same rewritten by bench/climate/make_chunked.py with HDF5 chunks (ntime, 1, 1),
#             zlib level 4 + shuffle (each chunk one point's whole series: station-like data).
# For each, REPS times, interleaved (plain, chunked, plain, chunked, …) so machine load spreads over
# both, it runs hazard-timeseries-batch end to end (all five hazards) into a freshly created and
# migrated database of a throw-away PostgreSQL, under /usr/bin/time -v (wall time and peak RSS of
# the job process), and reports medians. Targets: chunked peak RSS ≤ 300 MB, chunked / plain wall
# time ≤ 2×. Rows written are counted and must be equal for both files.
#
# Environment (all optional):
#   REPS=3  POINTS=10000  YEARS=2021..2030  CONCURRENCY=2  PYTHON=/opt/fixtures-venv/bin/python
#   CARGO_TARGET_DIR=target
#
# Writes bench/results/climate-reader-YYYY-MM-DD.json, appends a table to bench/results/README.md
# and prints it. Raw logs stay in bench/work/raw-climate-*/.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
REPS=${REPS:-3}
POINTS=${POINTS:-10000}
YEARS=${YEARS:-2021..2030}
CONCURRENCY=${CONCURRENCY:-2}
PYTHON=${PYTHON:-/opt/fixtures-venv/bin/python}

work=$root/bench/work
stamp=$(date -u +%Y%m%dT%H%M%SZ)
raw=$work/raw-climate-$stamp
mkdir -p "$raw"

echo "== building release binaries" >&2
cargo build --release --bins
bin=$CARGO_TARGET_DIR/release

dir=$work/reader-p$POINTS-y${YEARS/../-}
plain=$dir/ssp585.nc
chunked=$dir/chunked/ssp585.nc
if [ ! -f "$plain" ]; then
  echo "== generating $POINTS points × $YEARS in $dir" >&2
  "$bin/jobctl" demo-data --out "$dir" --points "$POINTS" --years "$YEARS" --scenarios ssp585 >&2
fi
if [ ! -f "$chunked" ]; then
  echo "== rewriting it chunked (ntime, 1, 1) + zlib" >&2
  mkdir -p "$dir/chunked"
  "$PYTHON" bench/climate/make_chunked.py "$plain" "$chunked.tmp"
  mv "$chunked.tmp" "$chunked"
fi

load_before=$(cat /proc/loadavg)
# shellcheck source=scripts/throwaway-pg.sh
source "$root/scripts/throwaway-pg.sh" # exports DATABASE_URL; stops and removes it on exit
base_url=${DATABASE_URL%/*}

run_one() { # KIND FILE REP
  local kind=$1 f=$2 rep=$3 db tag
  db=bench_reader_${kind}_r$rep
  tag=$kind-r$rep
  "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres "$db"
  DATABASE_URL=$base_url/$db "$bin/jobctl" migrate --log-format json 2>"$raw/migrate-$db.err"
  echo "$(cut -d' ' -f1-3 /proc/loadavg)" >"$raw/$tag.load"
  if ! DATABASE_URL=$base_url/$db /usr/bin/time -v -o "$raw/$tag.time" \
    "$bin/hazard-timeseries-batch" --input "$f" --concurrency "$CONCURRENCY" --log-format json \
    >"$raw/$tag.out" 2>"$raw/$tag.err"; then
    echo "!! $tag failed; last lines of $raw/$tag.err:" >&2
    tail -n 20 "$raw/$tag.err" >&2
    exit 1
  fi
  psql "$base_url/$db" -Atc "SELECT count(*) FROM hazard_results" >"$raw/$tag.rows"
  "$pg_bin/dropdb" -h 127.0.0.1 -p "$pg_port" -U postgres "$db"
  echo "   $tag: wall $(sed -n 's/.*Elapsed (wall clock) time.*: //p' "$raw/$tag.time"), peak RSS $(($(sed -n 's/.*Maximum resident set size (kbytes): //p' "$raw/$tag.time") / 1024)) MB, rows $(cat "$raw/$tag.rows"), load $(cat "$raw/$tag.load")" >&2
}

for rep in $(seq 1 "$REPS"); do
  echo "== repetition $rep/$REPS" >&2
  run_one plain "$plain" "$rep"
  run_one chunked "$chunked" "$rep"
done
load_after=$(cat /proc/loadavg)

"$PYTHON" - "$raw" "$root/bench/results" "$REPS" "$POINTS" "$YEARS" "$CONCURRENCY" \
  "$load_before" "$load_after" "$(git rev-parse --short HEAD)" "$plain" "$chunked" <<'PY'
import json, re, statistics, sys, datetime, os, subprocess
raw, results, reps, points, years, conc, lb, la, commit, plain, chunked = sys.argv[1:]
reps = int(reps)

def parse(tag):
    t = open(f"{raw}/{tag}.time").read()
    wall = re.search(r"Elapsed \(wall clock\) time.*: (.*)", t).group(1).strip()
    parts = [float(p) for p in wall.split(":")]
    secs = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024
    user = float(re.search(r"User time \(seconds\): ([\d.]+)", t).group(1))
    sys_ = float(re.search(r"System time \(seconds\): ([\d.]+)", t).group(1))
    rows = int(open(f"{raw}/{tag}.rows").read())
    load = open(f"{raw}/{tag}.load").read().strip()
    return {"wall_s": secs, "peak_rss_mb": round(rss, 1), "cpu_s": round(user + sys_, 2), "rows": rows, "load": load}

runs = {k: [parse(f"{k}-r{r}") for r in range(1, reps + 1)] for k in ("plain", "chunked")}
med = {k: {m: statistics.median(x[m] for x in v) for m in ("wall_s", "peak_rss_mb", "cpu_s")} for k, v in runs.items()}
ratio = med["chunked"]["wall_s"] / med["plain"]["wall_s"]
max_rss = max(x["peak_rss_mb"] for x in runs["chunked"])
rows = {k: sorted({x["rows"] for x in v}) for k, v in runs.items()}
date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
out = {
    "date": date, "commit": commit, "reps": reps, "points": int(points), "years": years,
    "concurrency": int(conc), "load_average": {"before": lb, "after": la},
    "machine": {"nproc": os.cpu_count(), "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")},
    "files": {"plain": {"path": plain, "bytes": os.path.getsize(plain)}, "chunked": {"path": chunked, "bytes": os.path.getsize(chunked), "chunks": "(ntime, 1, 1), zlib 4 + shuffle"}},
    "runs": runs, "median": med, "chunked_over_plain_wall": round(ratio, 2), "chunked_max_peak_rss_mb": max_rss,
    "rows": rows,
    "targets": {"chunked_peak_rss_le_300_mb": max_rss <= 300, "chunked_over_plain_le_2x": ratio <= 2.0},
}
path = f"{results}/climate-reader-{date}.json"
json.dump(out, open(path, "w"), indent=1)
fmt = lambda v: ", ".join(f"{x['wall_s']:.2f}" for x in v)
table = f"""
## hazard-timeseries-batch on files chunked along time, {date} (commit {commit})

{int(points):,} points × {years} (daily, one scenario), `--concurrency {conc}`, end to end into a fresh
migrated database (throw-away PostgreSQL, fsync off). Plain: `jobctl demo-data` (netCDF-4, contiguous,
{os.path.getsize(plain)/1e6:.0f} MB). Chunked: the same values rewritten with chunks (ntime, 1, 1), zlib 4 + shuffle
({os.path.getsize(chunked)/1e6:.0f} MB) by `bench/climate/make_chunked.py`. Medians of {reps} interleaved runs;
wall time and peak RSS of the job process from `/usr/bin/time -v`. Load average before: {lb}; after: {la}.
Raw figures: `climate-reader-{date}.json`.

| file | median wall (s) | runs (s) | median CPU (s) | median peak RSS (MB) | max peak RSS (MB) | rows |
|---|---:|---|---:|---:|---:|---:|
| plain | {med['plain']['wall_s']:.2f} | {fmt(runs['plain'])} | {med['plain']['cpu_s']:.2f} | {med['plain']['peak_rss_mb']:.0f} | {max(x['peak_rss_mb'] for x in runs['plain']):.0f} | {rows['plain']} |
| chunked (ntime,1,1) zlib | {med['chunked']['wall_s']:.2f} | {fmt(runs['chunked'])} | {med['chunked']['cpu_s']:.2f} | {med['chunked']['peak_rss_mb']:.0f} | {max_rss:.0f} | {rows['chunked']} |

| target | result |
|---|---|
| chunked peak RSS ≤ 300 MB | {max_rss:.0f} MB ({'met' if max_rss <= 300 else '**missed**'}) |
| chunked / plain wall ≤ 2× | {ratio:.2f}× ({'met' if ratio <= 2 else '**missed**'}) |
"""
open(f"{results}/README.md", "a").write(table)
print(table)
PY
