#!/usr/bin/env bash
# migrate.sh: everything before the cutover — schema, capture, copy, indexes, catch-up in the background.
set -euo pipefail
PROG=migrate
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/common.sh"

usage() {
  cat <<'USAGE'
Usage: scripts/migrate.sh --source URL --target URL [options]

Moves a live database to the target up to the point where only the cutover is left:

  1. preflight   tools present, both servers reachable, 'pgtrig check' on the source,
                 'pgschema preflight' (what the target's role cannot create), and
                 'pgschema diff --section pre-data' when the target already holds tables
                 (a target whose pre-data schema matches skips the schema step)
  2. roles       'pgschema roles' applied to the target (best effort: errors are warnings)
  3. schema      'pgschema dump --section pre-data' applied in ONE transaction
  4. capture     'pgtrig install' (and 'pgtrig mark' on the fork path)
  5. copy        pgcopyout -j N | pv | pgcopyin -j N   (or via --dump-dir)
                 then 'pgdelta lo-sync -j N': large objects (not captured by triggers) with
                 their oids, owners and ACLs; copied again in the cutover window
  6. indexes     'pgschema dump --section indexes | pgschema apply -j N'
  7. sync        'pgdelta sync --follow' in the background (log and pid file in the state dir)
  8. analyze     'vacuumdb --analyze-only -j N' on the target: a freshly loaded database has no
                 statistics (and extended statistics objects none either) and would get
                 terrible plans when traffic arrives; done now, outside the cutover's downtime
  9. verify      'pgverify --recheck N' while the follower runs: it records, per table found
                 the same, the position it proved equality at; the cutover's verify then checks
                 only the keys captured since (docs/verify.md, "Changes since the proof")
 10. status      'pgdelta status'

Every step is recorded in the state directory when it finishes and skipped on the next run;
the tools resume their own work (pgcopyin skips loaded chunks, pgdelta restarts from the
target's position). After ANY failure or kill, fix the cause and run the same command again.
Then run scripts/cutover.sh.

Options (each also read from the environment variable shown):
  --source URL         the live database (PGFERRY_SOURCE)
  --target URL         the new database, empty or holding only this migration (PGFERRY_TARGET)
  --state-dir DIR      step markers, SQL files, logs (PGFERRY_STATE_DIR, default ./pgferry-state)
  -j, --jobs N         parallel copy workers and index builds (PGFERRY_JOBS, default 4)
  --copy-from URL      copy from a fork of the source instead of the source (PGFERRY_COPY_FROM);
                       the fork must be taken AFTER this script has run 'pgtrig mark' on the
                       source: run with --mark-only first, fork, then run with --copy-from
  --mark-only          fork path, first run: install capture, write the mark, stop (then fork)
  --dump-dir DIR       copy to files first (pgcopyout -o DIR), then load them (pgcopyin -i DIR)
                       (PGFERRY_DUMP_DIR)
  --snapshot MODE      shared (default) or per-chunk: every chunk its own snapshot, so no
                       snapshot is held for the whole copy (PGFERRY_SNAPSHOT)
  --codec CODEC        stream compression: auto (default: none into the pipe, lz4 to --dump-dir), lz4, zstd[:N], gzip, none (PGFERRY_CODEC)
  --no-roles           do not create roles on the target
  --no-follow          instead of a background follower, catch up once and stop
  --no-live-verify     skip step 9 (the cutover then hashes every table in full)
  --until STEP         stop after STEP (preflight, roles, schema, capture, copy, indexes)
  -n, -N, -t, -T PATTERN
                       table filters passed to every tool (schema, exclude-schema, table,
                       exclude-table), read as pg_dump reads them (docs/filters.md)
  --exclude-table-data PATTERN
                       keep the table's definition but not its rows (pg_dump's option): not
                       copied, captured or verified; it arrives empty
                       The filters are recorded in the state directory after the preflight:
                       later runs and cutover.sh use them, and refuse other ones

Exit status: 0 done (catch-up running), 1 a step failed (re-run to continue), 2 usage or
connection error.

Example:
  export PGFERRY_SOURCE='postgres://u:p@heroku-host:5432/db?sslmode=require'
  export PGFERRY_TARGET='postgres://admin:p@rds-host:5432/db?sslmode=require'
  scripts/migrate.sh -j 8 && scripts/cutover.sh --app-role app_user
USAGE
}

SOURCE=${PGFERRY_SOURCE:-}
TARGET=${PGFERRY_TARGET:-}
STATE_DIR=${PGFERRY_STATE_DIR:-./pgferry-state}
JOBS=${PGFERRY_JOBS:-4}
COPY_FROM=${PGFERRY_COPY_FROM:-}
DUMP_DIR=${PGFERRY_DUMP_DIR:-}
SNAPSHOT=${PGFERRY_SNAPSHOT:-shared}
CODEC=${PGFERRY_CODEC:-}
ROLES=1 FOLLOW=1 UNTIL= MARK_ONLY=0 LIVE_VERIFY=1
FILTERS=()
while [ $# -gt 0 ]; do
  case $1 in
    --source) SOURCE=${2:?--source needs a URL}; shift 2 ;;
    --target) TARGET=${2:?--target needs a URL}; shift 2 ;;
    --state-dir) STATE_DIR=${2:?}; shift 2 ;;
    -j|--jobs) JOBS=${2:?}; shift 2 ;;
    --copy-from) COPY_FROM=${2:?}; shift 2 ;;
    --dump-dir) DUMP_DIR=${2:?}; shift 2 ;;
    --snapshot) SNAPSHOT=${2:?}; shift 2 ;;
    --codec) CODEC=${2:?}; shift 2 ;;
    --no-roles) ROLES=0; shift ;;
    --mark-only) MARK_ONLY=1; shift ;;
    --no-follow) FOLLOW=0; shift ;;
    --no-live-verify) LIVE_VERIFY=0; shift ;;
    --until) UNTIL=${2:?}; shift 2 ;;
    -n|--schema|-N|--exclude-schema|-t|--table|-T|--exclude-table|--exclude-table-data) add_filter "$@"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage_error "unknown argument $1" ;;
  esac
done
need_endpoints
case $JOBS in ''|*[!0-9]*|0) usage_error "-j must be a positive number" ;; esac
case $SNAPSHOT in shared|per-chunk) ;; *) usage_error "--snapshot must be shared or per-chunk" ;; esac
case $UNTIL in ''|preflight|roles|schema|capture|copy|indexes) ;; *) usage_error "--until must be one of preflight, roles, schema, capture, copy, indexes" ;; esac
CAPTURE_SCHEMA=${PGFERRY_CAPTURE_SCHEMA:-pgferry}
STATE_SCHEMA=${PGFERRY_STATE_SCHEMA:-pgferry}
export PGFERRY_CAPTURE_SCHEMA=$CAPTURE_SCHEMA PGFERRY_STATE_SCHEMA=$STATE_SCHEMA

need_bin psql vacuumdb pgschema pgtrig pgcopyout pgcopyin pgdelta pgverify
mkdir -p "$STATE_DIR"
STATE_DIR=$(cd "$STATE_DIR" && pwd)
lock_state_dir
# After the cutover the target is live: a follower would overwrite its new writes with old rows.
if step_done cutover; then
  log "the cutover of this migration finished at $(cat "$STATE_DIR/done/cutover") (write downtime $(cat "$STATE_DIR/downtime" 2>/dev/null || echo '?')s): the target is live"
  die "refusing to restart the follower or any other step against it" "for a new migration use a new --state-dir; to roll back, see docs/runbook.md"
fi
settle_filters
# COPY_SRC is where the snapshot copy reads from: the source, or its fork.
COPY_SRC=${COPY_FROM:-$SOURCE}

# tool NAME ARGS...: runs a pgferry tool; on failure exits with its code (2 stays 2, else 1).
tool() {
  local rc=0
  "$@" || rc=$?
  if [ "$rc" -ne 0 ]; then
    log "$1 failed (exit $rc); fix the cause above and re-run $0 to continue"
    [ "$rc" -eq 2 ] && exit 2
    exit 1
  fi
}

# stop_after STEP: ends the run successfully when --until STEP was given.
stop_after() {
  if [ "$UNTIL" = "$1" ]; then
    log "stopping after $1 as asked (--until); re-run without --until to continue"
    exit 0
  fi
}

# --- 1. preflight ------------------------------------------------------------------------------
check_conn() {
  local side=$1 url=$2 err
  if ! err=$(psql_q "$url" "SELECT 1" 2>&1 >/dev/null); then
    log "cannot connect to the $side ($(redact "$url")): ${err##*FATAL:  }"
    log "hint: check the URL (sslmode=require for Heroku/RDS), the network path and the password"
    exit 2
  fi
}

# target_user_tables prints how many tables the target holds outside pgferry's own schemas.
target_user_tables() {
  psql_q "$TARGET" "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', '$STATE_SCHEMA', '$CAPTURE_SCHEMA')
    AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'"
}

# check_target_objects: what the schema creates on the target that the target's role cannot
# (extensions neither installed there nor creatable by it, event triggers, publications of all
# tables: 'pgschema preflight') stops the migration here, before anything changes on either side,
# each named with its remedy; warnings (subscriptions, not migrated) are shown and the run goes on.
check_target_objects() {
  local rc=0 line
  pgschema preflight --source "$SOURCE" --target "$TARGET" >"$STATE_DIR/preflight.txt" 2>"$STATE_DIR/preflight.err" || rc=$?
  while IFS= read -r line; do log "preflight: $line"; done <"$STATE_DIR/preflight.txt"
  case $rc in
    0) ;;
    1) die "preflight: the target's role cannot create the objects above; nothing was changed on either side" "apply the remedies above, then re-run" ;;
    *) cat "$STATE_DIR/preflight.err" >&2; exit "$rc" ;;
  esac
}

preflight() {
  check_conn source "$SOURCE"
  check_conn target "$TARGET"
  log "preflight: source $(psql_q "$SOURCE" "SELECT current_user || '@' || current_database() || ', PostgreSQL ' || current_setting('server_version') || ', ' || pg_size_pretty(pg_database_size(current_database()))")"
  log "preflight: target $(psql_q "$TARGET" "SELECT current_user || '@' || current_database() || ', PostgreSQL ' || current_setting('server_version')")"
  if ! step_done capture; then
    local rc=0
    pgtrig check --source "$SOURCE" "${FILTERS[@]}" >"$STATE_DIR/check.txt" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
      cat "$STATE_DIR/check.txt" >&2
      log "preflight: 'pgtrig check' found something that blocks capture on the source (see above, also in $STATE_DIR/check.txt)"
      [ "$rc" -eq 2 ] && exit 2
      exit 1
    fi
    # Tables without a key are captured as whole rows; the warnings say where that costs a table scan.
    local n
    n=$(grep -c '^[A-Z]*: .*: no primary key or unique index over NOT NULL columns: captured as whole rows' "$STATE_DIR/check.txt" || true)
    [ "$n" = 0 ] || log "preflight: $n table(s) without a key, captured as whole rows (details in $STATE_DIR/check.txt)"
    grep -A1 '^WARNING: ' "$STATE_DIR/check.txt" | grep -v '^--$' | sed "s/^/$PROG: preflight: /" >&2 || true
  fi
  step_done schema || check_target_objects
  if ! step_done schema && [ "$(target_user_tables)" != 0 ]; then
    log "preflight: the target already holds tables; comparing its schema with the source"
    local rc=0
    pgschema diff --source "$SOURCE" --target "$TARGET" --section pre-data "${FILTERS[@]}" >"$STATE_DIR/preflight-diff.txt" || rc=$?
    if [ "$rc" -ne 0 ]; then
      cat "$STATE_DIR/preflight-diff.txt" >&2
      log "preflight: the target holds tables that differ from the source (see above, also in $STATE_DIR/preflight-diff.txt)"
      log "hint: migrate into an empty database, or drop those tables, then re-run"
      [ "$rc" -eq 2 ] && exit 2
      exit 1
    fi
    log "preflight: the target's pre-data schema (tables, types, sequences, functions) already matches the source; skipping the schema step"
    step_mark roles
    step_mark schema
  fi
}

# --- 2. roles ------------------------------------------------------------------------------------
roles() {
  # Roles are cluster-wide and often pre-created (RDS: by the admin); a role that cannot be
  # created is reported but does not stop the migration. --join: a non-superuser target role can
  # only hand tables to a role it may act as (the schema's ALTER ... OWNER TO), so it joins each
  # role the schema needs, where allowed (CREATEROLE, RDS admin).
  tool pgschema roles --join --source "$SOURCE" >"$STATE_DIR/roles.sql"
  if ! psql -X -q -v ON_ERROR_STOP=0 -d "$TARGET" -f "$STATE_DIR/roles.sql" >/dev/null 2>"$STATE_DIR/roles.err"; then
    log "roles: psql could not run $STATE_DIR/roles.sql"
    cat "$STATE_DIR/roles.err" >&2
    exit 1
  fi
  if [ -s "$STATE_DIR/roles.err" ]; then
    sed "s/^/$PROG: roles: warning: /" "$STATE_DIR/roles.err" >&2
    log "roles: some roles could not be created or joined (above); do it yourself if the schema needs them"
  fi
}

# --- 3. schema (pre-data) --------------------------------------------------------------------------
schema() {
  tool pgschema dump --source "$SOURCE" --section pre-data "${FILTERS[@]}" >"$STATE_DIR/pre-data.sql"
  # The owners the schema assigns need CREATE on the target's public schema (on the source they
  # usually own the database, which owns public; on the target the admin does): grant it.
  local o
  tool pgschema owners --object-schema public <"$STATE_DIR/pre-data.sql" >"$STATE_DIR/owners.txt"
  while IFS= read -r o; do
    psql_q "$TARGET" "GRANT USAGE, CREATE ON SCHEMA public TO $o" 2>/dev/null ||
      log "schema: warning: could not GRANT CREATE ON SCHEMA public TO $o on the target"
  done <"$STATE_DIR/owners.txt"
  # One transaction: a kill leaves nothing behind, so the step can simply run again.
  if ! PGAPPNAME=pgferry-migrate psql -X -q -1 -v ON_ERROR_STOP=1 -d "$TARGET" -f "$STATE_DIR/pre-data.sql" >/dev/null; then
    die "applying the pre-data schema failed (nothing of it was committed)" \
      "fix the cause above (missing role or extension on the target?) and re-run; the SQL is in $STATE_DIR/pre-data.sql"
  fi
}

# --- 4. capture ------------------------------------------------------------------------------------
capture() {
  tool pgtrig install --source "$SOURCE" "${FILTERS[@]}" >"$STATE_DIR/capture-position"
  log "capture: installed; capture position $(cat "$STATE_DIR/capture-position")"
}

mark() {
  tool pgtrig mark --source "$SOURCE" >"$STATE_DIR/mark"
  log "mark: wrote mark $(cat "$STATE_DIR/mark") on the source"
}

# fork_ready: the fork must contain the mark (taken after it), else catch-up could miss changes.
fork_ready() {
  local m n
  check_conn "fork (--copy-from)" "$COPY_FROM"
  m=$(cat "$STATE_DIR/mark")
  n=$(psql_q "$COPY_FROM" "SELECT count(*) FROM \"$CAPTURE_SCHEMA\".marks WHERE snapshot = '$m'" 2>/dev/null || echo 0)
  if [ "$n" = 0 ]; then
    log "the fork (--copy-from) does not contain the mark written at $(cat "$STATE_DIR/done/mark")"
    log "hint: create the fork NOW (e.g. 'heroku addons:create heroku-postgresql:<plan> --fork <source db>'), wait until it is available, then re-run this command"
    exit 1
  fi
}

# --- 5. copy -----------------------------------------------------------------------------------------
copy_flags() {
  COPY_OUT_FLAGS=(--source "$COPY_SRC" -j "$JOBS" --snapshot "$SNAPSHOT" --progress plain "${FILTERS[@]}")
  [ -z "$CODEC" ] || COPY_OUT_FLAGS+=(--codec "$CODEC")
}

copy_stream() {
  copy_flags
  local meter=(cat)
  if command -v pv >/dev/null 2>&1; then meter=(pv -f -i 10 -btra -N copy); fi
  set +e
  pgcopyout "${COPY_OUT_FLAGS[@]}" --target "$TARGET" 2>>"$STATE_DIR/copy.log" |
    "${meter[@]}" |
    pgcopyin --target "$TARGET" -j "$JOBS" --progress plain 2>>"$STATE_DIR/copy.log"
  local st=("${PIPESTATUS[@]}")
  set -e
  if [ "${st[0]}" -ne 0 ] || [ "${st[1]}" -ne 0 ] || [ "${st[2]}" -ne 0 ]; then
    tail -n 20 "$STATE_DIR/copy.log" >&2
    log "copy failed (pgcopyout exit ${st[0]}, meter exit ${st[1]}, pgcopyin exit ${st[2]}); log in $STATE_DIR/copy.log"
    log "hint: re-run to continue: chunks already loaded are skipped"
    { [ "${st[0]}" -eq 2 ] || [ "${st[2]}" -eq 2 ]; } && exit 2
    exit 1
  fi
}

copy_out_dir() {
  copy_flags
  mkdir -p "$DUMP_DIR"
  logged_tool "$STATE_DIR/copy.log" pgcopyout "${COPY_OUT_FLAGS[@]}" -o "$DUMP_DIR"
}

copy_in_dir() {
  logged_tool "$STATE_DIR/copy.log" pgcopyin --target "$TARGET" -j "$JOBS" -i "$DUMP_DIR" --progress plain
}

# logged_tool LOG NAME ARGS...: like tool, with stderr appended to LOG; on failure the end of LOG
# (the cause) is shown on the terminal too.
logged_tool() {
  local logf=$1 rc=0
  shift
  "$@" 2>>"$logf" || rc=$?
  if [ "$rc" -ne 0 ]; then
    tail -n 20 "$logf" >&2
    log "$1 failed (exit $rc); log in $logf; fix the cause above and re-run $0 to continue"
    [ "$rc" -eq 2 ] && exit 2
    exit 1
  fi
}

# fork_position: a copy taken from a fork carries the fork's snapshots, which are not positions
# on the source; catch-up starts from the newest mark the fork holds instead (an applied
# position on the target, once there is one, still wins).
FROM_ARGS=()
fork_position() {
  tool pgdelta position --fork --source "$COPY_FROM" --target "$TARGET" >"$STATE_DIR/fork-position"
  FROM_ARGS=(--from "$(cat "$STATE_DIR/fork-position")")
  log "fork: catch-up starts at $(cat "$STATE_DIR/fork-position")"
}

copy_summary() {
  psql_q "$TARGET" "SELECT count(*) || ' chunks, ' || coalesce(sum(rows), 0) || ' rows, ' || pg_size_pretty(coalesce(sum(bytes), 0)) FROM \"$STATE_SCHEMA\".copy_chunks" 2>/dev/null || true
}

# --- 5b. large objects -------------------------------------------------------------------------------
# Not captured by triggers: copied here (a re-run copies only what differs; none: a quick listing)
# and again by cutover.sh inside the fenced window.
large_objects() {
  tool pgdelta lo-sync --source "$SOURCE" --target "$TARGET" -j "$JOBS" --progress plain >"$STATE_DIR/large-objects.txt"
  log "$(cat "$STATE_DIR/large-objects.txt")"
}

# --- 6. indexes ---------------------------------------------------------------------------------------
indexes() {
  # 'pgschema apply' stops at an index that exists. A killed build commits nothing, but the
  # indexes finished before the kill remain (complete: they came from this same step and dump):
  # a re-run after an interrupted one counts them as done (--skip-existing) and builds the rest.
  local resume=()
  if [ -f "$STATE_DIR/indexes.started" ]; then
    log "indexes: an earlier run was interrupted; keeping the indexes it built and building the others"
    resume=(--skip-existing)
  fi
  touch "$STATE_DIR/indexes.started"
  # Chunks read under different snapshots (--snapshot per-chunk, a resumed copy, a copy whose
  # snapshot holder was lost) leave the target in a state the source never had until catch-up
  # passes the newest one: only keys can be built before that (keys never collide across key
  # ranges); the other unique indexes wait for the first catch-up. The keys are the primary keys
  # and the indexes catch-up finds rows by (--capture-keys: a keyless table's unique key, the
  # btree indexes of tables captured as whole rows). After a one-snapshot copy the order costs
  # nothing: the first catch-up needs only the keys.
  tool pgschema dump --source "$SOURCE" --section indexes --keys primary --capture-keys "${FILTERS[@]}" >"$STATE_DIR/indexes-pk.sql"
  tool pgschema dump --source "$SOURCE" --section indexes --keys secondary --capture-keys "${FILTERS[@]}" >"$STATE_DIR/indexes-rest.sql"
  tool pgschema apply --target "$TARGET" -j "$JOBS" "${resume[@]}" <"$STATE_DIR/indexes-pk.sql"
  log "indexes: keys built; first catch-up before the other indexes"
  tool pgdelta sync --source "$SOURCE" --target "$TARGET" --until-caught-up "${FROM_ARGS[@]}"
  FROM_ARGS=() # the target holds an applied position now, and later syncs go on from it
  tool pgschema apply --target "$TARGET" -j "$JOBS" "${resume[@]}" <"$STATE_DIR/indexes-rest.sql"
  rm -f "$STATE_DIR/indexes.started"
}

# --- 7. sync ------------------------------------------------------------------------------------------
start_follower() {
  if pid_alive "$STATE_DIR/sync.pid"; then
    log "sync: follower already running (pid $(cat "$STATE_DIR/sync.pid")), log $STATE_DIR/sync.log"
    return 0
  fi
  if [ "$FOLLOW" = 0 ]; then
    log "sync: catching up once (--no-follow)"
    tool pgdelta sync --source "$SOURCE" --target "$TARGET" --until-caught-up "${FROM_ARGS[@]}"
    return 0
  fi
  # setsid: the follower outlives this script and its terminal; stop it with cutover.sh or
  # 'kill $(cat sync.pid)'.
  # default_transaction_read_only=off: it keeps working when cutover.sh freezes the source.
  # The URLs go in its environment, not its arguments: ps shows arguments (passwords) to everyone.
  PGOPTIONS="${PGOPTIONS:-} -c default_transaction_read_only=off" PGFERRY_SOURCE=$SOURCE PGFERRY_TARGET=$TARGET \
    setsid pgdelta sync --follow "${FROM_ARGS[@]}" </dev/null >>"$STATE_DIR/sync.log" 2>&1 9>&- &
  echo $! >"$STATE_DIR/sync.pid"
  sleep 1
  if ! pid_alive "$STATE_DIR/sync.pid"; then
    tail -n 20 "$STATE_DIR/sync.log" >&2
    die "the follower (pgdelta sync --follow) stopped at once; log in $STATE_DIR/sync.log" "fix the cause above and re-run"
  fi
  log "sync: follower started (pid $(cat "$STATE_DIR/sync.pid")), log $STATE_DIR/sync.log"
}

# --- 8. analyze ----------------------------------------------------------------------------------------
analyze() {
  # vacuumdb takes the connection string as its database; -q: only errors reach the terminal,
  # and the warnings a database owner who is no superuser gets for the shared catalogs are dropped.
  PGAPPNAME=pgferry-analyze tool vacuumdb --analyze-only --jobs "$JOBS" --quiet --dbname "$TARGET" \
    2> >(grep -v -e '^WARNING:  skipping ".*" --- only superuser can analyze it$' >&2)
}

# --- 9. verify (live) -----------------------------------------------------------------------------------
# Differences left after the re-check are reported, not fatal: those tables get no proof and the
# cutover hashes them in full (and aborts if they still differ then). Large objects are left to
# the cutover (lo-sync then its verify, in the window): they change under a live application.
live_verify() {
  local rc=0
  pgverify --source "$SOURCE" --target "$TARGET" -j "$JOBS" --recheck "${PGFERRY_RECHECK:-30}" --progress plain --no-large-objects \
    "${FILTERS[@]}" >"$STATE_DIR/verify-live.txt" || rc=$?
  case $rc in
    0) log "verify: every table the same; proofs recorded on the target" ;;
    2) die "pgverify could not compare (exit 2, above); fix the cause and re-run" ;;
    *) log "warning: the live verify exited $rc (report in $STATE_DIR/verify-live.txt): a table found different has no proof (unless it differs only in changes not applied yet), the cutover hashes it in full" ;;
  esac
}

# --- run ------------------------------------------------------------------------------------------------
t_start=$(now_s)
log "state in $STATE_DIR"
log "preflight"
preflight
record_filters
stop_after preflight
if [ "$ROLES" = 1 ]; then run_step roles "roles: creating the source's roles on the target" roles; fi
stop_after roles
run_step schema "schema: applying tables, types, sequences and functions (pre-data)" schema
stop_after schema
run_step capture "capture: installing change capture on the source" capture
if [ -n "$COPY_FROM" ] || [ "$MARK_ONLY" = 1 ]; then
  run_step mark "mark: writing a mark on the source for the fork" mark
  if [ "$MARK_ONLY" = 1 ]; then
    log "now fork the source (the fork must be created after $(cat "$STATE_DIR/done/mark")), then re-run with --copy-from FORK_URL"
    exit 0
  fi
  fork_ready
fi
stop_after capture
if [ -n "$DUMP_DIR" ]; then
  run_step copy-out "copy: dumping the source to $DUMP_DIR ($JOBS workers)" copy_out_dir
  run_step copy "copy: loading $DUMP_DIR into the target ($JOBS workers)" copy_in_dir
else
  run_step copy "copy: copying the data ($JOBS workers, snapshot $SNAPSHOT)" copy_stream
fi
log "copy: $(copy_summary)"
run_step large-objects "large objects: copying them (pgdelta lo-sync, $JOBS workers)" large_objects
stop_after copy
[ -z "$COPY_FROM" ] || fork_position
run_step indexes "indexes: building indexes and keys ($JOBS at a time)" indexes
stop_after indexes
start_follower
run_step analyze "analyze: collecting planner statistics on the target ($JOBS at a time)" analyze
if [ "$LIVE_VERIFY" = 1 ]; then run_step live-verify "verify: live pgverify, recording proofs for the cutover" live_verify; fi
log "status:"
pgdelta status --source "$SOURCE" --target "$TARGET" >&2 || true
excluded_summary
log "ready for cutover after $(elapsed "$t_start")s: run scripts/cutover.sh with the same --source/--target/--state-dir"
