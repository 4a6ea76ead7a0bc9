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

  1. freeze      the polite step first: ALTER DATABASE <db> SET default_transaction_read_only
                 = on (reaches new sessions only) and pg_terminate_backend of the open sessions
                 of the --app-role roles that this role may end. Then the write fence,
                 'pgtrig fence up': every capture trigger refuses writes, whoever the role,
                 whatever the session set, so sessions left open cannot write either.
                 No superuser needed; pgferry's own sessions are spared.
  2. fence       the proof, 'pgtrig fence wait': waits until every transaction in progress
                 when the fence went up has ended, prepared transactions included (it lists
                 them on stderr); after --timeout the cutover aborts and writes come back
  3. drain       waits until 'pgdelta status' shows nothing waiting, stops the follower, and
                 runs a last 'pgdelta sync --until-caught-up'
  4. sequences   'pgdelta sequences'
     lo-sync     'pgdelta lo-sync': large objects are not captured by triggers (and a write to
                 one alone is stopped by the read-only setting, not by the fence): copied
                 again here, what differs only; the verify below compares them too
  5. verify      'pgverify --mode changes' (default): each table by the keys captured since
                 the proof the live verify recorded (scripts/migrate.sh step 9), plus sequences
                 and row counts from the statistics; a table without a proof younger than
                 --max-proof-age is hashed in full, and one line says which and why.
                 On ANY difference the cutover is aborted and the source takes writes again
  6. finish      foreign keys (NOT VALID) and user triggers created on the target, one
                 transaction each — the target can now take traffic: write downtime ends here
  7. validate    'ALTER TABLE ... VALIDATE CONSTRAINT' for each new foreign key (does not
                 block writes, so it runs after the downtime is measured)

If any step from the freeze on fails, writes are restored on the source (fence down, read-only
reset) and the script exits 1. After a kill, re-run it: finished steps are skipped, downtime is
counted from the first freeze. After success the source stays read-only and fenced (nothing
writes to the old database by mistake), and re-running says so and changes nothing;
'--restore-writes' lowers the fence and undoes the freeze (the rollback path: docs/runbook.md).

Options (each also read from the environment variable shown):
  --source URL          the old database (PGFERRY_SOURCE)
  --target URL          the new database (PGFERRY_TARGET)
  --state-dir DIR       the state directory migrate.sh used (PGFERRY_STATE_DIR, default ./pgferry-state)
  --app-role ROLE       end the sessions of ROLE at the freeze (repeatable; default: the
                        source URL's own role, as on Heroku where the app shares it)
  --no-terminate        do not end any session (the fence still stops their writes)
  --timeout SECONDS     how long to wait for the fence's proof, and again for the drain
                        (PGFERRY_CUTOVER_TIMEOUT, default 300)
  -j, --jobs N          pgverify workers (PGFERRY_JOBS, default 4)
  --verify-mode MODE    changes (default: the changes since the live proofs, the rest in full),
                        hash (every value of every table) or count (exact row counts only)
                        (PGFERRY_CUTOVER_VERIFY_MODE)
  --max-proof-age AGE   proofs older than AGE count as none (Go duration, default 24h)
                        (PGFERRY_PROOF_MAX_AGE)
  --restore-writes      only lower the fence and undo the freeze on the source, then exit
  -n, -N, -t, -T PATTERN
                        table filters (--exclude-table-data too): by default the ones migrate.sh
                        recorded in the state directory; other ones are refused

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
VERIFY_MODE=${PGFERRY_CUTOVER_VERIFY_MODE:-changes}
PROOF_MAX_AGE=${PGFERRY_PROOF_MAX_AGE:-24h}
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
    --max-proof-age) PROOF_MAX_AGE=${2:?}; shift 2 ;;
    -n|--schema|-N|--exclude-schema|-t|--table|-T|--exclude-table|--exclude-table-data) add_filter "$@"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage_error "unknown argument $1" ;;
  esac
done
need_endpoints
case $VERIFY_MODE in changes|hash|count) ;; *) usage_error "--verify-mode must be changes, hash or count" ;; esac
case $TIMEOUT in ''|*[!0-9]*) usage_error "--timeout must be a number of seconds" ;; esac
case $JOBS in ''|*[!0-9]*|0) usage_error "-j must be a positive number" ;; esac
export PGFERRY_CAPTURE_SCHEMA=${PGFERRY_CAPTURE_SCHEMA:-pgferry} PGFERRY_STATE_SCHEMA=${PGFERRY_STATE_SCHEMA:-pgferry}
# A finished cutover is history: say so, touch nothing (not even a connection).
if [ "$RESTORE_ONLY" = 0 ] && [ -f "$STATE_DIR/done/cutover" ] && [ -f "$STATE_DIR/done/validate" ]; then
  log "the cutover already finished at $(cat "$STATE_DIR/done/cutover") (write downtime $(cat "$STATE_DIR/downtime" 2>/dev/null || echo '?')s); nothing to do"
  log "the source stays read-only and fenced; '$0 --restore-writes' gives writes back to it (rollback)"
  exit 0
fi
need_bin psql pgtrig pgschema pgdelta pgverify
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

# restore_writes lowers the fence and resets the read-only default; both are tried.
restore_writes() {
  local rc=0
  pgtrig fence down --source "$SOURCE" || rc=1
  psql_q "$SOURCE" "ALTER DATABASE $QDB RESET default_transaction_read_only" || rc=1
  [ "$rc" = 0 ] && log "writes restored on the source database $DB (fence down, new sessions can write again)"
  return "$rc"
}

# forget_freeze: the source moves on again, so the next cutover must freeze, prove, drain, set
# sequences and verify anew.
forget_freeze() {
  local f
  for f in freeze fence drain sequences verify; do rm -f "$STATE_DIR/done/$f" "$STATE_DIR/done/$f.seconds"; done
  rm -f "$STATE_DIR/freeze-start" "$STATE_DIR/fence-position"
}

if [ "$RESTORE_ONLY" = 1 ]; then
  restore_writes || exit 1
  forget_freeze
  if [ -f "$STATE_DIR/done/cutover" ]; then
    log "note: this cutover had finished: the target has its foreign keys and triggers, and migrate.sh will not restart the follower against it"
  fi
  exit 0
fi

[ -d "$STATE_DIR" ] && STATE_DIR=$(cd "$STATE_DIR" && pwd)
[ -d "$STATE_DIR" ] && lock_state_dir
settle_filters
step_done indexes || die "migrate.sh has not finished in $STATE_DIR" "run scripts/migrate.sh (with the same --state-dir) until it says 'ready for cutover'"

# From the first freeze statement on (freeze-start is written before it), any failure gives the
# source back to the application.
FINISHED=0
step_done cutover && FINISHED=1
on_exit() {
  local rc=$?
  if [ "$FINISHED" = 0 ] && [ -f "$STATE_DIR/freeze-start" ]; then
    log "cutover did not finish (exit $rc): giving writes back to the source"
    restore_writes || log "could not restore writes: run '$0 --restore-writes'"
    forget_freeze
    if step_done constraints; then
      log "warning: the target already has its foreign keys; restart the follower (scripts/migrate.sh) only after dropping them, or cut over again soon"
    fi
    log "restart the follower with scripts/migrate.sh, then run this script again"
  fi
}
trap on_exit EXIT

# --- 1. freeze ----------------------------------------------------------------------------------
# end_sessions ends the open sessions of the --app-role roles that this role may end, and says
# how many others stay open: sessions of other roles, and sessions this role may not end (or see:
# a non-superuser sees other roles' sessions without their backend_type).
end_sessions() {
  local roles named ended left others
  if [ ${#APP_ROLES[@]} -eq 0 ]; then
    roles="ARRAY[current_user]::text[]"
  else
    roles=$(printf "'%s'," "${APP_ROLES[@]//\'/\'\'}")
    roles="ARRAY[${roles%,}]::text[]"
  fi
  named=$(psql_q "$SOURCE" "SELECT array_to_string($roles, ', ')")
  IFS='|' read -r ended left others < <(psql_q "$SOURCE" "WITH s AS (
      SELECT a.pid, a.usename::text AS role, a.usename = ANY($roles)
        AND (NOT r.rolsuper OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user))
        AND (pg_has_role(a.usesysid, 'USAGE') OR pg_has_role('pg_signal_backend', 'USAGE')) AS mine
      FROM pg_stat_activity a JOIN pg_roles r ON r.oid = a.usesysid
      WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
        AND coalesce(a.application_name, '') NOT LIKE 'pgferry%'
        AND coalesce(a.backend_type, 'client backend') = 'client backend')
    SELECT count(*) FILTER (WHERE CASE WHEN mine THEN pg_terminate_backend(pid) ELSE false END),
      count(*) FILTER (WHERE NOT mine), coalesce(string_agg(DISTINCT role, ', ') FILTER (WHERE NOT mine), '')
    FROM s") || die "ending the application's sessions failed"
  [ -n "$ended" ] || die "ending the application's sessions failed"
  log "freeze: ended $ended open session(s) of $named"
  if [ "$left" != 0 ]; then
    log "freeze: $left other session(s) stay open (roles: $others): not named by --app-role, or not this role's to end; the write fence stops their writes"
  fi
}

freeze() {
  [ -f "$STATE_DIR/freeze-start" ] || now_s >"$STATE_DIR/freeze-start"
  psql_q "$SOURCE" "ALTER DATABASE $QDB SET default_transaction_read_only = on" ||
    die "ALTER DATABASE ... SET default_transaction_read_only = on failed"
  log "freeze: new sessions of the source are read-only"
  if [ "$TERMINATE" = 1 ]; then
    end_sessions
  else
    log "freeze: open sessions were left alone (--no-terminate); the write fence stops their writes"
  fi
  pgtrig fence up --source "$SOURCE" >"$STATE_DIR/fence-position.tmp" || die "raising the write fence failed (above)"
  mv "$STATE_DIR/fence-position.tmp" "$STATE_DIR/fence-position"
  log "freeze: write fence up at position $(cat "$STATE_DIR/fence-position"): every write to a captured table fails, whoever makes it"
}

# --- 2. fence: the proof -----------------------------------------------------------------------
prove_fence() {
  local rc=0
  pgtrig fence wait --source "$SOURCE" --position "$(cat "$STATE_DIR/fence-position")" --timeout "${TIMEOUT}s" \
    >"$STATE_DIR/fence-proof" || rc=$?
  [ "$rc" -eq 0 ] || die "fence: the transactions listed above were still running after ${TIMEOUT}s; aborting the cutover" \
    "end them (prepared ones with COMMIT PREPARED or ROLLBACK PREPARED 'gid'), or raise --timeout, then re-run"
  log "fence: proven at $(cat "$STATE_DIR/fence-proof"): every transaction in progress when the fence went up has ended"
}

# --- 3. drain ----------------------------------------------------------------------------------
drain() {
  local start rc
  start=$(date +%s)
  if pid_alive "$STATE_DIR/sync.pid"; then
    while :; do
      rc=0
      pgdelta status --source "$SOURCE" --target "$TARGET" >"$STATE_DIR/status.txt" 2>&1 || rc=$?
      [ "$rc" -eq 0 ] && break
      if [ "$rc" -eq 2 ]; then # misconfigured or unreachable: waiting cannot help
        cat "$STATE_DIR/status.txt" >&2
        die "pgdelta status cannot tell how far the target is (exit 2, above)" "fix the cause, then re-run this script"
      fi
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
  pgdelta sequences --source "$SOURCE" --target "$TARGET" "${FILTERS[@]}" >"$STATE_DIR/sequences.txt" ||
    die "pgdelta sequences failed"
}

# lo_sync: copies the large objects that changed since migrate.sh (listing and hashing all of
# them: its cost in the window is in docs/benchmarks.md).
lo_sync() {
  local rc=0
  pgdelta lo-sync --source "$SOURCE" --target "$TARGET" -j "$JOBS" --progress none >"$STATE_DIR/lo-sync.txt" 2>"$STATE_DIR/lo-sync.log" || rc=$?
  [ "$rc" -eq 0 ] || { cat "$STATE_DIR/lo-sync.log" >&2; die "pgdelta lo-sync failed (exit $rc, above); aborting the cutover"; }
  log "$(cat "$STATE_DIR/lo-sync.txt")"
  grep '^pgdelta: warning: ' "$STATE_DIR/lo-sync.log" >&2 || true # a role missing on the target
}

verify() {
  local rc=0
  pgverify --source "$SOURCE" --target "$TARGET" --mode "$VERIFY_MODE" --max-proof-age "$PROOF_MAX_AGE" -j "$JOBS" --progress plain \
    "${FILTERS[@]}" >"$STATE_DIR/verify.txt" 2>"$STATE_DIR/verify.log" || rc=$?
  if [ "$VERIFY_MODE" = changes ]; then
    # pgverify's own summary: how many tables by their changes, how many in full and why.
    log "verify: $(sed -n 's/^pgverify: changes mode: //p' "$STATE_DIR/verify.log")"
  else
    log "verify: --mode $VERIFY_MODE of every table (--verify-mode $VERIFY_MODE)"
  fi
  case $rc in
    0) log "verify: source and target hold the same rows ($(wc -l <"$STATE_DIR/verify.txt") lines of report in $STATE_DIR/verify.txt)" ;;
    1) cat "$STATE_DIR/verify.log" "$STATE_DIR/verify.txt" >&2; die "verify: the target differs from the source (above); aborting the cutover" \
         "the source takes writes again; look for the cause, then re-run scripts/migrate.sh (catch-up continues) and this script" ;;
    *) cat "$STATE_DIR/verify.log" "$STATE_DIR/verify.txt" >&2; die "verify: pgverify could not compare (exit $rc); aborting the cutover" \
         "the report above names each table it could not compare (on one side only, or with other columns): fix the target's schema, or migrate again with filters that leave the table out" ;;
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
  pgtrig fence status --source "$SOURCE" >/dev/null ||
    die "the write fence would not hold (above); nothing was frozen" "run 'pgtrig install' as migrate.sh did: it upgrades the trigger functions in place"
  pgschema dump --source "$SOURCE" --section constraints --not-valid "${FILTERS[@]}" >"$STATE_DIR/constraints.sql" ||
    die "pgschema dump --section constraints failed"
  # VALIDATE CONSTRAINT scans the table but does not block writes: it runs after the downtime
  # (--validations only writes those statements one a line, omit all the rest).
  pgschema filter --section constraints --validations only <"$STATE_DIR/constraints.sql" >"$STATE_DIR/validate.sql" ||
    die "pgschema filter --validations only failed"
  pgschema filter --section constraints --validations omit <"$STATE_DIR/constraints.sql" >"$STATE_DIR/constraints-not-valid.sql" ||
    die "pgschema filter --validations omit failed"
  pgschema dump --source "$SOURCE" --section triggers "${FILTERS[@]}" >"$STATE_DIR/triggers.sql" ||
    die "pgschema dump --section triggers failed"
}

constraints() { apply_atomic "foreign keys" "$STATE_DIR/constraints-not-valid.sql"; }

triggers() { apply_atomic "triggers" "$STATE_DIR/triggers.sql"; }

validate() {
  PGAPPNAME=pgferry-cutover psql -X -q -v ON_ERROR_STOP=1 -d "$TARGET" -f "$STATE_DIR/validate.sql" >/dev/null ||
    die "validating a constraint failed (see above)" "the target holds rows the constraint rejects; pgverify found the same rows on the source"
  log "validate: $(wc -l <"$STATE_DIR/validate.sql" | tr -d ' ') constraints validated"
}

# refresh_matviews: the target's materialized views are computed from the final data, after the
# drain and inside the downtime. pgschema writes pg_dump's refreshes (only the views populated on
# the source, in dependency order; CONCURRENTLY where a unique index allows and the view is
# already populated). Not a recorded step: an aborted cutover's source moves on, so every
# attempt refreshes again (it is idempotent).
refresh_matviews() {
  local t
  t=$(now_s)
  pgschema dump --source "$SOURCE" --section refresh "${FILTERS[@]}" >"$STATE_DIR/refresh.sql" ||
    die "pgschema dump --section refresh failed"
  PGAPPNAME=pgferry-cutover psql -X -q -v ON_ERROR_STOP=1 -d "$TARGET" -f "$STATE_DIR/refresh.sql" >/dev/null ||
    die "refreshing the materialized views on the target failed" "the SQL is in $STATE_DIR/refresh.sql; fix the cause and re-run"
  mkdir -p "$STATE_DIR/done" && elapsed "$t" >"$STATE_DIR/done/refresh.seconds"
  log "refresh: $(psql_q "$TARGET" "SELECT count(*) FROM pg_matviews WHERE ispopulated") materialized views populated on the target, in $(step_seconds refresh)s"
}

# downtime_parts: the write downtime and its parts (seconds; "other" is what lies between the
# steps), as one log line and as one line of name=seconds in $STATE_DIR/downtime-parts.
downtime_parts() {
  local total part line sum=0 v
  total=$(cat "$STATE_DIR/downtime")
  line="downtime=$total"
  for part in freeze fence drain sequences lo-sync verify refresh constraints triggers; do
    v=$(step_seconds "$part")
    line+=" $part=${v:-0}"
    sum=$(awk -v a="$sum" -v b="${v:-0}" 'BEGIN { printf "%.1f", a + b }')
  done
  line+=" other=$(awk -v a="$total" -v b="$sum" 'BEGIN { d = a - b; printf "%.1f", d < 0 ? 0 : d }') verify_mode=$VERIFY_MODE"
  echo "$line" >"$STATE_DIR/downtime-parts"
  log "write downtime parts: ${line#downtime=* }"
}

t0=$(now_s)
if ! step_done cutover; then
  run_step prepare "prepare: checking the fence, dumping foreign keys and triggers for the target" prepare
  run_step freeze "freeze: making the source read-only for the application and raising the write fence" freeze
  run_step fence "fence: waiting until every transaction in progress when the fence went up has ended" prove_fence
  run_step drain "drain: waiting until pgdelta status shows nothing waiting" drain
  run_step sequences "sequences: setting the target's sequences from the source" sequences
  run_step lo-sync "lo-sync: copying the large objects that changed (pgdelta lo-sync)" lo_sync
  run_step verify "verify: comparing every table (pgverify --mode $VERIFY_MODE)" verify
  refresh_matviews
  run_step constraints "finish: creating foreign keys (NOT VALID)" constraints
  run_step triggers "finish: creating user triggers" triggers
  FINISHED=1
  [ -f "$STATE_DIR/downtime" ] || elapsed "$(cat "$STATE_DIR/freeze-start")" >"$STATE_DIR/downtime"
  step_mark cutover
fi
log "write downtime: $(cat "$STATE_DIR/downtime")s (from the freeze until the target was ready for writes)"
downtime_parts
run_step validate "validate: validating foreign keys (does not block writes)" validate
log "cutover done in $(elapsed "$t0")s: point the application at the target; the source stays read-only"
excluded_summary
log "later: scripts/cleanup.sh removes capture from the source and pgferry's state from the target"
