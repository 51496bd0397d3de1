#!/usr/bin/env bash
# budget.sh TDS: the budget planner and the cost preview (issue 19) against
# the private cluster: `tds budget` projects the day from the schedule and the
# organization's size (10,000 items: a repeat stock sync every 15 minutes
# costs ~5,000 calls a day, over a Standard plan's 2,000), then from what
# runs of each kind cost lately; `tds sync --estimate` states a manual
# action's calls and share of what is left today, asking nothing of Zoho.
set -u
tds=$1 sim=$2
# shellcheck source=simlib.sh
. "$(dirname "$0")/simlib.sh" # sim_start, sim_stop, ctl
[ -n "${TDS_TEST_PG:-}" ] || { echo "TDS_TEST_PG not set: run through tests/run"; exit 77; }
db=t_budget_$$
tmp=$(mktemp -d)
psql "$TDS_TEST_PG" -qc "CREATE DATABASE $db" || exit 1
simpid=
trap 'sim_stop; psql "$TDS_TEST_PG" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null; rm -rf "$tmp"' EXIT
export TDS_DATABASE_URL="$TDS_TEST_PG dbname=$db" XDG_CONFIG_HOME=/nonexistent
unset TDS_CONFIG
sql() { psql "$TDS_DATABASE_URL" -qAtc "$1"; }
fails=0
ok() { echo "ok: $1"; }
bad() { echo "FAIL: $1"; fails=$((fails + 1)); }
jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
cat > "$tmp/tds.yaml" <<YAML
zoho:
  organization_id: "60000000001"
  client_id: x
  client_secret: budget-test-secret
  refresh_token: budget-test-refresh
  accounts_url: http://127.0.0.1:9
  plan: standard
schedule:
  enabled: true
  stock_sync: "*/15 * * * *"
  incremental_sync: ""
  full_sync: "0 2 * * *"
  reconcile: "0 3 * * *"
YAML
t() { "$tds" --config "$tmp/tds.yaml" "$@"; }
t migrate >/dev/null 2>&1 || { echo "migrate failed"; exit 1; }
sql "INSERT INTO zoho.items (item_id, name, raw) SELECT (4000000000 + g)::text, 'item ' || g, '{}' FROM generate_series(1, 10000) g" >/dev/null || bad "cannot add items"

# 1. The model, before any run: 10,000 items = 50 pages + 2 /itemdetails.
out=$(t budget --json); st=$?
read -r limit reserve perrun perday over basis < <(echo "$out" | jq_ '" ".join(str(x) for x in [d["limit"], d["reserve"], [j for j in d["jobs"] if j["job"] == "stock_sync"][0]["calls_per_run"], [j for j in d["jobs"] if j["job"] == "stock_sync"][0]["calls_per_day"], d["over_budget"], [j for j in d["jobs"] if j["job"] == "stock_sync"][0]["basis"].split(":")[0]])')
if [ "$limit" = 2000 ] && [ "$reserve" = 200 ] && [ "$perrun" = 52 ] && [ "$perday" = 4992 ] &&
   [ "$over" = True ] && [ "$basis" = model ] && [ $st = 3 ]; then
    ok "model: stock 52 calls a run, 4,992 a day on 96 slots: over the 2,000 of Standard (exit 3)"
else
    bad "model: exit $st: $out"
fi
# 2. Observed: the median of the last completed stock runs wins over the model.
sql "INSERT INTO tds.sync_runs (run_type, trigger, status, started_at, finished_at, api_calls)
     SELECT 'stock', 'schedule', 'completed', now() - interval '1 hour', now() - interval '1 hour', c
     FROM unnest('{3,4,5,6,90}'::int[]) c"
out=$(t budget --json); st=$?
read -r perrun basis < <(echo "$out" | jq_ '" ".join(str(x) for x in [[j for j in d["jobs"] if j["job"] == "stock_sync"][0]["calls_per_run"], [j for j in d["jobs"] if j["job"] == "stock_sync"][0]["basis"]])')
[ "$perrun" = 5 ] && echo "$basis" | grep -q "median of the last 5 runs" &&
    ok "observed: the median of the last 5 stock runs (5 calls) is the estimate" ||
    bad "observed: $out"
# Zoho's own count (tds.zoho_day) is stricter: its limit and its used win.
sql "INSERT INTO tds.zoho_day (org, day_limit, remaining, reset_at)
     VALUES ('60000000001', 1500, 1000, now() + interval '1 hour')" >/dev/null
out=$(t budget --json)
v=$(echo "$out" | jq_ '" ".join(str(d[k]) for k in ("limit", "used", "counted", "zoho_used"))')
[ "$v" = "1500 500 0 500" ] && ok "Zoho's figures win where stricter: limit 1,500, used 500 (tds counted 0)" ||
    bad "zoho_day: $v"
sql "DELETE FROM tds.zoho_day" >/dev/null
out=$(t budget); st=$?
echo "$out" | grep -qE '^stock_sync +high' && echo "$out" | grep -qE '^reconcile +low' &&
    ok "table: one line per job with its priority" || bad "table: $out"
# 3. The cost preview: nothing asked of Zoho (its URL is a closed port).
sql "INSERT INTO tds.api_usage (minute, instance, endpoint, status, calls)
     VALUES (date_trunc('minute', now()), 'x', 'GET /items', 200, 1900)"
out=$(t sync stock --estimate 2>&1); st=$?
[ $st = 0 ] && [ "$out" = "about 5 Zoho calls (5% of the 100 left today)" ] &&
    ok "sync stock --estimate: $out" || bad "sync stock --estimate: exit $st: $out"
out=$(t reconcile items --estimate --json 2>&1); st=$?
n=$(echo "$out" | jq_ 'd["estimated_calls"]')
[ $st = 0 ] && [ "$n" = 50 ] && ok "reconcile items --estimate: 50 calls (model: 50 pages)" ||
    bad "reconcile --estimate: exit $st: $out"
out=$(t sync stock --items 1,2,3 --estimate 2>&1)
[ "$out" = "about 1 Zoho call (1% of the 100 left today)" ] && ok "items: one /itemdetails call" ||
    bad "items estimate: $out"
# A dead-letter retry: an item that asks for its record costs a GET.
sql "INSERT INTO tds.dead_letter (entity_type, zoho_id, operation, payload, failure_reason, attempts)
     VALUES ('items', '1', 'upsert', '{\"refetch\": true}', 'HTTP 500', 5),
            ('items', '2', 'upsert', NULL, 'HTTP 500', 5),
            ('items', '3', 'upsert', '{\"item_id\": \"3\"}', 'HTTP 500', 5)" >/dev/null
out=$(t dlq retry --all --estimate 2>&1)
[ "$out" = "3 items: about 2 Zoho calls (2% of the 100 left today)" ] &&
    [ "$(sql "SELECT count(*) FROM tds.dead_letter WHERE NOT resolved")" = 3 ] &&
    ok "dlq retry --all --estimate: $out (nothing retried)" || bad "dlq estimate: $out"
out=$(t dlq retry --all 2>&1 >/dev/null)
echo "$out" | grep -q "tds: dlq retry of 3 items: about 2 Zoho calls" &&
    ok "a dlq retry states its cost" || bad "dlq retry preview: $out"
# 4. A request states its cost before it is made.
out=$(t sync stock 2>&1 >/dev/null)
echo "$out" | grep -q "tds: stock items: about 5 Zoho calls" && ok "a request states its cost on stderr" ||
    bad "request preview: $out"
# 5. No secret in any output.
all=$(t budget 2>&1; t budget --json 2>&1; t sync stock --estimate 2>&1)
echo "$all" | grep -q "budget-test-secret\|budget-test-refresh" && bad "a secret in the output" ||
    ok "no secret in the output"
# Every answer of Zoho's daily window leaves its figures in tds.zoho_day.
sim_start --items 50
ctl POST /_sim/config '{"rate_day": 5000}' >/dev/null
"$tds" --config "$tmp/tds.yaml" sync stock --all-items --wait >/dev/null 2>&1 ||
    bad "sync against the simulator failed"
v=$(sql "SELECT day_limit, remaining < 5000, reset_at > now() + interval '23 hours' FROM tds.zoho_day
         WHERE org = '60000000001'")
[ "$v" = "5000|t|t" ] && ok "a sync leaves Zoho's daily figures in tds.zoho_day" ||
    bad "tds.zoho_day after a sync: '$v'"
echo "budget: $fails failure(s)"
[ $fails = 0 ]
