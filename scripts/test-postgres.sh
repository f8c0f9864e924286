#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests, on loopback only.
#   scripts/test-postgres.sh start DIR PORT [--durable]
#                                             → initdb into DIR (if new) and start; prints the URL
#   scripts/test-postgres.sh stop DIR         → stop it (the folder is left for inspection)
#   scripts/test-postgres.sh crash DIR        → stop it as a crash would (`-m immediate`)
# The server runs as the 'postgres' system user (PostgreSQL refuses root) and trusts local
# connections. By default it is tuned for tests (no fsync): never use it for real data.
# --durable keeps PostgreSQL's defaults for durability (fsync, synchronous_commit,
# full_page_writes on), for the queue benchmarks.
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?cluster directory}
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"; elif [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$cmd" in
  start)
    port=${3:?port}
    durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    case ${4:-} in
      --durable) durability="-c fsync=on -c synchronous_commit=on -c full_page_writes=on" ;;
      "") ;;
      *) echo "$0: unknown option '$4' (only --durable)" >&2; exit 2 ;;
    esac
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_postgres "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log"; exit 1; }
    fi
    as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir $durability -c max_connections=200" \
      start >/dev/null || { cat "$dir/server.log"; exit 1; }
    as_postgres "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qtAc \
      "SELECT 1 FROM pg_database WHERE datname='dagrun_test'" | grep -q 1 \
      || as_postgres "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres dagrun_test
    echo "postgresql://postgres@127.0.0.1:$port/dagrun_test"
    ;;
  stop)
    [ -f "$dir/data/postmaster.pid" ] && as_postgres "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    ;;
  crash)
    # As if the server lost power: no checkpoint, no goodbye to clients; the next start recovers.
    [ -f "$dir/data/postmaster.pid" ] && as_postgres "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null || true
    ;;
  *) echo "usage: $0 start DIR PORT [--durable] | stop DIR | crash DIR" >&2; exit 2 ;;
esac
