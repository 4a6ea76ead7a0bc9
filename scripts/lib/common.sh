# Shared bash for pgferry's scripts: logging, exit codes, tool checks, waiting, step markers.
# Source it after setting PROG (the script's name used as the message prefix).

: "${PROG:=pgferry}"

# psql sessions of the scripts, like the tools' own, are not bound by timeouts that ALTER ROLE or
# ALTER DATABASE set for the application (startup options override them).
case " ${PGOPTIONS:-} " in
  *" -c statement_timeout="*) ;;
  *) export PGOPTIONS="${PGOPTIONS:-} -c statement_timeout=0 -c lock_timeout=0 -c idle_in_transaction_session_timeout=0" ;;
esac

# The timeouts only newer servers know (idle_session_timeout 14+, transaction_timeout 17+, which
# ends the pre-data schema's one transaction) cannot go in PGOPTIONS for every server: an older
# one refuses an unknown setting at connection start. psql and vacuumdb add them per server.
declare -A PGFERRY_VOPTS=()
# versioned_opts URL: sets VOPTS to the extra startup options for URL's server (cached).
versioned_opts() {
  local v
  if [ -z "${PGFERRY_VOPTS[$1]+x}" ]; then
    v=$(command psql -X -At -d "$1" -c "SELECT current_setting('server_version_num')" 2>/dev/null) || v=0
    PGFERRY_VOPTS[$1]=""
    [ "${v:-0}" -lt 140000 ] || PGFERRY_VOPTS[$1]+=" -c idle_session_timeout=0"
    [ "${v:-0}" -lt 170000 ] || PGFERRY_VOPTS[$1]+=" -c transaction_timeout=0"
  fi
  VOPTS=${PGFERRY_VOPTS[$1]}
}
# with_versioned_opts PROGRAM ARGS...: runs PROGRAM with the options for its -d/--dbname URL.
with_versioned_opts() {
  local a prev= url=
  for a in "$@"; do
    case $prev in -d|--dbname) url=$a ;; esac
    case $a in --dbname=*) url=${a#--dbname=} ;; esac
    prev=$a
  done
  VOPTS=
  case $PGOPTIONS in *" -c idle_session_timeout="*|*" -c transaction_timeout="*) ;; *) [ -z "$url" ] || versioned_opts "$url" ;; esac
  PGOPTIONS="$PGOPTIONS$VOPTS" command "$@"
}
psql() { with_versioned_opts psql "$@"; }
vacuumdb() { with_versioned_opts vacuumdb "$@"; }

EXIT_OK=0
EXIT_FAILURE=1
EXIT_USAGE=2

# log prints "prog: message" on stderr.
log() { printf '%s: %s\n' "$PROG" "$*" >&2; }

# die prints an error (and an optional hint) and exits 1.
die() { log "$1"; [ -n "${2:-}" ] && log "hint: $2"; exit "$EXIT_FAILURE"; }

# usage_error prints a usage error and exits 2.
usage_error() { log "$1"; log "hint: see '$PROG --help'"; exit "$EXIT_USAGE"; }

# add_filter OPTION PATTERN adds a table filter given on the command line to FILTERS.
add_filter() {
  [ $# -ge 2 ] || usage_error "$1 needs a pattern"
  FILTERS+=("$1" "$2")
}

# need_endpoints refuses a run without both --source and --target.
need_endpoints() {
  [ -n "$SOURCE" ] || usage_error "no source: pass --source URL or set PGFERRY_SOURCE"
  [ -n "$TARGET" ] || usage_error "no target: pass --target URL or set PGFERRY_TARGET"
}

# need_bin fails with exit 2 unless every named program is on PATH.
need_bin() {
  local b
  for b in "$@"; do
    type -P "$b" >/dev/null 2>&1 || { # -P: a program, not the psql/vacuumdb wrappers above
      log "$b not found on PATH"
      log "hint: build the tools with 'go build -o ~/bin ./cmd/...' and put that directory on PATH"
      exit "$EXIT_USAGE"
    }
  done
}

# now_s prints the current time in seconds with millisecond precision.
now_s() { date +%s.%3N; }

# elapsed START prints seconds since START (from now_s) with one decimal.
elapsed() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }'; }

# human_bytes N prints N bytes as B/kB/MB/GB.
human_bytes() {
  awk -v n="${1:-0}" 'BEGIN { split("B kB MB GB TB", u, " "); i = 1; while (n >= 1024 && i < 5) { n /= 1024; i++ }; printf (i == 1 ? "%d %s" : "%.1f %s"), n, u[i] }'
}

# wait_for SECONDS DESCRIPTION CMD...: re-runs CMD every 0.2s until it succeeds; 1 on timeout.
wait_for() {
  local timeout=$1 what=$2 start
  shift 2
  start=$(date +%s)
  until "$@" >/dev/null 2>&1; do
    if [ $(( $(date +%s) - start )) -ge "$timeout" ]; then
      log "timed out after ${timeout}s waiting for $what"
      return 1
    fi
    sleep 0.2
  done
}

# psql_q URL SQL: runs SQL (no psqlrc, stop on error, quiet, unaligned tuples) and prints the result.
psql_q() {
  local url=$1
  shift
  PGAPPNAME="${PGAPPNAME:-pgferry-scripts}" psql -X -q -At -v ON_ERROR_STOP=1 -d "$url" -c "$*"
}

# --- step markers: a state directory with one file per finished step -------------------------

# step_done NAME: true when the step has been recorded as finished.
step_done() { [ -f "$STATE_DIR/done/$1" ]; }

# step_seconds NAME: prints how long the step took (empty when unknown).
step_seconds() { cat "$STATE_DIR/done/$1.seconds" 2>/dev/null || true; }

# step_mark NAME: records the step as finished (atomically).
step_mark() {
  mkdir -p "$STATE_DIR/done"
  date -u +%FT%TZ >"$STATE_DIR/done/.$1.tmp" && mv "$STATE_DIR/done/.$1.tmp" "$STATE_DIR/done/$1"
}

# run_step NAME DESCRIPTION FUNCTION: runs FUNCTION unless NAME is marked done, then marks it.
run_step() {
  local name=$1 what=$2 fn=$3 t0
  if step_done "$name"; then
    log "$what: already done, skipping"
    return 0
  fi
  log "$what"
  t0=$(now_s)
  "$fn"
  step_mark "$name"
  elapsed "$t0" >"$STATE_DIR/done/$name.seconds"
  log "$what: done in $(cat "$STATE_DIR/done/$name.seconds")s"
}

# pid_alive FILE: true when FILE holds the pid of a running process.
pid_alive() {
  local pid
  [ -f "$1" ] || return 1
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# url_dbname URL: prints the database name of a postgres:// URL or key=value string.
url_dbname() { psql_q "$1" "SELECT current_database()"; }

# redact URL: hides the password of a postgres:// URL, its ?password= parameter, or a key=value
# connection string's password=, for messages.
redact() { printf '%s' "$1" | sed -E "s#(://[^:/@]*):[^@]*@#\\1:***@#; s#(password=)('[^']*'|[^ &]*)#\\1***#g"; }

# lock_state_dir: refuses to run twice at once on the same state directory (needs flock).
lock_state_dir() {
  command -v flock >/dev/null 2>&1 || return 0
  exec 9>"$STATE_DIR/.lock"
  # A few seconds' grace: after a kill -9 of a whole run, its dying children may still hold the
  # lock's descriptor for a moment, and the re-run that the kill calls for must not be refused.
  flock -w 5 9 || die "another pgferry script is running with the state directory $STATE_DIR" "wait for it, or stop it first"
}

# --- filters: -n/-N/-t/-T/--exclude-table-data belong to the migration ---------------------------
# FILTERS holds them as parsed (option, pattern pairs). $STATE_DIR/filters records them as
# --option=PATTERN arguments, sorted, each ended by a NUL byte (tr '\0' '\n' <filters shows them).

# settle_filters: with a record, no filters given means the recorded ones, other filters are
# refused (exit 2); FILTERS ends up as the arguments to pass to the tools.
settle_filters() {
  local i opt given=() recorded=()
  for ((i = 0; i < ${#FILTERS[@]}; i += 2)); do
    case ${FILTERS[i]} in
      -n) opt=--schema ;; -N) opt=--exclude-schema ;; -t) opt=--table ;; -T) opt=--exclude-table ;; *) opt=${FILTERS[i]} ;;
    esac
    given+=("$opt=${FILTERS[i + 1]}")
  done
  [ ${#given[@]} -eq 0 ] || mapfile -d '' given < <(printf '%s\0' "${given[@]}" | LC_ALL=C sort -z -u)
  if [ -f "$STATE_DIR/filters" ]; then
    mapfile -d '' recorded <"$STATE_DIR/filters"
    if [ ${#given[@]} -gt 0 ] && [ "$(printf '%q ' "${given[@]}")" != "$(printf '%q ' "${recorded[@]}")" ]; then
      log "the filters given (${given[*]}) are not this migration's (${recorded[*]:-none}, recorded in $STATE_DIR/filters)"
      log "hint: give the same filters or none (then the recorded ones apply); other filters need a new --state-dir"
      exit "$EXIT_USAGE"
    fi
    given=("${recorded[@]}")
  fi
  FILTERS=("${given[@]}")
}

# record_filters: writes FILTERS (settled) to $STATE_DIR/filters, once.
record_filters() {
  [ ! -f "$STATE_DIR/filters" ] || return 0
  if [ ${#FILTERS[@]} -gt 0 ]; then printf '%s\0' "${FILTERS[@]}"; fi >"$STATE_DIR/filters.tmp"
  mv "$STATE_DIR/filters.tmp" "$STATE_DIR/filters"
}

# excluded_summary: one line on the tables the filters leave out; the list ('pgtrig check
# --excluded') goes to $STATE_DIR/excluded.txt.
excluded_summary() {
  local n rows
  [ ${#FILTERS[@]} -gt 0 ] || return 0
  if ! pgtrig check --source "$SOURCE" --excluded "${FILTERS[@]}" >"$STATE_DIR/excluded.txt" 2>&1; then
    log "warning: could not list the tables the filters leave out: $(tail -n 1 "$STATE_DIR/excluded.txt")"
    return 0
  fi
  n=$(wc -l <"$STATE_DIR/excluded.txt")
  rows=$(grep -c $'\trows only$' "$STATE_DIR/excluded.txt" || true)
  log "filters ${FILTERS[*]}: $((n - rows)) table(s) left out, $rows moved without their rows; list in $STATE_DIR/excluded.txt"
}
