#!/usr/bin/env bash
# test.sh: runs every test against throwaway PostgreSQL clusters, then (under CI, or with
# --matrix) the version matrix: the live migration end to end and the engine packages on other
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
binary starting its own throwaway clusters. Then, with --matrix (the default when CI=true), the
version matrix, each pair's servers fetched once by scripts/pg-versions.sh:

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

if [ "$default" = 1 ]; then
  go vet ./...
  # -parallel 4: the end-to-end tests mostly wait on servers, writers and timers, not the CPU
  go test -count=1 -timeout 25m -parallel 4 "$@" ./...
fi
[ "$matrix" = true ] || exit 0

engines=(./internal/dbconn/ ./internal/capture/ ./internal/delta/ ./internal/copyout/ ./internal/copyin/ ./internal/verify/)
# pair SRC TGT GO-TEST-ARGS...: runs go test with that pair's servers, printing how long it took.
pair() {
  local src=$1 tgt=$2 t0 rc=0
  shift 2
  t0=$(now_s)
  log "matrix $src -> $tgt: go test $*"
  PGFERRY_TEST_SOURCE_BIN=$(pgv_bindir "$src") PGFERRY_TEST_TARGET_BIN=$(pgv_bindir "$tgt") \
    go test -count=1 -timeout 15m "$@" || rc=$?
  log "matrix $src -> $tgt: $([ "$rc" = 0 ] && echo ok || echo FAILED) in $(elapsed "$t0")s"
  return "$rc"
}
failed=()
# TestRealDatabase (issue 13's real-world database) runs beside TestMigrateLive in the same binary
# (both parallel), so the pair costs little more than the longer of the two.
PGFERRY_E2E_MB=${PGFERRY_MATRIX_MB:-50} pair 11 17 -run '^(TestMigrateLive|TestRealDatabase)$' ./e2e/ || failed+=("11->17 e2e")
PGFERRY_E2E_MB=${PGFERRY_MATRIX_MB:-50} pair 13 16 -run '^TestMigrateLive$' ./e2e/ || failed+=("13->16 e2e")
pair 11 17 "${engines[@]}" || failed+=("11->17 engines")
pair 17 17 "${engines[@]}" || failed+=("17->17 engines")
[ ${#failed[@]} -eq 0 ] || die "version matrix failed: ${failed[*]}"
log "version matrix ok"
