#!/usr/bin/env python3
"""sync_compare.py SIM_PORT CONNINFO: compares zoho.items and
zoho.item_locations (live rows) with the simulator's truth
(/_sim/truth/items): ids, names, stock totals, per-location stock (both the
locations[] and warehouses[] shapes).  Prints the differences (at most 10)
and exits 1 when there is any, 0 when the database is exact."""
import json, subprocess, sys, urllib.request
from decimal import Decimal

port, conn = sys.argv[1], sys.argv[2]

def num(v):
    if v is None or v == "":
        return None
    return Decimal(str(v)).normalize()

truth, tlocs = {}, {}
with urllib.request.urlopen(f"http://127.0.0.1:{port}/_sim/truth/items") as r:
    for line in r:
        if not line.strip():
            continue
        d = json.loads(line)
        i = str(d["item_id"])  # a number in the numeric-ids shape
        truth[i] = (d.get("name") or None, num(d.get("stock_on_hand")),
                    num(d.get("available_stock")), num(d.get("actual_available_stock")))
        locs = d.get("locations")
        legacy = locs is None
        if legacy:
            locs = d.get("warehouses") or []
        p = "warehouse_" if legacy else "location_"
        for l in locs:
            lid = str(l.get("warehouse_id" if legacy else "location_id"))
            tlocs[(i, lid)] = (l.get(p + "name") or None, num(l.get(p + "stock_on_hand")),
                               num(l.get(p + "available_stock")),
                               num(l.get(p + "actual_available_stock")))

def rows(sql):
    out = subprocess.run(["psql", conn, "-qAt", "-F", "\t", "-c", sql], check=True,
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        yield [None if f == "\\N" else f for f in line.split("\t")]

db = {}
for r in rows("COPY (SELECT item_id, name, stock_on_hand, available_stock, actual_available_stock"
              " FROM zoho.items WHERE deleted_at IS NULL) TO STDOUT"):
    db[r[0]] = (r[1], num(r[2]), num(r[3]), num(r[4]))
dlocs = {}
for r in rows("COPY (SELECT l.item_id, l.location_id, l.location_name, l.stock_on_hand,"
              " l.available_stock, l.actual_available_stock FROM zoho.item_locations l"
              " JOIN zoho.items i USING (item_id) WHERE i.deleted_at IS NULL) TO STDOUT"):
    dlocs[(r[0], r[1])] = (r[2], num(r[3]), num(r[4]), num(r[5]))

diffs = []
for i in truth.keys() - db.keys():
    diffs.append(f"missing item {i}")
for i in db.keys() - truth.keys():
    diffs.append(f"extra item {i}")
for i in truth.keys() & db.keys():
    if truth[i] != db[i]:
        diffs.append(f"item {i}: zoho {truth[i]} db {db[i]}")
for k in tlocs.keys() - dlocs.keys():
    diffs.append(f"missing location {k}")
for k in dlocs.keys() - tlocs.keys():
    diffs.append(f"extra location {k}")
for k in tlocs.keys() & dlocs.keys():
    if tlocs[k] != dlocs[k]:
        diffs.append(f"location {k}: zoho {tlocs[k]} db {dlocs[k]}")
for d in sorted(diffs)[:10]:
    print("  " + d)
print(f"compare: {len(truth)} items, {len(tlocs)} locations in Zoho; {len(db)} items,"
      f" {len(dlocs)} locations here; {len(diffs)} difference(s)")
sys.exit(1 if diffs else 0)
