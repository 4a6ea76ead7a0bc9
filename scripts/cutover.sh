#!/usr/bin/env bash
# cutover.sh: stop writes on the source, drain, verify, finish the target's schema, report downtime.
set -euo pipefail
PROG=cutover
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/common.sh"

usage() {
  cat <<'USAGE'
Usage: scripts/cutover.sh --source URL --target URL [options]

Run after scripts/migrate.sh, when 'pgdelta status' shows the target close behind. Steps:

  1. freeze      the source stops taking writes from the application:
                   ALTER DATABASE <db> SET default_transaction_read_only = on
                 then ends the open sessions of the application's roles (pg_terminate_backend),
                 so every new transaction is read-only. Both work without superuser for the
                 database owner (Heroku's default credential). pgferry's own sessions are spared
                 and run with default_transaction_read_only=off.
  2. drain       waits until 'pgdelta status' shows nothing waiting, stops the follower, and
                 runs a last 'pgdelta sync --until-caught-up'
  3. sequences   'pgdelta sync'ed sequences ('pgdelta sequences')
  4. verify      'pgverify --mode hash': on ANY difference the cutover is aborted and the
                 source takes writes again
  5. finish      foreign keys (NOT VALID) and user triggers created on the target, one
                 transaction each — the target can now take traffic: write downtime ends here
  6. validate    'ALTER TABLE ... VALIDATE CONSTRAINT' for each new foreign key (does not
                 block writes, so it runs after the downtime is measured)

If any step after the freeze fails, writes are restored on the source and the script exits 1.
After a kill, re-run it: finished steps are skipped, downtime is counted from the first freeze.
The source is left read-only after success (so nothing writes to the old database by mistake);
'--restore-writes' undoes the freeze (also the rollback path: see docs/runbook.md).

Options (each also read from the environment variable shown):
  --source URL          the old database (PGFERRY_SOURCE)
  --target URL          the new database (PGFERRY_TARGET)
  --state-dir DIR       the state directory migrate.sh used (PGFERRY_STATE_DIR, default ./pgferry-state)
  --app-role ROLE       end the sessions of ROLE at the freeze (repeatable; default: the
                        source URL's own role, as on Heroku where the app shares it)
  --no-terminate        do not end any session (they keep writing until they reconnect!)
  --timeout SECONDS     how long to wait for the drain (PGFERRY_CUTOVER_TIMEOUT, default 300)
  -j, --jobs N          pgverify workers (PGFERRY_JOBS, default 4)
  --verify-mode MODE    hash (default: every value compared) or count (exact row counts only,
                        for very large databases already verified live) (PGFERRY_CUTOVER_VERIFY_MODE)
  --restore-writes      only undo the freeze on the source, then exit
  -n, -N, -t, -T GLOB   table filters, the same as given to migrate.sh

Exit status: 0 cutover done, 1 failed or aborted (source writable again), 2 usage or connection error.

Example:
  scripts/cutover.sh --app-role app_user --timeout 120
USAGE
}

SOURCE=${PGFERRY_SOURCE:-}
TARGET=${PGFERRY_TARGET:-}
STATE_DIR=${PGFERRY_STATE_DIR:-./pgferry-state}
JOBS=${PGFERRY_JOBS:-4}
TIMEOUT=${PGFERRY_CUTOVER_TIMEOUT:-300}
TERMINATE=1 RESTORE_ONLY=0
VERIFY_MODE=${PGFERRY_CUTOVER_VERIFY_MODE:-hash}
APP_ROLES=()
FILTERS=()
while [ $# -gt 0 ]; do
  case $1 in
    --source) SOURCE=${2:?--source needs a URL}; shift 2 ;;
    --target) TARGET=${2:?--target needs a URL}; shift 2 ;;
    --state-dir) STATE_DIR=${2:?}; shift 2 ;;
    --app-role) APP_ROLES+=("${2:?--app-role needs a role name}"); shift 2 ;;
    --no-terminate) TERMINATE=0; shift ;;
    --timeout) TIMEOUT=${2:?}; shift 2 ;;
    -j|--jobs) JOBS=${2:?}; shift 2 ;;
    --restore-writes) RESTORE_ONLY=1; shift ;;
    --verify-mode) VERIFY_MODE=${2:?}; shift 2 ;;
    -n|--schema|-N|--exclude-schema|-t|--table|-T|--exclude-table)
      [ $# -ge 2 ] || usage_error "$1 needs a pattern"
      FILTERS+=("$1" "$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage_error "unknown argument $1" ;;
  esac
done
[ -n "$SOURCE" ] || usage_error "no source: pass --source URL or set PGFERRY_SOURCE"
[ -n "$TARGET" ] || usage_error "no target: pass --target URL or set PGFERRY_TARGET"
case $VERIFY_MODE in hash|count) ;; *) usage_error "--verify-mode must be hash or count" ;; esac
case $TIMEOUT in ''|*[!0-9]*) usage_error "--timeout must be a number of seconds" ;; esac
case $JOBS in ''|*[!0-9]*|0) usage_error "-j must be a positive number" ;; esac
export PGFERRY_CAPTURE_SCHEMA=${PGFERRY_CAPTURE_SCHEMA:-pgferry} PGFERRY_STATE_SCHEMA=${PGFERRY_STATE_SCHEMA:-pgferry}
need_bin psql pgschema pgdelta pgverify
# pgferry's own sessions must keep write access on the frozen source (capture bookkeeping).
export PGOPTIONS="${PGOPTIONS:-} -c default_transaction_read_only=off"
export PGAPPNAME=pgferry-cutover

for side in source target; do
  url=$SOURCE; [ $side = target ] && url=$TARGET
  if ! err=$(psql_q "$url" "SELECT 1" 2>&1 >/dev/null); then
    log "cannot connect to the $side ($(redact "$url")): ${err##*FATAL:  }"
    exit 2
  fi
done
DB=$(psql_q "$SOURCE" "SELECT current_database()")
QDB=$(psql_q "$SOURCE" "SELECT quote_ident(current_database())")

restore_writes() {
  psql_q "$SOURCE" "ALTER DATABASE $QDB RESET default_transaction_read_only" &&
    log "writes restored on the source database $DB (new sessions can write again)"
}

if [ "$RESTORE_ONLY" = 1 ]; then
  restore_writes
  rm -f "$STATE_DIR/done/freeze" "$STATE_DIR/freeze-start" "$STATE_DIR/done/drain" "$STATE_DIR/done/sequences" "$STATE_DIR/done/verify"
  exit 0
fi

[ -d "$STATE_DIR" ] && STATE_DIR=$(cd "$STATE_DIR" && pwd)
[ -d "$STATE_DIR" ] && lock_state_dir
step_done indexes || die "migrate.sh has not finished in $STATE_DIR" "run scripts/migrate.sh (with the same --state-dir) until it says 'ready for cutover'"

# From the freeze on, any failure gives the source back to the application.
FINISHED=0
on_exit() {
  local rc=$?
  if [ "$FINISHED" = 0 ] && step_done freeze; then
    log "cutover did not finish (exit $rc): giving writes back to the source"
    restore_writes || log "could not restore writes: run '$0 --restore-writes'"
    # the source moves on again: the next cutover must drain, set sequences and verify anew
    rm -f "$STATE_DIR/done/freeze" "$STATE_DIR/freeze-start" "$STATE_DIR/done/drain" "$STATE_DIR/done/sequences" "$STATE_DIR/done/verify"
    if step_done constraints; then
      log "warning: the target already has its foreign keys; restart the follower (scripts/migrate.sh) only after dropping them, or cut over again soon"
    fi
    log "restart the follower with scripts/migrate.sh, then run this script again"
  fi
}
trap on_exit EXIT

# --- 1. freeze ----------------------------------------------------------------------------------
freeze() {
  [ -f "$STATE_DIR/freeze-start" ] || now_s >"$STATE_DIR/freeze-start"
  psql_q "$SOURCE" "ALTER DATABASE $QDB SET default_transaction_read_only = on"
  if [ "$TERMINATE" = 1 ]; then
    local roles n
    if [ ${#APP_ROLES[@]} -eq 0 ]; then
      roles="ARRAY[current_user]::text[]"
    else
      roles="ARRAY[$(printf "'%s'," "${APP_ROLES[@]//\'/\'\'}" | sed 's/,$//')]::text[]"
    fi
    n=$(psql_q "$SOURCE" "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid() AND usename = ANY($roles)
      AND coalesce(application_name, '') NOT LIKE 'pgferry%' AND backend_type = 'client backend'")
    log "freeze: the source is read-only for new transactions; ended $n application sessions"
  else
    log "freeze: the source is read-only for new transactions; open sessions were left alone (--no-terminate)"
  fi
}

# --- 2. drain ----------------------------------------------------------------------------------
drain() {
  local start rc
  start=$(date +%s)
  if pid_alive "$STATE_DIR/sync.pid"; then
    until pgdelta status --source "$SOURCE" --target "$TARGET" >"$STATE_DIR/status.txt" 2>&1; do
      if [ $(( $(date +%s) - start )) -ge "$TIMEOUT" ]; then
        cat "$STATE_DIR/status.txt" >&2
        die "the target did not catch up within ${TIMEOUT}s" "look at $STATE_DIR/sync.log; raise --timeout, then re-run"
      fi
      pid_alive "$STATE_DIR/sync.pid" || break
      sleep 0.5
    done
    kill "$(cat "$STATE_DIR/sync.pid")" 2>/dev/null || true
    wait_for 30 "the follower to stop" bash -c "! kill -0 $(cat "$STATE_DIR/sync.pid") 2>/dev/null" || true
  fi
  rm -f "$STATE_DIR/sync.pid"
  rc=0
  pgdelta sync --source "$SOURCE" --target "$TARGET" --until-caught-up 2>>"$STATE_DIR/sync.log" || rc=$?
  [ "$rc" -eq 0 ] || die "the last catch-up failed (exit $rc); log in $STATE_DIR/sync.log"
  pgdelta status --source "$SOURCE" --target "$TARGET" >"$STATE_DIR/status.txt" 2>&1 ||
    { cat "$STATE_DIR/status.txt" >&2; die "pgdelta status still shows changes waiting after the last catch-up"; }
  log "drain: nothing waiting ($(tr '\n' ' ' <"$STATE_DIR/status.txt" | cut -c1-200))"
}

sequences() {
  pgdelta sequences --source "$SOURCE" --target "$TARGET" >"$STATE_DIR/sequences.txt" ||
    die "pgdelta sequences failed"
}

verify() {
  local rc=0
  pgverify --source "$SOURCE" --target "$TARGET" --mode "$VERIFY_MODE" -j "$JOBS" "${FILTERS[@]}" >"$STATE_DIR/verify.txt" || rc=$?
  case $rc in
    0) log "verify: source and target hold the same rows ($(wc -l <"$STATE_DIR/verify.txt") lines of report in $STATE_DIR/verify.txt)" ;;
    1) cat "$STATE_DIR/verify.txt" >&2; die "verify: the target differs from the source (above); aborting the cutover" \
         "the source takes writes again; look for the cause, then re-run scripts/migrate.sh (catch-up continues) and this script" ;;
    *) cat "$STATE_DIR/verify.txt" >&2; die "verify: pgverify could not compare (exit $rc); aborting the cutover" ;;
  esac
}

# apply_atomic NAME SQLFILE: applies a schema section in one transaction on the target.
apply_atomic() {
  PGAPPNAME=pgferry-cutover psql -X -q -1 -v ON_ERROR_STOP=1 -d "$TARGET" -f "$2" >/dev/null ||
    die "creating the $1 on the target failed (nothing of it was committed)" "the SQL is in $2"
}

# prepare: the schema's foreign keys and triggers are dumped before the freeze (the schema does
# not change during a migration), so the downtime holds only their creation.
prepare() {
  pgschema dump --source "$SOURCE" --section constraints --not-valid "${FILTERS[@]}" >"$STATE_DIR/constraints.sql" ||
    die "pgschema dump --section constraints failed"
  # VALIDATE CONSTRAINT scans the table but does not block writes: it runs after the downtime.
  grep -E '^ALTER TABLE .* VALIDATE CONSTRAINT .*;$' "$STATE_DIR/constraints.sql" >"$STATE_DIR/validate.sql" || true
  grep -vE '^ALTER TABLE .* VALIDATE CONSTRAINT .*;$' "$STATE_DIR/constraints.sql" >"$STATE_DIR/constraints-not-valid.sql"
  pgschema dump --source "$SOURCE" --section triggers "${FILTERS[@]}" >"$STATE_DIR/triggers.sql" ||
    die "pgschema dump --section triggers failed"
}

constraints() { apply_atomic "foreign keys" "$STATE_DIR/constraints-not-valid.sql"; }

triggers() { apply_atomic "triggers" "$STATE_DIR/triggers.sql"; }

validate() {
  PGAPPNAME=pgferry-cutover psql -X -q -v ON_ERROR_STOP=1 -d "$TARGET" -f "$STATE_DIR/validate.sql" >/dev/null ||
    die "validating a constraint failed (see above)" "the target holds rows the constraint rejects; pgverify found the same rows on the source"
  log "validate: $(grep -c . "$STATE_DIR/validate.sql" || true) constraints validated"
}

t0=$(now_s)
run_step prepare "prepare: dumping foreign keys and triggers for the target" prepare
run_step freeze "freeze: making the source read-only for the application" freeze
run_step drain "drain: waiting until pgdelta status shows nothing waiting" drain
run_step sequences "sequences: setting the target's sequences from the source" sequences
run_step verify "verify: comparing every table (pgverify --mode $VERIFY_MODE)" verify
run_step constraints "finish: creating foreign keys (NOT VALID)" constraints
run_step triggers "finish: creating user triggers" triggers
FINISHED=1
downtime=$(elapsed "$(cat "$STATE_DIR/freeze-start")")
echo "$downtime" >"$STATE_DIR/downtime"
log "write downtime: ${downtime}s (from the freeze until the target was ready for writes)"
run_step validate "validate: validating foreign keys (does not block writes)" validate
log "cutover done in $(elapsed "$t0")s: point the application at the target; the source stays read-only"
log "later: scripts/cleanup.sh removes capture from the source and pgferry's state from the target"
