#!/usr/bin/env bash
# roles.sh TDS: who may do what, by the server's word (issue 18 point 12).
# `tds migrate` makes tds_viewer, tds_operator and tds_engine; a CLI
# connected as a viewer reads but every action is refused by PostgreSQL with
# a clear message; an operator acts, and its audit rows carry the database
# user the server saw, not the OS user the client reports; a viewer cannot
# read the Zoho access token; an engine connected as tds_engine runs a
# stock sync against the simulator.
set -u
tds=$1 sim=$2
# shellcheck source=simlib.sh
. "$(dirname "$0")/simlib.sh" # sim_start, sim_stop (its own database set-up is not used here)
[ -n "${TDS_TEST_PG:-}" ] || { echo "TDS_TEST_PG not set: run through tests/run"; exit 77; }
db=t_roles_$$ viewer=tds_t_viewer_$$ operator=tds_t_operator_$$ engine=tds_t_engine_$$
tmp=$(mktemp -d) simpid=
psql "$TDS_TEST_PG" -qc "CREATE DATABASE $db" || exit 1
cleanup() {
    sim_stop
    psql "$TDS_TEST_PG" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
    psql "$TDS_TEST_PG" -qc "DROP ROLE IF EXISTS $viewer" -qc "DROP ROLE IF EXISTS $operator" \
        -qc "DROP ROLE IF EXISTS $engine" >/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
export XDG_CONFIG_HOME=/nonexistent
unset TDS_CONFIG
owner="$TDS_TEST_PG dbname=$db"
sql() { psql "$owner" -qAtc "$1"; }
fails=0
ok() { echo "ok: $1"; }
bad() { echo "FAIL: $1"; fails=$((fails + 1)); }
TDS_DATABASE_URL="$owner" "$tds" migrate >/dev/null 2>&1 || { echo "migrate failed"; exit 1; }
n=$(sql "SELECT count(*) FROM pg_roles WHERE rolname IN ('tds_viewer', 'tds_operator', 'tds_engine')")
[ "$n" = 3 ] && ok "migrate made the three roles" || bad "roles made: $n"
psql "$TDS_TEST_PG" -qc "CREATE ROLE $viewer LOGIN IN ROLE tds_viewer" \
    -qc "CREATE ROLE $operator LOGIN IN ROLE tds_operator" \
    -qc "CREATE ROLE $engine LOGIN IN ROLE tds_engine" >/dev/null || bad "cannot create users"
sql "INSERT INTO tds.dead_letter (entity_type, zoho_id, operation, payload, failure_reason, attempts)
     VALUES ('items', '2001', 'upsert', '{}', 'HTTP 500', 5), ('items', '2002', 'upsert', '{}', 'HTTP 500', 5);
     INSERT INTO tds.alerts (alert_type, severity, title, dedup_key) VALUES ('x', 'warning', 'x', 'x');
     INSERT INTO tds.zoho_token (client_id, access_token, api_domain, minted_at, expires_at, minted_by, updated_at)
     VALUES ('c', 'tok', 'https://www.zohoapis.com', now(), now() + interval '1 hour', 'x', now())" >/dev/null ||
    bad "cannot seed"
d1=$(sql "SELECT min(id) FROM tds.dead_letter")
as() { local who=$1; shift; TDS_DATABASE_URL="$TDS_TEST_PG dbname=$db user=$who" USER=pretend "$tds" "$@"; }

# The viewer reads ...
out=$(as "$viewer" dlq list 2>&1) && echo "$out" | grep -q 2001 && ok "viewer: dlq list" ||
    bad "viewer: dlq list: $out"
out=$(as "$viewer" runs 2>&1) && ok "viewer: runs" || bad "viewer: runs: $out"
# ... and is refused every action, by the server, with a clear message.
for args in "dlq retry $d1" "alerts ack --all" "pause" "sync stock"; do
    # shellcheck disable=SC2086
    out=$(as "$viewer" $args 2>&1); st=$?
    if [ $st != 0 ] && echo "$out" | grep -q "permission denied" &&
       echo "$out" | grep -q "acting needs tds_operator"; then
        ok "viewer: '$args' refused by the database (exit $st)"
    else
        bad "viewer: '$args': exit $st: $out"
    fi
done
[ "$(sql "SELECT count(*) FROM tds.dead_letter WHERE resolved_at IS NULL")" = 2 ] &&
    ok "viewer: nothing changed" || bad "viewer changed the DLQ"
out=$(psql "$TDS_TEST_PG dbname=$db user=$viewer" -qAtc "SELECT access_token FROM tds.zoho_token" 2>&1)
echo "$out" | grep -q "permission denied" && ok "viewer: the access token is not readable" ||
    bad "viewer read tds.zoho_token: $out"

# The operator acts; its audit rows carry the server's user.
for args in "dlq retry $d1" "alerts ack --all" "pause" "resume" "sync stock"; do
    # shellcheck disable=SC2086
    out=$(as "$operator" $args 2>&1) && ok "operator: '$args'" || bad "operator: '$args': $out"
done
a=$(sql "SELECT count(*) FROM tds.audit WHERE db_user = '$operator'")
[ "$a" -ge 4 ] && ok "operator: $a audit rows name $operator (the server's user)" ||
    bad "audit rows with db_user = $operator: $a ($(sql "SELECT action, os_user, db_user FROM tds.audit"))"
out=$(psql "$TDS_TEST_PG dbname=$db user=$operator" -qAtc \
    "INSERT INTO tds.audit (os_user, action, db_user) VALUES ('x', 'forged', 'someone') RETURNING db_user" 2>&1)
[ "$(echo "$out" | head -1)" = "$operator" ] && ok "audit db_user cannot be forged" ||
    bad "forged db_user: $out"

# The engine role runs an engine's work: a stock sync (staging tables, the
# merge, events, the sealed token) against the simulator.
sim_start --items 50
out=$(TDS_DATABASE_URL="$TDS_TEST_PG dbname=$db user=$engine" TDS_SYNC_UNLIMITED=1 \
      "$tds" --config "$tmp/tds.yaml" sync stock --all-items --wait 2>&1); st=$?
n=$(sql "SELECT count(*) FROM zoho.items")
[ $st = 0 ] && [ "$n" = 50 ] && ok "engine role: a stock sync stores the 50 items" ||
    bad "engine role: exit $st, $n items: $(echo "$out" | tail -3)"
out=$(as "$viewer" --config "$tmp/tds.yaml" sync stock --all-items --wait 2>&1); st=$?
[ $st != 0 ] && echo "$out" | grep -q "permission denied" &&
    ok "viewer: a sync --wait is refused too" || bad "viewer sync --wait: exit $st: $out"
echo "roles: $fails failure(s)"
[ $fails = 0 ]
