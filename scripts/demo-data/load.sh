#!/usr/bin/env bash
# Loads the demo database: pagila's schema plus generated rows of many types.
set -euo pipefail
PROG=load
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"

usage() {
  cat <<'USAGE'
Usage: scripts/demo-data/load.sh --url URL [--mb N]

Creates pagila's schema (tables, partitions, views, functions, triggers, foreign keys) and a
"demo" schema with many column types, then fills them with about N MB of deterministic rows.
Connect as the role that should own the tables (a non-superuser that owns the database works).

  --url URL   database to load (env PGFERRY_SOURCE)
  --mb N      approximate size in MB (default 50, env PGFERRY_DEMO_MB)

Example:
  scripts/demo-data/load.sh --url postgres://app@/shop?host=/tmp --mb 200
USAGE
}

url=${PGFERRY_SOURCE:-}
mb=${PGFERRY_DEMO_MB:-50}
while [ $# -gt 0 ]; do
  case $1 in
    --url) url=${2:?}; shift 2 ;;
    --mb) mb=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage_error "unknown argument $1" ;;
  esac
done
[ -n "$url" ] || usage_error "--url is required"
case $mb in ''|*[!0-9]*) usage_error "--mb must be a whole number of megabytes" ;; esac
need_bin psql

# pagila-schema.sql is pagila's dump without its OWNER TO lines (so the loading role owns it all)
# and without settings PostgreSQL 11 does not know, so it loads on every supported source.
PGAPPNAME=demo-load psql -X -q -v ON_ERROR_STOP=1 -d "$url" -f "$here/pagila-schema.sql" >/dev/null
PGAPPNAME=demo-load psql -X -q -v ON_ERROR_STOP=1 -v mb="$mb" -d "$url" -f "$here/generate.sql" >/dev/null
log "loaded $(psql_q "$url" "SELECT pg_size_pretty(pg_database_size(current_database()))") into $(psql_q "$url" "SELECT current_database()")"
