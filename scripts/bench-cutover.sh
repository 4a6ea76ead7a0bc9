#!/usr/bin/env bash
# Benchmarks the cutover's write downtime at two database sizes ten times apart: the same schema
# and rows (scripts/demo-data/load.sh --mb) and the same writer (scripts/demo-data/writer.sh)
# through migrate.sh (which ends with the live verify that records the proofs) and cutover.sh.
# Prints each size's downtime with its parts (cutover.sh's downtime-parts line) and the ratio
# larger/smaller (the goal: at most 1.5), as markdown for docs/benchmarks.md.
#
# Usage: scripts/bench-cutover.sh [--small MB] [--large MB] [--rate TPS] [--live SECONDS] [-j N]
#                                 [--verify-mode MODE] [--keep] [--out FILE]
#   --small MB          the smaller database (default 100)
#   --large MB          the larger one (default 1000)
#   --rate TPS          the writer's transactions per second (default 20)
#   --live SECONDS      how long the writer runs between migrate.sh and the cutover (default 30)
#   -j N                workers of migrate.sh and pgverify (default 2)
#   --verify-mode MODE  cutover.sh's --verify-mode (default changes; hash for the old way)
#   --keep              keep the throwaway clusters and work directory
#   --out FILE          also write the markdown report to FILE
# Servers: two throwaway clusters (initdb in a temp dir, fsync off), or BENCH_SRC_ADMIN and
# BENCH_DST_ADMIN: URLs of a database on existing servers (CREATE DATABASE allowed).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

SMALL=100 LARGE=1000 RATE=20 LIVE=30 JOBS=2 MODE=changes KEEP=0 OUT=""
PROG=bench-cutover
. scripts/lib/bench.sh
while [ $# -gt 0 ]; do
  case "$1" in
    --small) SMALL=$2; shift 2 ;;
    --large) LARGE=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --live) LIVE=$2; shift 2 ;;
    -j) JOBS=$2; shift 2 ;;
    --verify-mode) MODE=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) bench_help; exit 0 ;;
    *) bench_usage_error "$1" ;;
  esac
done
bench_need psql pgbench go

WORK=$(mktemp -d /tmp/pgferry-benchc-XXXXXX)
chmod 755 "$WORK"
# stop_ours ends the writer and follower this script started (by their pids), then cleans up.
stop_ours() {
  local f
  for f in "$WORK"/writer-*.pid "$WORK"/state-*/sync.pid; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
  bench_cleanup
}
trap stop_ours EXIT
log "building the tools"
go build -o "$WORK/bin/" ./cmd/... || die "build failed"
export PATH="$WORK/bin:$PATH"
bench_servers

# run_size MB: load, write, migrate, cutover; appends "MB parts..." to $WORK/results.
run_size() {
  local mb=$1 db=pgferry_benchc_$1 src dst side state=$WORK/state-$1
  for side in "$SRC_ADMIN" "$DST_ADMIN"; do
    psql -XqAt -v ON_ERROR_STOP=1 "$side" -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  done
  src=$(db_url "$SRC_ADMIN" "$db") dst=$(db_url "$DST_ADMIN" "$db")
  log "$mb MB: loading the demo database"
  scripts/demo-data/load.sh --url "$src" --mb "$mb" >/dev/null
  log "$mb MB: $(psql_q "$src" "SELECT pg_size_pretty(pg_database_size(current_database()))") on disk; writer at $RATE tps"
  scripts/demo-data/writer.sh --url "$src" --rate "$RATE" >"$WORK/writer-$mb.log" 2>&1 &
  echo $! >"$WORK/writer-$mb.pid"
  PGFERRY_RECHECK=5 scripts/migrate.sh --source "$src" --target "$dst" --state-dir "$state" -j "$JOBS" --no-roles \
    2>"$WORK/migrate-$mb.log" || { tail -n 20 "$WORK/migrate-$mb.log" >&2; die "migrate.sh failed at $mb MB"; }
  log "$mb MB: migrated in $(sed -n 's/.*ready for cutover after \([0-9.]*\)s.*/\1/p' "$WORK/migrate-$mb.log")s; writing for ${LIVE}s more"
  sleep "$LIVE"
  scripts/cutover.sh --source "$src" --target "$dst" --state-dir "$state" -j "$JOBS" --verify-mode "$MODE" \
    2>"$WORK/cutover-$mb.log" || { tail -n 20 "$WORK/cutover-$mb.log" >&2; die "cutover.sh failed at $mb MB"; }
  wait "$(cat "$WORK/writer-$mb.pid")" 2>/dev/null || true
  rm -f "$WORK/writer-$mb.pid"
  grep 'verified by the' "$WORK/cutover-$mb.log" >&2 || true
  echo "$mb $(cat "$state/downtime-parts")" >>"$WORK/results"
  log "$mb MB: $(cat "$state/downtime-parts")"
}

run_size "$SMALL"
run_size "$LARGE"

# report: one markdown row per size, then the ratio of the downtimes.
report() {
  echo "| size | downtime s | freeze | fence | drain | sequences | verify | refresh | constraints | triggers | other |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  awk '{ delete v; for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    printf "| %s MB | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, v["downtime"], v["freeze"], v["fence"],
      v["drain"], v["sequences"], v["verify"], v["refresh"], v["constraints"], v["triggers"], v["other"] }' "$WORK/results"
  awk '{ split($2, kv, "="); d[NR] = kv[2] } END { r = d[2] / d[1]
    printf "\nlarger/smaller write downtime: %.2f (goal: at most 1.5)%s\n", r, r <= 1.5 ? "" : " -- over the goal" }' "$WORK/results"
}
report | tee ${OUT:+"$OUT"}
