#!/usr/bin/env bash
# Benchmarks pgdelta: (1) apply throughput for a backlog of SCALE changed keys, (2) lag while
# pgbench writes to the source with capture on. Usage: scripts/bench-delta.sh [SCALE] [SECONDS]
#   SCALE    changed keys in the backlog (default 1000000; use e.g. 20000 for a smoke run)
#   SECONDS  pgbench duration for the lag test (default 60; 0 skips it)
# Needs SRC and DST (database URLs of two empty databases) and the tools on PATH (go build ./cmd/...).
# Optional PGDATA_BENCH: data directory of the (local, otherwise idle) server holding SRC and DST;
# then the server's CPU seconds per phase are reported too, which on a shared machine say more than
# wall-clock time. Client CPU and peak RSS come from /usr/bin/time when present.
set -euo pipefail
SCALE=${1:-1000000}
SECS=${2:-60}
: "${SRC:?set SRC to an empty source database URL}" "${DST:?set DST to an empty target database URL}"
say() { echo "bench-delta: $*" >&2; }
psql_() { psql -XqAt -v ON_ERROR_STOP=1 "$@"; }

ddl='CREATE TABLE bench(id bigint PRIMARY KEY, a int, b text, c timestamptz, d numeric);'
psql_ "$SRC" -c "DROP TABLE IF EXISTS bench; $ddl"
psql_ "$DST" -c "DROP TABLE IF EXISTS bench; DROP SCHEMA IF EXISTS pgferry CASCADE; $ddl"
pgtrig install --source "$SRC" -t bench >/dev/null
from=$(psql_ "$SRC" -c 'SELECT txid_current_snapshot()')
psql_ "$SRC" -c "INSERT INTO bench SELECT g, g % 1000, md5(g::text), now(), g / 3.0 FROM generate_series(1, $SCALE) g"

# Peak memory (RSS) and CPU of each process, via /usr/bin/time when present.
timer=()
[ -x /usr/bin/time ] && timer=(/usr/bin/time -f 'bench-delta: %C: %e s wall, %U s user, %S s sys, max RSS %M KB')

# server_cpu prints the CPU seconds used so far by the server at PGDATA_BENCH (empty without it).
. "$(dirname "$0")/lib/bench.sh"
server_cpu() { bench_server_cpu "${PGDATA_BENCH:-}"; }
report() { # label rows start end cpu0 cpu1
  awk -v l="$1" -v n="$2" -v s="$3" -v e="$4" -v c0="$5" -v c1="$6" 'BEGIN {
    printf "bench-delta: %s: %d rows in %.1f s = %.0f rows/s", l, n, e - s, n / (e - s)
    if (c1 != "") printf "; server CPU %.1f s (%.0f rows per server CPU second)", c1 - c0, n / (c1 - c0)
    printf "\n" }' >&2
}

psql_ "$SRC" -c 'VACUUM ANALYZE bench'

say "backlog of $SCALE changed keys: stream | apply"
c0=$(server_cpu); start=$(date +%s.%N)
"${timer[@]}" pgdelta stream --source "$SRC" --from "$from" --until-caught-up | "${timer[@]}" pgdelta apply --target "$DST"
end=$(date +%s.%N); c1=$(server_cpu)
rows=$(psql_ "$DST" -c 'SELECT count(*) FROM bench')
[ "$rows" = "$SCALE" ] || { say "target has $rows rows, want $SCALE"; exit 1; }
report "stream | apply throughput" "$SCALE" "$start" "$end" "$c0" "$c1"

say "same backlog again through pgdelta sync (re-applied from the start)"
psql_ "$DST" -c 'DELETE FROM pgferry.apply_position'
c0=$(server_cpu); start=$(date +%s.%N)
"${timer[@]}" pgdelta sync --source "$SRC" --target "$DST" --from "$from" --until-caught-up --prune-every -1s
end=$(date +%s.%N); c1=$(server_cpu)
report "sync throughput (every key replaces an existing row)" "$SCALE" "$start" "$end" "$c0" "$c1"
diff <(psql_ "$SRC" -c 'SELECT * FROM bench ORDER BY id') <(psql_ "$DST" -c 'SELECT * FROM bench ORDER BY id') >/dev/null ||
  { say "target's bench differs from the source's"; exit 1; }

[ "$SECS" -gt 0 ] || exit 0

say "lag under pgbench for $SECS s (capture on)"
pgbench -q -i -s 1 "$SRC" >/dev/null 2>&1
psql_ "$DST" -c 'DROP TABLE IF EXISTS pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history'
pg_dump -s -t 'pgbench_*' "$SRC" | psql_ "$DST" >/dev/null
psql_ "$DST" -c 'ALTER TABLE pgbench_history ADD COLUMN IF NOT EXISTS hid bigserial PRIMARY KEY' 2>/dev/null || true
psql_ "$SRC" -c 'ALTER TABLE pgbench_history ADD COLUMN IF NOT EXISTS hid bigserial PRIMARY KEY'
pgtrig install --source "$SRC" >/dev/null
pos=$(psql_ "$SRC" -c 'SELECT txid_current_snapshot()')
for t in pgbench_accounts pgbench_branches pgbench_tellers pgbench_history; do
  psql_ "$DST" -c "TRUNCATE $t"
  psql_ "$SRC" -c "COPY $t TO STDOUT" | psql_ "$DST" -c "COPY $t FROM STDIN"
done
psql_ "$DST" -c "DELETE FROM pgferry.apply_position"  # lag counts from this run only
pgdelta sync --source "$SRC" --target "$DST" --from "$pos" --follow 2>/dev/null &
sync_pid=$!
trap 'kill $sync_pid 2>/dev/null || true' EXIT
pgbench -n -T "$SECS" -c 4 -j 2 "$SRC" 2>&1 | grep -E '^tps' >&2 &
bench_pid=$!
max=0
while kill -0 $bench_pid 2>/dev/null; do
  lag=$(pgdelta status --source "$SRC" --target "$DST" --json 2>/dev/null | sed -n 's/.*"lag_s":\([0-9.]*\).*/\1/p' || true)
  lag=${lag:-0}
  max=$(awk -v a="$max" -v b="$lag" 'BEGIN { print (b > a) ? b : a }')
  sleep 1
done
wait $bench_pid || true
for i in $(seq 1 60); do pgdelta status --source "$SRC" --target "$DST" >/dev/null 2>&1 && break; sleep 1; done
say "max lag while pgbench ran: ${max} s"
kill $sync_pid 2>/dev/null || true
