#!/usr/bin/env python3
"""daemon_test.py TDS SIM: `tds --daemon` lifecycle against the private
PostgreSQL and the simulator: readiness through NOTIFY_SOCKET, /health,
SIGHUP with a good and a bad configuration, a second daemon with the same
instance name refused, a second one with another name sharing the work
(every item applied exactly once), SIGTERM during a large drain (nothing
lost or doubled), and a database unreachable at start (no readiness,
retries, clean stop)."""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

TDS, SIM = sys.argv[1], sys.argv[2]
PG = os.environ.get("TDS_TEST_PG")
if not PG:
    print("TDS_TEST_PG not set: run through tests/run")
    sys.exit(77)

failures = 0
procs = []


def check(name, cond, detail=""):
    global failures
    print(("ok: " if cond else "FAIL: ") + name + ("" if cond else f" ({detail})"), flush=True)
    if not cond:
        failures += 1


def psql(dsn, sql):
    return subprocess.run(["psql", dsn, "-qAtc", sql], check=True, capture_output=True,
                          text=True).stdout.strip()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout, step=0.1):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


db = f"t_daemon_{os.getpid()}"
psql(PG, f"CREATE DATABASE {db}")
dsn = f"{PG} dbname={db}"
tmp = tempfile.mkdtemp(prefix="tds-daemon-")


def cleanup():
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    subprocess.run(["psql", PG, "-qc", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"],
                   capture_output=True)


try:
    env = dict(os.environ, XDG_CONFIG_HOME="/nonexistent")
    env.pop("TDS_CONFIG", None)
    subprocess.run([TDS, "migrate"], env=dict(env, TDS_DATABASE_URL=dsn), check=True,
                   capture_output=True)

    port_file = os.path.join(tmp, "sim.port")
    sim = subprocess.Popen([SIM, "--listen", "127.0.0.1:0", "--port-file", port_file,
                            "--items", "200", "--no-limits"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    procs.append(sim)
    wait_for(lambda: os.path.exists(port_file) and open(port_file).read().strip(), 10)
    sim_port = int(open(port_file).read().strip())
    base = f"http://127.0.0.1:{sim_port}"

    def write_config(path, listen, level="info", extra=""):
        with open(path, "w") as f:
            f.write(f"""database:
  dsn: "{dsn}"
zoho:
  organization_id: "60000000001"
  client_id: sim-client-id
  client_secret: sim-client-secret
  refresh_token: sim-refresh-token
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
  enabled: true
  dir: "{tmp}/images"
webhooks:
  listen: "{listen}"
  secret: daemon-test-secret-1
log:
  level: {level}
{extra}""")

    def start(cfg, instance, log, extra_env=None, notify=None):
        e = dict(env)
        if notify:
            e["NOTIFY_SOCKET"] = notify
        if extra_env:
            e.update(extra_env)
        p = subprocess.Popen([TDS, "--daemon", "--config", cfg, "--instance", instance],
                             env=e, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
        procs.append(p)
        return p

    # 1. Readiness through NOTIFY_SOCKET once the database and Zoho answer.
    nsock_path = os.path.join(tmp, "notify.sock")
    nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    nsock.bind(nsock_path)
    nsock.settimeout(0.2)
    http_port = free_port()
    cfg1 = os.path.join(tmp, "d1.yaml")
    write_config(cfg1, f"127.0.0.1:{http_port}")
    log1 = os.path.join(tmp, "d1.log")
    d1 = start(cfg1, "d1", log1, notify=nsock_path)
    msgs = []

    def ready():
        try:
            msgs.append(nsock.recv(4096).decode())
        except socket.timeout:
            pass
        return any("READY=1" in m for m in msgs)

    check("daemon sends READY=1", wait_for(ready, 30), open(log1).read()[-2000:])

    # 2. /health over the listener.
    def health():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/health", timeout=2) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e)
        except OSError:
            return None

    h = wait_for(health, 10)
    check("/health answers 200 healthy", h and h[0] == 200 and h[1]["status"] == "healthy", h)

    # 2b. A stock sync asked of the fleet; the images it finds changed are
    # fetched by a separate "images" run, not inside the stock run.
    out = subprocess.run([TDS, "sync", "stock"], env=dict(env, TDS_DATABASE_URL=dsn),
                         capture_output=True, text=True)
    check("tds sync stock (no --wait) asks the engines", out.returncode == 0, out.stderr)
    done = wait_for(lambda: psql(dsn, "SELECT status FROM tds.sync_runs WHERE run_type = 'stock'")
                    in ("completed", "failed"), 60, 0.3)
    check("the engine ran the stock sync", psql(dsn, "SELECT status FROM tds.sync_runs WHERE run_type = 'stock'") == "completed",
          psql(dsn, "SELECT status, error FROM tds.sync_runs"))
    img_run = wait_for(lambda: psql(dsn, "SELECT status FROM tds.sync_runs WHERE run_type = 'images'") == "completed", 60, 0.3)
    check("an images run followed and completed", img_run, psql(dsn, "SELECT run_type, status, error FROM tds.sync_runs"))
    want = psql(dsn, "SELECT count(*) FROM zoho.items WHERE image_document_id IS NOT NULL")
    have = psql(dsn, "SELECT count(*) FROM zoho.items WHERE image_path IS NOT NULL")
    check(f"images stored for every item that has one ({have}/{want})", want == have and int(want) > 0)
    st = os.lstat(os.path.join(tmp, "images", ".tmp"))
    check("image temporary files are written in a private directory (0700)",
          (st.st_mode & 0o777) == 0o700, oct(st.st_mode))
    check("... and none is left behind", os.listdir(os.path.join(tmp, "images", ".tmp")) == [],
          os.listdir(os.path.join(tmp, "images", ".tmp")))
    check("the stock run itself fetched no image",
          psql(dsn, "SELECT coalesce(stats->>'images', '0') FROM tds.sync_runs WHERE run_type = 'stock'") == "0")

    # 3. SIGHUP with a good configuration: log.level changes.
    write_config(cfg1, f"127.0.0.1:{http_port}", level="debug")
    d1.send_signal(signal.SIGHUP)
    check("SIGHUP reload logs what changed",
          wait_for(lambda: "changed: log.level" in open(log1).read(), 10), open(log1).read()[-800:])
    # 4. SIGHUP with a bad one: logged, old one stays, daemon alive.
    with open(cfg1, "w") as f:
        f.write("engine:\n  workers: lots\n")
    d1.send_signal(signal.SIGHUP)
    check("SIGHUP with a bad config logs the error",
          wait_for(lambda: "previous configuration stays in force" in open(log1).read(), 10))
    time.sleep(0.5)
    check("daemon still running after a bad reload", d1.poll() is None)
    # 4b. ... and a typo that glues a secret to its key (issue 18, point 6):
    # the log names the key, never the value.
    with open(cfg1, "w") as f:
        f.write("zoho:\n  client_secret:TOPSECRET-hup-5d1e\n")
    d1.send_signal(signal.SIGHUP)
    check("SIGHUP with a glued client_secret:VALUE logs the error",
          wait_for(lambda: open(log1).read().count("previous configuration stays in force") >= 2, 10))
    check("... naming the key without its value",
          '"client_secret:..."' in open(log1).read() and "TOPSECRET" not in open(log1).read(),
          [l for l in open(log1).read().splitlines() if "client_secret" in l])
    write_config(cfg1, f"127.0.0.1:{http_port}")

    # 5. A second daemon with the same instance name is refused.
    dup = start(cfg1.replace("d1", "d1"), "d1", os.path.join(tmp, "dup.log"))
    rc = dup.wait(timeout=20)
    check("second daemon with the same instance exits non-zero", rc != 0, rc)
    check("... with a message naming the instance", "d1" in open(os.path.join(tmp, "dup.log")).read())

    # 6. A second daemon with its own name joins; both share a drain.
    cfg2 = os.path.join(tmp, "d2.yaml")
    write_config(cfg2, "")
    d2 = start(cfg2, "d2", os.path.join(tmp, "d2.log"))
    alive = wait_for(lambda: psql(dsn, "SELECT count(*) FROM tds.engines WHERE state = 'running'") == "2", 20)
    check("two engines running in tds.engines", alive)
    n = 20000
    psql(dsn, f"""INSERT INTO tds.sync_queue (entity_type, zoho_id, payload, priority)
        SELECT 'items', (8000000000000 + g)::text,
               jsonb_build_object('item_id', (8000000000000 + g)::text, 'name', 'Item ' || g,
                                  'sku', 'SKU-' || g, 'status', 'active', 'rate', 10.5,
                                  'stock_on_hand', g % 100,
                                  'last_modified_time', '2025-11-05T09:15:00+0530'),
               5
        FROM generate_series(1, {n}) g""")
    # 7. SIGTERM d1 in the middle of the drain.
    wait_for(lambda: int(psql(dsn, "SELECT count(*) FROM tds.sync_queue WHERE status = 'completed'")) > 2000, 60)
    d1.send_signal(signal.SIGTERM)
    rc = d1.wait(timeout=60)
    check("SIGTERM drains and exits 0", rc == 0, rc)
    done = wait_for(lambda: psql(dsn, "SELECT count(*) FROM tds.sync_queue WHERE status <> 'completed'") == "0", 120, 0.5)
    check("every queue item completed by the remaining engine", done,
          psql(dsn, "SELECT status, count(*) FROM tds.sync_queue GROUP BY 1"))
    check("every item applied once (zoho.items rows)",
          psql(dsn, "SELECT count(*) FROM zoho.items WHERE item_id >= '8000000000000'") == str(n))
    dup_events = psql(dsn, """SELECT count(*) FROM (SELECT entity_id FROM tds.events
        WHERE type = 'tds.entity.create' AND entity_id >= '8000000000000'
        GROUP BY entity_id HAVING count(*) > 1) d""")
    check("no item announced twice", dup_events == "0", dup_events)
    check("d1 marked stopped", psql(dsn, "SELECT state FROM tds.engines WHERE instance = 'd1'") == "stopped")
    d2.send_signal(signal.SIGTERM)
    check("d2 stops cleanly", d2.wait(timeout=60) == 0)

    # 8. Database unreachable at start: no readiness, retries, clean stop.
    cfg3 = os.path.join(tmp, "d3.yaml")
    write_config(cfg3, "")
    with open(cfg3) as f:
        text = f.read().replace(dsn, "host=127.0.0.1 port=1 dbname=nothing")
    with open(cfg3, "w") as f:
        f.write(text)
    msgs.clear()
    log3 = os.path.join(tmp, "d3.log")
    d3 = start(cfg3, "d3", log3, notify=nsock_path)
    check("unreachable database: says it retries",
          wait_for(lambda: "retrying" in open(log3).read(), 10), open(log3).read())
    ready()
    check("unreachable database: no READY=1", not any("READY=1" in m for m in msgs), msgs)
    d3.send_signal(signal.SIGTERM)
    check("unreachable database: SIGTERM stops it", d3.wait(timeout=10) == 0)

    # 9. A slow Zoho under refetch items (issue 16 point 4): every answer takes
    # 2.5 s, so one batch of 8 takes 20 s, twice engine.lease_seconds.  The
    # leases are extended while the worker fetches (none reclaimed, each
    # record fetched once) and no transaction is open across a Zoho call.
    cfg4 = os.path.join(tmp, "d4.yaml")
    write_config(cfg4, "", extra="")
    with open(cfg4) as f:
        text = f.read().replace("  workers: 2\n", "  workers: 1\n  batch_size: 8\n"
                                "  lease_seconds: 10\n")
    with open(cfg4, "w") as f:
        f.write(text)
    ids = [json.loads(l)["contact_id"] for l in
           urllib.request.urlopen(f"{base}/_sim/truth/contacts").read().decode().splitlines()[:8]]
    psql(dsn, "TRUNCATE tds.sync_queue CASCADE")
    urllib.request.urlopen(urllib.request.Request(f"{base}/_sim/counters/reset", data=b"",
                                                  method="POST"))
    urllib.request.urlopen(urllib.request.Request(
        f"{base}/_sim/config", data=json.dumps({"faults": "slow=1:2500"}).encode(),
        method="POST", headers={"Content-Type": "application/json"}))
    log4 = os.path.join(tmp, "d4.log")
    d4 = start(cfg4, "d4", log4)
    wait_for(lambda: psql(dsn, "SELECT count(*) FROM tds.engines WHERE instance = 'd4'"
                               " AND state = 'running'") == "1", 20)
    psql(dsn, "INSERT INTO tds.sync_queue (entity_type, zoho_id, payload) SELECT 'contacts', id,"
              " '{\"refetch\": true}' FROM unnest('{" + ",".join(ids) + "}'::text[]) id;"
              " NOTIFY tds_queue")
    worst_idle = 0.0
    end = time.time() + 60
    while time.time() < end:
        idle = float(psql(dsn, "SELECT coalesce(max(extract(epoch FROM now() - state_change)), 0)"
                               " FROM pg_stat_activity WHERE state = 'idle in transaction'"
                               " AND datname = current_database()"))
        worst_idle = max(worst_idle, idle)
        if psql(dsn, "SELECT count(*) FROM tds.sync_queue WHERE status <> 'completed'") == "0":
            break
        time.sleep(0.2)
    check("slow Zoho: the 8 refetch items completed",
          psql(dsn, "SELECT count(*) FROM tds.sync_queue WHERE status = 'completed'") == "8",
          psql(dsn, "SELECT status, count(*) FROM tds.sync_queue GROUP BY 1"))
    reclaimed = psql(dsn, "SELECT count(*) FROM tds.sync_queue WHERE error_history::text"
                          " LIKE '%expired%'")
    check("slow Zoho: no lease reclaimed", reclaimed == "0", reclaimed)
    counters = json.loads(urllib.request.urlopen(f"{base}/_sim/counters").read())
    gets = sum(sum(v for k, v in codes.items() if k == "200")
               for path, codes in counters["requests"].items() if "/contacts/" in path)
    check("slow Zoho: each record fetched once", gets == 8, counters["requests"])
    check("slow Zoho: no transaction idle across a Zoho call (worst %.2f s)" % worst_idle,
          worst_idle < 1.0, worst_idle)
    urllib.request.urlopen(urllib.request.Request(
        f"{base}/_sim/config", data=json.dumps({"faults": ""}).encode(), method="POST",
        headers={"Content-Type": "application/json"}))

    # 10. SIGHUP applies what the man page calls reloadable (issue 16 point 8):
    # stock.page_size reaches the next stock run, log.file moves the log.
    log4b = os.path.join(tmp, "d4-moved.log")
    with open(cfg4, "w") as f:
        f.write((text.replace("log:\n  level: info\n", f"log:\n  level: info\n  file: {log4b}\n")
                 + "stock:\n  page_size: 50\n").replace(
                    "zoho:\n", "zoho:\n  timeout_seconds: 7\n  rate_limit: {per_minute: 77}\n", 1))
    d4.send_signal(signal.SIGHUP)
    check("SIGHUP: log.file moves the log",
          wait_for(lambda: os.path.exists(log4b) and "changed:" in open(log4b).read(), 10),
          open(log4).read()[-600:])
    check("SIGHUP: the Zoho client takes the new limits and timeout",
          wait_for(lambda: "zoho: now 77 calls a minute" in open(log4b).read()
                   and "; 7 s a request" in open(log4b).read(), 10),
          [l for l in open(log4b).read().splitlines() if "zoho:" in l])
    check("... and the reload says which keys changed",
          "stock.page_size" in open(log4b).read() and "log.file" in open(log4).read(),
          open(log4b).read()[-600:] if os.path.exists(log4b) else "")
    urllib.request.urlopen(urllib.request.Request(f"{base}/_sim/counters/reset", data=b"",
                                                  method="POST"))
    subprocess.run([TDS, "--config", cfg4, "sync", "stock", "--all-items"], env=env, check=True,
                   capture_output=True)
    wait_for(lambda: psql(dsn, "SELECT count(*) FROM tds.sync_runs WHERE run_type = 'stock'"
                               " AND status = 'completed' AND owner = 'd4'") == "1", 60)
    counters = json.loads(urllib.request.urlopen(f"{base}/_sim/counters").read())
    pages = counters["requests"].get("GET /inventory/v1/items", {}).get("200")
    check("SIGHUP: stock.page_size 50 reached the next stock run (200 items: 4 list pages)",
          pages == 4, counters["requests"])
    d4.send_signal(signal.SIGTERM)
    check("d4 stops cleanly", d4.wait(timeout=60) == 0)

    # 11. Identity (issue 16 point 9): a daemon named by engine.instance, and a
    # CLI sync named by --instance, record Zoho usage and token mints under
    # that name (host-pid and cli-host-pid before).
    cfg5 = os.path.join(tmp, "d5.yaml")
    with open(cfg5, "w") as f:
        f.write(text.replace("engine:\n", "engine:\n  instance: named-in-config\n"))
    psql(dsn, "TRUNCATE tds.api_usage, tds.zoho_token_mints; DELETE FROM tds.zoho_token")
    d5 = subprocess.Popen([TDS, "--daemon", "--config", cfg5], env=env,
                          stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "d5.log"), "w"))
    procs.append(d5)
    check("a daemon named in the config registers under that name",
          wait_for(lambda: psql(dsn, "SELECT count(*) FROM tds.engines WHERE instance ="
                                     " 'named-in-config' AND state = 'running'") == "1", 20))
    subprocess.run([TDS, "--config", cfg5, "sync", "stock", "--all-items"], env=env, check=True,
                   capture_output=True)
    wait_for(lambda: psql(dsn, "SELECT count(*) FROM tds.sync_runs WHERE run_type = 'stock'"
                               " AND status = 'completed' AND owner = 'named-in-config'") == "1", 60)
    time.sleep(1.5)  # usage is flushed in the background
    d5.send_signal(signal.SIGTERM)
    check("d5 stops cleanly", d5.wait(timeout=60) == 0)
    usage = psql(dsn, "SELECT string_agg(DISTINCT instance, ',') FROM tds.api_usage")
    mints = psql(dsn, "SELECT string_agg(DISTINCT instance, ',') FROM tds.zoho_token_mints")
    check("usage recorded under the configured name", usage == "named-in-config", usage)
    check("token mints recorded under the configured name", mints == "named-in-config", mints)
    # The access token at rest (issue 18 point 7): sealed, never plaintext.
    sealed = psql(dsn, "SELECT access_token FROM tds.zoho_token")
    minted = urllib.request.urlopen(urllib.request.Request(
        f"{base}/oauth/v2/token", data=b"grant_type=refresh_token&client_id=sim-client-id"
        b"&client_secret=sim-client-secret&refresh_token=sim-refresh-token",
        method="POST")).read().decode()
    check("the access token is sealed at rest (AES-256-GCM, v1:...)",
          sealed.startswith("v1:") and len(sealed) > 40, sealed[:12])
    check("... and the sim's token format is not in the table",
          json.loads(minted)["access_token"][:5] not in sealed, minted[:40])
    psql(dsn, "TRUNCATE tds.api_usage")
    subprocess.run([TDS, "--instance", "cli-named", "--config", cfg5, "sync", "stock",
                    "--all-items", "--wait"], env=env, check=True, capture_output=True)
    usage = psql(dsn, "SELECT string_agg(DISTINCT instance, ',') FROM tds.api_usage")
    check("a CLI sync's usage recorded under --instance", usage == "cli-named", usage)
finally:
    cleanup()

print(f"{failures} failed")
sys.exit(1 if failures else 0)
