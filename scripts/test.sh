#!/usr/bin/env bash
# test.sh: runs every test against throwaway PostgreSQL clusters and (under CI, or with --matrix),
# beside them, the version matrix: the live migration end to end and the engine packages on other
# source -> target pairs.
set -euo pipefail
PROG=test
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
. "$here/lib/common.sh"
. "$here/lib/pgversions.sh"

usage() {
  cat <<'USAGE'
Usage: scripts/test.sh [--matrix | --no-matrix | --matrix-only] [go test args...]

Runs go vet and every package's tests on the installed PostgreSQL (15 -> 15 on Debian), each test
binary starting its own throwaway clusters. With --matrix (the default when CI=true), the version
matrix runs beside it, one pair at a time (each pair's servers fetched once by
scripts/pg-versions.sh, each pair's output printed after the default run's, with how long it took):

  11 -> 17, 13 -> 16  the whole live migration (TestMigrateLive: writer throughout, migrate.sh,
                      cutover.sh, pgverify clean, every table equal row for row), 50 MB;
                      on 11 -> 17 also TestRealDatabase (keyless, RLS, reg*, 1,600 columns,
                      hostile names, large objects, tiny timeouts on both sides)
  11 -> 17, 17 -> 17  the capture, delta, copy and verify package tests

Go test arguments apply to the default run only. To run any test on any pair yourself:
  scripts/pg-versions.sh run 11 17 -- go test -count=1 -run TestSyncModel ./internal/delta/

Environment: PGFERRY_PGBIN (the default run's server), PGFERRY_PG_CACHE (matrix builds),
PGFERRY_MATRIX_MB (the matrix migration's size, default 50).
USAGE
}

matrix=${CI:-false}
default=1
case ${1:-} in
  --matrix) matrix=true; shift ;;
  --no-matrix) matrix=false; shift ;;
  --matrix-only) matrix=true; default=0; shift ;;
  -h|--help) usage; exit 0 ;;
esac
export PATH="/usr/local/go/bin:$PATH"
if [ -z "${PGFERRY_PGBIN:-}" ] && ! command -v pg_config >/dev/null 2>&1; then
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$d" ] && export PGFERRY_PGBIN="$d"
fi

# The default run and the matrix mostly wait (on servers, writers, timers), so the matrix pairs
# run beside the default run, one pair at a time: two lanes and -p 3 loaded the 2-core machine
# enough to fail load-sensitive tests (20 ms role timeouts, "only 2 batches" guards); -p 1 made
# the lane longer than the default run. Each pair's output goes to its own log, printed in order
# at the end with its timing.
default_rc=0
t0=$(now_s)
# vet first: it compiles every package once into Go's cache for all the go test runs below
[ "$default" = 1 ] && { go vet ./... || default_rc=$?; }
matrix_dir=""
if [ "$matrix" = true ]; then
  matrix_dir=$(mktemp -d /tmp/pgferry-matrix-XXXXXX)
  trap 'rm -rf "$matrix_dir"' EXIT
  engines=(./internal/dbconn/ ./internal/capture/ ./internal/delta/ ./internal/copyout/ ./internal/copyin/ ./internal/verify/)
  declare -A bin=()
  for v in 11 13 16 17; do bin[$v]=$(pgv_bindir "$v") || die "cannot fetch PostgreSQL $v for the matrix"; done
  # pair NAME SRC TGT GO-TEST-ARGS...: go test with that pair's servers; its output and how long
  # it took go to NAME.log, its exit code to NAME.rc.
  pair() {
    local name=$1 src=$2 tgt=$3 t0 rc=0
    shift 3
    t0=$(now_s)
    {
      log "matrix $src -> $tgt: go test $*"
      PGFERRY_TEST_SOURCE_BIN=${bin[$src]} PGFERRY_TEST_TARGET_BIN=${bin[$tgt]} \
        go test -count=1 -timeout 15m "$@" || rc=$?
      log "matrix $src -> $tgt: $([ "$rc" = 0 ] && echo ok || echo FAILED) in $(elapsed "$t0")s"
    } >"$matrix_dir/$name.log" 2>&1
    echo "$rc" >"$matrix_dir/$name.rc"
  }
  mb=${PGFERRY_MATRIX_MB:-50}
  # TestRealDatabase (issue 13's real-world database) runs beside TestMigrateLive in the same
  # binary (both parallel), so the pair costs little more than the longer of the two.
  ( PGFERRY_E2E_MB=$mb pair 1-e2e-11-17 11 17 -run '^(TestMigrateLive|TestRealDatabase)$' ./e2e/
    PGFERRY_E2E_MB=$mb pair 2-e2e-13-16 13 16 -run '^TestMigrateLive$' ./e2e/
    pair 3-engines-11-17 11 17 "${engines[@]}"
    pair 4-engines-17-17 17 17 "${engines[@]}" ) &
  lane=$!
fi

if [ "$default" = 1 ]; then
  # -parallel 4: the end-to-end tests mostly wait on servers, writers and timers, not the CPU
  [ "$default_rc" = 0 ] && { go test -count=1 -timeout 25m -parallel 4 "$@" ./... || default_rc=$?; }
  log "default run: $([ "$default_rc" = 0 ] && echo ok || echo FAILED) in $(elapsed "$t0")s"
fi
[ "$matrix" = true ] || exit "$default_rc"

wait "$lane" || true
failed=()
[ "$default_rc" = 0 ] || failed+=("default run")
for f in "$matrix_dir"/*.log; do
  name=$(basename "$f" .log)
  cat "$f"
  [ "$(cat "$matrix_dir/$name.rc" 2>/dev/null)" = 0 ] || failed+=("${name#*-}")
done
[ ${#failed[@]} -eq 0 ] || die "failed: ${failed[*]} (each one's output above)"
log "default run and version matrix ok"
