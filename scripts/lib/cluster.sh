# Throwaway local PostgreSQL clusters for the demo: initdb in a temp dir, unix socket only,
# run as the postgres OS user when we are root. Source common.sh first.

# pg_bindir prints the directory holding initdb and pg_ctl.
pg_bindir() {
  local d
  if [ -n "${PGFERRY_PGBIN:-}" ]; then echo "$PGFERRY_PGBIN"; return; fi
  if command -v pg_config >/dev/null 2>&1; then
    d=$(pg_config --bindir 2>/dev/null || true)
    if [ -x "$d/initdb" ]; then echo "$d"; return; fi
  fi
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
  return 1
}

# as_pg CMD...: runs CMD as the postgres OS user when root, else as ourselves.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# cluster_start DIR PORT [SETTING...]: creates and starts a cluster under DIR (which must exist).
# The server listens only on the unix socket DIR/sock; the superuser is "postgres", trust auth.
# The server binaries come from $CLUSTER_BIN when set (see pg-versions.sh), else pg_bindir.
cluster_start() {
  local dir=$1 port=$2 bin opts s
  shift 2
  bin=${CLUSTER_BIN:-}
  [ -n "$bin" ] || bin=$(pg_bindir) || die "no PostgreSQL server binaries found" "install them (apt-get install postgresql) or set PGFERRY_PGBIN to the directory holding initdb"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' OS user to run the server" "apt-get install postgresql creates it, or run as a normal user"
    chmod 755 "$dir"
    chown postgres: "$dir"
  fi
  as_pg mkdir -p "$dir/sock"
  echo "$bin" >"$dir/bindir"
  if ! as_pg "$bin/initdb" --no-sync -U postgres --auth=trust -E UTF8 --locale=C -D "$dir/data" >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    die "initdb failed in $dir"
  fi
  opts="-c listen_addresses='' -k $dir/sock -p $port -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  opts="$opts -c max_connections=100 -c shared_buffers=128MB -c unix_socket_permissions=0777"
  for s in "$@"; do opts="$opts -c $s"; done
  if ! as_pg "$bin/pg_ctl" start -w -t 60 -D "$dir/data" -l "$dir/server.log" -o "$opts" >/dev/null 2>&1; then
    cat "$dir/server.log" >&2 || true
    die "pg_ctl start failed in $dir"
  fi
}

# cluster_url DIR PORT DB [ROLE]: prints a connection URL for the cluster.
cluster_url() {
  printf 'postgres://%s@/%s?host=%s&port=%s&sslmode=disable' "${4:-postgres}" "$3" "$1/sock" "$2"
}

# cluster_stop DIR: stops the cluster under DIR (fast) and removes DIR. Never fails.
cluster_stop() {
  local dir=$1 bin
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  bin=$(cat "$dir/bindir" 2>/dev/null) || bin=$(pg_bindir 2>/dev/null) || bin=
  if [ -n "$bin" ] && [ -f "$dir/data/postmaster.pid" ]; then
    as_pg "$bin/pg_ctl" stop -m fast -w -t 30 -D "$dir/data" >/dev/null 2>&1 ||
      as_pg "$bin/pg_ctl" stop -m immediate -w -D "$dir/data" >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}
