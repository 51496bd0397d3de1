#!/usr/bin/env bash
# zoho-shapes.sh DRIVER SIM: Zoho's real response shapes end to end (issue
# 17), through `tds sync --wait` against the simulator and a real
# PostgreSQL.  One section per point:
#   4. times as Zoho writes them: a date-only created_time is stored (midnight
#      in the org's offset), an unparseable one keeps the record (NULL), a
#      dead-lettered record carries its real id; such a run exits 1 with
#      status completed_with_errors and raises an alert
#   5. numeric (unquoted) ids (--shape numeric-ids): items and every location
#      exact; a bad record's dead letter carries its id
#   6. every stock figure (--shape stock-figures): for sale and committed per
#      location and item; no location rows for an item without the key
#   7. listing: Status.All on full syncs (--shape hide-inactive); Books'
#      page_context array and pages of 10 (books-pc-array, small-pages)
#      followed and counted; a reconcile-deleted item loses its locations
#   9. purchase orders synced like the other transaction entities
set -u
drv=$1 sim=$2
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=simlib.sh
. "$here/simlib.sh"
simlib_init zohoshapes
jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
reset_db() { sql "TRUNCATE zoho.items, zoho.contacts, zoho.purchaseorders CASCADE; TRUNCATE tds.events, tds.sync_state, tds.dead_letter, tds.sync_queue, tds.alerts CASCADE" >/dev/null; }
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
    [ "$v" = "completed_with_errors|t" ] && ok "$how: run row completed_with_errors, the count in error" || bad "$how: run row: $v"
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

# ---- 7. listing semantics ----
# Zoho's default filter hides inactive records: full syncs ask for Status.All
sim_start --seed 24 --items 300 --count contacts=200 --shape hide-inactive,books-pc-array
reset_db
for e in items contacts; do
    t sync $e --full --wait >/dev/null 2>&1 || bad "$e: full sync failed"
    want=$(ctl GET "/_sim/truth/$e" | wc -l)
    inact=$(ctl GET "/_sim/truth/$e" | grep -c '"status":"inactive"')
    n=$(sql "SELECT count(*) FROM zoho.$e WHERE deleted_at IS NULL")
    [ "$n" = "$want" ] && [ "$inact" -gt 0 ] && ok "$e: full sync stores the $inact inactive ones too ($n of $want)" \
        || bad "$e: full sync stored $n of $want ($inact inactive)"
done
# Books' page_context as an array is read, and paging follows has_more_page:
# pages of 10 rows where 200 were asked for
sim_start --seed 24 --count contacts=200 --shape books-pc-array,small-pages
reset_db
out=$(t sync contacts --full --wait --json 2>/dev/null)
v=$(echo "$out" | jq_ 'd["pages"], d["total"]')
n=$(sql "SELECT count(*) FROM zoho.contacts")
[ "$v" = "20 200" ] && [ "$n" = 200 ] && ok "Books page_context array, pages of 10: 20 pages counted, 200 contacts" \
    || bad "Books page_context array, pages of 10: pages, total = $v; stored $n"
# an item reconciliation marks deleted loses its locations
sim_start --seed 25 --items 100
reset_db
t sync stock --all-items --wait >/dev/null 2>&1
gone=$(sql "SELECT item_id FROM zoho.item_locations GROUP BY 1 ORDER BY 1 LIMIT 1")
ctl DELETE "/_sim/items/$gone" >/dev/null
t reconcile items --wait >/dev/null 2>&1
v=$(sql "SELECT (SELECT deleted_at IS NOT NULL FROM zoho.items WHERE item_id = '$gone'), (SELECT count(*) FROM zoho.item_locations WHERE item_id = '$gone')")
[ "$v" = "t|0" ] && ok "reconcile-deleted item has no location rows left" || bad "reconcile-deleted item: deleted, locations = $v"

# a record is never replaced by an older version of itself: a refetch that
# brings an older copy (after a webhook wrote a newer one) leaves the item
# and its locations alone
sim_start --seed 26 --items 50
reset_db
t sync stock --all-items --wait >/dev/null 2>&1
x=$(sql "SELECT item_id FROM zoho.item_locations GROUP BY 1 ORDER BY 1 LIMIT 1")
loc=$(sql "SELECT min(location_id) FROM zoho.item_locations WHERE item_id = '$x'")
before=$(sql "SELECT i.last_modified_time, l.stock_on_hand FROM zoho.items i JOIN zoho.item_locations l USING (item_id) WHERE item_id = '$x' AND location_id = '$loc'")
old=$(sql "SELECT to_char(last_modified_time AT TIME ZONE 'UTC' - interval '1 day', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM zoho.items WHERE item_id = '$x'")
ctl PATCH "/_sim/items/$x" "{\"last_modified_time\": \"$old\", \"locations\": [{\"location_id\": \"$loc\", \"location_stock_on_hand\": 9999}]}" >/dev/null \
    || bad "older copy: the simulator refused the patch"
t sync stock --items "$x" --wait >/dev/null 2>&1
after=$(sql "SELECT i.last_modified_time, l.stock_on_hand FROM zoho.items i JOIN zoho.item_locations l USING (item_id) WHERE item_id = '$x' AND location_id = '$loc'")
[ -n "$before" ] && [ "$after" = "$before" ] && ok "an older refetched copy changes neither the item nor its locations" \
    || bad "older refetched copy: before '$before', after '$after'"

# ---- 9. purchase orders, like the other transaction entities ----
sim_start --seed 23 --items 20
reset_db
out=$(t sync purchaseorders --full --wait --json 2>&1); st=$?
[ $st = 0 ] && ok "purchaseorders: full sync exit 0" || bad "purchaseorders: exit $st: $out"
ctl GET /_sim/truth/purchaseorders > "$tmp/po.ndjson"
sql "SELECT purchaseorder_id, purchaseorder_number, vendor_id, status, date, delivery_date, total
     FROM zoho.purchaseorders WHERE deleted_at IS NULL" > "$tmp/po.txt"
if v=$(python3 - "$tmp/po.ndjson" "$tmp/po.txt" <<'PY'
import json, sys
from decimal import Decimal
want = {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    want[d["purchaseorder_id"]] = (d["purchaseorder_number"], d["vendor_id"], d["status"], d["date"],
                                   d["delivery_date"], Decimal(str(d["total"])).normalize())
got = {}
for l in open(sys.argv[2]).read().splitlines():
    r = l.split("|")
    got[r[0]] = (r[1], r[2], r[3], r[4], r[5], Decimal(r[6]).normalize())
bad = [k for k in want if got.get(k) != want[k]] + [k for k in got if k not in want]
print(f"{len(want)} in Zoho, {len(got)} here, {len(bad)} wrong: {bad[:2]}")
sys.exit(1 if bad or not want else 0)
PY
); then ok "purchaseorders: stored exactly ($v)"; else bad "purchaseorders: $v"; fi
n=$(sql "SELECT count(*) FROM tds.events WHERE type = 'tds.entity.create' AND entity_type = 'purchaseorders'")
[ "$n" -gt 0 ] && ok "purchaseorders: $n create events" || bad "purchaseorders: no events"

echo "zoho-shapes: $fails failure(s)"
[ $fails = 0 ]
