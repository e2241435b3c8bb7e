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

step "jobctl runs: the run history"
jobctl runs
