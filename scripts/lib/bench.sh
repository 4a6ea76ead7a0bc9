# Shared by the bench-*.sh scripts that compare methods on two servers: the servers (two
# throwaway clusters with identical settings, or existing ones) and the work directory's cleanup.
# Set PROG, then source it (it sources common.sh and cluster.sh); set WORK (a temp dir) and KEEP
# (1 keeps both).

. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

# bench_help prints the comment block after the script's first line: its --help.
bench_help() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

# bench_usage_error ARG refuses an unknown argument (exit 2).
bench_usage_error() { echo "$PROG: unknown argument $1 (see --help)" >&2; exit 2; }

# bench_need TOOL... fails unless every tool is on PATH.
bench_need() {
  local t
  for t in "$@"; do command -v "$t" >/dev/null || die "$t not found on PATH"; done
}

BENCH_CLUSTERS=()

# bench_cleanup is the EXIT trap: stops the clusters and removes WORK unless KEEP=1.
bench_cleanup() {
  local rc=$? d
  if [ "${KEEP:-0}" = 0 ]; then
    for d in "${BENCH_CLUSTERS[@]:-}"; do [ -n "$d" ] && cluster_stop "$d"; done
    rm -rf "$WORK"
  else
    log "kept $WORK"
  fi
  exit $rc
}

# bench_servers sets SRC_ADMIN and DST_ADMIN (URLs of a database a role that may CREATE DATABASE
# connects to): BENCH_SRC_ADMIN and BENCH_DST_ADMIN when both are set, else two throwaway clusters
# under WORK, fast and not durable (fsync off), the same for every method measured.
bench_servers() {
  if [ -n "${BENCH_SRC_ADMIN:-}" ] && [ -n "${BENCH_DST_ADMIN:-}" ]; then
    SRC_ADMIN=$BENCH_SRC_ADMIN
    DST_ADMIN=$BENCH_DST_ADMIN
    return
  fi
  local base=$((26000 + RANDOM % 4000)) port name
  log "starting throwaway source and target clusters ($(pg_bindir))"
  port=$base
  for name in src dst; do
    mkdir -p "$WORK/$name"
    BENCH_CLUSTERS+=("$WORK/$name")
    cluster_start "$WORK/$name" "$port" shared_buffers=256MB max_wal_size=8GB maintenance_work_mem=256MB autovacuum=off
    port=$((port + 1))
  done
  SRC_ADMIN=$(cluster_url "$WORK/src" "$base" postgres)
  DST_ADMIN=$(cluster_url "$WORK/dst" $((base + 1)) postgres)
}

# db_url ADMIN_URL DBNAME: the same server, another database.
db_url() { echo "$1" | sed -E "s#^(postgres(ql)?://[^/]*/)[^?]*#\1$2#"; }

# bench_server_cpu DATADIR prints the CPU seconds used so far by the server of DATADIR: the
# postmaster and its children, including the exited backends it reaped (empty if not readable).
bench_server_cpu() {
  [ -n "$1" ] && [ -r "$1/postmaster.pid" ] || return 0
  local pm ticks=0 u s cu cs p
  pm=$(head -1 "$1/postmaster.pid")
  for p in "$pm" $(pgrep -P "$pm"); do
    read -r u s cu cs < <(awk '{print $14, $15, $16, $17}' "/proc/$p/stat" 2>/dev/null) || continue
    ticks=$((ticks + u + s + cu + cs))
  done
  awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}
