#!/usr/bin/env bash
# Runs every test against throwaway PostgreSQL clusters. Usage: scripts/test.sh [go test args]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
if [ -z "${PGFERRY_PGBIN:-}" ] && ! command -v pg_config >/dev/null 2>&1; then
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$d" ] && export PGFERRY_PGBIN="$d"
fi
go vet ./...
exec go test -count=1 -timeout 25m "$@" ./...
