#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests (PostgreSQL-backed controller replicas).
#
# Usage: scripts/postgres.sh start|stop|halt|status|dsn [DIR]
#   start   initialise DIR (first time) and start the server; print the DSN. Idempotent: a
#           running cluster is left alone and its DSN printed again.
#   stop    stop the server and delete DIR.
#   halt    stop the server and keep DIR: start brings it back with its data (tests of a
#           database outage; only on a cluster of the test's own, never the shared one).
#   status  exit 0 when the server in DIR is running.
#   dsn     print the DSN.
# DIR defaults to $ZTNA_PG_DIR, else /tmp/ztna-postgres. Needs the Debian package `postgresql`
# (scripts/deps.sh test); $PG_BINDIR overrides where initdb/pg_ctl are found.
#
# The server listens on a unix socket in DIR only — no TCP port to collide with, nothing
# reachable from the network — and trusts connections on it (DIR is 0700). It trades
# durability for speed (fsync off): never put real data in it. PostgreSQL refuses to run as
# root, so as root the cluster belongs to the `postgres` user that the package creates.
set -euo pipefail

cmd=${1:-}
dir=${2:-${ZTNA_PG_DIR:-/tmp/ztna-postgres}}
port=5432
data=$dir/data

die() { echo "postgres.sh: $*" >&2; exit 1; }
# Exit status 3 means "PostgreSQL is not installed" (tests skip instead of failing).
missing() { echo "postgres.sh: $*" >&2; exit 3; }

[ -n "$cmd" ] || die "usage: $0 start|stop|halt|status|dsn [DIR]"
case $dir in /*) ;; *) die "DIR must be absolute, got $dir" ;; esac
# The socket path must fit in sun_path (107 bytes).
[ ${#dir} -le 90 ] || die "DIR $dir is too long for a unix socket path: use a shorter one"

bindir=${PG_BINDIR:-}
if [ -z "$bindir" ]; then
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$bindir" ] && command -v initdb >/dev/null; then bindir=$(dirname "$(command -v initdb)"); fi
fi
[ -x "$bindir/initdb" ] && [ -x "$bindir/pg_ctl" ] ||
  missing "PostgreSQL server binaries not found: install the Debian package postgresql (scripts/deps.sh test) or set PG_BINDIR"

# as runs a command as the cluster's owner.
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || missing "running as root needs the system user postgres (created by the postgresql package)"
  as() { runuser -u postgres -- "$@"; }
  owner=postgres
else
  as() { "$@"; }
  owner=$(id -un)
fi

dsn() { echo "postgres://postgres@/postgres?host=$dir&port=$port&sslmode=disable"; }
running() { [ -f "$data/PG_VERSION" ] && as "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; }

start() {
  mkdir -p "$dir"
  chmod 700 "$dir"
  chown "$owner" "$dir"
  if running; then dsn; return; fi
  if [ ! -f "$data/PG_VERSION" ]; then
    rm -rf "$data"
    as "$bindir/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 ||
      die "initdb failed, see $dir/initdb.log: $(tail -n 5 "$dir/initdb.log")"
    cat >>"$data/postgresql.conf" <<EOF
# scripts/postgres.sh: throwaway test cluster
listen_addresses = ''
unix_socket_directories = '$dir'
port = $port
max_connections = 300
shared_buffers = 32MB
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
EOF
  fi
  # 9>&-: the server must not inherit (and hold forever) the lock.
  as "$bindir/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 start >/dev/null 9>&- ||
    die "the server did not start, see $dir/server.log: $(tail -n 5 "$dir/server.log" 2>/dev/null)"
  dsn
}

stop() {
  if running; then as "$bindir/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null; fi
  rm -rf "$dir"
}

halt() {
  if running; then as "$bindir/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null; fi
}

# One start/stop at a time per DIR (two test packages may share one).
lock() { exec 9>"$dir.lock"; flock 9; }

case $cmd in
  start) lock; start ;;
  stop) lock; stop; rm -f "$dir.lock" ;;
  halt) lock; halt ;;
  status) running ;;
  dsn) dsn ;;
  *) die "unknown command $cmd: use start, stop, halt, status or dsn" ;;
esac
