#!/usr/bin/env bash
# cli-migrate.sh TDS: the `tds migrate` command end to end against the
# private cluster: first run, second run, two at once, a DSN pointing at
# nothing, a database newer than the binary.
set -u
tds=$1
[ -n "${TDS_TEST_PG:-}" ] || { echo "TDS_TEST_PG not set: run through tests/run"; exit 77; }
db=t_climigrate_$$
psql "$TDS_TEST_PG" -qc "CREATE DATABASE $db" || exit 1
trap 'psql "$TDS_TEST_PG" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
export TDS_DATABASE_URL="$TDS_TEST_PG dbname=$db"
unset TDS_CONFIG
export XDG_CONFIG_HOME=/nonexistent  # no user configuration file
fails=0
check() { # name expected-status expected-output-substring actual-status actual-output
    if [ "$4" = "$2" ] && grep -qF -- "$3" <<<"$5"; then
        echo "ok: $1"
    else
        echo "FAIL: $1: status $4 (want $2), output: $5 (want: $3)"; fails=$((fails + 1))
    fi
}
out=$("$tds" migrate 2>&1); check "first migrate" 0 "applied" $? "$out"
out=$("$tds" migrate 2>&1); check "second migrate changes nothing" 0 "up to date" $? "$out"
psql "$TDS_TEST_PG" -qc "DROP DATABASE $db WITH (FORCE)" -c "CREATE DATABASE $db"
"$tds" migrate >/tmp/m1.$$ 2>&1 & p1=$!
"$tds" migrate >/tmp/m2.$$ 2>&1 & p2=$!
wait $p1; s1=$?; wait $p2; s2=$?
both=$(cat /tmp/m1.$$ /tmp/m2.$$); rm -f /tmp/m1.$$ /tmp/m2.$$
check "two at once: both succeed" "0 0" "" "$s1 $s2" "$both"
check "two at once: one applied, one found nothing" 0 "up to date" 0 "$both"
n=$(psql "$TDS_TEST_PG dbname=$db" -Atc "SELECT count(*) FROM tds.schema_migrations WHERE version = 1")
check "two at once: one schema" 1 "" "$n" ""
out=$(TDS_DATABASE_URL="postgresql://nobody:s3cretpw@127.0.0.1:1/none" "$tds" migrate 2>&1)
check "DSN pointing at nothing" 2 "cannot connect to 127.0.0.1:1" $? "$out"
if grep -q s3cretpw <<<"$out"; then echo "FAIL: password in message"; fails=$((fails + 1)); fi
psql "$TDS_TEST_PG dbname=$db" -qc "INSERT INTO tds.schema_migrations (version, name) VALUES (9999, 'future')"
out=$("$tds" migrate 2>&1); check "newer schema refused" 2 "newer than this tds knows" $? "$out"
echo "$fails failed"
[ "$fails" = 0 ]
