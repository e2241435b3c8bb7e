#!/usr/bin/env bash
# The demo: every job end to end against a throw-away database.
# Installs what it needs (see ensure-deps.sh), builds the release binaries,
# starts a private PostgreSQL (removed on exit), and runs the jobs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
cargo build --release --locked --bins
bin=$PWD/target/release
export PATH="$bin:$PATH"
# shellcheck source=scripts/throwaway-pg.sh
source scripts/throwaway-pg.sh
export CLIMATE_JOBS_LOG_FORMAT=${CLIMATE_JOBS_LOG_FORMAT:-pretty}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "jobctl check: validate jobs.yaml"
jobctl check --file jobs.yaml

step "jobctl migrate: apply the schema (twice: the second changes nothing)"
jobctl migrate
jobctl migrate

step "jobctl canary: 20 tasks through the full harness"
jobctl canary --tasks 20 --task-duration 20ms

step "jobctl canary with an injected hung task: exit 3 (partial), one dead letter"
set +e
CLIMATE_JOBS_FAULT=hang-task=3 jobctl canary --tasks 10 --task-duration 10ms --task-timeout 1s
echo "exit code: $?"
set -e

work=$(mktemp -d /tmp/climate-jobs-demo.XXXXXX)
trap 'stop_throwaway_pg; rm -rf "$work"' EXIT

step "jobctl demo-data: synthetic CF NetCDF, 100 points x 2021-2060, three scenarios"
jobctl demo-data --out "$work/data" --points 100 --years 2021..2060

step "hazard-timeseries-batch --dry-run: validate the inputs and show the plan"
hazard-timeseries-batch --input "$work"/data/ssp*.nc --dry-run

step "hazard-timeseries-batch: daily projections -> yearly hazard indices"
hazard-timeseries-batch --input "$work"/data/ssp*.nc --chunk-points 25

step "a few rows of hazard_values (the view other services read)"
psql "$DATABASE_URL" -c "SELECT lat, lon, scenario, model, member, risk_type, year, round(value::numeric, 1) AS value, round(score::numeric, 1) AS score
  FROM hazard_values WHERE (lat, lon) = (SELECT lat, lon FROM grid_points WHERE id = 1) AND year IN (2021, 2060)
 ORDER BY risk_type, scenario, year"
psql "$DATABASE_URL" -c "SELECT scenario, risk_type, count(*) AS rows, round(avg(value)::numeric, 1) AS mean_value FROM hazard_values GROUP BY 1, 2 ORDER BY 1, 2"
jobctl datasets

step "hazard-timeseries-batch again: inputs unchanged, skipped"
hazard-timeseries-batch --input "$work"/data/ssp*.nc

step "probability-batch: 30-year windows -> bin probabilities and return levels"
probability-batch
psql "$DATABASE_URL" -c "SELECT p.scenario, p.risk_type, p.year, p.method, p.sample_size AS n,
       round(p.return_level_10::numeric, 1) AS rl10, round(p.return_level_100::numeric, 1) AS rl100,
       (SELECT string_agg(round(b::numeric, 3)::text, ' ') FROM unnest(p.bin_probs) b) AS bin_probs
  FROM probability_values p WHERE p.grid_id = 1 AND p.year = 2030 AND p.scenario = 'ssp585' ORDER BY p.risk_type"

step "jobctl regions import + cache-refresh: the per-region cache the API reads"
jobctl regions import "$work/data/regions.csv"
cache-refresh
psql "$DATABASE_URL" -c "SELECT region_code, scenario, model, member, risk_type, year, grid_id, round(distance_km::numeric, 1) AS km, round(value::numeric, 1) AS value, round(score::numeric, 1) AS score
  FROM region_hazard_cache WHERE region_code = 'KR-R001' AND year = 2050 ORDER BY scenario, risk_type"
cache-refresh   # nothing changed: skipped

step "jobctl sites import + site-risk-batch: AAL, losses at return levels, E/V scores, risk index per site"
jobctl check --curves data/vulnerability/curves.csv 2>&1 | tail -n 1
jobctl sites import "$work/data/sites.csv"
site-risk-batch
psql "$DATABASE_URL" -c "SELECT site_id, scenario, risk_type, year, metric, round(value::numeric, 4) AS value, unit
  FROM site_risk_values WHERE site_id = 'DEMO-S0001' AND scenario = 'ssp585' AND year = 2040
   AND metric IN ('aal_value', 'loss_rl100', 'risk_index') ORDER BY risk_type, metric"
site-risk-batch   # nothing changed: skipped

step "a failed chunk, then dlq-reprocess repairs it"
set +e
CLIMATE_JOBS_FAULT=fail-task=2 hazard-timeseries-batch --input "$work/data/ssp245.nc" --chunk-points 25 --force
echo "exit code: $?"
set -e
jobctl dlq list
dlq-reprocess
jobctl dlq list --status resolved

step "jobctl render k8s: the first CronJob rendered from jobs.yaml"
jobctl render k8s --image registry.example/climate-jobs:demo --namespace climate --out "$work/k8s"
ls "$work/k8s"
sed -n '1,40p' "$work/k8s/canary.yaml"

step "jobctl runs: the run history"
jobctl runs
