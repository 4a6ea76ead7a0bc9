#!/usr/bin/env bash
# cleanup.sh: removes pgferry from both sides after a cutover (or an abandoned migration).
set -euo pipefail
PROG=cleanup
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/common.sh"

usage() {
  cat <<'USAGE'
Usage: scripts/cleanup.sh --source URL --target URL [--state-dir DIR] [--keep-state-dir]

Leaves both databases as if pgferry had never touched them:
  - stops the background follower (pgdelta sync --follow) if it still runs
  - 'pgtrig remove --source': capture triggers, functions and delta tables off the source
  - drops the target's pgferry state schema (copy chunks, apply position), and with
    'pgtrig remove --target' a capture schema of another name, in case it was copied there
  - removes the state directory (unless --keep-state-dir)
It does NOT give writes back to a frozen source: that is 'scripts/cutover.sh --restore-writes'.
Safe to re-run: what is already gone is skipped.

Options (each also read from the environment variable shown):
  --source URL        (PGFERRY_SOURCE)
  --target URL        (PGFERRY_TARGET)
  --state-dir DIR     (PGFERRY_STATE_DIR, default ./pgferry-state)
  --keep-state-dir    keep the logs and SQL files

Exit status: 0 clean, 1 something could not be removed, 2 usage or connection error.

Example:
  scripts/cleanup.sh --source "$OLD_URL" --target "$NEW_URL"
USAGE
}

SOURCE=${PGFERRY_SOURCE:-}
TARGET=${PGFERRY_TARGET:-}
STATE_DIR=${PGFERRY_STATE_DIR:-./pgferry-state}
KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --source) SOURCE=${2:?--source needs a URL}; shift 2 ;;
    --target) TARGET=${2:?--target needs a URL}; shift 2 ;;
    --state-dir) STATE_DIR=${2:?}; shift 2 ;;
    --keep-state-dir) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage_error "unknown argument $1" ;;
  esac
done
need_endpoints
STATE_SCHEMA=${PGFERRY_STATE_SCHEMA:-pgferry}
CAPTURE_SCHEMA=${PGFERRY_CAPTURE_SCHEMA:-pgferry}
need_bin psql pgtrig
# the source may be frozen by cutover.sh: pgferry's own session still needs to write.
export PGOPTIONS="${PGOPTIONS:-} -c default_transaction_read_only=off"
export PGAPPNAME=pgferry-cleanup

if pid_alive "$STATE_DIR/sync.pid"; then
  kill "$(cat "$STATE_DIR/sync.pid")" && log "stopped the follower (pid $(cat "$STATE_DIR/sync.pid"))"
  wait_for 30 "the follower to stop" bash -c "! kill -0 $(cat "$STATE_DIR/sync.pid") 2>/dev/null" || true
fi
rc=0
env -u PGFERRY_TARGET pgtrig remove --source "$SOURCE" || rc=$?
[ "$rc" -ne 2 ] || exit 2
[ "$rc" -eq 0 ] || die "pgtrig remove --source failed (exit $rc)" "re-run; removal is one table per transaction and resumes"
# On the target the state schema usually IS the capture schema's name ("pgferry"): dropping it
# removes anything capture-related that came along. A separate capture schema is pgtrig's job.
if [ "$CAPTURE_SCHEMA" != "$STATE_SCHEMA" ]; then
  env -u PGFERRY_SOURCE pgtrig remove --target "$TARGET" || rc=$?
  [ "$rc" -ne 2 ] || exit 2
  [ "$rc" -eq 0 ] || die "pgtrig remove --target failed (exit $rc)"
fi
psql_q "$TARGET" "SET client_min_messages = warning; DROP SCHEMA IF EXISTS \"${STATE_SCHEMA//\"/\"\"}\" CASCADE" ||
  die "dropping the state schema $STATE_SCHEMA on the target failed"
log "removed capture from the source and pgferry's state from the target"
if [ "$KEEP" = 0 ] && [ -d "$STATE_DIR/done" ]; then
  rm -rf "$STATE_DIR"
  log "removed the state directory $STATE_DIR"
fi
