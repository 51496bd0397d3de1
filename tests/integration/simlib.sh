# simlib.sh: what the shell tests against the simulator share (sourced).
#   simlib_init NAME   a database t_NAME_PID on TDS_TEST_PG (dropped at exit),
#                      $tmp, TDS_DATABASE_URL, sql/ok/bad/ctl; exits 77 without
#                      TDS_TEST_PG
#   sim_start ARGS...  (re)starts $sim on a free port ($port, $simpid) and
#                      writes $tmp/tds.yaml for it; t runs $drv with it
simlib_init() {
    [ -n "${TDS_TEST_PG:-}" ] || { echo "TDS_TEST_PG not set: run through tests/run"; exit 77; }
    db=t_$1_$$
    tmp=$(mktemp -d)
    psql "$TDS_TEST_PG" -qc "CREATE DATABASE $db" || exit 1
    simpid=
    trap simlib_cleanup EXIT
    export TDS_DATABASE_URL="$TDS_TEST_PG dbname=$db" XDG_CONFIG_HOME=/nonexistent TDS_SYNC_UNLIMITED=1
    unset TDS_CONFIG
    fails=0
}
sim_stop() { [ -n "$simpid" ] && { kill -9 "$simpid" 2>/dev/null; wait "$simpid" 2>/dev/null; }; simpid=; }
simlib_cleanup() {
    sim_stop
    psql "$TDS_TEST_PG" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
    rm -rf "$tmp"
}
sql() { psql "$TDS_DATABASE_URL" -qAtc "$1"; }
ok() { echo "ok: $1"; }
bad() { echo "FAIL: $1"; fails=$((fails + 1)); }
ctl() { curl -sf -X "$1" "http://127.0.0.1:$port$2" ${3:+-H 'Content-Type: application/json' -d "$3"}; }
sim_start() { # args...
    sim_stop
    rm -f "$tmp/port"
    "$sim" --listen 127.0.0.1:0 --port-file "$tmp/port" --no-limits --quiet "$@" &
    simpid=$!
    for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
    port=$(cat "$tmp/port")
    cat > "$tmp/tds.yaml" <<YAML
zoho:
  organization_id: "60000000001"
  client_id: sim-client-id
  client_secret: sim-client-secret
  refresh_token: sim-refresh-token
  accounts_url: http://127.0.0.1:$port
  books_url: http://127.0.0.1:$port/books/v3
  inventory_url: http://127.0.0.1:$port/inventory/v1
  timeout_seconds: ${SIM_TIMEOUT:-3}
  rate_limit: {per_minute: 10000, per_day: 10000000}
images:
  enabled: false
YAML
}
t() { "$drv" --config "$tmp/tds.yaml" "$@"; }
