#!/usr/bin/env bash
# zoho-shapes.sh DRIVER SIM: Zoho's real response shapes end to end (issue
# 17), through `tds sync --wait` against the simulator and a real
# PostgreSQL.  One section per point:
#   4. times as Zoho writes them: a date-only created_time is stored (midnight
#      in the org's offset), an unparseable one keeps the record (NULL), a
#      dead-lettered record carries its real id; such a run exits 1 with
#      status completed_with_errors and raises an alert
set -u
drv=$1 sim=$2
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=simlib.sh
. "$here/simlib.sh"
simlib_init zohoshapes
jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
reset_db() { sql "TRUNCATE zoho.items CASCADE; TRUNCATE tds.events, tds.sync_state, tds.dead_letter, tds.sync_queue, tds.alerts CASCADE" >/dev/null; }
nth_item() { ctl GET /_sim/truth/items | sed -n "${1}p" | jq_ 'd["item_id"]'; }

sim_start --seed 21 --items 300
t migrate 2>/dev/null || { echo "migrate failed"; exit 1; }

# ---- 4. times as Zoho writes them ----
a=$(nth_item 3) b=$(nth_item 5) c=$(nth_item 7)
ctl PATCH "/_sim/items/$a" '{"created_time": "2013-01-24", "last_modified_time": "2026-01-24T10:15:00+0530"}' >/dev/null
ctl PATCH "/_sim/items/$b" '{"created_time": "24/01/2013 10:15 AM"}' >/dev/null
ctl PATCH "/_sim/items/$c" '{"rate": "twelve"}' >/dev/null
for how in "stock --all-items" "items --full"; do
    reset_db
    # shellcheck disable=SC2086
    out=$(t sync $how --wait --json 2>/dev/null); st=$?
    v=$(sql "SELECT created_time AT TIME ZONE 'UTC' FROM zoho.items WHERE item_id = '$a'")
    [ "$v" = "2013-01-23 18:30:00" ] && ok "$how: date-only created_time stored as midnight +0530" \
        || bad "$how: date-only created_time: '$v' (dead letters: $(sql "SELECT zoho_id, failure_reason FROM tds.dead_letter"))"
    v=$(sql "SELECT coalesce(created_time::text, 'NULL') FROM zoho.items WHERE item_id = '$b'")
    [ "$v" = NULL ] && ok "$how: unparseable created_time: record kept, time NULL" || bad "$how: unparseable time: '$v'"
    v=$(sql "SELECT string_agg(zoho_id, ',') FROM tds.dead_letter")
    [ "$v" = "$c" ] && ok "$how: only the bad record is dead-lettered, with its id" || bad "$how: dead letters: $v"
    [ $st = 1 ] && ok "$how: exit 1 when records were dead-lettered" || bad "$how: exit $st"
    v=$(echo "$out" | jq_ 'd["status"], d["failed"]' 2>&1)
    [ "$v" = "completed_with_errors 1" ] && ok "$how: status completed_with_errors, failed 1" || bad "$how: status: $v"
    v=$(sql "SELECT status, error LIKE '1 record dead-lettered%' FROM tds.sync_runs ORDER BY id DESC LIMIT 1")
    [ "$v" = "completed|t" ] && ok "$how: run row completed with the count in error" || bad "$how: run row: $v"
    v=$(sql "SELECT count(*) FROM tds.alerts WHERE alert_type = 'sync_dead_letters' AND resolved_at IS NULL")
    [ "$v" = 1 ] && ok "$how: alert raised" || bad "$how: alerts: $v"
done
# ---- 5. numbers and ids exactly ----
# numeric (unquoted) ids, as in Zoho's documented samples: lists and
# /itemdetails; every location kept
sim_start --seed 21 --items 200 --shape numeric-ids
reset_db
ctl GET "/_sim/truth/items" | head -1 | grep -q '"item_id":[0-9]' && ok "the simulator writes numeric ids" || bad "numeric-ids shape not served"
out=$(t sync stock --all-items --wait --json 2>&1); st=$?
[ $st = 0 ] && ok "numeric ids: stock sync exit 0" || bad "numeric ids: stock sync exit $st: $out"
if cmp=$(python3 "$here/sync_compare.py" "$port" "$TDS_DATABASE_URL"); then
    ok "numeric ids: items and every location exact ($(echo "$cmp" | tail -1))"
else
    bad "numeric ids: $cmp"
fi
v=$(sql "SELECT count(*) FROM zoho.item_locations")
[ "$v" -gt 0 ] && ok "numeric ids: $v locations stored" || bad "numeric ids: no locations stored"
# a numeric id on a bad record: the dead letter carries it, never "unknown"
c=$(nth_item 4)
ctl PATCH "/_sim/items/$c" '{"rate": "twelve"}' >/dev/null
t sync items --full --wait --json >/dev/null 2>&1
v=$(sql "SELECT string_agg(zoho_id, ',') FROM tds.dead_letter")
[ "$v" = "$c" ] && ok "numeric-id record dead-lettered with its id" || bad "numeric id dead letter: '$v', want $c"

# ---- 6. every documented stock figure ----
sim_start --seed 22 --items 200 --shape stock-figures
reset_db
t sync stock --all-items --wait >/dev/null 2>&1 || bad "stock-figures: stock sync failed"
ctl GET /_sim/truth/items > "$tmp/truth.ndjson"
sql "SELECT item_id || '/' || location_id, available_for_sale_stock, committed_stock,
            actual_available_for_sale_stock, actual_committed_stock FROM zoho.item_locations" > "$tmp/locs.txt"
sql "SELECT item_id, available_for_sale_stock, committed_stock FROM zoho.items" > "$tmp/items.txt"
if v=$(python3 - "$tmp/truth.ndjson" "$tmp/locs.txt" "$tmp/items.txt" <<'PY'
import json, sys
from decimal import Decimal
def n(v): return None if v in (None, "") else Decimal(str(v)).normalize()
want_l, want_i, untracked = {}, {}, set()
for line in open(sys.argv[1]):
    d = json.loads(line)
    i = str(d["item_id"])
    want_i[i] = (n(d.get("available_for_sale_stock")), n(d.get("committed_stock")))
    if not d.get("locations"):
        untracked.add(i)
    for l in d.get("locations") or []:
        want_l[i + "/" + str(l["location_id"])] = tuple(n(l.get("location_" + k)) for k in (
            "available_for_sale_stock", "committed_stock", "actual_available_for_sale_stock",
            "actual_committed_stock"))
got_l = {r[0]: tuple(n(x) for x in r[1:]) for r in (l.split("|") for l in open(sys.argv[2]).read().split("\n") if l)}
got_i = {r[0]: tuple(n(x) for x in r[1:]) for r in (l.split("|") for l in open(sys.argv[3]).read().split("\n") if l)}
bad = [k for k in want_l if got_l.get(k) != want_l[k]] + [k for k in got_l if k not in want_l]
bad += [k for k in want_i if got_i.get(k) != want_i[k]]
assert all(v[0] is not None for v in want_l.values()), "the shape has no figures"
print(f"{len(want_l)} locations, {len(want_i)} items, {len(untracked)} without locations, {len(bad)} wrong: {bad[:3]}")
sys.exit(1 if bad else 0)
PY
); then ok "stock-figures: for sale and committed per location and item ($v)"; else bad "stock-figures: $v"; fi

echo "zoho-shapes: $fails failure(s)"
[ $fails = 0 ]
