#!/usr/bin/env bash
# A throw-away PostgreSQL server for the shared-storage search test
# (tests/experiments/lab_search_postgres_test.py): installs Debian's postgresql when it is
# missing, starts a cluster in $PGDATA_DIR on 127.0.0.1:$PGPORT and creates a database for the
# test. Prints the URL the test reads from RNN_TEST_POSTGRES_URL:
#
#     export RNN_TEST_POSTGRES_URL=$(bash .ci/postgres.sh)
#
# Stop it with: pg_ctl -D $PGDATA_DIR stop (as the postgres user when started as root).
set -euo pipefail
PGPORT=${PGPORT:-54329}
PGDATA_DIR=${PGDATA_DIR:-/tmp/rnn-cells-postgres}
DATABASE=rnn_search
USER_NAME=rnn
PASSWORD=rnn-search-test

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bin" ]; then
    echo "postgres: installing Debian's postgresql" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi

# PostgreSQL refuses to run as root: the server runs as the postgres user when we are root.
as_server() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if ! as_server "$bin/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1; then
    rm -rf "$PGDATA_DIR"
    mkdir -p "$PGDATA_DIR"
    [ "$(id -u)" = 0 ] && chown postgres "$PGDATA_DIR"
    as_server "$bin/initdb" -D "$PGDATA_DIR" -A trust -U postgres >/dev/null
    as_server "$bin/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" -w \
        -o "-p $PGPORT -k $PGDATA_DIR -c listen_addresses=127.0.0.1" start >/dev/null
    psql_() { as_server "$bin/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -v ON_ERROR_STOP=1 -q "$@"; }
    psql_ -c "CREATE USER $USER_NAME PASSWORD '$PASSWORD'"
    psql_ -c "CREATE DATABASE $DATABASE OWNER $USER_NAME"
fi
echo "postgresql://$USER_NAME:$PASSWORD@127.0.0.1:$PGPORT/$DATABASE"
