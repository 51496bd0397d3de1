#!/usr/bin/env bash
# sync-cli.sh DRIVER SIM: `tds sync` / `tds reconcile` arguments: bad input
# gets a one-line message and exit 2 before anything is touched; without
# --wait a run is requested for the engines (pending, trigger cli) and its id
# printed; with --wait it runs here, prints statistics (JSON with --json) and
# exits 1 when the run fails (Zoho unreachable).
set -u
drv=$1 sim=$2
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=simlib.sh
. "$here/simlib.sh"
simlib_init synccli
expect() { # name want-status cmd...
    local name=$1 want=$2; shift 2
    out=$("$@" 2>&1); st=$?
    if [ "$st" = "$want" ]; then ok "$name (exit $st)"; else bad "$name: exit $st, want $want: $out"; fi
}

psql "$TDS_DATABASE_URL" -qc "SELECT 1" >/dev/null || exit 1

sim_start --seed 3 --items 300
# Migrate through the library (the driver has no migrate): a stock run on an
# empty schema must refuse cleanly first.
t="$drv --config $tmp/tds.yaml"  # a word list, beside simlib.sh's t function

# --- bad input: exit 2, one message, nothing requested ---
expect "no target" 2 $t sync
expect "unknown entity" 2 $t sync widgets
expect "unknown entity suggestion" 2 $t sync invoice
echo "$out" | grep -q "did you mean 'invoices'" && ok "suggests invoices" || bad "no suggestion: $out"
expect "item id not digits" 2 $t sync stock --items 12,abc
expect "empty item list" 2 $t sync stock --items ,
expect "batch size 0" 2 $t sync stock --batch-size 0
expect "batch size junk" 2 $t sync stock --batch-size 10x
expect "--full with --incremental" 2 $t sync invoices --full --incremental
expect "--items with --all-items" 2 $t sync stock --items 1 --all-items
expect "--with-stock-only with --all-items" 2 $t sync stock --with-stock-only --all-items
expect "--dry-run on an entity sync" 2 $t sync contacts --dry-run
expect "--full on stock" 2 $t sync stock --full
expect "unknown option" 2 $t sync stock --bogus
expect "extra argument" 2 $t sync stock extra
expect "reconcile unknown entity" 2 $t reconcile widgets
expect "reconcile unknown option" 2 $t reconcile --fast
lines=$($t sync widgets 2>&1 | head -1 | wc -l); [ "$lines" = 1 ] && ok "one-line message" || bad "message lines"

# The schema is needed for everything else.
expect "not migrated" 2 $t sync stock
python3 - "$TDS_DATABASE_URL" <<'PY' >/dev/null 2>&1 || true
PY
$t migrate || { echo "migrate failed"; exit 1; }

# --- without --wait: a pending run for the engines ---
id=$($t sync stock --with-stock-only --batch-size 500)
[[ "$id" =~ ^[0-9]+$ ]] && ok "request prints the run id" || bad "request printed '$id'"
row=$(sql "SELECT run_type, entity_type, trigger, status, config->>'with_stock_only', config->>'batch_size' FROM tds.sync_runs WHERE id = $id")
[ "$row" = "stock|items|cli|pending|true|500" ] && ok "requested run row" || bad "requested run row: $row"
id=$($t sync stock --items 1,2,3)
row=$(sql "SELECT run_type, config->'items' FROM tds.sync_runs WHERE id = $id")
[ "$row" = 'items|["1", "2", "3"]' ] && ok "--items requests an items run" || bad "items run row: $row"
id=$($t sync all --full)
row=$(sql "SELECT run_type, coalesce(entity_type, 'NULL') FROM tds.sync_runs WHERE id = $id")
[ "$row" = "full|NULL" ] && ok "sync all --full" || bad "sync all --full: $row"
id=$($t reconcile invoices)
row=$(sql "SELECT run_type, entity_type FROM tds.sync_runs WHERE id = $id")
[ "$row" = "reconcile|invoices" ] && ok "reconcile ENTITY" || bad "reconcile ENTITY: $row"
sql "DELETE FROM tds.sync_runs" >/dev/null

# --- with --wait: runs here ---
out=$($t sync stock --all-items --wait --json 2>/dev/null); st=$?
[ $st = 0 ] && ok "stock --wait exits 0" || bad "stock --wait exit $st"
echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["status"]=="completed", d; assert d["total"]==300, d; assert d["total"]==d["succeeded"]+d["unchanged"]+d["failed"], d; assert d["api_calls"]>0' \
    && ok "statistics JSON adds up" || bad "statistics JSON: $out"
row=$(sql "SELECT status, total, succeeded, owner LIKE 'cli-%', stats->>'created' FROM tds.sync_runs")
[ "$row" = "completed|300|300|t|300" ] && ok "run row completed with counters" || bad "run row: $row"
n=$(sql "SELECT count(*) FROM tds.events WHERE type IN ('tds.sync.started','tds.sync.completed')")
[ "$n" = 2 ] && ok "started and completed events" || bad "run events: $n"
out=$($t sync stock --all-items --dry-run --wait --json 2>/dev/null)
echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["succeeded"]==0 and d["unchanged"]==300, d' \
    && ok "dry run after a sync: nothing would change" || bad "dry run: $out"
# row_hash: a repeat sync skips what it stored; a row it never merged (NULL)
# is compared again and its raw refreshed without an event; an edit behind
# tds's back is left to reconciliation, which compares every row.
iid=$(sql "SELECT min(item_id) FROM zoho.items")
iid2=$(sql "SELECT max(item_id) FROM zoho.items")
nev=$(sql "SELECT count(*) FROM tds.events WHERE type LIKE 'tds.entity.%'")
sql "UPDATE zoho.items SET raw = raw || '{\"description\":\"stale\"}', row_hash = NULL WHERE item_id = '$iid'" >/dev/null
sql "UPDATE zoho.items SET name = 'Edited here' WHERE item_id = '$iid2'" >/dev/null
out=$($t sync stock --all-items --wait --json 2>/dev/null)
echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["succeeded"]==0 and d["unchanged"]==300, d' \
    && ok "repeat sync: nothing changed" || bad "repeat sync: $out"
[ "$(sql "SELECT raw->>'description' <> 'stale' AND row_hash IS NOT NULL FROM zoho.items WHERE item_id = '$iid'")" = t ] \
    && ok "a row never merged gets its raw refreshed" || bad "raw not refreshed"
[ "$(sql "SELECT count(*) FROM tds.events WHERE type LIKE 'tds.entity.%'")" = "$nev" ] \
    && ok "no event for a raw-only refresh" || bad "events written for a raw-only refresh"
[ "$(sql "SELECT name FROM zoho.items WHERE item_id = '$iid2'")" = "Edited here" ] \
    && ok "a row stored as listed is skipped by its hash" || bad "hash skip: row rewritten"
$t reconcile items --wait >/dev/null 2>&1
[ "$(sql "SELECT name <> 'Edited here' FROM zoho.items WHERE item_id = '$iid2'")" = t ] \
    && ok "reconcile repairs an edit made behind tds's back" || bad "reconcile did not repair"
# plain (non-TTY) progress and human statistics
out=$($t sync items --incremental --wait 2>&1); st=$?
[ $st = 0 ] && echo "$out" | grep -q "completed" && ok "incremental --wait human output" || bad "incremental --wait: $st $out"

# --- webhook refresh: the queue item handler re-reads the record ---
port_=$port
iid=$(sql "SELECT min(item_id) FROM zoho.items")
curl -sf -X PATCH "http://127.0.0.1:$port_/_sim/items/$iid" -H 'Content-Type: application/json' -d '{"name":"Refetched Name"}' >/dev/null
$t refetch items "$iid" >/dev/null 2>&1 && [ "$(sql "SELECT name FROM zoho.items WHERE item_id = '$iid'")" = "Refetched Name" ] \
    && ok "refetch applies the record Zoho has now" || bad "refetch did not apply"
curl -sf -X DELETE "http://127.0.0.1:$port_/_sim/items/$iid" >/dev/null
$t refetch items "$iid" >/dev/null 2>&1 && [ "$(sql "SELECT deleted_at IS NOT NULL FROM zoho.items WHERE item_id = '$iid'")" = t ] \
    && ok "refetch of a record Zoho no longer has marks it deleted" || bad "refetch 404 not marked"
n=$(sql "SELECT count(*) FROM tds.events WHERE entity_id = '$iid' AND type = 'tds.entity.delete'")
[ "$n" = 1 ] && ok "delete event" || bad "delete events: $n"

# --- images: downloaded once, checked, stored by content ---
sed -i 's/enabled: false/enabled: true\n  dir: '"${tmp//\//\\/}"'\/img/' "$tmp/tds.yaml"
# (row_hash NULL: the rows count as never merged, as after an upgrade; an
# edit behind the engine's back is otherwise left to reconciliation.)
sql "UPDATE zoho.items SET image_document_id = NULL, image_path = NULL, row_hash = NULL" >/dev/null
out=$($t sync stock --all-items --wait --json 2>/dev/null)
nimg=$(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["images"], d["image_failed"])')
want=$(sql "SELECT count(*) FROM zoho.items WHERE image_document_id IS NOT NULL AND deleted_at IS NULL")
[ "${nimg% *}" = "$want" ] && [ "$want" -gt 0 ] && ok "images stored for the $want items that have one" || bad "images: $nimg of $want"
bad_paths=$(sql "SELECT count(*) FROM zoho.items WHERE image_document_id IS NOT NULL AND deleted_at IS NULL AND (image_path IS NULL OR image_path NOT LIKE '$tmp/img/%' OR image_path !~ '/[0-9a-f]{64}[.](png|jpg|gif|bmp|webp)$')")
[ "$bad_paths" = 0 ] && ok "image_path is images.dir/<sha256>.<ext>" || bad "$bad_paths bad image paths"
f=$(sql "SELECT image_path, image_sha256 FROM zoho.items WHERE image_path IS NOT NULL LIMIT 1")
[ "$(sha256sum "${f%|*}" | cut -d' ' -f1)" = "${f#*|}" ] && ok "stored file matches its sha256" || bad "sha256 mismatch: $f"
out=$($t sync stock --all-items --wait --json 2>/dev/null)
echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["images"]==0 and d["image_failed"]==0, d' \
    && ok "unchanged images are not fetched again" || bad "images fetched again: $out"

# --- a run that fails: Zoho refuses (a wrong organization) ---
sed -i 's/organization_id: "60000000001"/organization_id: "60000000999"/' "$tmp/tds.yaml"
out=$($t sync contacts --full --wait --json 2>/dev/null); st=$?
[ $st = 1 ] && ok "failed run exits 1" || bad "failed run exit $st: $out"
row=$(sql "SELECT status, error IS NOT NULL FROM tds.sync_runs ORDER BY id DESC LIMIT 1")
[ "$row" = "failed|t" ] && ok "failed run recorded" || bad "failed run row: $row"
n=$(sql "SELECT count(*) FROM tds.events WHERE type = 'tds.sync.failed'")
[ "$n" = 1 ] && ok "sync.failed event" || bad "sync.failed events: $n"

echo "sync-cli: $fails failure(s)"
[ $fails = 0 ]
