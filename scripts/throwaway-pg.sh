#!/usr/bin/env bash
# Source this file: starts a throw-away PostgreSQL cluster in a temp
# directory on a free port (as the postgres user when run as root, since
# initdb refuses root), exports DATABASE_URL, and stops and removes the
# cluster when the sourcing shell exits.
set -euo pipefail

pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
pg_dir=$(mktemp -d /tmp/climate-jobs-demo-pg.XXXXXX)
chmod 755 "$pg_dir"
mkdir -p "$pg_dir/sock"
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  chown -R postgres:postgres "$pg_dir"
  as_pg=(runuser -u postgres --)
fi
"${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -A trust -U postgres -E UTF8 --locale=C --no-sync >/dev/null
pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 55432)
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w \
  -o "-p $pg_port -k $pg_dir/sock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >/dev/null
stop_throwaway_pg() {
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" stop -m fast >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
}
trap stop_throwaway_pg EXIT
"${as_pg[@]}" "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres climate
export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/climate"
echo "throw-away PostgreSQL on 127.0.0.1:$pg_port (removed on exit)" >&2
