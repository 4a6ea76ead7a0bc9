#!/usr/bin/env bash
# Benchmark: `pgschema apply -j 4` against `-j 1` of the index section of a database with
# several large tables (each table gets a primary key and three secondary indexes).
#
# Usage: scripts/bench-schema.sh [ROWS_PER_TABLE] [TABLES] [REPEAT]
#   ROWS_PER_TABLE  rows in each table (default 2000000; smoke test: 20000)
#   TABLES          number of tables (default 4)
#   REPEAT          runs of each -j setting; the median is reported (default 3)
#   BENCH_URL       use this server (a scratch database pgschema_bench is created and dropped);
#                   without it a throwaway cluster is started in a temp directory.
#   BENCH_JOBS      parallel setting to compare with -j 1 (default 4)
#   BENCH_UNSPLIT   1 (default): also time -j N with --parallel-workers set to the server's
#                   max_parallel_maintenance_workers on every connection (the behaviour before
#                   'auto' split it among the N connections); 0: skip those runs
# Both -j 1 and -j N run with apply's defaults (--parallel-workers auto: -j 1 keeps the server's
# max_parallel_maintenance_workers, -j N gives each connection the server's value / N).
# Prints one line per run and a final "ratio" line (seconds at -j 1 / seconds at -j N), with
# jNunsplit= and ratio_unsplit= for the -j N runs without the split.
set -euo pipefail
ROWS=${1:-2000000}
TABLES=${2:-4}
REPEAT=${3:-3}
JOBS=${BENCH_JOBS:-4}
UNSPLIT=${BENCH_UNSPLIT:-1}
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

tmp=$(mktemp -d)
cluster=""
pgbin=""
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  if [ -n "${ADMIN_URL:-}" ]; then psql -XAtq -d "$ADMIN_URL" -c 'DROP DATABASE IF EXISTS pgschema_bench WITH (FORCE)' >/dev/null 2>&1 || true; fi
  if [ -n "$cluster" ]; then as_pg "$pgbin/pg_ctl" stop -m immediate -D "$cluster/data" >/dev/null 2>&1 || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/pgschema" ./cmd/pgschema
PGSCHEMA="$tmp/pgschema"

if [ -n "${BENCH_URL:-}" ]; then
  ADMIN_URL=$BENCH_URL
else
  pgbin=${PGFERRY_PGBIN:-$(pg_config --bindir 2>/dev/null || true)}
  if [ -z "$pgbin" ] || [ ! -x "$pgbin/initdb" ]; then
    pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  fi
  cluster="$tmp/cluster"
  mkdir -p "$cluster/sock"
  if [ "$(id -u)" = 0 ]; then chown -R postgres "$tmp"; chmod 755 "$tmp"; fi
  as_pg "$pgbin/initdb" --no-sync -U postgres --auth=trust -E UTF8 --locale=C -D "$cluster/data" >/dev/null
  port=$((20000 + RANDOM % 10000))
  as_pg "$pgbin/pg_ctl" start -w -D "$cluster/data" -l "$cluster/log" \
    -o "-c listen_addresses='' -k $cluster/sock -p $port -c fsync=off -c shared_buffers=256MB -c maintenance_work_mem=256MB" >/dev/null
  ADMIN_URL="postgres://postgres@/postgres?host=$cluster/sock&port=$port"
fi
URL=$(printf '%s' "$ADMIN_URL" | sed -E 's#(//[^/]*/)[^?]*#\1pgschema_bench#')

psql -XAtq -d "$ADMIN_URL" -c 'SET client_min_messages = warning' -c 'DROP DATABASE IF EXISTS pgschema_bench WITH (FORCE)' -c 'CREATE DATABASE pgschema_bench'
echo "loading $TABLES tables x $ROWS rows" >&2
for i in $(seq 1 "$TABLES"); do
  psql -XAtq -v ON_ERROR_STOP=1 -d "$URL" <<SQL
CREATE TABLE public.big_$i (id bigint, a int, b text, c timestamptz);
INSERT INTO public.big_$i SELECT g, (g::bigint * 7919) % 100000, md5(g::text), '2024-01-01'::timestamptz + (g % 100000) * interval '1 minute'
  FROM generate_series(1, $ROWS) g;
ALTER TABLE public.big_$i ADD CONSTRAINT big_${i}_pkey PRIMARY KEY (id);
CREATE INDEX big_${i}_a ON public.big_$i (a);
CREATE INDEX big_${i}_b ON public.big_$i (b);
CREATE INDEX big_${i}_c_a ON public.big_$i (c, a);
SQL
done
psql -XAtq -d "$URL" -c 'VACUUM ANALYZE'
"$PGSCHEMA" dump --source "$URL" --section indexes > "$tmp/indexes.sql"
valid_indexes() { psql -XAtq -d "$URL" -c "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = 'public'::regnamespace AND i.indisvalid"; }
want=$(valid_indexes) # as loaded: what each apply must build again

drop_indexes() {
  psql -XAtq -v ON_ERROR_STOP=1 -d "$URL" <<'SQL'
DO $$DECLARE r record; BEGIN
  FOR r IN SELECT conrelid::regclass AS t, conname FROM pg_constraint WHERE contype = 'p' AND connamespace = 'public'::regnamespace LOOP
    EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.t, r.conname);
  END LOOP;
  FOR r IN SELECT indexrelid::regclass AS i FROM pg_index JOIN pg_class c ON c.oid = indexrelid WHERE c.relnamespace = 'public'::regnamespace LOOP
    EXECUTE format('DROP INDEX %s', r.i);
  END LOOP;
END$$;
CHECKPOINT;
SQL
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

server_workers=$(psql -XAtq -d "$URL" -c 'SHOW max_parallel_maintenance_workers')
echo "server max_parallel_maintenance_workers=$server_workers maintenance_work_mem=$(psql -XAtq -d "$URL" -c 'SHOW maintenance_work_mem')" >&2

# bench LABEL APPLY-ARGS...: REPEAT timed runs, the median in secs[LABEL]
declare -A secs
bench() {
  local label=$1; shift
  : > "$tmp/times_$label"
  for r in $(seq 1 "$REPEAT"); do
    drop_indexes
    start=$(date +%s.%N)
    "$PGSCHEMA" apply --target "$URL" "$@" < "$tmp/indexes.sql" 2>/dev/null
    end=$(date +%s.%N)
    got=$(valid_indexes)
    if [ "$got" != "$want" ]; then echo "bench: apply $* built $got indexes, want $want" >&2; exit 1; fi
    t=$(echo "$end - $start" | bc)
    echo "apply $* run $r: $t s" >&2
    echo "$t" >> "$tmp/times_$label"
  done
  secs[$label]=$(median < "$tmp/times_$label")
}
bench 1 -j 1
bench "$JOBS" -j "$JOBS"
ratio=$(echo "scale=2; ${secs[1]} / ${secs[$JOBS]}" | bc)
line="tables=$TABLES rows=$ROWS indexes=$want j1=${secs[1]}s j$JOBS=${secs[$JOBS]}s ratio=$ratio"
if [ "$UNSPLIT" = 1 ]; then
  bench unsplit -j "$JOBS" --parallel-workers "$server_workers"
  line="$line j${JOBS}unsplit=${secs[unsplit]}s ratio_unsplit=$(echo "scale=2; ${secs[1]} / ${secs[unsplit]}" | bc)"
fi
echo "$line"
