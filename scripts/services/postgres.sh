#!/usr/bin/env bash
# A throwaway PostgreSQL server on 127.0.0.1 for the database/sql e2e test
# (tests/e2e/databasesql.test.ts) and bench/databasesql-overhead.sh.
#
#   scripts/services/postgres.sh install   # Debian's postgresql package, unless its binaries are there
#   scripts/services/postgres.sh start     # install, then start a cluster of our own unless it answers
#   scripts/services/postgres.sh stop      # stop the cluster this script started
#
# Idempotent and quick when done. The cluster is not Debian's system one: its data directory is
# $BEETRACE_PG_DIR/data (default /tmp/beetrace-postgres/data, created with initdb on first start), it listens on 127.0.0.1 only, its
# socket lives in that directory, and it runs as the `postgres` user the package creates. It has a
# database `beetrace` owned by role `beetrace` (password `beetrace`). Prints the connection URL
# ("postgres postgres://…") when ready.
#
# Environment: BEETRACE_PG_PORT (default 55432), BEETRACE_PG_DIR, BEETRACE_PG_WAIT (seconds, default 60).
set -euo pipefail
cd "$(dirname "$0")/../.."
# Outside the checkout: the server runs as `postgres`, which cannot enter a checkout under /root.
RUN="${BEETRACE_PG_DIR:-/tmp/beetrace-postgres}"
DATA="$RUN/data"
PORT="${BEETRACE_PG_PORT:-55432}"
WAIT="${BEETRACE_PG_WAIT:-60}"

log() { echo "postgres.sh: $*" >&2; }

# The server binaries of the newest installed major (Debian: /usr/lib/postgresql/<major>/bin).
bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && echo "$d"
}

install() {
  if bindir >/dev/null && command -v psql >/dev/null 2>&1 && id postgres >/dev/null 2>&1; then return 0; fi
  log "installing PostgreSQL (Debian package postgresql)"
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d: the package must not start Debian's own cluster (ours runs on another port).
  local policy=/usr/sbin/policy-rc.d added=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added=1; fi
  apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql postgresql-client >/dev/null || {
    [ "$added" = 1 ] && rm -f "$policy"
    log "apt-get install postgresql failed"
    exit 1
  }
  [ "$added" = 1 ] && rm -f "$policy"
  bindir >/dev/null || { log "the postgresql package left no /usr/lib/postgresql/*/bin"; exit 1; }
}

as_pg() { runuser -u postgres -- "$@"; }

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

psql_admin() { as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$DATA" -p "$PORT" -d postgres "$@"; }

start() {
  install
  local bin
  bin=$(bindir)
  if ! answers; then
    if [ ! -f "$DATA/PG_VERSION" ]; then
      rm -rf "$DATA" && mkdir -p "$DATA" && chown postgres: "$RUN" "$DATA" && chmod 700 "$DATA"
      touch "$RUN/server.log" && chown postgres: "$RUN/server.log"
      as_pg "$bin/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C >"$RUN/initdb.log" 2>&1 ||
        { cat "$RUN/initdb.log" >&2; log "initdb failed"; exit 1; }
    fi
    log "starting PostgreSQL on 127.0.0.1:$PORT"
    as_pg "$bin/pg_ctl" -D "$DATA" -l "$RUN/server.log" -w -t "$WAIT" \
      -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DATA -c fsync=off -c max_connections=50" start >/dev/null ||
      { tail -n 30 "$RUN/server.log" >&2; log "PostgreSQL did not start"; exit 1; }
  fi
  local t=0
  until psql_admin -c "SELECT 1" >/dev/null 2>&1; do
    t=$((t + 1))
    [ "$t" -le $((WAIT * 2)) ] || { log "PostgreSQL did not answer in ${WAIT}s"; exit 1; }
    sleep 0.5
  done
  if [ "$(psql_admin -tA -c "SELECT 1 FROM pg_roles WHERE rolname = 'beetrace'")" != "1" ]; then
    psql_admin -c "CREATE ROLE beetrace LOGIN PASSWORD 'beetrace'"
  fi
  if [ "$(psql_admin -tA -c "SELECT 1 FROM pg_database WHERE datname = 'beetrace'")" != "1" ]; then
    psql_admin -c "CREATE DATABASE beetrace OWNER beetrace"
  fi
  echo "postgres postgres://beetrace:beetrace@127.0.0.1:$PORT/beetrace?sslmode=disable"
}

stop() {
  [ -f "$DATA/postmaster.pid" ] || return 0
  local bin
  bin=$(bindir) || return 0
  as_pg "$bin/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null || true
}

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop ;;
*) echo "usage: $0 install | start | stop" >&2; exit 2 ;;
esac
