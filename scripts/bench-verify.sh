#!/usr/bin/env bash
# Benchmarks `pgverify --mode hash` against reading every row of both databases once
# (`psql -c 'COPY t TO STDOUT' > /dev/null` per table, both sides, as parallel as pgverify), in
# one run on the same data and servers, and prints a markdown table with rows per second
# (paste it into docs/benchmarks.md). Target: pgverify no slower than that read.
#
# Usage: scripts/bench-verify.sh [--scale S] [--jobs N] [--repeat R] [--keep] [--out FILE]
#   --scale S   dataset size, as in bench-copy.sh: 1 is about 1.6 GB; 0.002 is a smoke run (default 1)
#   --jobs N    workers per side for both methods (default: number of CPUs, at least 2)
#   --repeat R  time both methods R times, alternating, and report medians (default 1)
#   --keep      keep the throwaway clusters and work directory
#   --out FILE  also write the markdown report to FILE
# Servers: two throwaway clusters (initdb in a temp dir, as the postgres OS user when root), or
# BENCH_SRC_ADMIN and BENCH_DST_ADMIN: URLs of a database on existing servers (CREATE DATABASE allowed).
# The dataset is bench-copy.sh's without the keyless log table (pgverify cannot match rows without a key).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

SCALE=1
JOBS=$(nproc 2>/dev/null || echo 2)
[ "$JOBS" -lt 2 ] && JOBS=2
KEEP=0
OUT=""
REPEAT=1
PROG=bench-verify
. scripts/lib/bench.sh
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) SCALE=$2; shift 2 ;;
    --jobs|-j) JOBS=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    -h|--help) bench_help; exit 0 ;;
    *) bench_usage_error "$1" ;;
  esac
done
bench_need psql pg_dump go

WORK=$(mktemp -d /tmp/pgferry-benchv-XXXXXX)
chmod 755 "$WORK"
trap bench_cleanup EXIT

log "building pgverify"
go build -o "$WORK/pgverify" ./cmd/pgverify || die "build failed"

bench_servers
SRC=$(db_url "$SRC_ADMIN" pgferry_benchv_src)
DST=$(db_url "$DST_ADMIN" pgferry_benchv_dst)

n() { awk -v s="$SCALE" -v b="$1" 'BEGIN { v = int(s * b); if (v < 10) v = 10; print v }'; }
BIG=$(n 9000000); ACC=$(n 500000); SMALL=$(n 100000)
log "generating the dataset at scale $SCALE (events $BIG rows, accounts $ACC, 8 small tables of $SMALL)"
psql -XqAt "$SRC_ADMIN" -c "DROP DATABASE IF EXISTS pgferry_benchv_src WITH (FORCE)" -c "CREATE DATABASE pgferry_benchv_src" >/dev/null
psql -XqAt "$DST_ADMIN" -c "DROP DATABASE IF EXISTS pgferry_benchv_dst WITH (FORCE)" -c "CREATE DATABASE pgferry_benchv_dst" >/dev/null
psql -Xq -v ON_ERROR_STOP=1 "$SRC" >/dev/null <<SQL
CREATE SCHEMA bench;
CREATE TYPE bench.kind AS ENUM ('view', 'click', 'buy', 'refund');
CREATE TABLE bench.accounts(id uuid PRIMARY KEY, email text NOT NULL, created timestamptz NOT NULL, balance numeric(14,2), tags text[]);
CREATE TABLE bench.events(id bigint PRIMARY KEY, account_id int NOT NULL, at timestamptz NOT NULL, kind bench.kind NOT NULL,
  amount numeric(12,2), payload jsonb, note text);
INSERT INTO bench.events SELECT i, i % 100000, '2024-01-01'::timestamptz + i * interval '1 second',
  (ARRAY['view','click','buy','refund']::bench.kind[])[1 + i % 4], (i % 100000) / 100.0,
  jsonb_build_object('ip', '10.0.' || (i % 250) || '.' || (i % 199), 'n', i % 1000), md5(i::text) || ' ' || repeat('x', (i % 40))
  FROM generate_series(1, $BIG) i;
INSERT INTO bench.accounts SELECT md5(i::text)::uuid, 'user' || i || '@example.com',
  '2020-01-01'::timestamptz + i * interval '1 minute', i / 7.0, ARRAY['t' || (i % 10), 'u' || (i % 3)] FROM generate_series(1, $ACC) i;
SQL
for k in 1 2 3 4 5 6 7 8; do
  psql -Xq -v ON_ERROR_STOP=1 "$SRC" -c "CREATE TABLE bench.small_$k(id int PRIMARY KEY, name text, v double precision, d date);
    INSERT INTO bench.small_$k SELECT i, 'name ' || i, i * 1.5, '2000-01-01'::date + i % 9000 FROM generate_series(1, $SMALL) i" >/dev/null
done
log "copying it to the target (pg_dump | psql)"
pg_dump "$SRC" | psql -Xq -v ON_ERROR_STOP=1 "$DST" >/dev/null
for u in "$SRC" "$DST"; do psql -Xq "$u" -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null; done
TABLES=$(psql -XAt "$SRC" -c "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables ORDER BY pg_relation_size(relid) DESC")
ROWS=$(psql -XAt "$SRC" -c "SELECT sum(n_live_tup) FROM pg_stat_user_tables")
SIZE=$(psql -XAt "$SRC" -c "SELECT pg_size_pretty(sum(pg_relation_size(relid))) FROM pg_stat_user_tables")

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
rate() { awk -v r="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", 2 * r / s; else print "n/a" }'; }

# Warm both caches the same way for both methods: one untimed read first.
read_all() { # both sides at once, JOBS tables at a time per side
  for u in "$SRC" "$DST"; do
    echo "$TABLES" | xargs -P "$JOBS" -I{} sh -c "psql -XqA '$u' -c 'COPY {} TO STDOUT' > /dev/null" &
  done
  wait
}
log "warming up"
read_all
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
COPY_ALL=""; VERIFY_ALL=""
for r in $(seq 1 "$REPEAT"); do
  log "run $r of $REPEAT: COPY TO /dev/null of every table, both sides"
  t0=$(now); read_all; COPY_ALL="$COPY_ALL $(since "$t0")"
  log "run $r of $REPEAT: pgverify --mode hash -j $JOBS"
  t0=$(now)
  set +e
  "$WORK/pgverify" --source "$SRC" --target "$DST" --mode hash -j "$JOBS" >"$WORK/verify.out" 2>&1
  rc=$?
  set -e
  VERIFY_ALL="$VERIFY_ALL $(since "$t0")"
  [ "$rc" = 0 ] || { cat "$WORK/verify.out" >&2; die "pgverify exited $rc on identical databases; the benchmark is void"; }
done
COPY_S=$(echo "$COPY_ALL" | median); VERIFY_S=$(echo "$VERIFY_ALL" | median)
log "COPY read runs:$COPY_ALL; pgverify runs:$VERIFY_ALL (medians $COPY_S, $VERIFY_S)"

report=$(cat <<EOF
### Verify benchmark: scale $SCALE, -j $JOBS, $(date -u +%Y-%m-%d) on $(nproc) CPUs

Dataset: $SIZE of table data per side, $ROWS rows per side (bench-copy's tables with a key);
PostgreSQL $(psql -XAt "$SRC" -c 'SHOW server_version'). Rows/s counts the rows of both sides.

| method | seconds | rows/s | vs COPY read |
|---|---:|---:|---:|
| \`psql -c 'COPY t TO STDOUT' > /dev/null\`, every table, both sides, $JOBS tables at a time per side | $COPY_S | $(rate "$ROWS" "$COPY_S") | 1.00 |
| \`pgverify --mode hash -j $JOBS\` | $VERIFY_S | $(rate "$ROWS" "$VERIFY_S") | $(awk -v a="$VERIFY_S" -v b="$COPY_S" 'BEGIN { printf "%.2f", a / b }') |

- seconds are medians of $REPEAT alternating runs (COPY read:$COPY_ALL; pgverify:$VERIFY_ALL).
- target: pgverify no slower than the read (ratio <= 1.00).
EOF
)
echo "$report"
[ -n "$OUT" ] && echo "$report" > "$OUT"
exit 0
