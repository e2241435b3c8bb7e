#!/usr/bin/env bash
# Interleaved comparison of two site-risk-batch binaries on one seeded database:
# BASE (a binary built from an earlier commit, path in $1) and the current
# target/release one, three --force runs each, alternating, with wall time,
# peak RSS, job CPU, server CPU (postgres processes, /proc) and a digest of
# every stored value (equal digests: identical results). Prints only; the
# figures go into bench/results/README.md by hand.
set -euo pipefail
base=$(realpath "${1:?usage: bench/site_risk/compare.sh BASE_BINARY}")
cd "$(dirname "$0")/../.."
export PATH="$PWD/target/release:$PATH"
# shellcheck source=scripts/throwaway-pg.sh
source scripts/throwaway-pg.sh
export CLIMATE_JOBS_LOG_FORMAT=json
jobctl migrate >/dev/null 2>&1
work=$(mktemp -d /tmp/site-risk-cmp.XXXXXX)
trap 'rm -rf "$work"; stop_throwaway_pg' EXIT
# The seeding of run.sh, taken from it so both benchmarks use the same data.
sed -n "/^psql -q \"\$DATABASE_URL\" <<'SQL'/,/^SQL$/p" bench/site_risk/run.sh | sed '1d;$d' > "$work/setup.sql"
psql -q "$DATABASE_URL" -f "$work/setup.sql"
sed -n '/^psql -q "$DATABASE_URL" -c "COPY (/,/sites.csv"$/p' bench/site_risk/run.sh > "$work/sites.sh"
# shellcheck disable=SC1091
source "$work/sites.sh"
jobctl sites import "$work/sites.csv" >/dev/null 2>&1
# CPU ticks of this cluster only (other sessions run their own): the
# postmaster with its exited children (cutime/cstime) and the live backends.
pgcpu() {
  local pm t=0 s
  pm=$(head -n 1 "$pg_dir/data/postmaster.pid")
  for p in "$pm" $(pgrep -P "$pm"); do
    if [ "$p" = "$pm" ]; then s=$(awk '{print $14+$15+$16+$17}' "/proc/$p/stat" 2>/dev/null || echo 0)
    else s=$(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0); fi
    t=$((t + s))
  done
  echo "$t"
}
digest() { psql -tA "$DATABASE_URL" -c "SELECT md5(string_agg(concat_ws('|', r.site_id, r.scenario, r.model, r.member, r.risk_type, r.grid_id, r.distance_km, r.e_score, r.v_score, r.curve_fingerprint, h.years, h.aal_rate, h.damage_rl10, h.damage_rl50, h.damage_rl100, h.hazard_score), E'\n' ORDER BY r.site_id, r.scenario, r.model, r.member, r.risk_type)) FROM site_results r JOIN site_hazard_series h ON h.id = r.series_id"; }
echo "load before: $(cat /proc/loadavg)"
# warm-up into the empty table (not counted)
site-risk-batch --force --concurrency 2 >/dev/null 2>&1
psql -q "$DATABASE_URL" -c "VACUUM site_results, site_hazard_series" >/dev/null
for i in 1 2 3; do
  for v in base new; do
    bin=site-risk-batch; [ $v = base ] && bin="$base"
    a=$(pgcpu)
    t=$(/usr/bin/time -f '%e %M %U %S' "$bin" --force --concurrency 2 2>&1 >/dev/null | tail -n 1)
    b=$(pgcpu)
    read -r secs kb u s <<<"$t"
    echo "$v run $i: ${secs} s, RSS ${kb} kB, job CPU $(echo "$u + $s" | bc) s, server CPU $(echo "scale=2; ($b - $a)/100" | bc) s, digest $(digest)"
    psql -q "$DATABASE_URL" -c "VACUUM site_results, site_hazard_series" >/dev/null
  done
done
echo "load after: $(cat /proc/loadavg)"
