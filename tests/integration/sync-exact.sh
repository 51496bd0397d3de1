#!/usr/bin/env bash
# sync-exact.sh DRIVER SIM: the exactness of the sync jobs against the
# simulator over HTTP and a real PostgreSQL (issue 5, "Exactness").  10,000
# items by default (SYNC_EXACT_ITEMS; 20,000 runs in about 2 minutes on 2
# loaded cores) to keep the suite fast (bench/stock-sync runs 100,000 and
# 1,000,000 through the same code and checks them the same way).
#   1. a stock sync: zoho.items and zoho.item_locations equal the truth;
#      a second one changes nothing and announces nothing
#   2. the simulator changing, creating and deleting items during a stock
#      sync: the next incremental sync + reconciliation converge exactly
#   3. faults (10% 500s, 5% 429s, timeouts, truncated JSON): still exact,
#      and total = succeeded + unchanged + failed
#   4. SIGKILL halfway, then again: exact, and no change announced twice
#   5. legacy warehouses[] shape, a record with a bad field (DLQ, run goes on)
set -u
drv=$1 sim=$2 part=${3:-all}   # part: basic (1-2), faults (3-5) or all
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=simlib.sh
. "$here/simlib.sh"
simlib_init syncexact
N=${SYNC_EXACT_ITEMS:-10000}
exact() { # name
    local out
    if out=$(python3 "$here/sync_compare.py" "$port" "$TDS_DATABASE_URL"); then
        ok "$1: exact ($(echo "$out" | tail -1))"
    else
        bad "$1: $out"
    fi
}
adds_up() { # name json
    echo "$2" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["total"]==d["succeeded"]+d["unchanged"]+d["failed"], d' \
        && ok "$1: total = succeeded + unchanged + failed" || bad "$1: statistics do not add up: $2"
}
reset_db() { sql "TRUNCATE zoho.items CASCADE; TRUNCATE tds.events, tds.sync_state, tds.dead_letter, tds.sync_queue CASCADE" >/dev/null; }

sim_start --seed 11 --items "$N"
t migrate 2>/dev/null || { echo "migrate failed"; exit 1; }

if [ "$part" != faults ]; then
# 1. a stock sync of N items
s0=$(date +%s.%N)
out=$(t sync stock --all-items --wait --json 2>/dev/null) || bad "stock sync failed: $out"
s1=$(date +%s.%N)
echo "stock sync of $N items: $(python3 -c "print(round($s1-$s0,2))") s: $(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["items_per_second"], "items/s,", d["api_calls"], "api calls")')"
exact "first stock sync"
adds_up "first stock sync" "$out"
ev=$(sql "SELECT count(*) FROM tds.events WHERE type = 'tds.entity.create'")
[ "$ev" = "$N" ] && ok "one create event per item" || bad "create events: $ev, want $N"
out=$(t sync stock --all-items --wait --json 2>/dev/null)
echo "$out" | python3 -c "import json,sys; d=json.load(sys.stdin); assert d['unchanged']==$N and d['succeeded']==0 and d['events']==0 and d['detail_calls']==0, d" \
    && ok "second stock sync: all unchanged, no events, no itemdetails" || bad "second stock sync: $out"
ev=$(sql "SELECT count(*) FROM tds.events WHERE type LIKE 'tds.entity.%'")
[ "$ev" = "$N" ] && ok "no new entity events" || bad "entity events after a no-op sync: $ev"
# an update event carries old and new stock
ctl PATCH "/_sim/items/$(sql "SELECT min(item_id) FROM zoho.items WHERE track_inventory")" '{"stock_on_hand": 4242}' >/dev/null
t sync stock --all-items --wait --json >/dev/null 2>&1
sql "SELECT data->'new'->>'stock_on_hand', data->'old'->>'stock_on_hand' IS NOT NULL FROM tds.events WHERE type = 'tds.entity.update'" | grep -q '^4242|t$' \
    && ok "update event with old and new stock" || bad "update event: $(sql "SELECT data FROM tds.events WHERE type = 'tds.entity.update'")"
exact "after one stock change"

# 2. changes during the sync, then incremental + reconcile
t sync items --incremental --wait >/dev/null 2>&1   # sets the cursor
( for i in 1 2 3 4 5 6; do ctl POST /_sim/mutate "{\"entity\":\"items\",\"update\":300,\"create\":50,\"delete\":40,\"seed\":$i}" >/dev/null; sleep 0.15; done ) &
mut=$!
out=$(t sync stock --all-items --wait --json 2>/dev/null) || bad "stock sync during changes failed: $out"
wait $mut
out=$(t sync items --incremental --wait --json 2>/dev/null) || bad "incremental failed: $out"
adds_up "incremental" "$out"
out=$(t reconcile items --wait --json 2>/dev/null) || bad "reconcile failed: $out"
echo "reconcile: $(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("missing", d["missing"], "extra", d["extra"], "stale", d["stale"])')"
exact "changes during a sync, then incremental + reconcile"
row=$(sql "SELECT extra IS NOT NULL AND extra > 0, missing IS NOT NULL FROM tds.sync_runs WHERE run_type = 'reconcile' ORDER BY id DESC LIMIT 1")
[ "$row" = "t|t" ] && ok "reconcile recorded missing/extra/stale" || bad "reconcile columns: $row"
n=$(sql "SELECT count(*) FROM zoho.items WHERE deleted_at IS NOT NULL")
[ "$n" -ge 200 ] && ok "deleted items marked, not erased ($n)" || bad "deleted marks: $n"
n=$(sql "SELECT count(*) FROM tds.alerts WHERE alert_type = 'drift' AND entity_type = 'items'")
[ "$n" = 1 ] && ok "drift alert raised" || bad "drift alert: $n"
out=$(t reconcile items --wait --json 2>/dev/null)
echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["missing"]==0 and d["extra"]==0 and d["stale"]==0, d' \
    && ok "a second reconcile finds no drift" || bad "second reconcile: $out"

fi
if [ "$part" != basic ]; then
# 3. faults
[ "$part" = faults ] && t sync stock --all-items --wait >/dev/null 2>&1
reset_db
ctl POST /_sim/config '{"faults":"500=0.1,429=0.05,timeout=0.02:4000,truncate=0.03"}' >/dev/null || bad "cannot set faults"
out=$(t sync stock --all-items --wait --json 2>/dev/null) || bad "stock sync under faults failed: $out"
adds_up "faults" "$out"
ctl POST /_sim/config '{"faults":""}' >/dev/null
exact "stock sync under faults"

# 4. SIGKILL halfway, then again
reset_db
# the driver itself in the background (a function would leave it running past the kill)
"$drv" --config "$tmp/tds.yaml" sync stock --all-items --batch-size 1000 --wait >/dev/null 2>&1 &
pid=$!
for _ in $(seq 200); do
    n=$(sql "SELECT count(*) FROM zoho.items"); [ "$n" -ge $((N / 2)) ] && break; sleep 0.05
done
kill -9 $pid; wait $pid 2>/dev/null
n=$(sql "SELECT count(*) FROM zoho.items")
[ "$n" -lt "$N" ] && ok "killed halfway ($n of $N items written)" || echo "note: the sync finished before the kill ($n)"
ctl POST /_sim/mutate '{"entity":"items","update":200,"seed":99}' >/dev/null
out=$(t sync stock --all-items --wait --json 2>/dev/null) || bad "stock sync after the kill failed: $out"
exact "after SIGKILL and a second run"
dup=$(sql "SELECT count(*) FROM (SELECT entity_id, type, data->>'last_modified_time' FROM tds.events WHERE type LIKE 'tds.entity.%' GROUP BY 1, 2, 3 HAVING count(*) > 1) d")
[ "$dup" = 0 ] && ok "no change announced twice" || bad "$dup changes announced twice"
cr=$(sql "SELECT count(DISTINCT entity_id) = count(*) FROM tds.events WHERE type = 'tds.entity.create'")
[ "$cr" = t ] && ok "one create per item across the kill" || bad "duplicate create events"

# 5. legacy warehouses and a bad record
sim_start --seed 12 --items 3000 --legacy-warehouses
reset_db
bad_id=$(ctl GET /_sim/truth/items | head -1 | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["item_id"])')
ctl PATCH "/_sim/items/$bad_id" '{"rate": "twelve"}' >/dev/null || echo "note: the simulator refused a bad rate"
out=$(t sync stock --all-items --wait --json 2>/dev/null); st=$?
# the run goes on, but does not report plain success (issue 17 point 4)
[ $st = 1 ] && echo "$out" | python3 -c 'import json,sys; assert json.load(sys.stdin)["status"]=="completed_with_errors"' \
    && ok "a bad record does not stop the run (completed_with_errors, exit 1)" || bad "run with a bad record: exit $st $out"
echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["failed"]==1 and d["total"]==3000, d' \
    && ok "the bad record is counted failed" || bad "bad record stats: $out"
adds_up "bad record" "$out"
row=$(sql "SELECT zoho_id, entity_type, payload->>'item_id', failure_reason LIKE '%rate%' FROM tds.dead_letter")
[ "$row" = "$bad_id|items|$bad_id|t" ] && ok "the bad record is in the DLQ with its payload" || bad "DLQ row: $row"
ctl PATCH "/_sim/items/$bad_id" '{"rate": 12}' >/dev/null
t sync stock --all-items --wait >/dev/null 2>&1
exact "legacy warehouses[] shape"
fi

echo "sync-exact: $fails failure(s)"
[ $fails = 0 ]
