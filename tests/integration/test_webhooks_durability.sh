#!/usr/bin/env bash
# test_webhooks_durability.sh HTTP_PROC: every 202 is durable.  On its own
# throwaway cluster (so the database can be stopped): 1,000 signed webhooks
# from 8 concurrent clients, SIGKILL of the listener right after the last
# 202, a new listener: all 1,000 are in tds.inbox, each as one claimable
# queue item.  Then the database goes away: /health says down (503) and
# webhooks get 503 (nothing lost, Zoho retries); it comes back: the listener
# reconnects and accepts again.
set -euo pipefail
proc=$1
root=${TDS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
[ -n "${TDS_TEST_PG:-}" ] || { echo "TDS_TEST_PG is not set: run through tests/run"; exit 77; }

. "$root/tests/harness/pgcluster.sh"
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; pgc_stop; rm -f "${out:-}"; }
trap cleanup EXIT
pgc_start >/dev/null
export TDS_DATABASE_URL=$TDS_TEST_PG
export TDS_HTTP_SECRET=DurableSecret12345 TDS_HTTP_HMAC=DurableHmacKey98765
out=$(mktemp)

start() {
    TDS_HTTP_MIGRATE=${1:-0} "$proc" >"$out" 2>>"$out.err" &
    pid=$!
    for _ in $(seq 100); do
        grep -q '^port ' "$out" && break
        sleep 0.1
    done
    port=$(awk '/^port /{print $2}' "$out")
    [ -n "$port" ] || { echo "listener did not start"; cat "$out.err"; exit 1; }
}
psql_() { "$PGC_BIN/psql" "$TDS_TEST_PG" -XAtqc "$1"; }

start 1
python3 - "$port" <<'PY'
import hashlib, hmac, http.client, json, os, sys, threading
port = int(sys.argv[1])
secret, key = os.environ["TDS_HTTP_SECRET"], os.environ["TDS_HTTP_HMAC"].encode()
errors = []
def worker(k):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    for i in range(k, 1000, 8):
        body = json.dumps({"item": {"item_id": str(100000 + i), "name": "n%d" % i,
                                    "last_modified_time": "2025-03-01T10:00:00+0530"}}).encode()
        sig = hmac.new(key, body, hashlib.sha256).hexdigest()
        c.request("POST", "/webhooks/zoho/items", body,
                  {"Content-Type": "application/json", "X-TDS-Webhook-Secret": secret,
                   "X-Zoho-Webhook-Signature": sig})
        r = c.getresponse(); r.read()
        if r.status != 202:
            errors.append(r.status)
ts = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
if errors:
    sys.exit("non-202 answers: %r" % errors[:5])
PY
kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=
start 0
n=$(psql_ "SELECT count(*) FROM tds.inbox WHERE status = 'queued' AND http_status = 202")
q=$(psql_ "SELECT count(*) FROM tds.sync_queue WHERE status = 'pending' AND priority = 9
           AND (payload->>'refetch')::bool AND inbox_id IS NOT NULL")
claim=$(psql_ "SELECT count(*) FROM (SELECT id FROM tds.sync_queue WHERE status IN ('pending','retry')
               ORDER BY priority DESC, id FOR UPDATE SKIP LOCKED) s")
echo "after SIGKILL: inbox $n, queue items $q, claimable $claim"
[ "$n" = 1000 ] && [ "$q" = 1000 ] && [ "$claim" = 1000 ] || { echo "FAIL: lost webhooks"; exit 1; }

# The database goes away.
body='{"item":{"item_id":"777"}}'
sig=$(printf %s "$body" | openssl dgst -sha256 -hmac "$TDS_HTTP_HMAC" -r | cut -d' ' -f1)
send() {
    curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/webhooks/zoho/items" \
        -H 'Content-Type: application/json' -H "X-TDS-Webhook-Secret: $TDS_HTTP_SECRET" \
        -H "X-Zoho-Webhook-Signature: $sig" --data-binary "$body"
}
h=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")
echo "health with the database up and no engine: $h"
[ "$h" = 503 ] || { echo "FAIL: /health without engines should be 503 (down)"; exit 1; }
psql_ "INSERT INTO tds.engines (instance, host, pid, version, state) VALUES ('e', 'h', 1, 't', 'running')"
h=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")
[ "$h" = 200 ] || { echo "FAIL: /health with a live engine: $h"; exit 1; }
pgc_as_owner "$PGC_BIN/pg_ctl" -D "$PGC_DIR/data" -m immediate -w stop >/dev/null
h=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")
w=$(send)
echo "database stopped: /health $h, webhook $w"
[ "$h" = 503 ] && [ "$w" = 503 ] || { echo "FAIL: expected 503s with the database down"; exit 1; }
pgc_as_owner "$PGC_BIN/pg_ctl" -D "$PGC_DIR/data" -l "$PGC_DIR/server.log" -w -t 60 start >/dev/null
w=
for _ in $(seq 30); do
    w=$(send)
    [ "$w" = 202 ] && break
    sleep 0.5
done
echo "database back: webhook $w"
[ "$w" = 202 ] || { echo "FAIL: listener did not reconnect"; exit 1; }
[ "$(psql_ "SELECT count(*) FROM tds.inbox WHERE zoho_id = '777'")" = 1 ] || { echo "FAIL: 777"; exit 1; }
kill -TERM "$pid"; wait "$pid"; pid=
echo "ok"
