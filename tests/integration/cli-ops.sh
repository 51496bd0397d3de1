#!/usr/bin/env bash
# cli-ops.sh TDS: the scripting CLI end to end against the private cluster:
# status exit codes (0/3/4), listings as table, TSV and parsed JSON, DLQ
# retry/discard, alert ack, pause/resume, audit rows, and bad input (unknown
# flag, bad id, missing id, --json with an action, conflicting flags), and
# strict parsing: option values are never global options, ids are strict.
set -u
tds=$1
[ -n "${TDS_TEST_PG:-}" ] || { echo "TDS_TEST_PG not set: run through tests/run"; exit 77; }
db=t_cliops_$$
psql "$TDS_TEST_PG" -qc "CREATE DATABASE $db" || exit 1
trap 'psql "$TDS_TEST_PG" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null' EXIT
export TDS_DATABASE_URL="$TDS_TEST_PG dbname=$db" XDG_CONFIG_HOME=/nonexistent
unset TDS_CONFIG
sql() { psql "$TDS_DATABASE_URL" -qAtc "$1"; }
fails=0
ok() { echo "ok: $1"; }
bad() { echo "FAIL: $1"; fails=$((fails + 1)); }
expect() { # name want-status cmd...
    local name=$1 want=$2; shift 2
    out=$("$@" 2>&1); st=$?
    if [ "$st" = "$want" ]; then ok "$name (exit $st)"; else bad "$name: exit $st, want $want: $out"; fi
}
# expect_msg NAME STATUS PATTERN CMD...: exit STATUS and PATTERN (grep -E) in stdout+stderr.
expect_msg() {
    local name=$1 want=$2 pat=$3; shift 3
    out=$("$@" 2>&1); st=$?
    if [ "$st" != "$want" ]; then
        bad "$name: exit $st, want $want: $out"
    elif [ -n "$pat" ] && ! printf '%s' "$out" | grep -qE -- "$pat"; then
        bad "$name: output lacks /$pat/: $out"
    else
        ok "$name (exit $st)"
    fi
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }

"$tds" migrate >/dev/null || { echo "migrate failed"; exit 1; }

# No engine has registered: down.
expect "status with no engine is down" 4 "$tds" status
st=$("$tds" status --json | json 'print(d["status"])'); [ "$st" = down ] && ok "status --json says down" || bad "status --json: $st"

sql "INSERT INTO tds.engines (instance, host, pid, version, mode, threads, state)
     VALUES ('e1', 'host-a', 1, '0.1.0', 'daemon', 4, 'running')"
expect "status with a live engine is healthy" 0 "$tds" status
sql "INSERT INTO tds.alerts (alert_type, severity, title, dedup_key) VALUES ('zoho_auth', 'critical', 'Zoho authentication failing', 'zoho_auth')"
expect "status with a critical alert is degraded" 3 "$tds" status
"$tds" status --json | json 'assert d["status"]=="degraded"; assert d["alerts"]["critical"]==1; assert d["engines"][0]["instance"]=="e1"' && ok "status json fields" || bad "status json fields"
sql "UPDATE tds.engines SET heartbeat_at = now() - interval '10 minutes'"
expect "status with a dead engine is down" 4 "$tds" status
sql "UPDATE tds.engines SET heartbeat_at = now()"
expect "status with an unreachable database is down" 4 env TDS_DATABASE_URL="host=127.0.0.1 port=1 dbname=x" "$tds" status

# Runs.
sql "INSERT INTO tds.sync_runs (run_type, entity_type, trigger, status, started_at, finished_at, total, succeeded)
     VALUES ('stock', 'items', 'cli', 'completed', now() - interval '5 s', now(), 100, 98),
            ('full', NULL, 'schedule', 'failed', now(), now(), 0, 0)"
n=$("$tds" runs --json | json 'print(len(d))'); [ "$n" = 2 ] && ok "runs --json lists 2" || bad "runs --json: $n"
n=$("$tds" runs --status failed --json | json 'print(len(d), d[0]["entity"])'); [ "$n" = "1 all" ] && ok "runs --status filter" || bad "runs --status: $n"
lines=$("$tds" runs | wc -l); [ "$lines" = 2 ] && ok "runs piped is TSV without header" || bad "runs piped: $lines lines"
tabs=$("$tds" runs | head -1 | awk -F'\t' '{print NF}'); [ "$tabs" -ge 10 ] && ok "runs piped has tab-separated fields" || bad "runs TSV fields: $tabs"
rid=$(sql "SELECT min(id) FROM tds.sync_runs")
"$tds" run "$rid" --json | json 'assert d["succeeded"]==98 and d["run_type"]=="stock"; assert isinstance(d["recent_events"], list)' && ok "run ID --json" || bad "run ID --json"
expect "run that does not exist" 1 "$tds" run 99999
expect "run with a bad id" 2 "$tds" run abc
expect "runs with an unknown status" 2 "$tds" runs --status bogus
expect "runs with a bad limit" 2 "$tds" runs --limit 0

# Queue.
sql "INSERT INTO tds.sync_queue (entity_type, zoho_id, payload, priority) VALUES ('items', '1001', '{\"item_id\":\"1001\"}', 7)"
"$tds" queue --json | json 'assert d[0]["zoho_id"]=="1001" and d[0]["priority"]==7' && ok "queue --json" || bad "queue --json"
expect "queue with an unknown entity" 2 "$tds" queue --entity widgets
expect "queue with an unknown status" 2 "$tds" queue --status nope

# DLQ.
sql "INSERT INTO tds.dead_letter (entity_type, zoho_id, operation, payload, failure_reason, attempts, error_history)
     VALUES ('items', '2001', 'upsert', '{\"item_id\":\"2001\"}', 'field rate is not a number', 5, '[{\"error\":\"x\"}]'),
            ('items', '2002', 'upsert', '{\"item_id\":\"2002\"}', 'HTTP 500', 5, '[]'),
            ('contacts', '3001', 'upsert', '{}', 'HTTP 500', 5, '[]')"
n=$("$tds" dlq list --json | json 'print(len(d))'); [ "$n" = 3 ] && ok "dlq list" || bad "dlq list: $n"
d1=$(sql "SELECT id FROM tds.dead_letter WHERE zoho_id = '2001'")
"$tds" dlq show "$d1" --json | json 'assert d["error_history"][0]["error"]=="x"; assert d["payload"]["item_id"]=="2001"' && ok "dlq show --json" || bad "dlq show"
expect "dlq show of a missing id" 1 "$tds" dlq show 99999
expect "dlq retry ID" 0 "$tds" dlq retry "$d1"
[ "$(sql "SELECT resolution FROM tds.dead_letter WHERE id = $d1")" = retried ] && ok "dlq row resolved as retried" || bad "dlq retried resolution"
[ "$(sql "SELECT count(*) FROM tds.sync_queue WHERE zoho_id = '2001' AND status IN ('pending', 'retry')")" = 1 ] && ok "retried item is queued again" || bad "retried item not queued"
expect "dlq retry of an already resolved id" 1 "$tds" dlq retry "$d1"
expect "dlq retry --all --entity items --reason 'HTTP 500'" 0 "$tds" dlq retry --all --entity items --reason "HTTP 500"
[ "$(sql "SELECT count(*) FROM tds.dead_letter WHERE NOT resolved")" = 1 ] && ok "retry --all matched only its filter" || bad "retry --all filter"
d3=$(sql "SELECT id FROM tds.dead_letter WHERE zoho_id = '3001'")
expect "dlq discard without --reason" 2 "$tds" dlq discard "$d3"
expect "dlq discard ID --reason" 0 "$tds" dlq discard "$d3" --reason "customer deleted in Zoho"
[ "$(sql "SELECT resolution || ' ' || resolution_note FROM tds.dead_letter WHERE id = $d3")" = "discarded customer deleted in Zoho" ] && ok "discard recorded with reason" || bad "discard record"
by=$(sql "SELECT resolved_by FROM tds.dead_letter WHERE id = $d3"); case "$by" in cli:*) ok "resolved_by names the cli user ($by)";; *) bad "resolved_by: $by";; esac
expect "dlq retry ID and --all together" 2 "$tds" dlq retry 5 --all
expect "dlq retry --entity without --all" 2 "$tds" dlq retry 5 --entity items
expect "dlq unknown action" 2 "$tds" dlq frob
expect "dlq retry with --json (table-only flag misuse)" 2 "$tds" dlq retry 5 --json

# Alerts.
aid=$(sql "SELECT id FROM tds.alerts LIMIT 1")
"$tds" alerts list --json | json 'assert d[0]["severity"]=="critical"' && ok "alerts list --json" || bad "alerts list"
expect "alerts ack ID" 0 "$tds" alerts ack "$aid"
[ -n "$(sql "SELECT acknowledged_by FROM tds.alerts WHERE id = $aid")" ] && ok "alert acknowledged with who" || bad "alert ack who"
expect "alerts ack without id or --all" 2 "$tds" alerts ack
expect "alerts ack --all" 0 "$tds" alerts ack --all
expect "alerts ack of a missing id" 1 "$tds" alerts ack 99999

# Engines, pause, resume.
"$tds" engines --json | json 'assert d[0]["instance"]=="e1" and d[0]["alive"] is True' && ok "engines --json" || bad "engines --json"
expect "pause" 0 "$tds" pause
[ "$(sql "SELECT value FROM tds.control WHERE key = 'paused'")" = true ] && ok "fleet paused in tds.control" || bad "pause not recorded"
expect "status while paused is degraded" 3 "$tds" status
expect "resume" 0 "$tds" resume
[ "$(sql "SELECT value FROM tds.control WHERE key = 'paused'")" = false ] && ok "fleet resumed" || bad "resume not recorded"
expect "pause one engine" 0 "$tds" pause --instance e1
[ "$(sql "SELECT pause_requested FROM tds.engines WHERE instance = 'e1'")" = t ] && ok "engine e1 pause requested" || bad "engine pause"
"$tds" resume --instance e1 >/dev/null

# Every action above is audited.
n=$(sql "SELECT count(*) FROM tds.audit WHERE action IN ('dlq.retry', 'dlq.retry_all', 'dlq.discard', 'alerts.ack', 'alerts.ack_all', 'engine.pause', 'engine.resume')")
[ "$n" -ge 8 ] && ok "actions audited ($n rows)" || bad "audit rows: $n"

# Usage errors.
expect "unknown flag" 2 "$tds" runs --frobnicate
expect "flag missing its value" 2 "$tds" runs --limit
expect "global --config after the subcommand" 0 "$tds" runs --config /dev/null

# Strict parsing (issue 18, point 10).  An option's value is the
# subcommand's whatever it looks like (`--reason -c` records "-c", it is not
# the global -c), and every id goes through the one strict parser: "", " 9",
# "+9", "9x", "-1", "0", an overflow or an escape sequence are refused with
# exit 2 and a message that names the argument and shows the value sanitized.
sql "INSERT INTO tds.dead_letter (entity_type, zoho_id, operation, payload, failure_reason, attempts)
     VALUES ('items', '4001', 'upsert', '{}', 'HTTP 500', 5),
            ('items', '4002', 'upsert', '{}', 'HTTP 500', 5),
            ('items', '4003', 'upsert', '{}', 'bad -c flag', 5)"
d1=$(sql "SELECT id FROM tds.dead_letter WHERE zoho_id = '4001'")
d2=$(sql "SELECT id FROM tds.dead_letter WHERE zoho_id = '4002'")

# ---- an option's value is never a global option ----
expect_msg "dlq discard ID --reason -c" 0 "discarded" "$tds" dlq discard "$d1" --reason -c
[ "$(sql "SELECT resolution_note FROM tds.dead_letter WHERE id = $d1")" = "-c" ] &&
    ok "the reason recorded is \"-c\"" || bad "reason recorded: $(sql "SELECT resolution_note FROM tds.dead_letter WHERE id = $d1")"
expect_msg "dlq discard --reason --config ID" 0 "discarded" "$tds" dlq discard --reason --config "$d2"
[ "$(sql "SELECT resolution_note FROM tds.dead_letter WHERE id = $d2")" = "--config" ] &&
    ok "the reason recorded is \"--config\"" || bad "reason recorded: $(sql "SELECT resolution_note FROM tds.dead_letter WHERE id = $d2")"
expect_msg "dlq retry --all --reason -c (a filter)" 0 "requeued 1 dead-letter item$" \
    "$tds" dlq retry --all --reason -c
[ "$(sql "SELECT resolution FROM tds.dead_letter WHERE zoho_id = '4003'")" = retried ] &&
    ok "retry --all --reason -c matched the reason containing -c" || bad "retry --all --reason -c"
expect_msg "dlq list --reason=-c form" 0 "" "$tds" dlq list --reason=-c --all
expect_msg "an abbreviated option keeps its value (--rea -c)" 0 "" "$tds" dlq list --rea -c --all
expect_msg "runs --status -c is a bad status, not -c" 2 "runs: --status: unknown status '-c'" \
    "$tds" runs --status -c
expect_msg "queue --entity --instance is a bad entity" 2 "queue: --entity: unknown entity '--instance'" \
    "$tds" queue --entity --instance
expect_msg "runs --limit -c is a bad limit" 2 "runs: --limit: '-c' is not a number" "$tds" runs --limit -c
expect_msg "sync --items -c is a bad item list" 2 "sync stock: --items: '-c' is not an item id" \
    "$tds" sync stock --items -c
expect_msg "the global -c after the subcommand still works" 2 "nonexistent.yaml: cannot read" \
    "$tds" runs -c ./nonexistent.yaml
expect_msg "--config=FILE after the subcommand still works" 2 "nonexistent.yaml: cannot read" \
    "$tds" dlq list --reason x --config=./nonexistent.yaml

# ---- one strict id parser ----
for v in "" " 9" "9 " "+9" "9x" "0" "00" "-0" "99999999999999999999" "9223372036854775808" \
    "0x10" "1e3" "٣"; do
    expect_msg "dlq show '$v' is refused" 2 "dlq show: id: '.*' is not an id" "$tds" dlq show -- "$v"
done
expect_msg "dlq show -1 is refused (as an option)" 2 "dlq show: unknown option '-1'" "$tds" dlq show -1
expect_msg "dlq show -- -1 is refused (as an id)" 2 "dlq show: id: '-1' is not an id" "$tds" dlq show -- -1
expect_msg "the largest id is an id" 1 "dead-letter item 9223372036854775807 does not exist" \
    "$tds" dlq show 9223372036854775807
expect_msg "a bad id with an escape is shown sanitized" 2 "id: '\\\\x1b\\[31m9' is not an id" \
    "$tds" dlq show "$(printf '\033[31m9')"
if printf '%s' "$out" | grep -q $'\033'; then bad "an escape reached the output"; else ok "no raw escape in the message"; fi
expect_msg "run 9x" 2 "run: id: '9x' is not an id" "$tds" run 9x
expect_msg "dlq retry +9" 2 "dlq retry: id: '\\+9' is not an id" "$tds" dlq retry +9
expect_msg "dlq discard ' 9'" 2 "dlq discard: id: ' 9' is not an id" "$tds" dlq discard " 9" --reason x
expect_msg "alerts ack 0" 2 "alerts ack: id: '0' is not an id" "$tds" alerts ack 0
expect_msg "runs --limit ' 5'" 2 "runs: --limit: ' 5' is not a number from 1 to 100000" "$tds" runs --limit " 5"
expect_msg "sync --batch-size +5" 2 "sync: --batch-size: '\\+5' is not a number" \
    "$tds" sync stock --batch-size +5
expect_msg "a missing id names it" 2 "dlq show: id is needed" "$tds" dlq show

echo "$fails failed"
[ "$fails" = 0 ]
