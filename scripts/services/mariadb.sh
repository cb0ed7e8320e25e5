#!/usr/bin/env bash
# A throwaway MariaDB server on 127.0.0.1 for the database/sql e2e test
# (tests/e2e/databasesql.test.ts) and bench/databasesql-overhead.sh.
#
#   scripts/services/mariadb.sh install   # Debian's mariadb-server package, unless its binaries are there
#   scripts/services/mariadb.sh start     # install, then start a server of our own unless it answers
#   scripts/services/mariadb.sh stop      # stop the server this script started
#
# Idempotent and quick when done. Not Debian's system instance: its data directory is
# $BEETRACE_MARIADB_DIR/data (default /tmp/beetrace-mariadb/data, created with mariadb-install-db on
# first start), it listens on 127.0.0.1 only, its socket and pid file live in that directory, and
# it runs as the `mysql` user the package creates. It has a database `beetrace` and a user
# `beetrace`@`%` (password `beetrace`) with every right on it. Prints the go-sql-driver/mysql DSN
# ("mariadb beetrace:beetrace@tcp(…)/beetrace") when ready.
#
# Environment: BEETRACE_MARIADB_PORT (default 53306), BEETRACE_MARIADB_DIR,
#              BEETRACE_MARIADB_WAIT (seconds to wait, default 60).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN="${BEETRACE_MARIADB_DIR:-/tmp/beetrace-mariadb}"
DATA="$RUN/data"
SOCK="$RUN/mariadb.sock"
PORT="${BEETRACE_MARIADB_PORT:-53306}"
WAIT="${BEETRACE_MARIADB_WAIT:-60}"

log() { echo "mariadb.sh: $*" >&2; }

server() { command -v mariadbd 2>/dev/null || ls /usr/sbin/mariadbd 2>/dev/null || true; }

install() {
  if [ -n "$(server)" ] && command -v mariadb-install-db >/dev/null 2>&1 && command -v mariadb >/dev/null 2>&1 && id mysql >/dev/null 2>&1; then
    return 0
  fi
  log "installing MariaDB (Debian package mariadb-server)"
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d: the package must not start (or fail to start) Debian's own instance.
  local policy=/usr/sbin/policy-rc.d added=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added=1; fi
  apt-get update -qq && apt-get install -y -qq --no-install-recommends mariadb-server mariadb-client >/dev/null || {
    [ "$added" = 1 ] && rm -f "$policy"
    log "apt-get install mariadb-server failed"
    exit 1
  }
  [ "$added" = 1 ] && rm -f "$policy"
  [ -n "$(server)" ] || { log "the mariadb-server package left no mariadbd"; exit 1; }
}

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

admin() { mariadb --no-defaults -uroot --socket="$SOCK" "$@"; }

start() {
  install
  if ! answers; then
    if [ ! -d "$DATA/mysql" ]; then
      rm -rf "$DATA" && mkdir -p "$DATA" && chown -R mysql: "$RUN"
      mariadb-install-db --no-defaults --user=mysql --datadir="$DATA" --auth-root-authentication-method=socket \
        --skip-test-db >"$RUN/install-db.log" 2>&1 || { cat "$RUN/install-db.log" >&2; log "mariadb-install-db failed"; exit 1; }
    fi
    log "starting MariaDB on 127.0.0.1:$PORT"
    # setsid: the server outlives this script (tests call it again to reuse the running server).
    setsid nohup "$(server)" --no-defaults --user=mysql --datadir="$DATA" --socket="$SOCK" --pid-file="$RUN/mariadb.pid" \
      --bind-address=127.0.0.1 --port="$PORT" --skip-name-resolve --innodb-buffer-pool-size=32M \
      --innodb-flush-log-at-trx-commit=0 --log-error="$RUN/error.log" >/dev/null 2>&1 </dev/null &
    echo $! >"$RUN/launcher.pid"
  fi
  local t=0
  until admin -e "SELECT 1" >/dev/null 2>&1; do
    t=$((t + 1))
    [ "$t" -le $((WAIT * 2)) ] || { tail -n 30 "$RUN/error.log" >&2 || true; log "MariaDB did not answer in ${WAIT}s"; exit 1; }
    sleep 0.5
  done
  admin -e "CREATE DATABASE IF NOT EXISTS beetrace;
    CREATE USER IF NOT EXISTS 'beetrace'@'%' IDENTIFIED BY 'beetrace';
    GRANT ALL PRIVILEGES ON beetrace.* TO 'beetrace'@'%';"
  echo "mariadb beetrace:beetrace@tcp(127.0.0.1:$PORT)/beetrace"
}

stop() {
  local pidf="$RUN/mariadb.pid"
  [ -f "$pidf" ] || return 0
  local pid
  pid=$(cat "$pidf")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  fi
  rm -f "$pidf" "$RUN/launcher.pid"
}

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop ;;
*) echo "usage: $0 install | start | stop" >&2; exit 2 ;;
esac
