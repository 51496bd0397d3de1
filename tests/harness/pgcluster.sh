# pgcluster.sh: start and stop a private, throwaway PostgreSQL cluster for
# tests and benchmarks.  Source it, then:
#   pgc_start            initdb into a new temporary directory, start the
#                        server on a Unix socket and a free loopback port,
#                        export TDS_TEST_PG (a conninfo to database postgres),
#                        PGC_HOST, PGC_PORT and PGC_DIR
#   pgc_stop             stop the server and remove the directory
#   pgc_restart [MODE]   stop with MODE (fast|immediate) and start again
# As root, the server runs as the postgres user (PostgreSQL refuses root).
# Set PGC_DURABLE=1 to keep fsync on (benchmarks that measure real writes).

pgc_bindir() {
    local d
    if command -v pg_config >/dev/null 2>&1; then
        d=$(pg_config --bindir 2>/dev/null)
        [ -x "$d/initdb" ] && { echo "$d"; return 0; }
    fi
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$d" ] && [ -x "$d/initdb" ] && { echo "$d"; return 0; }
    d=$(dirname "$(command -v initdb 2>/dev/null)" 2>/dev/null)
    [ -n "$d" ] && [ -x "$d/initdb" ] && { echo "$d"; return 0; }
    echo "pgcluster: cannot find initdb (install the postgresql package)" >&2
    return 1
}

pgc_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Runs a command as the cluster's owner.
pgc_as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pgc_start() {
    local bindir
    bindir=$(pgc_bindir) || return 1
    PGC_BIN=$bindir
    PGC_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tds-pg.XXXXXX")
    mkdir -p "$PGC_DIR/sock"
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || { echo "pgcluster: running as root needs a postgres user" >&2; return 1; }
        chown -R postgres: "$PGC_DIR"
        chmod 755 "$PGC_DIR" "$PGC_DIR/sock"
    fi
    PGC_PORT=$(pgc_free_port)
    PGC_HOST=$PGC_DIR/sock
    pgc_as_owner "$bindir/initdb" -D "$PGC_DIR/data" -U postgres --auth=trust -E UTF8 \
        --locale=C --no-sync >"$PGC_DIR/initdb.log" 2>&1 || {
        echo "pgcluster: initdb failed:" >&2; cat "$PGC_DIR/initdb.log" >&2; return 1; }
    local fsync=off
    [ "${PGC_DURABLE:-0}" = 1 ] && fsync=on
    cat >>"$PGC_DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PGC_PORT
unix_socket_directories = '$PGC_HOST'
max_connections = 300
shared_buffers = 256MB
fsync = $fsync
synchronous_commit = $fsync
full_page_writes = $fsync
max_wal_size = 4GB
log_min_messages = warning
log_min_error_statement = panic
timezone = 'UTC'
CONF
    pgc_as_owner "$bindir/pg_ctl" -D "$PGC_DIR/data" -l "$PGC_DIR/server.log" -w -t 60 start \
        >/dev/null || { echo "pgcluster: server did not start:" >&2; cat "$PGC_DIR/server.log" >&2; return 1; }
    export TDS_TEST_PG="host=$PGC_HOST port=$PGC_PORT user=postgres dbname=postgres"
    export PGC_DIR PGC_HOST PGC_PORT PGC_BIN
}

pgc_restart() {
    local mode=${1:-fast}
    pgc_as_owner "$PGC_BIN/pg_ctl" -D "$PGC_DIR/data" -m "$mode" -w stop >/dev/null 2>&1
    pgc_as_owner "$PGC_BIN/pg_ctl" -D "$PGC_DIR/data" -l "$PGC_DIR/server.log" -w -t 60 start >/dev/null
}

# pgc_warm_wal MB: a server that has been running reuses its old WAL segment
# files.  A cluster made a second ago has none: each time the WAL reaches a
# new 16 MB segment it zero-fills and fsyncs a new file while every commit
# waits (~25 ms).  Benchmarks measure the steady state instead: MB of
# throwaway WAL, and two checkpoints leave those segment files to be
# recycled.  WARM_WAL=0 skips it (diagnosis: a fresh cluster's figures).
pgc_warm_wal() {
    [ "${WARM_WAL:-1}" = 1 ] || return 0
    "$PGC_BIN/psql" -X -q "$TDS_TEST_PG" \
        -c "CREATE TABLE wal_warmup AS SELECT g, repeat('x', 900) AS pad FROM generate_series(1, $1 * 1000) g" \
        -c "DROP TABLE wal_warmup" -c "CHECKPOINT" -c "CHECKPOINT"
}

pgc_stop() {
    [ -n "${PGC_DIR:-}" ] && [ -d "$PGC_DIR" ] || return 0
    pgc_as_owner "$PGC_BIN/pg_ctl" -D "$PGC_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$PGC_DIR"
    unset PGC_DIR TDS_TEST_PG
}
