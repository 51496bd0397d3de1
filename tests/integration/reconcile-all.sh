#!/usr/bin/env bash
# reconcile-all.sh DRIVER SIM: `tds reconcile ENTITY` for every entity with
# data in it, against the simulator over HTTP and a real PostgreSQL (issue 16
# point 1: every entity but items crashed in fetch_listing, freeing row
# metadata that only a classified page keeps).
set -u
drv=$1 sim=$2
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=simlib.sh
. "$here/simlib.sh"
simlib_init reconcileall
SIM_TIMEOUT=5 sim_start --seed 5 --items 300
t migrate 2>/dev/null || { echo "migrate failed"; exit 1; }
t sync all --full --wait >"$tmp/sync.out" 2>&1 || bad "full sync failed: $(tail -3 "$tmp/sync.out")"
for e in items contacts salesorders invoices customerpayments creditnotes bills vendorpayments \
         users locations inventoryadjustments pricebooks purchaseorders; do
    n=$(sql "SELECT count(*) FROM zoho.$e") || { bad "$e: no table"; continue; }
    [ "$n" -gt 0 ] || { bad "$e: no data after the full sync"; continue; }
    out=$(t reconcile "$e" --wait --json 2>"$tmp/err"); st=$?
    if [ $st = 0 ]; then
        ok "reconcile $e ($n records): $(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("status", d.get("status"), "missing", d["missing"], "extra", d["extra"], "stale", d["stale"])')"
    else
        bad "reconcile $e: exit $st $out"
    fi
done

# Extras verified in batches (issue 16 point 13): 500 contacts here that Zoho
# never had cost a second listing of contacts, not 500 GETs; all are marked
# deleted, none erased.
sql "INSERT INTO zoho.contacts SELECT (jsonb_populate_record(NULL::zoho.contacts, to_jsonb(c)
       || jsonb_build_object('contact_id', (9000000000000000000 - g)::text))).*
     FROM generate_series(1, 500) g, LATERAL (SELECT * FROM zoho.contacts LIMIT 1) c" ||
    bad "cannot add extras"
nc=$(sql "SELECT count(*) FROM zoho.contacts WHERE deleted_at IS NULL")
out=$(t reconcile contacts --wait --json 2>"$tmp/err") || bad "reconcile with extras: $(tail -3 "$tmp/err")"
read -r extra calls < <(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["extra"], d["api_calls"])')
pages=$(( (nc - 500) / 200 + 1 ))
if [ "$extra" = 500 ] && [ "$calls" -le $((2 * pages + 2)) ]; then
    ok "500 extras verified with $calls calls (listing pages: $pages)"
else
    bad "500 extras: extra $extra, $calls calls for $pages listing pages (a GET each before)"
fi
gone=$(sql "SELECT count(*) FROM zoho.contacts WHERE contact_id::numeric > 8999999999999990000 AND deleted_at IS NOT NULL")
[ "$gone" = 500 ] && ok "the 500 extras are marked deleted" || bad "extras marked deleted: $gone of 500"

# The per-run call cap stops the run, failed, with a clear message.
cat >> "$tmp/tds.yaml" <<YAML
reconcile:
  max_calls: 4
YAML
out=$(t reconcile --wait --json 2>"$tmp/err"); st=$?
read -r status calls < <(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["status"], d["api_calls"])')
if [ $st != 0 ] && [ "$status" = failed ] && [ "$calls" -le 8 ] &&
   echo "$out" | grep -q 'cap of 4 Zoho calls (reconcile.max_calls)'; then
    ok "the call cap stopped the run after $calls calls: $(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["error"])')"
else
    bad "call cap: exit $st, status $status, $calls calls: $out $(tail -3 "$tmp/err")"
fi
echo "reconcile-all: $fails failure(s)"
[ $fails = 0 ]
