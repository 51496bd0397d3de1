#!/usr/bin/env python3
"""hostile_test.py TDS SIM: hostile input against the real binaries, the
private PostgreSQL and the simulator (issue 9, "Hostile input").

SQL injection: CLI filters (tds queue --entity, tds dlq list/retry
--reason, tds runs --status, tds dlq discard --reason), Zoho data (a record
named "'); DELETE FROM zoho.items; --" synced by `tds sync --wait` and
re-fetched through a webhook and the queue) and webhook bodies: every
table survives, row counts hold, and the text is stored verbatim.

Secret leaks: a configuration with distinctive secrets (client secret,
refresh token, webhook secret, HMAC secret, a password in the dsn);
`tds check-config`, `tds status --json`, a daemon with webhooks.listen,
GET /metrics and /health, webhooks carrying the secret in the header and
the query; then every output, the log file, and every row of every table
of the tds and zoho schemas (tds.inbox headers and decoded body included)
are searched for each secret and for the access token the simulator minted.
tds.zoho_token is excluded: it legitimately stores the access token.

Core file: the daemon runs with RLIMIT_CORE raised; SIGABRT, then the core
(if the kernel writes one) is searched for the secrets and what is found is
reported (a process that holds secrets has them in its memory; the daemon
should not be dumpable, see prctl(PR_SET_DUMPABLE))."""
import hashlib
import hmac
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

TDS, SIM = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
PG = os.environ.get("TDS_TEST_PG")
if not PG:
    print("TDS_TEST_PG not set: run through tests/run")
    sys.exit(77)

INJ_DROP = "x'; DROP TABLE tds.audit; --"
INJ_DELETE = "'); DELETE FROM zoho.items; --"
SECRETS = {
    "client secret": "CliSecret-7f3a9cQ",
    "refresh token": "1000.RefreshTok-4b8e21W",
    "webhook secret": "WhSecret-91c2dX",
    "hmac secret": "HmacSecret-55d0eY",
    "dsn password": "DbPassw0rd-e3d7Z",
}

failures = 0
procs = []


def check(name, cond, detail=""):
    global failures
    print(("ok: " if cond else "FAIL: ") + name + ("" if cond else f" ({detail})"), flush=True)
    if not cond:
        failures += 1


def psql(dsn, sql):
    return subprocess.run(["psql", dsn, "-qAtX", "-c", sql], check=True, capture_output=True,
                          text=True).stdout.strip()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout, step=0.2):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


def http(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (urllib.error.URLError, ConnectionError, socket.timeout) as e:
        return 0, str(e)


db = f"t_hostile_{os.getpid()}"
role = f"tds_hostile_{os.getpid()}"
psql(PG, f"CREATE DATABASE {db}")
# A role with a password, so the dsn carries one (the private cluster trusts
# loopback, so the password is not checked, but it is in the configuration).
psql(PG, f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{SECRETS['dsn password']}'")
dsn_plain = f"{PG} dbname={db}"
dsn_secret = f"{PG} dbname={db} user={role} password={SECRETS['dsn password']}"
tmp = tempfile.mkdtemp(prefix="tds-hostile-")
outputs = {}   # name -> text seen by an operator or a scraper


def cleanup():
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    subprocess.run(["psql", PG, "-qc", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"],
                   capture_output=True)
    subprocess.run(["psql", PG, "-qc", f"DROP ROLE IF EXISTS {role}"], capture_output=True)


def run(name, args, env, want=None):
    r = subprocess.run([TDS] + args, env=env, capture_output=True, text=True, timeout=120)
    outputs[name] = r.stdout + r.stderr
    if want is not None:
        check(f"{name}: exit {want}", r.returncode == want,
              f"exit {r.returncode}: {(r.stdout + r.stderr).strip()[:300]}")
    return r


def table_counts():
    return psql(dsn_plain, "SELECT string_agg(format('%s.%s', schemaname, relname), ',' ORDER BY schemaname, relname)"
                " FROM pg_stat_user_tables WHERE schemaname IN ('tds', 'zoho')")


try:
    env = dict(os.environ, XDG_CONFIG_HOME="/nonexistent")
    for k in list(env):
        if k.startswith("TDS_") and k not in ("TDS_TEST_PG", "TDS_SOURCE_ROOT", "TDS_BUILD_ROOT"):
            env.pop(k)
    env.pop("ZOHO_CLIENT_SECRET", None)
    env.pop("ZOHO_REFRESH_TOKEN", None)
    subprocess.run([TDS, "migrate"], env=dict(env, TDS_DATABASE_URL=dsn_plain), check=True,
                   capture_output=True)

    port_file = os.path.join(tmp, "sim.port")
    sim = subprocess.Popen([SIM, "--listen", "127.0.0.1:0", "--port-file", port_file,
                            "--items", "60", "--count", "contacts=20", "--no-limits", "--quiet",
                            "--client-secret", SECRETS["client secret"],
                            "--refresh-token", SECRETS["refresh token"]],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(sim)
    wait_for(lambda: os.path.exists(port_file) and open(port_file).read().strip(), 20)
    base = f"http://127.0.0.1:{int(open(port_file).read().strip())}"

    http_port = free_port()
    logfile = os.path.join(tmp, "tds.log")
    cfg = os.path.join(tmp, "tds.yaml")
    with open(cfg, "w") as f:
        f.write(f"""database:
  dsn: "{dsn_secret}"
zoho:
  organization_id: "60000000001"
  client_id: sim-client-id
  client_secret: "{SECRETS['client secret']}"
  refresh_token: "{SECRETS['refresh token']}"
  accounts_url: {base}
  books_url: {base}/books/v3
  inventory_url: {base}/inventory/v1
engine:
  workers: 2
  heartbeat_seconds: 1
  dead_after_seconds: 5
schedule:
  enabled: false
images:
  enabled: false
webhooks:
  listen: "127.0.0.1:{http_port}"
  secret: "{SECRETS['webhook secret']}"
  hmac_secret: "{SECRETS['hmac secret']}"
log:
  level: debug
  file: "{logfile}"
""")
    os.chmod(cfg, 0o600)
    cenv = dict(env, TDS_CONFIG=cfg)

    # ---------------------------------------------------------------- SQL injection
    print("# SQL injection through the CLI filters")
    psql(dsn_plain, "INSERT INTO tds.dead_letter (entity_type, zoho_id, operation, payload,"
         " failure_reason, attempts, error_history) VALUES"
         f" ('items', '2001', 'upsert', '{{}}', $q${INJ_DROP}$q$, 5, '[]'),"
         " ('items', '2002', 'upsert', '{}', 'HTTP 500', 5, '[]')")
    before = table_counts()
    audit_before = psql(dsn_plain, "SELECT count(*) FROM tds.audit")
    run("queue --entity", ["queue", "--entity", INJ_DROP], cenv, want=2)
    run("queue --status", ["queue", "--status", INJ_DROP], cenv, want=2)
    run("runs --status", ["runs", "--status", INJ_DROP], cenv, want=2)
    run("runs --entity", ["runs", "--entity", INJ_DROP], cenv)
    r = run("dlq list --reason", ["dlq", "list", "--reason", INJ_DROP, "--json"], cenv, want=0)
    try:
        rows = json.loads(r.stdout)
    except ValueError:
        rows = None
    check("dlq list --reason matches the injected text literally",
          isinstance(rows, list) and len(rows) == 1 and rows[0].get("zoho_id") == "2001",
          r.stdout[:300])
    r = run("dlq list --reason quote", ["dlq", "list", "--reason", "' OR '1'='1", "--json"], cenv,
            want=0)
    check("dlq list --reason \"' OR '1'='1\" matches nothing",
          r.stdout.strip() in ("[]", "[ ]") or json.loads(r.stdout or "[]") == [], r.stdout[:200])
    run("dlq retry --all --reason", ["dlq", "retry", "--all", "--reason", "' OR 1=1; --"], cenv)
    check("dlq retry --all with an injected reason retried nothing",
          psql(dsn_plain, "SELECT count(*) FROM tds.dead_letter WHERE NOT resolved") == "2")
    d2 = psql(dsn_plain, "SELECT id FROM tds.dead_letter WHERE zoho_id = '2002'")
    run("dlq discard --reason", ["dlq", "discard", d2, "--reason", INJ_DROP], cenv, want=0)
    check("discard reason stored verbatim in tds.audit",
          psql(dsn_plain, "SELECT count(*) FROM tds.audit WHERE strpos(detail::text,"
               f" $q${json.dumps(INJ_DROP)[1:-1]}$q$) > 0") != "0",
          psql(dsn_plain, "SELECT string_agg(detail::text, ' | ') FROM tds.audit"))
    check("discard note stored verbatim in tds.dead_letter",
          psql(dsn_plain, f"SELECT resolution_note = $q${INJ_DROP}$q$ FROM tds.dead_letter"
               f" WHERE id = {d2}") == "t")
    check("tds.audit survives the CLI filters",
          psql(dsn_plain, "SELECT to_regclass('tds.audit') IS NOT NULL") == "t")
    check("every table survives the CLI filters", table_counts() == before)
    check("tds.audit only grew", int(psql(dsn_plain, "SELECT count(*) FROM tds.audit"))
          >= int(audit_before))

    print("# SQL injection through Zoho data (tds sync --wait)")
    truth = [json.loads(l) for l in http("GET", f"{base}/_sim/truth/items")[1].splitlines() if l]
    victim = truth[0]["item_id"]
    st, _ = http("PATCH", f"{base}/_sim/items/{victim}",
                 json.dumps({"name": INJ_DELETE, "sku": INJ_DROP}).encode(),
                 {"Content-Type": "application/json"})
    check("simulator took the hostile item name", st == 200, st)
    st, body = http("POST", f"{base}/_sim/contacts",
                    json.dumps({"contact_name": INJ_DELETE, "company_name": "\\'; --"}).encode(),
                    {"Content-Type": "application/json"})
    check("simulator created a hostile contact", st == 201, st)
    hostile_contact = json.loads(body).get("contact", json.loads(body)).get("contact_id") \
        if st == 201 else None
    r = run("sync items --wait", ["sync", "items", "--full", "--wait"], cenv, want=0)
    r = run("sync contacts --wait", ["sync", "contacts", "--full", "--wait"], cenv, want=0)
    n_items = psql(dsn_plain, "SELECT count(*) FROM zoho.items WHERE deleted_at IS NULL")
    check("zoho.items holds every simulator item", n_items == str(len(truth)),
          f"{n_items} vs {len(truth)}")
    check("hostile item name stored verbatim",
          psql(dsn_plain, f"SELECT name = $q${INJ_DELETE}$q$ AND sku = $q${INJ_DROP}$q$"
               f" FROM zoho.items WHERE item_id = '{victim}'") == "t")
    check("hostile item raw JSON verbatim",
          psql(dsn_plain, f"SELECT raw->>'name' = $q${INJ_DELETE}$q$ FROM zoho.items"
               f" WHERE item_id = '{victim}'") == "t")
    if hostile_contact:
        check("hostile contact name stored verbatim",
              psql(dsn_plain, f"SELECT contact_name = $q${INJ_DELETE}$q$ FROM zoho.contacts"
                   f" WHERE contact_id = '{hostile_contact}'") == "t")

    # ---------------------------------------------------------------- daemon
    print("# daemon with webhooks: injection through webhook bodies and the queue")
    def raise_core():
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    dlog = os.path.join(tmp, "daemon.stderr")
    daemon = subprocess.Popen([TDS, "--daemon", "--config", cfg, "--instance", "hostile"],
                              env=cenv, cwd=tmp, stdout=subprocess.PIPE, stderr=open(dlog, "w"),
                              preexec_fn=raise_core)
    procs.append(daemon)
    hbase = f"http://127.0.0.1:{http_port}"
    up = wait_for(lambda: http("GET", f"{hbase}/health")[0] == 200, 30)
    check("daemon healthy", bool(up), http("GET", f"{hbase}/health"))

    second = truth[1]["item_id"]
    http("PATCH", f"{base}/_sim/items/{second}", json.dumps({"name": INJ_DELETE}).encode(),
         {"Content-Type": "application/json"})
    wh_body = json.dumps({"item": {"item_id": second, "name": INJ_DELETE,
                                   "description": INJ_DROP}}).encode()
    sig = hmac.new(SECRETS["hmac secret"].encode(), wh_body, hashlib.sha256).hexdigest()
    st, ans = http("POST", f"{hbase}/webhooks/zoho/items", wh_body,
                   {"Content-Type": "application/json",
                    "X-TDS-Webhook-Secret": SECRETS["webhook secret"],
                    "X-Zoho-Webhook-Signature": sig})
    check("hostile webhook accepted (202)", st == 202, f"{st} {ans}")
    # The secret in the query string, and a wrong secret that embeds the real one.
    st, _ = http("POST", f"{hbase}/webhooks/zoho/items?secret={SECRETS['webhook secret']}",
                 wh_body, {"Content-Type": "application/json",
                           "X-Zoho-Webhook-Signature": "sha256=" + sig})
    check("webhook with the secret in the query accepted", st == 202, st)
    st, _ = http("POST", f"{hbase}/webhooks/zoho/items", wh_body,
                 {"Content-Type": "application/json",
                  "X-TDS-Webhook-Secret": "x" + SECRETS["webhook secret"] + "x",
                  "Authorization": "Bearer " + SECRETS["client secret"],
                  "X-Zoho-Webhook-Signature": sig})
    check("webhook with a wrong secret refused (401)", st == 401, st)
    # The secret in the URL path (a webhook URL configured with it): never
    # stored (tds.inbox.path, reject_reason) nor logged; searched below.
    st, _ = http("POST", f"{hbase}/webhooks/zoho/{SECRETS['webhook secret']}", wh_body,
                 {"Content-Type": "application/json",
                  "X-TDS-Webhook-Secret": SECRETS["webhook secret"],
                  "X-Zoho-Webhook-Signature": sig})
    check("webhook with the secret as its entity refused (404)", st == 404, st)
    st, _ = http("POST", f"{hbase}/webhooks/zoho/items/{SECRETS['webhook secret']}", wh_body,
                 {"Content-Type": "application/json", "X-Zoho-Webhook-Signature": sig})
    check("webhook with the secret only in its path refused (401)", st == 401, st)
    # 40 unauthenticated 1 MiB posts: refused, and the inbox keeps no body.
    inbox_before = int(psql(dsn_plain, "SELECT coalesce(max(id), 0) FROM tds.inbox"))
    big = json.dumps({"item": {"item_id": "1", "pad": os.urandom(390000).hex()}}).encode()
    codes = [http("POST", f"{hbase}/webhooks/zoho/items", big,
                  {"Content-Type": "application/json", "X-TDS-Webhook-Secret": "wrong"})[0]
             for _ in range(40)]
    check("40 unauthenticated large posts: none accepted", all(c in (0, 401) for c in codes),
          codes)
    time.sleep(0.5)
    kept = int(psql(dsn_plain, "SELECT coalesce(sum(pg_column_size(i.*)), 0) FROM tds.inbox i"
                    f" WHERE id > {inbox_before}"))
    bodies = psql(dsn_plain, "SELECT count(*) FROM tds.inbox WHERE coalesce(length(body), 0) > 0"
                  f" AND id > {inbox_before}")
    check("40 unauthenticated large posts leave < 100 KB in tds.inbox and no body",
          kept < 100000 and bodies == "0", f"{kept} bytes, {bodies} bodies")
    st, _ = http("POST", f"{hbase}/webhooks/zoho/items", INJ_DELETE.encode(),
                 {"Content-Type": "application/x-www-form-urlencoded",
                  "X-TDS-Webhook-Secret": SECRETS["webhook secret"],
                  "X-Zoho-Webhook-Signature": hmac.new(SECRETS["hmac secret"].encode(),
                                                       INJ_DELETE.encode(),
                                                       hashlib.sha256).hexdigest()})
    check("hostile form body refused without harm (400)", st == 400, st)
    check("inbox body stored byte for byte",
          psql(dsn_plain, "SELECT count(*) FROM tds.inbox WHERE body = "
               f"convert_to($q${wh_body.decode()}$q$, 'UTF8')") != "0")
    done = wait_for(lambda: psql(dsn_plain, "SELECT count(*) FROM tds.sync_queue WHERE"
                                 f" zoho_id = '{second}' AND status = 'completed'") != "0"
                    or psql(dsn_plain, f"SELECT count(*) FROM tds.sync_queue WHERE"
                            f" zoho_id = '{second}'") == "0", 30)
    check("webhook's queue item applied", bool(done))
    check("re-fetched hostile name stored verbatim",
          wait_for(lambda: psql(dsn_plain, f"SELECT name = $q${INJ_DELETE}$q$ FROM zoho.items"
                                f" WHERE item_id = '{second}'") == "t", 15) is not None)
    check("zoho.items still holds every item after the queue",
          psql(dsn_plain, "SELECT count(*) FROM zoho.items WHERE deleted_at IS NULL")
          == str(len(truth)))
    check("every table survives", table_counts() == before,
          f"{table_counts()} vs {before}")

    # ---------------------------------------------------------------- secret leaks
    print("# secret leaks")
    st, outputs["GET /metrics"] = http("GET", f"{hbase}/metrics")
    check("GET /metrics answers", st == 200, st)
    st, outputs["GET /health"] = http("GET", f"{hbase}/health")
    run("check-config", ["check-config"], cenv)
    run("status --json", ["status", "--json"], cenv)
    run("engines --json", ["engines", "--json"], cenv)
    run("alerts list --json", ["alerts", "list", "--all", "--json"], cenv)
    run("queue --json", ["queue", "--status", "completed", "--json"], cenv)
    run("runs --json", ["runs", "--json"], cenv)
    run("dlq list --all --json", ["dlq", "list", "--all", "--json"], cenv)
    # A bad dsn password must not be echoed in the error either.
    bad_cfg = os.path.join(tmp, "bad.yaml")
    with open(cfg) as f, open(bad_cfg, "w") as g:
        g.write(f.read().replace(f"dbname={db}", "dbname=nonexistent_db port=1"))
    os.chmod(bad_cfg, 0o600)
    run("status with an unreachable database", ["--config", bad_cfg, "status"], cenv)
    run("check-config with an unreachable database", ["--config", bad_cfg, "check-config"], cenv)

    token = psql(dsn_plain, "SELECT access_token FROM tds.zoho_token LIMIT 1")
    check("the simulator minted an access token (tds.zoho_token)", len(token) >= 8, token)
    secrets = dict(SECRETS)
    if len(token) >= 8:
        secrets["access token"] = token

    # Every row of every table but tds.zoho_token, as text; inbox bodies decoded.
    tables = psql(dsn_plain, "SELECT schemaname || '.' || relname FROM pg_stat_user_tables"
                  " WHERE schemaname IN ('tds', 'zoho') ORDER BY 1").split("\n")
    for t in tables:
        if t == "tds.zoho_token":
            continue
        outputs[f"table {t}"] = psql(dsn_plain, f"SELECT coalesce(string_agg(x::text, E'\\n'), '')"
                                     f" FROM {t} x")
    outputs["tds.inbox bodies"] = psql(
        dsn_plain, "SELECT coalesce(string_agg(convert_from(body, 'UTF8'), E'\\n'), '')"
        " FROM tds.inbox WHERE body IS NOT NULL")
    outputs["tds.inbox headers"] = psql(dsn_plain, "SELECT coalesce(string_agg(headers::text,"
                                        " E'\\n'), '') FROM tds.inbox")
    check("tds.inbox recorded the webhooks (headers redacted)",
          "<redacted>" in outputs["tds.inbox headers"], outputs["tds.inbox headers"][:300])

    # Core file: SIGABRT the daemon (RLIMIT_CORE raised, core_pattern permitting).
    print("# core file")
    core_text = None
    pattern = open("/proc/sys/kernel/core_pattern").read().strip()
    daemon.send_signal(signal.SIGABRT)
    try:
        daemon.wait(timeout=30)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()
    outputs["daemon stdout"] = daemon.stdout.read().decode("utf-8", "replace")
    outputs["daemon stderr"] = open(dlog, errors="replace").read()
    outputs["log file"] = open(logfile, errors="replace").read() if os.path.exists(logfile) else ""
    check("the log file was written", len(outputs["log file"]) > 0)
    cores = [os.path.join(tmp, n) for n in os.listdir(tmp) if n.startswith("core")]
    if pattern.startswith("|"):
        print(f"info: core_pattern pipes to a helper ({pattern}); no core file to search")
    elif not cores:
        print(f"info: no core file written (core_pattern {pattern!r}); a daemon that is not "
              "dumpable (PR_SET_DUMPABLE 0) writes none")
    else:
        with open(cores[0], "rb") as f:
            core_text = f.read()
        print(f"info: core file {cores[0]} ({len(core_text)} bytes)")
        for name, value in secrets.items():
            print(f"info: core file {'CONTAINS' if value.encode() in core_text else 'lacks'} "
                  f"the {name}")
        for c in cores:
            os.unlink(c)
    check("core file: the daemon is not dumpable (no core with the client secret)",
          core_text is None or SECRETS["client secret"].encode() not in core_text)

    # The search.
    for name, value in secrets.items():
        where = [k for k, text in outputs.items() if value in text]
        check(f"{name} appears nowhere ({len(outputs)} outputs searched)", not where,
              "found in " + ", ".join(where))
finally:
    cleanup()

print(f"{'FAILED' if failures else 'passed'}: {failures} failure(s)")
sys.exit(1 if failures else 0)
