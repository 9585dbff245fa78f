#!/usr/bin/env bash
# A throw-away PostgreSQL server for the OctopusPostgres tests, on loopback, trust authentication, its data under DIR.
#   Packages/OctopusPostgres/test-server.sh start [DIR=/tmp/octopus-pg] [PORT=54329]   prints the URL for
#                                                                                   OCTOPUS_TEST_POSTGRES
#   Packages/OctopusPostgres/test-server.sh stop  [DIR=/tmp/octopus-pg]
# Needs Debian's postgresql package (apt-get install postgresql). As root, the server runs as the postgres user.
set -euo pipefail
COMMAND=${1:?start or stop}
DIR=${2:-/tmp/octopus-pg}
PORT=${3:-54329}
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$BIN" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
AS=()
if [ "$(id -u)" = 0 ]; then AS=(runuser -u postgres --); fi
case "$COMMAND" in
start)
    if [ -f "$DIR/data/postmaster.pid" ]; then "${AS[@]}" "$BIN/pg_ctl" -D "$DIR/data" stop -m fast >/dev/null || true; fi
    rm -rf "$DIR"
    mkdir -p "$DIR"
    if [ "$(id -u)" = 0 ]; then chown postgres "$DIR"; fi
    "${AS[@]}" "$BIN/initdb" -D "$DIR/data" -U postgres -A trust >"$DIR/initdb.log" 2>&1 \
        || { cat "$DIR/initdb.log" >&2; exit 1; }
    "${AS[@]}" "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1" -w start >/dev/null \
        || { cat "$DIR/server.log" >&2; exit 1; }
    echo "postgres://postgres@127.0.0.1:$PORT/postgres"
    ;;
stop)
    "${AS[@]}" "$BIN/pg_ctl" -D "$DIR/data" stop -m fast >/dev/null
    rm -rf "$DIR"
    ;;
*)
    echo "usage: $0 start|stop [DIR] [PORT]" >&2
    exit 2
    ;;
esac
