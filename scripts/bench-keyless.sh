#!/usr/bin/env bash
# Benchmarks pgdelta on tables without a key: the cost per changed row of one batch, source read
# (pgdelta stream) and target apply (pgdelta apply), for the same UPDATE of K rows on a keyed
# table (primary key), a keyless table with an index on a NOT NULL column, and a keyless table
# without any index; plus a batch holding a TRUNCATE of the keyless table without an index,
# which reloads it whole (the reload design, for comparison). Prints a markdown table (paste it
# into docs/benchmarks.md): medians of the rounds, wall-clock and each server's CPU.
#
# Usage: scripts/bench-keyless.sh [--rows N] [--scan-rows M] [--changes K,...] [--repeat R] [--keep] [--out FILE]
#   --rows N        rows of the keyed and of the indexed keyless table (default 10000000)
#   --scan-rows M   rows of the keyless table without an index (default 1000000; 0 leaves it out)
#   --changes K,... rows changed per batch, each size measured (default 1000,100000)
#   --repeat R      rounds, the tables alternating within each; medians reported (default 3)
#   --keep          keep the throwaway clusters and work directory
#   --out FILE      also write the markdown report to FILE
# Servers: two throwaway clusters (initdb in a temp dir, fsync off), or BENCH_SRC_ADMIN and
# BENCH_DST_ADMIN: URLs of a database on existing servers (CREATE DATABASE allowed; no CPU then).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

ROWS=10000000 SCAN_ROWS=1000000 CHANGES=1000,100000 REPEAT=3 KEEP=0 OUT=""
PROG=bench-keyless
. scripts/lib/bench.sh
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) ROWS=$2; shift 2 ;;
    --scan-rows) SCAN_ROWS=$2; shift 2 ;;
    --changes) CHANGES=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) bench_help; exit 0 ;;
    *) bench_usage_error "$1" ;;
  esac
done
bench_need psql go

WORK=$(mktemp -d /tmp/pgferry-benchk-XXXXXX)
chmod 755 "$WORK"
trap bench_cleanup EXIT
log "building the tools"
go build -o "$WORK/bin/" ./cmd/... || die "build failed"
export PATH="$WORK/bin:$PATH"

bench_servers
SRC=$(db_url "$SRC_ADMIN" pgferry_benchk)
DST=$(db_url "$DST_ADMIN" pgferry_benchk)
q() { psql -XqAt -v ON_ERROR_STOP=1 "$@"; }

# The same rows on both sides, generated (not copied): kd keyed, kx keyless with an index on id,
# kn keyless without an index. id values are distinct, but only kd says so.
cols='id bigint NOT NULL, a int, b text, c timestamptz, d numeric'
fill() { echo "SELECT g, g % 1000, md5(g::text), '2024-01-01'::timestamptz + g * interval '1 s', g / 3.0 FROM generate_series(1, $1) g"; }
for side in "$SRC_ADMIN" "$DST_ADMIN"; do
  q "$side" -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS pgferry_benchk" -c "CREATE DATABASE pgferry_benchk"
  url=$(db_url "$side" pgferry_benchk)
  log "generating kd and kx ($ROWS rows each) and kn ($SCAN_ROWS rows) on $(q "$url" -c 'SELECT current_setting($$port$$)')"
  q "$url" -c "CREATE TABLE kd ($cols, PRIMARY KEY (id)); CREATE TABLE kx ($cols); CREATE TABLE kn ($cols)"
  q "$url" -c "INSERT INTO kd $(fill "$ROWS")" -c "INSERT INTO kx SELECT * FROM kd" -c "INSERT INTO kn $(fill "$SCAN_ROWS")"
  q "$url" -c "CREATE INDEX kx_id ON kx (id)" -c "VACUUM ANALYZE kd" -c "VACUUM ANALYZE kx" -c "VACUUM ANALYZE kn"
done
pgtrig install --source "$SRC" 2>"$WORK/install.log" >/dev/null || { cat "$WORK/install.log" >&2; die "pgtrig install failed"; }
pgtrig check --source "$SRC" | grep -E '^(INFO|WARNING): public\.k' >&2 || true

# cpu SIDE: that side's server CPU seconds so far (empty on existing servers).
cpu() { [ ${#BENCH_CLUSTERS[@]} -gt 0 ] && bench_server_cpu "$WORK/$1/data" || true; }
# measure LABEL TABLE K SQL: one batch holding SQL's change to TABLE, streamed then applied;
# appends "label k stream_s apply_s source_cpu_s target_cpu_s records" to $WORK/results.
measure() {
  local label=$1 t=$2 k=$3 sql=$4 from s0 s1 s2 c0 c1 d0 d1 recs check
  from=$(q "$SRC" -c 'SELECT txid_current_snapshot()')
  q "$SRC" -c "$sql"
  c0=$(cpu src); s0=$(now_s)
  pgdelta stream --source "$SRC" --from "$from" --until-caught-up >"$WORK/batch.jsonl"
  s1=$(now_s); c1=$(cpu src); d0=$(cpu dst)
  pgdelta apply --target "$DST" --no-position-check <"$WORK/batch.jsonl" 2>/dev/null
  s2=$(now_s); d1=$(cpu dst)
  recs=$(grep -c '"op":"\(upsert\|delete\|rows\)"' "$WORK/batch.jsonl" || true)
  awk -v l="$label" -v k="$k" -v s0="$s0" -v s1="$s1" -v s2="$s2" -v c0="${c0:-0}" -v c1="${c1:-0}" -v d0="${d0:-0}" -v d1="${d1:-0}" -v n="$recs" \
    'BEGIN { print l, k, s1 - s0, s2 - s1, c1 - c0, d1 - d0, n }' >>"$WORK/results"
  # both sides must agree after every batch
  check="SELECT count(*), sum(a), md5(string_agg(b, '' ORDER BY b)) FROM $t WHERE id % 1000 = 7"
  [ "$(q "$SRC" -c "$check")" = "$(q "$DST" -c "$check")" ] || die "$t differs between source and target after a batch"
}

: >"$WORK/results"
start=1
for r in $(seq 1 "$REPEAT"); do
  for k in ${CHANGES//,/ }; do
    for t in kd kx kn; do
      n=$ROWS
      [ "$t" = kn ] && n=$SCAN_ROWS
      [ "$n" -gt 0 ] && [ "$k" -le "$n" ] || continue
      lo=$(((start * 7919) % (n - k + 1) + 1))
      log "round $r: UPDATE of $k rows of $t"
      measure "$t" "$t" "$k" "UPDATE $t SET a = a + 1, b = b || 'x' WHERE id >= $lo AND id < $lo + $k"
    done
    start=$((start + 1))
  done
  if [ "$SCAN_ROWS" -gt 0 ]; then
    log "round $r: TRUNCATE and refill of kn (the batch reloads it)"
    measure kn-reload kn "$SCAN_ROWS" "BEGIN; CREATE TEMP TABLE s AS SELECT * FROM kn; TRUNCATE kn; INSERT INTO kn SELECT * FROM s; COMMIT"
  fi
done

report() {
  echo "Changed rows per batch K; medians of $REPEAT rounds; per changed row: (stream + apply) wall time / K."
  echo
  echo "| table | rows | K | records | stream (s) | apply (s) | source CPU (s) | target CPU (s) | per changed row (ms) | vs keyed |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  sort -k1,1 -k2,2n "$WORK/results" | awk -v rows="$ROWS" -v scan="$SCAN_ROWS" '
    function med(a, n,   i, j, x) { for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j > 0 && a[j] > x; j--) a[j+1] = a[j]; a[j+1] = x }
      return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2 }
    { key = $1 " " $2; if (!(key in cnt)) order[++nk] = key; i = ++cnt[key]
      st[key, i] = $3; ap[key, i] = $4; sc[key, i] = $5; dc[key, i] = $6; rec[key] = $7 }
    END {
      for (o = 1; o <= nk; o++) { key = order[o]; n = cnt[key]
        for (f = 1; f <= 4; f++) { delete v; for (i = 1; i <= n; i++) v[i] = (f == 1 ? st[key, i] : f == 2 ? ap[key, i] : f == 3 ? sc[key, i] : dc[key, i]); m[key, f] = med(v, n) }
        split(key, kk, " "); per[key] = (m[key, 1] + m[key, 2]) * 1000 / kk[2] }
      for (o = 1; o <= nk; o++) { key = order[o]; split(key, kk, " ")
        name = kk[1] == "kd" ? "keyed (primary key)" : kk[1] == "kx" ? "keyless, index on id" : kk[1] == "kn" ? "keyless, no index" : "keyless, no index: TRUNCATE reload"
        ratio = ("kd " kk[2]) in per && kk[1] != "kn-reload" ? sprintf("%.2f", per[key] / per["kd " kk[2]]) : "-"
        printf "| %s | %d | %d | %d | %.3f | %.3f | %.2f | %.2f | %.4f | %s |\n", name, (kk[1] ~ /^kn/ ? scan : rows), kk[2], rec[key],
          m[key, 1], m[key, 2], m[key, 3], m[key, 4], per[key], ratio } }'
}
report | tee "${OUT:-/dev/null}"
