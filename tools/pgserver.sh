#!/usr/bin/env bash
# Start or stop the throwaway PostgreSQL server that make test, demo and bench use.
#   tools/pgserver.sh start|stop|status|bindir|major
# The data directory lives under build/ (PGDATA_DIR), the server listens on
# 127.0.0.1:$PGPORT (default 54329) with trust authentication for local use
# only. PostgreSQL refuses to run as root, so as root the server runs as the
# 'postgres' system user (created if missing).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build="${GW_BUILD:-$here/build}"
port=${PGPORT:-54329}
# PG_BINDIR names the server's binaries (postgres, pg_ctl, initdb, ...); without it, the one installed here.
if [ -n "${PG_BINDIR:-}" ]; then
  bindir=$(cd "$PG_BINDIR" 2>/dev/null && pwd) || { echo "pgserver: PG_BINDIR=$PG_BINDIR is not a directory" >&2; exit 1; }
  [ -x "$bindir/pg_ctl" ] || { echo "pgserver: no pg_ctl in PG_BINDIR=$PG_BINDIR" >&2; exit 1; }
else
  bindir=$(pg_config --bindir 2>/dev/null || true)
  [ -x "$bindir/pg_ctl" ] || bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -x "$bindir/pg_ctl" ] || { echo "pgserver: no PostgreSQL server binaries found (pg_ctl)" >&2; exit 1; }
fi

run_as=""
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  run_as=postgres
fi

as_server_user() {
  if [ -n "$run_as" ]; then
    # runuser keeps this script's environment out of the way; cd / so the server user need not read our cwd.
    (cd / && runuser -u "$run_as" -- "$@")
  else
    "$@"
  fi
}

datadir() {
  # The data directory is build/pgdata. When the server user cannot reach
  # build/ (a checkout under /root, say), it lives in /tmp and build/pgdata links to it.
  local want="$build/pgdata"
  if [ -L "$want" ] || [ -d "$want" ]; then readlink -f "$want"; return; fi
  mkdir -p "$build"
  if [ -n "$run_as" ] && ! runuser -u "$run_as" -- test -x "$build" 2>/dev/null; then
    local tmp
    tmp=$(mktemp -d /tmp/gw-pgdata.XXXXXX)
    ln -s "$tmp" "$want"
  else
    mkdir -p "$want"
  fi
  readlink -f "$want"
}

cmd=${1:-status}
case "$cmd" in
  start)
    dir=$(datadir)
    [ -n "$run_as" ] && chown "$run_as" "$dir" && chmod 700 "$dir"
    if [ -f "$dir/PG_VERSION" ] && [ "$(cat "$dir/PG_VERSION")" != "$("$0" major)" ]; then
      echo "pgserver: $dir was made by PostgreSQL $(cat "$dir/PG_VERSION"), not $("$0" major) ($bindir): use another BUILD or remove it" >&2
      exit 1
    fi
    if [ ! -f "$dir/PG_VERSION" ]; then
      as_server_user "$bindir/initdb" -D "$dir" -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8 >"$build/initdb.log" 2>&1 \
        || { cat "$build/initdb.log" >&2; exit 1; }
    fi
    if as_server_user "$bindir/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
      echo "pgserver: already running on port $port"
      exit 0
    fi
    as_server_user "$bindir/pg_ctl" -D "$dir" -w -t 60 -l "$dir/server.log" \
      -o "-p $port -c listen_addresses=127.0.0.1 -k $dir -c fsync=off -c max_connections=200 -c shared_buffers=256MB" start >/dev/null \
      || { tail -n 20 "$dir/server.log" >&2; exit 1; }
    echo "pgserver: started on 127.0.0.1:$port (data in $dir)"
    ;;
  stop)
    [ -e "$build/pgdata" ] || exit 0
    dir=$(readlink -f "$build/pgdata")
    [ -f "$dir/PG_VERSION" ] || exit 0
    if as_server_user "$bindir/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
      as_server_user "$bindir/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
      echo "pgserver: stopped"
    fi
    ;;
  status)
    [ -e "$build/pgdata" ] && as_server_user "$bindir/pg_ctl" -D "$(readlink -f "$build/pgdata")" status
    ;;
  bindir)
    echo "$bindir"
    ;;
  major)
    "$bindir/postgres" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)*.*$/\1/'
    ;;
  *)
    echo "usage: $0 start|stop|status|bindir|major" >&2
    exit 2
    ;;
esac
