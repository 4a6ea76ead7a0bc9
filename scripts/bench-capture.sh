#!/usr/bin/env bash
# Measures what pgtrig capture costs the source: pgbench -N TPS with and without capture in the
# same run (alternating, so drift cancels), and a bulk UPDATE of N rows with and without capture.
#
# Usage: scripts/bench-capture.sh --source URL [--scale 10] [--clients 8] [--duration 60]
#                                 [--rows 1000000] [--rounds 2]
#   --source URL   a SCRATCH database: pgbench tables and bench_bulk are (re)created in it, and the
#                  capture schema pgferry_bench is installed and removed (falls back to PGFERRY_SOURCE)
#   --scale N      pgbench scale factor (100k accounts per unit)
#   --clients N    pgbench clients (and threads)
#   --duration S   seconds per pgbench run
#   --rows N       rows of the bulk UPDATE
#   --rounds N     pgbench with/without pairs
# Smoke run:  scripts/bench-capture.sh --source "$SRC" --scale 1 --clients 2 --duration 3 --rows 20000 --rounds 1
# Targets: TPS ratio >= 0.85, bulk UPDATE ratio <= 2.0. Prints a summary; exit 0 unless something fails to run.
set -euo pipefail
cd "$(dirname "$0")/.."

src=${PGFERRY_SOURCE:-}; scale=10; clients=8; duration=60; rows=1000000; rounds=2
while [ $# -gt 0 ]; do
  case $1 in
    --source) src=$2; shift 2;;
    --scale) scale=$2; shift 2;;
    --clients) clients=$2; shift 2;;
    --duration) duration=$2; shift 2;;
    --rows) rows=$2; shift 2;;
    --rounds) rounds=$2; shift 2;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0;;
    *) echo "bench-capture: unknown argument $1 (see --help)" >&2; exit 2;;
  esac
done
[ -n "$src" ] || { echo "bench-capture: --source URL of a scratch database is required" >&2; exit 2; }

if command -v pgtrig >/dev/null 2>&1 && [ -z "${PGFERRY_BENCH_BUILD:-}" ]; then
  pgtrig=$(command -v pgtrig)
else
  bindir=$(mktemp -d); trap 'rm -rf "$bindir"' EXIT
  go build -o "$bindir/pgtrig" ./cmd/pgtrig
  pgtrig=$bindir/pgtrig
fi
schema=pgferry_bench
q() { psql -XAtq -v ON_ERROR_STOP=1 "$src" -c "$1"; }
log() { echo "bench-capture: $*" >&2; }
install() { "$pgtrig" install --source "$src" --capture-schema "$schema" "$@" >/dev/null 2>&1; }
remove() { "$pgtrig" remove --source "$src" --capture-schema "$schema" >/dev/null 2>&1; }

remove || true
log "pgbench -i -s $scale"
pgbench -i -q -s "$scale" "$src" >/dev/null 2>&1
q "ALTER TABLE pgbench_history ADD COLUMN id bigserial PRIMARY KEY"   # capture needs a key

run_pgbench() {
  pgbench -N -c "$clients" -j "$clients" -T "$duration" "$src" 2>/dev/null |
    sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1
}
without=(); with=()
for r in $(seq 1 "$rounds"); do
  for arm in $( [ $((r % 2)) -eq 1 ] && echo "off on" || echo "on off" ); do
    if [ "$arm" = on ]; then install -t 'public.pgbench_*'; fi
    tps=$(run_pgbench)
    if [ "$arm" = on ]; then
      waiting=$("$pgtrig" status --source "$src" --capture-schema "$schema" --json | sed -n 's/.*"rows_waiting":\([0-9]*\),"bytes".*/\1/p')
      remove; with+=("$tps"); log "round $r: with capture    $tps tps ($waiting changes captured)"
    else
      without+=("$tps"); log "round $r: without capture $tps tps"
    fi
  done
done
avg() { printf '%s\n' "$@" | awk '{s+=$1} END {printf "%.1f", s/NR}'; }
a_off=$(avg "${without[@]}"); a_on=$(avg "${with[@]}")
tps_ratio=$(awk -v a="$a_on" -v b="$a_off" 'BEGIN {printf "%.3f", a/b}')

log "bulk: $rows rows"
q "DROP TABLE IF EXISTS public.bench_bulk; CREATE TABLE public.bench_bulk (id int PRIMARY KEY, v int NOT NULL);
   INSERT INTO public.bench_bulk SELECT g, 0 FROM generate_series(1, $rows) g"
q "VACUUM ANALYZE public.bench_bulk"
timed_update() {
  q "VACUUM public.bench_bulk"; q "CHECKPOINT" 2>/dev/null || true
  psql -Xq -v ON_ERROR_STOP=1 "$src" -c '\timing on' -c "UPDATE public.bench_bulk SET v = v + 1" |
    sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
}
timed_update >/dev/null   # warm up: every row has a dead version to vacuum from now on
b_off1=$(timed_update)
install -t public.bench_bulk
b_on1=$(timed_update)
remove
b_off2=$(timed_update)
install -t public.bench_bulk
b_on2=$(timed_update)
remove
b_off=$(avg "$b_off1" "$b_off2"); b_on=$(avg "$b_on1" "$b_on2")
bulk_ratio=$(awk -v a="$b_on" -v b="$b_off" 'BEGIN {printf "%.2f", a/b}')
q "DROP TABLE public.bench_bulk"

verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN {ok = (op == ">=") ? v >= t : v <= t; print ok ? "meets" : "MISSES"}'; }
cat <<OUT
capture benchmark: scale $scale, $clients clients, ${duration}s x $rounds round(s) per arm, bulk $rows rows
pgbench -N tps without capture: $a_off  (${without[*]})
pgbench -N tps with capture:    $a_on  (${with[*]})
tps ratio:                      $tps_ratio  ($(verdict "$tps_ratio" 0.85 ">=") target >= 0.85)
bulk UPDATE ms without capture: $b_off  ($b_off1 $b_off2)
bulk UPDATE ms with capture:    $b_on  ($b_on1 $b_on2)
bulk ratio:                     $bulk_ratio  ($(verdict "$bulk_ratio" 2.0 "<=") target <= 2.0)
OUT
