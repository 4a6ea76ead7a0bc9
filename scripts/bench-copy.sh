#!/usr/bin/env bash
# Benchmarks the pgferry copy (pgcopyout | pgcopyin) against pg_dump/pg_restore, a raw per-table
# `psql COPY TO | psql COPY FROM` pipe and (when installed) pgcopydb clone, in one run on the same
# data and servers, and prints a markdown table with ratios (paste it into docs/benchmarks.md).
#
# Usage: scripts/bench-copy.sh [--scale S] [--jobs N] [--repeat R] [--keep] [--out FILE] [--only LIST]
#   --scale S   dataset size: 1 is about 1.6 GB (one big table dominating, plus smaller ones);
#               0.002 is a smoke run of a few MB (default 1)
#   --jobs N    parallelism of every parallel method (default: number of CPUs, at least 2)
#   --repeat R  run every method R times, in alternating rounds, and report medians (default 1);
#               the machines here are noisy, so a ratio from one round is a rough one
#   --keep      keep the throwaway clusters and work directory
#   --out FILE  also write the markdown report to FILE
#   --only LIST comma-separated methods to run while iterating (pgferry_data, raw_pipe, pgferry_full,
#               pgferry_seq, dump_fc, dump_fd, pgcopydb, single): the report shows n/a for the others
#   extra pgcopyout flags (e.g. --codec none, --format text) go in PGCOPYOUT_FLAGS
# Servers: by default two throwaway clusters (initdb in a temp dir, as the postgres OS user when
# run as root) with identical settings. Set BENCH_SRC_ADMIN and BENCH_DST_ADMIN to URLs of a
# database on existing servers (a role that may CREATE DATABASE) to use those instead.
# Needs: go, psql, pg_dump, pg_restore, initdb/pg_ctl (throwaway mode), /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
export PATH="/usr/local/go/bin:$PATH"
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"

SCALE=1
JOBS=$(nproc 2>/dev/null || echo 2)
[ "$JOBS" -lt 2 ] && JOBS=2
KEEP=0
REPEAT=1
OUT=""
ONLY=""
PROG=bench-copy
. scripts/lib/bench.sh
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) SCALE=$2; shift 2 ;;
    --jobs|-j) JOBS=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    -h|--help) bench_help; exit 0 ;;
    *) bench_usage_error "$1" ;;
  esac
done
bench_need psql pg_dump pg_restore go
TIME=/usr/bin/time
[ -x "$TIME" ] || die "/usr/bin/time not found (apt-get install time): needed for peak RSS"

WORK=$(mktemp -d /tmp/pgferry-bench-XXXXXX)
chmod 755 "$WORK"
trap bench_cleanup EXIT

# --- tools under test -------------------------------------------------------------------------
mkdir -p "$WORK/bin"
log "building pgschema, pgcopyout and pgcopyin"
go build -o "$WORK/bin/" ./cmd/pgschema ./cmd/pgcopyout ./cmd/pgcopyin || die "build failed: pgschema, pgcopyout and pgcopyin must build"
export PATH="$WORK/bin:$PATH"

# --- servers --------------------------------------------------------------------------------
bench_servers
SRC=$(db_url "$SRC_ADMIN" pgferry_bench_src)
fresh_target() { # recreate the target database, print its URL
  psql -XqAt "$DST_ADMIN" -c "DROP DATABASE IF EXISTS pgferry_bench_dst WITH (FORCE)" -c "CREATE DATABASE pgferry_bench_dst" >/dev/null
  db_url "$DST_ADMIN" pgferry_bench_dst
}

# --- dataset --------------------------------------------------------------------------------
n() { awk -v s="$SCALE" -v b="$1" 'BEGIN { v = int(s * b); if (v < 10) v = 10; print v }'; }
# The tool's default split size at full scale; scaled down with the data so small runs split too.
SPLIT=$(awk -v s="$SCALE" 'BEGIN { v = int(268435456 * s); if (v < 65536) v = 65536; if (v > 268435456) v = 268435456; print v }')
BIG=$(n 9000000); ACC=$(n 500000); SMALL=$(n 100000); LOG=$(n 1000000)
log "generating the dataset at scale $SCALE (events $BIG rows, accounts $ACC, 8 small tables of $SMALL, keyless log $LOG)"
psql -XqAt "$SRC_ADMIN" -c "DROP DATABASE IF EXISTS pgferry_bench_src WITH (FORCE)" -c "CREATE DATABASE pgferry_bench_src" >/dev/null
gen_start=$(date +%s)
psql -Xq -v ON_ERROR_STOP=1 "$SRC" >/dev/null <<SQL
CREATE SCHEMA bench;
CREATE TYPE bench.kind AS ENUM ('view', 'click', 'buy', 'refund');
CREATE TABLE bench.accounts(id uuid PRIMARY KEY, email text NOT NULL, created timestamptz NOT NULL, balance numeric(14,2), tags text[]);
CREATE TABLE bench.events(id bigint PRIMARY KEY, account_id int NOT NULL, at timestamptz NOT NULL, kind bench.kind NOT NULL,
  amount numeric(12,2), payload jsonb, note text);
CREATE TABLE bench.log(at timestamptz, line text);
SQL
DATA_ONLY_PGFERRY=0 DATA_ONLY_RAW=0 SINGLE_J1=0 SINGLE_JN=0
psql -Xq -v ON_ERROR_STOP=1 "$SRC" -c "INSERT INTO bench.events SELECT i, i % 100000, '2024-01-01'::timestamptz + i * interval '1 second',
  (ARRAY['view','click','buy','refund']::bench.kind[])[1 + i % 4], (i % 100000) / 100.0,
  jsonb_build_object('ip', '10.0.' || (i % 250) || '.' || (i % 199), 'n', i % 1000), md5(i::text) || ' ' || repeat('x', (i % 40))
  FROM generate_series(1, $BIG) i" &
psql -Xq -v ON_ERROR_STOP=1 "$SRC" -c "INSERT INTO bench.accounts SELECT md5(i::text)::uuid, 'user' || i || '@example.com',
  '2020-01-01'::timestamptz + i * interval '1 minute', i / 7.0, ARRAY['t' || (i % 10), 'u' || (i % 3)] FROM generate_series(1, $ACC) i" &
psql -Xq -v ON_ERROR_STOP=1 "$SRC" -c "INSERT INTO bench.log SELECT now() - i * interval '1 ms', 'GET /item/' || i || ' 200 ' || md5(i::text)
  FROM generate_series(1, $LOG) i" &
for k in 1 2 3 4 5 6 7 8; do
  psql -Xq -v ON_ERROR_STOP=1 "$SRC" -c "CREATE TABLE bench.small_$k(id int PRIMARY KEY, name text, v double precision, d date);
    INSERT INTO bench.small_$k SELECT i, 'name ' || i, i * 1.5, '2000-01-01'::date + i % 9000 FROM generate_series(1, $SMALL) i"
done
wait
psql -Xq -v ON_ERROR_STOP=1 "$SRC" -c "CREATE INDEX ON bench.events(account_id); CREATE INDEX ON bench.events(at);
  CREATE UNIQUE INDEX ON bench.accounts(email)" -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
SIZE=$(psql -XAt "$SRC" -c "SELECT pg_size_pretty(sum(pg_relation_size(c.oid))) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'bench' AND c.relkind = 'r'")
TOTAL=$(psql -XAt "$SRC" -c "SELECT pg_size_pretty(pg_database_size(current_database()))")
log "dataset: $SIZE of table data, $TOTAL database (generated in $(( $(date +%s) - gen_start ))s)"
TABLES=$(psql -XAt "$SRC" -c "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables ORDER BY pg_relation_size(relid) DESC")

# --- helpers --------------------------------------------------------------------------------
declare -A SECS RSS ALL
median() { echo "$@" | tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
rss_mb() { awk '/Maximum resident set size/ { printf "%.0f", $NF / 1024 }' "$1"; }
counts() { # URL -> "table count" lines of the bench tables
  local u=$1 t
  for t in $TABLES; do echo "$t $(psql -XAt "$u" -c "SELECT count(*) FROM $t")"; done
}
SRC_COUNTS=$(counts "$SRC")
check() { # name URL: the copy must have every row
  [ "$(counts "$2")" = "$SRC_COUNTS" ] || die "$1: row counts on the target differ from the source; the benchmark is void"
}
pre_data() { # URL: tables, types (no indexes), as every data-only method needs them
  pg_dump -Fc --schema-only -f "$WORK/schema.dump" "$SRC"
  pg_restore --section=pre-data -d "$1" "$WORK/schema.dump"
}
indexes() { # URL: primary keys and indexes, N in parallel
  pg_restore --section=post-data -j "$JOBS" -d "$1" "$WORK/schema.dump"
}
pgferry_copy() { # URL JOBS [pgcopyout filters...]; PGCOPYIN_ARGS: more pgcopyin arguments
  local u=$1 j=$2; shift 2
  # shellcheck disable=SC2086
  "$TIME" -v -o "$WORK/out.time" pgcopyout --source "$SRC" -j "$j" --one-off --progress none --split-size "$SPLIT" ${PGCOPYOUT_FLAGS:-} "$@" |
    "$TIME" -v -o "$WORK/in.time" pgcopyin --target "$u" -j "$j" --progress none "${PGCOPYIN_ARGS[@]}"
  local o i
  o=$(rss_mb "$WORK/out.time"); i=$(rss_mb "$WORK/in.time")
  CPU_OUT=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { printf "%.1f", u + s }' "$WORK/out.time")
  CPU_IN=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { printf "%.1f", u + s }' "$WORK/in.time")
  log "client CPU seconds: pgcopyout $CPU_OUT, pgcopyin $CPU_IN"
  [ "$o" -gt "${RSS[pgcopyout]:-0}" ] && RSS[pgcopyout]=$o
  [ "$i" -gt "${RSS[pgcopyin]:-0}" ] && RSS[pgcopyin]=$i
  return 0
}
wanted() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }
run() { # key: time a method into a fresh target; the method is the function m_<key>
  local key=$1 dst t0
  wanted "$key" || wanted "${key%_j*}" || { SECS[$key]=0; return 0; }
  dst=$(fresh_target)
  log "running $key"
  t0=$(now)
  "m_$key" "$dst"
  SECS[$key]=$(since "$t0")
  ALL[$key]+=" ${SECS[$key]}"
  check "$key" "$dst"
  log "$key: ${SECS[$key]}s"
}

# --- methods --------------------------------------------------------------------------------
m_pgferry_data() {   # schema first (untimed in "data"), then the parallel copy
  pre_data "$1"; local t0; t0=$(now)
  pgferry_copy "$1" "$JOBS"
  DATA_ONLY_PGFERRY=$(since "$t0"); ALL[data_pgferry]+=" $DATA_ONLY_PGFERRY"
}
PGCOPYIN_ARGS=()
m_pgferry_full() {   # schema, copy with each table's indexes built as soon as it is loaded, the rest
  pre_data "$1"
  pgschema dump --source "$SRC" >"$WORK/schema.sql"
  pgschema filter --section indexes <"$WORK/schema.sql" >"$WORK/indexes.sql"
  PGCOPYIN_ARGS=(--indexes "$WORK/indexes.sql")
  pgferry_copy "$1" "$JOBS"
  PGCOPYIN_ARGS=()
  local sec
  for sec in constraints triggers; do
    pgschema filter --section "$sec" <"$WORK/schema.sql" | pgschema apply --target "$1" -j "$JOBS"
  done
}
m_pgferry_seq() {    # schema, copy, then indexes and keys in parallel (no overlap)
  pre_data "$1"; pgferry_copy "$1" "$JOBS"; indexes "$1"
}
m_pgcopydb() {       # pgcopydb clone (includes its VACUUM ANALYZE, which 0.10 cannot skip)
  rm -rf "$WORK/pgcopydb"
  pgcopydb clone --source "$SRC" --target "$1" --table-jobs "$JOBS" --index-jobs "$JOBS" --dir "$WORK/pgcopydb" >"$WORK/pgcopydb.log" 2>&1 ||
    die "pgcopydb clone failed; see $WORK/pgcopydb.log"
}
m_raw_pipe() {       # one psql COPY TO | psql COPY FROM per table, N tables at a time
  pre_data "$1"; local t0; t0=$(now)
  echo "$TABLES" | xargs -P "$JOBS" -I{} sh -c "psql -XqA '$SRC' -c 'COPY {} TO STDOUT' | psql -XqA '$1' -c 'COPY {} FROM STDIN'"
  DATA_ONLY_RAW=$(since "$t0"); ALL[data_raw]+=" $DATA_ONLY_RAW"
}
m_dump_fc() {        # the classic single stream
  pg_dump -Fc "$SRC" | pg_restore -d "$1"
}
m_dump_fd() {        # directory format, parallel dump then parallel restore
  rm -rf "$WORK/dump.d"
  pg_dump -Fd -j "$JOBS" -f "$WORK/dump.d" "$SRC"
  pg_restore -j "$JOBS" -d "$1" "$WORK/dump.d"
}
m_single_j1() { pre_data "$1"; local t0; t0=$(now); pgferry_copy "$1" 1 -t bench.events; SINGLE_J1=$(since "$t0"); ALL[data_j1]+=" $SINGLE_J1"; }
m_single_jn() { pre_data "$1"; local t0; t0=$(now); pgferry_copy "$1" "$JOBS" -t bench.events; SINGLE_JN=$(since "$t0"); ALL[data_jn]+=" $SINGLE_JN"; }

TABLES_ALL=$TABLES; COUNTS_ALL=$SRC_COUNTS
EVENTS_COUNTS=$(TABLES=bench.events counts "$SRC")
HAVE_PGCOPYDB=1
command -v pgcopydb >/dev/null || { HAVE_PGCOPYDB=0; log "pgcopydb not installed (apt-get install pgcopydb): skipped"; }
for round in $(seq 1 "$REPEAT"); do
  [ "$REPEAT" -gt 1 ] && log "round $round of $REPEAT"
  run pgferry_data
  run raw_pipe
  run pgferry_full
  run pgferry_seq
  run dump_fc
  run dump_fd
  if [ "$HAVE_PGCOPYDB" = 1 ]; then run pgcopydb; fi
  # single-table comparison: only the big table is checked
  TABLES=bench.events; SRC_COUNTS=$EVENTS_COUNTS
  run single_j1
  run single_jn
  TABLES=$TABLES_ALL; SRC_COUNTS=$COUNTS_ALL
done
for key in "${!ALL[@]}"; do SECS[$key]=$(median ${ALL[$key]}); done
for key in pgferry_full pgferry_seq dump_fc dump_fd pgcopydb; do SECS[$key]=${SECS[$key]:-0}; done
DATA_ONLY_PGFERRY=${SECS[data_pgferry]:-0} DATA_ONLY_RAW=${SECS[data_raw]:-0} SINGLE_J1=${SECS[data_j1]:-0} SINGLE_JN=${SECS[data_jn]:-0}

# --- report ---------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
show() { if [ "${1:-0}" = 0 ]; then echo n/a; else echo "$1"; fi; } # seconds, n/a for a method not run
best_dump=${SECS[dump_fc]}; best_name="pg_dump -Fc | pg_restore"
if awk -v a="${SECS[dump_fd]}" -v b="$best_dump" 'BEGIN { exit !(a > 0 && (b == 0 || a < b)) }'; then best_dump=${SECS[dump_fd]}; best_name="pg_dump -Fd -j $JOBS + pg_restore -j $JOBS"; fi
report=$(cat <<EOF
### Copy benchmark: scale $SCALE, -j $JOBS, $(date -u +%Y-%m-%d) on $(nproc) CPUs, median of $REPEAT round(s)

Dataset: $SIZE of table data ($TOTAL database): bench.events $BIG rows (dominant), bench.accounts $ACC (uuid key),
bench.log $LOG (no key: ctid ranges), 8 small tables of $SMALL rows; PostgreSQL $(psql -XAt "$SRC" -c 'SHOW server_version').

| method | what | seconds | vs pgferry |
|---|---|---:|---:|
| pgferry \`pgcopyout -j $JOBS \| pgcopyin -j $JOBS\` | data only | $(show "$DATA_ONLY_PGFERRY") | 1.00 |
| raw \`psql COPY TO \| psql COPY FROM\`, $JOBS tables at a time | data only | $(show "$DATA_ONLY_RAW") | $(ratio "$DATA_ONLY_RAW" "$DATA_ONLY_PGFERRY") |
| pgferry, \`pgcopyin --indexes\` (index builds overlap the copy) | schema, data, indexes | $(show "${SECS[pgferry_full]}") | 1.00 |
| pgferry, then \`pg_restore --section=post-data -j $JOBS\` | schema, data, indexes | $(show "${SECS[pgferry_seq]}") | $(ratio "${SECS[pgferry_seq]}" "${SECS[pgferry_full]}") |
| \`pg_dump -Fc \| pg_restore\` | schema, data, indexes | $(show "${SECS[dump_fc]}") | $(ratio "${SECS[dump_fc]}" "${SECS[pgferry_full]}") |
| \`pg_dump -Fd -j $JOBS\` + \`pg_restore -j $JOBS\` | schema, data, indexes | $(show "${SECS[dump_fd]}") | $(ratio "${SECS[dump_fd]}" "${SECS[pgferry_full]}") |
| \`pgcopydb clone --table-jobs $JOBS --index-jobs $JOBS\` (with its VACUUM ANALYZE) | schema, data, indexes | $(show "${SECS[pgcopydb]}") | $(ratio "${SECS[pgcopydb]}" "${SECS[pgferry_full]}") |
| pgferry, bench.events only, -j 1 | one table, data only | $(show "$SINGLE_J1") | $(ratio "$SINGLE_J1" "$SINGLE_JN") vs -j $JOBS |
| pgferry, bench.events only, -j $JOBS | one table, data only | $(show "$SINGLE_JN") | 1.00 |

- speed-up of pgferry over the best pg_dump/pg_restore variant ($best_name): **$(ratio "$best_dump" "${SECS[pgferry_full]}")x** with \`pgcopyin --indexes\`, **$(ratio "$best_dump" "${SECS[pgferry_seq]}")x** with the indexes after the copy (above 1 = pgferry faster; target >= 1.5).
- pgferry data time / raw pipe time: **$(ratio "$DATA_ONLY_PGFERRY" "$DATA_ONLY_RAW")** (target <= 1.15).
- single table, -j 1 time / -j $JOBS time: **$(ratio "$SINGLE_J1" "$SINGLE_JN")** (above 1 = -j helps).
- every round, in order: $(for k in data_pgferry data_raw pgferry_full pgferry_seq dump_fc dump_fd pgcopydb data_j1 data_jn; do [ -n "${ALL[$k]:-}" ] && printf '%s:%s; ' "$k" "${ALL[$k]}"; done)
- at small scales process start-up dominates every method; only full-scale numbers (--scale 1 or more) are meaningful.
- peak RSS over all pgferry runs: pgcopyout ${RSS[pgcopyout]} MB, pgcopyin ${RSS[pgcopyin]} MB (limit 200 MB).
- split size $SPLIT bytes; servers: fsync=off, synchronous_commit=off, shared_buffers=256MB, autovacuum=off (same for every method).
EOF
)
echo "$report"
[ -n "$OUT" ] && echo "$report" > "$OUT"
exit 0
