#!/usr/bin/env bash
# The live workload: inserts, updates, deletes (and a rare TRUNCATE) against the demo database.
set -euo pipefail
PROG=writer
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"

usage() {
  cat <<'USAGE'
Usage: scripts/demo-data/writer.sh --url URL [--rate TPS] [--clients N] [--duration SECONDS]

Runs pgbench with the scripts in scripts/demo-data/writer/ against a database loaded by
load.sh: rentals with payments into a partitioned table, customer and film updates (firing the
source's own triggers), payment deletes, a wide table of many types, text keys that change,
composite quoted keys, identity and generated columns, tables without a key (duplicate rows,
rows of NULLs), and a rare TRUNCATE. It runs until the
duration ends, it is killed, or the server refuses writes (a cutover makes the source read-only:
that ends the writer, on purpose). Progress goes to stderr every 5 seconds.

  --url URL          database to write to (env PGFERRY_SOURCE)
  --rate TPS         target transactions per second, all clients together (default 20)
  --clients N        concurrent sessions (default 2)
  --duration SECONDS stop after this long (default 86400)

Example:
  scripts/demo-data/writer.sh --url "$PGFERRY_SOURCE" --rate 50 &
USAGE
}

url=${PGFERRY_SOURCE:-}
rate=20 clients=2 duration=86400
while [ $# -gt 0 ]; do
  case $1 in
    --url) url=${2:?}; shift 2 ;;
    --rate) rate=${2:?}; shift 2 ;;
    --clients) clients=${2:?}; shift 2 ;;
    --duration) duration=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage_error "unknown argument $1" ;;
  esac
done
[ -n "$url" ] || usage_error "--url is required"
need_bin pgbench psql

read -r ncust ninv nrental nev < <(psql_q "$url" "SELECT (SELECT max(customer_id) FROM customer), (SELECT max(inventory_id) FROM inventory),
  (SELECT max(rental_id) FROM rental), (SELECT max(id) FROM demo.events)" | tr '|' ' ')
[ -n "$nev" ] || die "the database has no demo data" "load it first with scripts/demo-data/load.sh"

w=$here/writer
exec env PGAPPNAME=demo-writer pgbench -n -c "$clients" -j 1 -R "$rate" -T "$duration" -P 5 --max-tries=20 \
  -D ncust="$ncust" -D ninv="$ninv" -D nrental="$nrental" -D nev="$nev" \
  -f "$w/rent.sql@4" -f "$w/refund.sql@2" -f "$w/events.sql@4" -f "$w/kv.sql@3" -f "$w/orders.sql@3" -f "$w/cache.sql@1" -f "$w/audit.sql@2" \
  "$url"
