#!/usr/bin/env python3
"""scenarios.py: the crash and fault scenarios of issue 9, run by
tests/reliability/run (which builds, starts the private PostgreSQL and
exports TDS_TEST_PG, PGC_DIR and PGC_BIN).  Real binaries only: `tds
--daemon`, `tds sync`, `tds --attach` in tmux, `tds-zoho-sim`; every check
reads the database or the simulator.  Stdlib only.

  1a stock-kills   SIGKILL of a daemon at seeded random moments during a
                   stock sync of N items (100,000; --quick 20,000)
  1b queue-kills   the same during a drain of N queue items carrying full
                   Zoho records (the simulator's truth)
  2  pg-restart    PostgreSQL restarted (fast, then immediate) mid-run
  3  faults        sync all --full under 30% 500s, 10% 429s (--quick 3%),
                   timeouts, resets, truncated JSON; then again without 429s
                   and more resets, truncations and malformed JSON; one
                   record that can never succeed
  4  tokens        access tokens expiring every 30 s (--quick 10 s) during a
                   long sync, then a revoked refresh token
  5  fleet-kills   three engines, one SIGKILLed every 10 s while queue work
                   flows and an every-minute schedule runs

Each check prints "ok:" or "FAIL:"; the last line is "N passed, M failed"
(checks)."""
import argparse
import csv
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request

ap = argparse.ArgumentParser()
ap.add_argument("--tds", required=True)
ap.add_argument("--sim", required=True)
ap.add_argument("--pgcluster", required=True)
ap.add_argument("--compare", required=True)
ap.add_argument("--quick", action="store_true")
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--only", default="", help="comma-separated scenario names")
ap.add_argument("--items", type=int, default=0, help="override the item counts (debugging)")
ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
A = ap.parse_args()
PG = os.environ["TDS_TEST_PG"]
Q = A.quick
ITEMS = A.items
TMP = tempfile.mkdtemp(prefix="tds-rel-")
os.chmod(TMP, 0o755)
passed = failed = 0
procs = []


def say(msg):
    print(msg, flush=True)


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        say(f"  ok: {name}")
    else:
        failed += 1
        d = str(detail)
        say(f"  FAIL: {name}" + (f" ({d[:1500]})" if d else ""))
    return bool(cond)


def psql(dsn, sql, timeout=120):
    r = subprocess.run(["psql", "-X", dsn, "-qAt", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode:
        raise RuntimeError(f"psql: {r.stderr.strip()} in: {sql[:200]}")
    return r.stdout.strip()


def psql_try(dsn, sql):
    try:
        return psql(dsn, sql, timeout=20)
    except (RuntimeError, subprocess.TimeoutExpired):
        return None


def wait_for(pred, timeout, step=0.25):
    end = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() >= end:
            return None
        time.sleep(step)


class Deadline(Exception):
    pass


def pgc(cmd):
    """runs a pgcluster.sh function (pgc_restart fast|immediate)."""
    r = subprocess.run(["bash", "-c", f'. "{A.pgcluster}"; {cmd}'], capture_output=True,
                       text=True, timeout=120)
    return r.returncode == 0


# --- the simulator ---------------------------------------------------------

class Sim:
    def __init__(self, name, *args):
        self.pf = os.path.join(TMP, f"{name}.port")
        self.log = open(os.path.join(TMP, f"{name}.sim.log"), "w")
        self.p = subprocess.Popen([A.sim, "--listen", "127.0.0.1:0", "--port-file", self.pf,
                                   "--quiet", *args], stdout=subprocess.DEVNULL,
                                  stderr=self.log)
        procs.append(self.p)
        if not wait_for(lambda: os.path.exists(self.pf) and open(self.pf).read().strip(), 60,
                        0.1):
            raise RuntimeError("simulator did not start")
        self.port = int(open(self.pf).read().strip())
        self.base = f"http://127.0.0.1:{self.port}"

    def ctl(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read() or b"null")

    def truth(self, entity):
        with urllib.request.urlopen(f"{self.base}/_sim/truth/{entity}", timeout=120) as r:
            return [line for line in r.read().decode().splitlines() if line.strip()]

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


# --- databases and daemons -------------------------------------------------

def new_db(name):
    db = f"rel_{name}_{os.getpid()}"
    psql(PG, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    psql(PG, f"CREATE DATABASE {db}")
    dsn = f"{PG} dbname={db}"
    env = base_env()
    env["TDS_DATABASE_URL"] = dsn
    r = subprocess.run([A.tds, "migrate"], env=env, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"migrate: {r.stderr}")
    return db, dsn


def drop_db(db):
    if A.keep:
        say(f"  .. kept database {db}")
        return
    subprocess.run(["psql", "-X", PG, "-qc", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"],
                   capture_output=True)


def base_env():
    env = dict(os.environ, XDG_CONFIG_HOME="/nonexistent")
    for k in ("TDS_CONFIG", "TDS_DATABASE_URL", "TDS_WORKER_COUNT", "TDS_BATCH_SIZE",
              "TDS_ENABLE_AUTO_SYNC", "TDS_LOG_LEVEL"):
        env.pop(k, None)
    return env


def write_config(path, dsn, sim, workers=4, timeout=10, schedule=None, extra=""):
    sched = "schedule:\n  enabled: false\n"
    if schedule:
        sched = "schedule:\n  enabled: true\n" + "".join(
            f'  {k}: "{v}"\n' for k, v in schedule.items())
    with open(path, "w") as f:
        f.write(f"""database:
  dsn: "{dsn}"
  connect_timeout: 2
zoho:
  organization_id: "60000000001"
  client_id: sim-client-id
  client_secret: sim-client-secret
  refresh_token: sim-refresh-token
  accounts_url: {sim.base}
  books_url: {sim.base}/books/v3
  inventory_url: {sim.base}/inventory/v1
  timeout_seconds: {timeout}
  rate_limit: {{per_minute: 10000, per_day: 10000000}}
engine:
  workers: {workers}
  heartbeat_seconds: 1
  dead_after_seconds: 2
  lease_seconds: 10
  retry: {{max_attempts: 5, backoff_seconds: 1, backoff_max_seconds: 4}}
{sched}images:
  enabled: false
log:
  level: info
{extra}""")
    return path


class Daemon:
    def __init__(self, cfg, instance):
        self.cfg, self.instance, self.p, self.starts = cfg, instance, None, 0
        self.logpath = os.path.join(TMP, f"{instance}.log")

    def start(self):
        self.starts += 1
        log = open(self.logpath, "a")
        log.write(f"--- start {self.starts} at {time.strftime('%H:%M:%S')}\n")
        log.flush()
        self.p = subprocess.Popen([A.tds, "--daemon", "--config", self.cfg, "--instance",
                                   self.instance], env=base_env(), stdout=subprocess.DEVNULL,
                                  stderr=log)
        procs.append(self.p)

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def kill(self):
        if self.alive():
            self.p.send_signal(signal.SIGKILL)
            self.p.wait()

    def term(self, timeout=60):
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
            try:
                return self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                return "timeout"
        return self.p.returncode if self.p else None

    def tail(self, n=1500):
        try:
            return open(self.logpath).read()[-n:]
        except OSError:
            return ""


def tds_cli(dsn, *args, timeout=120):
    env = base_env()
    env["TDS_DATABASE_URL"] = dsn
    return subprocess.run([A.tds, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def request(dsn, *args):
    r = tds_cli(dsn, "sync", *args)
    if r.returncode:
        raise RuntimeError(f"tds sync {' '.join(args)}: {r.stderr.strip()}")
    return int(r.stdout.strip())


def active_runs(dsn):
    v = psql_try(dsn, "SELECT count(*) FROM tds.sync_runs WHERE status IN ('pending','running')")
    return None if v is None else int(v)


def compare(sim, dsn):
    r = subprocess.run([sys.executable, A.compare, str(sim.port), dsn], capture_output=True,
                       text=True)
    return r.returncode == 0, r.stdout.strip()


APPLY_COUNTER = """
CREATE TABLE IF NOT EXISTS public.rel_applies (item_id text, lmt text, n int NOT NULL,
    PRIMARY KEY (item_id, lmt));
CREATE OR REPLACE FUNCTION public.rel_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.rel_applies VALUES (NEW.item_id, coalesce(NEW.last_modified_time::text, ''), 1)
    ON CONFLICT (item_id, lmt) DO UPDATE SET n = rel_applies.n + 1;
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS rel_count ON zoho.items;
CREATE TRIGGER rel_count AFTER INSERT OR UPDATE ON zoho.items FOR EACH ROW
  EXECUTE FUNCTION public.rel_count();
"""


def event_checks(dsn, what):
    cr = psql(dsn, "SELECT count(*), count(DISTINCT entity_id) FROM tds.events"
                   " WHERE type = 'tds.entity.create'")
    n, d = cr.split("|")
    check(f"{what}: one create event per item ({n} events, {d} items)", n == d and int(n) > 0,
          cr)
    dup = psql(dsn, "SELECT count(*) FROM (SELECT 1 FROM tds.events WHERE type LIKE"
                    " 'tds.entity.%' GROUP BY type, entity_id, data->>'last_modified_time'"
                    " HAVING count(*) > 1) d")
    check(f"{what}: no change announced twice (type, item, last_modified_time)", dup == "0",
          f"{dup} duplicated")
    dup2 = psql(dsn, "SELECT count(*) FROM (SELECT 1 FROM tds.events WHERE type LIKE"
                     " 'tds.entity.%' GROUP BY type, entity_id, data HAVING count(*) > 1) d")
    check(f"{what}: no event with the same (type, entity_id, data) twice", dup2 == "0",
          f"{dup2} duplicated")


def applies_check(dsn, what):
    row = psql(dsn, "SELECT count(*), coalesce(max(n), 0), count(*) FILTER (WHERE n > 1)"
                    " FROM public.rel_applies")
    n, mx, twice = row.split("|")
    check(f"{what}: no record version written twice (trigger counter: {n} writes, max {mx})",
          twice == "0", row)


def daemon_ready(dsn, instance, timeout=30):
    return wait_for(lambda: psql_try(
        dsn, f"SELECT state FROM tds.engines WHERE instance = '{instance}'"
             f" AND heartbeat_at > now() - interval '3 s'") == "running", timeout, 0.1)


# --- 1a: SIGKILL during a stock sync ---------------------------------------

def s_stock_kills(rng):
    n = ITEMS or (20000 if Q else 100000)
    kills = 5 if Q else 20
    db, dsn = new_db("stock")
    sim = Sim("stock", "--items", str(n), "--no-limits", "--seed", str(A.seed + 21))
    try:
        psql(dsn, APPLY_COUNTER)
        cfg = write_config(os.path.join(TMP, "stock.yaml"), dsn, sim, workers=4)
        d = Daemon(cfg, "k1")
        d.start()
        check("daemon k1 running", daemon_ready(dsn, "k1"), d.tail())
        request(dsn, "stock", "--all-items")
        done_kills, rounds, at, last_mutate = 0, 1, [], 0.0
        end = time.time() + (150 if Q else 480)
        while done_kills < kills and time.time() < end:
            time.sleep(rng.uniform(0.4, 3.0))
            if active_runs(dsn) == 0:
                # the sync finished before the next kill: Zoho changes, a new sync starts.
                # Zoho's times have whole seconds: two changes of one record within a
                # second would look like one version written twice, so wait a second.
                time.sleep(max(0.0, last_mutate + 1.1 - time.time()))
                last_mutate = time.time()
                m = sim.ctl("POST", "/_sim/mutate", {"entity": "items", "update": n // 20,
                                                     "create": n // 200,
                                                     "seed": rng.randrange(1 << 30)})
                rounds += 1
                say(f"  .. run {rounds}: sync done; {len(m['updated'])} updated,"
                    f" {len(m['created'])} created in Zoho; new stock sync")
                request(dsn, "stock", "--all-items")
                continue
            d.kill()
            done_kills += 1
            at.append(psql(dsn, "SELECT count(*) FROM zoho.items"))
            time.sleep(2.2)  # > dead_after_seconds: the restarted leader heals the run at once
            d.start()
        say(f"  .. {done_kills} kills in {rounds} sync(s); items in the table at each kill: "
            + ",".join(at))
        check(f"{done_kills} SIGKILLs during the sync (wanted {kills})", done_kills >= kills)
        fin = wait_for(lambda: active_runs(dsn) == 0, 240 if not Q else 120, 0.5)
        check("every run ended (healed and resumed after each kill)", fin,
              psql(dsn, "SELECT id, status, trigger, resumed_from FROM tds.sync_runs"
                        " ORDER BY id DESC LIMIT 5"))
        st = psql(dsn, "SELECT status, count(*) FROM tds.sync_runs GROUP BY 1 ORDER BY 1")
        say("  .. runs: " + st.replace("\n", ", "))
        last = psql(dsn, "SELECT status FROM tds.sync_runs ORDER BY id DESC LIMIT 1")
        check("the last run completed", last == "completed", last)
        bad = psql(dsn, "SELECT count(*) FROM tds.sync_runs WHERE status = 'interrupted'"
                        " AND resumed_at IS NULL")
        check("every interrupted run was resumed", bad == "0", bad)
        ok, out = compare(sim, dsn)
        check(f"zoho.items/item_locations equal the truth: {out.splitlines()[-1]}", ok, out)
        event_checks(dsn, "stock")
        applies_check(dsn, "stock")
        dlq = psql(dsn, "SELECT count(*) FROM tds.dead_letter")
        check("dead-letter queue empty", dlq == "0", dlq)
        d.term()
    finally:
        sim.stop()
        drop_db(db)


# --- 1b: SIGKILL during a queue drain --------------------------------------

def enqueue_records(dsn, lines, priority=5):
    """Queues the records both ways a payload is kept: half in their rows
    (as SQL writes them), half in tds.queue_payloads (as tds keeps records)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    for line in lines:
        rec = json.loads(line)
        w.writerow(["items", rec["item_id"], line, priority])
    r = subprocess.run(["psql", "-X", dsn, "-qv", "ON_ERROR_STOP=1",
                        "-c", "CREATE TEMP TABLE s (entity_type text, zoho_id text,"
                              " payload jsonb, priority smallint)",
                        "-c", "COPY s FROM STDIN WITH (FORMAT csv)",
                        "-c", "WITH q AS (INSERT INTO tds.sync_queue"
                              " (entity_type, zoho_id, payload, priority)"
                              " SELECT entity_type, zoho_id, CASE WHEN hashtext(zoho_id) % 2 = 0"
                              " THEN payload END, priority FROM s RETURNING id, zoho_id)"
                              " INSERT INTO tds.queue_payloads (queue_id, payload)"
                              " SELECT q.id, s.payload FROM q JOIN s USING (zoho_id)"
                              " WHERE hashtext(q.zoho_id) % 2 <> 0"],
                       input=buf.getvalue(), text=True, capture_output=True)
    if r.returncode:
        raise RuntimeError("COPY: " + r.stderr)
    return len(lines)


def s_queue_kills(rng):
    n = ITEMS or (20000 if Q else 100000)
    kills = 5 if Q else 20
    db, dsn = new_db("queue")
    sim = Sim("queue", "--items", str(n), "--no-limits", "--seed", str(A.seed + 22))
    try:
        psql(dsn, APPLY_COUNTER)
        t0 = time.time()
        enq = enqueue_records(dsn, sim.truth("items"))
        say(f"  .. {enq} queue items with the simulator's records enqueued in"
            f" {time.time() - t0:.1f} s")
        cfg = write_config(os.path.join(TMP, "queue.yaml"), dsn, sim, workers=4)
        d = Daemon(cfg, "q1")
        d.start()
        done_kills, waves, at, last_mutate = 0, 1, [], 0.0
        end = time.time() + (150 if Q else 420)
        while done_kills < kills and time.time() < end:
            time.sleep(rng.uniform(0.5, 2.5))
            left = int(psql(dsn, "SELECT count(*) FROM tds.sync_queue WHERE status <> 'completed'"))
            if left < 200:
                # drained before the next kill: Zoho changes, the changes are queued
                time.sleep(max(0.0, last_mutate + 1.1 - time.time()))
                last_mutate = time.time()
                m = sim.ctl("POST", "/_sim/mutate", {"entity": "items", "update": n // 10,
                                                     "seed": rng.randrange(1 << 30)})
                upd = set(m["updated"])
                lines = [ln for ln in sim.truth("items") if json.loads(ln)["item_id"] in upd]
                enq += enqueue_records(dsn, lines)
                waves += 1
                say(f"  .. wave {waves}: {len(lines)} changed records enqueued")
                continue
            d.kill()
            done_kills += 1
            at.append(str(left))
            time.sleep(0.3)
            d.start()
        say(f"  .. {done_kills} kills over {waves} wave(s); items left at each kill: "
            + ",".join(at))
        check(f"{done_kills} SIGKILLs during the drain (wanted {kills})", done_kills >= kills)
        fin = wait_for(lambda: psql_try(dsn, "SELECT count(*) FROM tds.sync_queue"
                                             " WHERE status <> 'completed'") == "0",
                       120 if Q else 180, 0.5)
        check("every queue item completed (expired leases reclaimed)", fin,
              psql(dsn, "SELECT status, count(*) FROM tds.sync_queue GROUP BY 1"))
        tot = psql(dsn, "SELECT count(*) FROM tds.sync_queue")
        check(f"no queue item lost ({tot} rows, {enq} enqueued)", int(tot) == enq)
        ok, out = compare(sim, dsn)
        check(f"zoho.items/item_locations equal the truth: {out.splitlines()[-1]}", ok, out)
        event_checks(dsn, "queue")
        applies_check(dsn, "queue")
        rec = psql(dsn, "SELECT count(*) FROM tds.sync_queue WHERE attempts > 1")
        say(f"  .. {rec} queue items needed more than one attempt (reclaimed leases)")
        dlq = psql(dsn, "SELECT count(*) FROM tds.dead_letter")
        check("dead-letter queue empty", dlq == "0", dlq)
        d.term()
    finally:
        sim.stop()
        drop_db(db)


# --- 2: PostgreSQL restarted mid-run ---------------------------------------

def tmux(sock, *args):
    return subprocess.run(["tmux", "-L", sock, *args], capture_output=True, text=True)


def s_pg_restart(rng):
    n = ITEMS or (10000 if Q else 30000)
    db, dsn = new_db("pgr")
    sim = Sim("pgr", "--items", str(n), "--no-limits", "--seed", str(A.seed + 23))
    sock = f"tds-rel-{os.getpid()}"
    have_tmux = shutil.which("tmux") is not None
    try:
        cfg = write_config(os.path.join(TMP, "pgr.yaml"), dsn, sim, workers=2)
        ds = [Daemon(cfg, "p1"), Daemon(cfg, "p2")]
        for d in ds:
            d.start()
        check("two daemons running", all(daemon_ready(dsn, d.instance) for d in ds))
        if have_tmux:
            cmd = (f"env LANG=C.UTF-8 TERM=screen-256color XDG_CONFIG_HOME=/nonexistent "
                   f"{A.tds} --attach --config {cfg}; echo EXITED $?; sleep 600")
            tmux(sock, "new-session", "-d", "-s", "c", "-x", "120", "-y", "40", cmd)
            tmux(sock, "send-keys", "-t", "c", "2")  # the runs pane
        for mode in ("fast", "immediate"):
            psql(dsn, "TRUNCATE zoho.items CASCADE")
            rid = request(dsn, "stock", "--all-items")
            wait_for(lambda: int(psql_try(dsn, "SELECT count(*) FROM zoho.items") or 0)
                     >= n // 4, 120, 0.1)
            before = psql(dsn, "SELECT count(*) FROM zoho.items")
            t0 = time.time()
            ok = pgc(f"pgc_restart {mode}")
            say(f"  .. pgc_restart {mode} at {before}/{n} items took {time.time() - t0:.1f} s")
            check(f"{mode}: PostgreSQL restarted", ok)
            rec = wait_for(lambda: psql_try(
                dsn, "SELECT count(*) FROM tds.engines WHERE state = 'running'"
                     " AND heartbeat_at > now() - interval '3 s'") == "2", 60, 0.5)
            check(f"{mode}: both engines reconnected by themselves (fresh heartbeats)", rec,
                  ds[0].tail(800))
            check(f"{mode}: both daemons still running", all(d.alive() for d in ds))
            # An interrupted run is resumed by the janitor's next pass (a new
            # run with trigger 'heal'): wait for the newest run to settle.
            fin = wait_for(lambda: active_runs(dsn) == 0 and psql_try(
                dsn, "SELECT status FROM tds.sync_runs ORDER BY id DESC LIMIT 1")
                in ("completed", "failed", "cancelled"), 180, 0.5)
            runs = psql(dsn, f"SELECT id, status, trigger, coalesce(resumed_from, 0), "
                             f"coalesce(error, '') FROM tds.sync_runs WHERE id >= {rid}"
                             " ORDER BY id")
            say("  .. runs: " + runs.replace("\n", "; "))
            last = psql(dsn, "SELECT status FROM tds.sync_runs ORDER BY id DESC LIMIT 1")
            check(f"{mode}: the run completed or was resumed to completion", fin and
                  last == "completed", runs)
            if last != "completed":
                # the engines must at least serve the next run
                r2 = request(dsn, "stock", "--all-items")
                wait_for(lambda: active_runs(dsn) == 0, 180, 0.5)
                st = psql(dsn, f"SELECT status FROM tds.sync_runs WHERE id = {r2}")
                check(f"{mode}: a new run after the outage completes", st == "completed", st)
            ok, out = compare(sim, dsn)
            check(f"{mode}: exact afterwards: {out.splitlines()[-1]}", ok, out)
            al = psql(dsn, "SELECT count(*), coalesce(sum(occurrences), 0) FROM tds.alerts"
                           " WHERE alert_type = 'db_unreachable'")
            check(f"{mode}: the outage is recorded as an alert (db_unreachable: count,"
                  f" occurrences = {al})", al.split("|")[0] != "0", al)
            if have_tmux:
                rid2, st2 = psql(dsn, "SELECT id, status FROM tds.sync_runs"
                                      " ORDER BY id DESC LIMIT 1").split("|")

                def console_fresh():
                    s = tmux(sock, "capture-pane", "-p", "-t", "c").stdout
                    row = [ln for ln in s.splitlines() if ln.strip().startswith(rid2 + " ")]
                    return ("EXITED" not in s and "unreachable" not in s and row
                            and st2 in row[0])
                seen = wait_for(console_fresh, 20, 0.5)
                scr = tmux(sock, "capture-pane", "-p", "-t", "c").stdout.strip()[-1500:]
                redrawn = seen
                if not seen:  # a stale terminal, or a stale state? ask for a full redraw
                    tmux(sock, "send-keys", "-t", "c", "C-l")
                    redrawn = wait_for(console_fresh, 5, 0.5)
                check(f"{mode}: the attached console reconnected: run {rid2} {st2} on screen,"
                      " no outage message", seen,
                      ("after Ctrl-L redraw the screen is right; " if redrawn else
                       "still wrong after Ctrl-L; ") + scr)
        if have_tmux:
            tmux(sock, "send-keys", "-t", "c", "q")
            gone = wait_for(lambda: "EXITED 0" in tmux(sock, "capture-pane", "-p", "-t",
                                                       "c").stdout, 10, 0.2)
            check("console quits with status 0", gone,
                  tmux(sock, "capture-pane", "-p", "-t", "c").stdout[-600:])
        else:
            say("  .. tmux missing: console part skipped")
        for d in ds:
            check(f"{d.instance} stops cleanly on SIGTERM", d.term() == 0, d.tail(600))
    finally:
        if have_tmux:
            tmux(sock, "kill-server")
        sim.stop()
        drop_db(db)


# --- 3: faults at high rates -----------------------------------------------

ENTITIES = {  # entity: (table, id field)
    "items": ("zoho.items", "item_id"), "contacts": ("zoho.contacts", "contact_id"),
    "salesorders": ("zoho.salesorders", "salesorder_id"),
    "invoices": ("zoho.invoices", "invoice_id"),
    "customerpayments": ("zoho.customerpayments", "payment_id"),
    "creditnotes": ("zoho.creditnotes", "creditnote_id"), "bills": ("zoho.bills", "bill_id"),
    "vendorpayments": ("zoho.vendorpayments", "payment_id"), "users": ("zoho.users", "user_id"),
    "locations": ("zoho.locations", "location_id"),
    "inventoryadjustments": ("zoho.inventoryadjustments", "inventory_adjustment_id"),
    "pricebooks": ("zoho.pricebooks", "pricebook_id"),
    "purchaseorders": ("zoho.purchaseorders", "purchaseorder_id"),
}
# A 429 with code 44 makes the client pause until Zoho's minute window ends
# (up to 60 s, as Zoho requires), so every 429 costs about a minute of a run
# that is otherwise a few seconds long: --quick draws fewer of them.
FAULTS = ("500=0.3,429=%s,timeout=0.02:3000,reset=0.02,truncate=0.02"
          % ("0.03" if Q else "0.1"))


FAULTS2 = "500=0.2,timeout=0.04:3000,reset=0.06,truncate=0.06,malformed=0.03"


def s_faults(rng):
    db, dsn = new_db("faults")
    sim = Sim("faults", "--items", "1000", "--no-limits",
              "--seed", str(A.seed + 24))
    try:
        bad_id = json.loads(sim.truth("items")[0])["item_id"]
        sim.ctl("PATCH", f"/_sim/items/{bad_id}", {"rate": "twelve"})
        cfg = write_config(os.path.join(TMP, "faults.yaml"), dsn, sim, workers=4, timeout=2)
        d = Daemon(cfg, "f1")
        d.start()
        # phase 1: the mix; phase 2: no 429s (each costs a minute), so
        # more of the connection-level faults in the same time
        for phase, spec in ((1, FAULTS), (2, FAULTS2)):
            faults_phase(sim, dsn, d, bad_id, phase, spec)
        d.term()
    finally:
        sim.stop()
        drop_db(db)


def faults_phase(sim, dsn, d, bad_id, phase, spec):
    if phase > 1:
        psql(dsn, "TRUNCATE tds.dead_letter, tds.sync_queue CASCADE; " + "; ".join(
            f"TRUNCATE {t} CASCADE" for t, _ in ENTITIES.values()))
    first = int(psql(dsn, "SELECT coalesce(max(id), 0) FROM tds.sync_runs")) + 1
    sim.ctl("POST", "/_sim/config", {"faults": spec})
    sim.ctl("POST", "/_sim/counters/reset", {})
    t0 = time.time()
    r = tds_cli(dsn, "sync", "all", "--full")
    check(f"phase {phase}: tds sync all --full accepted", r.returncode == 0, r.stderr)
    fin = wait_for(lambda: active_runs(dsn) == 0 and psql_try(
        dsn, f"SELECT count(*) FROM tds.sync_runs WHERE id >= {first}") not in (None, "0"),
        420, 1)
    say(f"  .. phase {phase}: runs ended after {time.time() - t0:.0f} s under faults {spec}")
    runs = psql(dsn, "SELECT run_type, coalesce(entity_type, 'all'), status, total,"
                     f" succeeded, failed, api_calls FROM tds.sync_runs WHERE id >= {first}"
                     " ORDER BY id")
    say("  .. runs (type|entity|status|total|succeeded|failed|api_calls): "
        + runs.replace("\n", "; "))
    check(f"phase {phase}: every run completed", fin and all(
        row.split("|")[2] == "completed" for row in runs.splitlines()), runs)
    counters = sim.ctl("GET", "/_sim/counters")
    sim.ctl("POST", "/_sim/config", {"faults": ""})
    bad_entities = []
    for ent, (table, idf) in ENTITIES.items():
        truth = {json.loads(ln)[idf] for ln in sim.truth(ent)}
        cond = " WHERE deleted_at IS NULL" if psql(
            dsn, f"SELECT count(*) FROM information_schema.columns WHERE"
                 f" table_schema || '.' || table_name = '{table}'"
                 f" AND column_name = 'deleted_at'") == "1" else ""
        have = set(psql(dsn, f"SELECT {idf} FROM {table}{cond}").split())
        if ent == "items":
            truth.discard(bad_id)
        if truth != have:
            bad_entities.append(f"{ent}: {len(truth)} in Zoho, {len(have)} here, missing"
                                f" {len(truth - have)}, extra {len(have - truth)}")
    check(f"phase {phase}: every entity's table (12) has exactly the simulator's ids"
          " (the bad item aside)", not bad_entities, bad_entities)
    dlq = psql(dsn, "SELECT entity_type, zoho_id FROM tds.dead_letter")
    check(f"phase {phase}: the dead-letter queue holds only the record that can never succeed",
          dlq == f"items|{bad_id}", dlq)
    ok_calls = bad_calls = 0
    for ep, codes in counters["requests"].items():
        if "oauth" in ep:
            continue
        for code, k in codes.items():
            if code == "200":
                ok_calls += k
            else:
                bad_calls += k
    drawn = {k: v for k, v in counters.get("faults", {}).items() if v}
    say(f"  .. phase {phase}: simulator: {ok_calls} answered calls, {bad_calls} faulted;"
        f" faults drawn {drawn}")
    check(f"phase {phase}: retries bounded: {ok_calls + bad_calls} calls for {ok_calls}"
          " answers (at most 4 per answer)", ok_calls > 0 and ok_calls + bad_calls <= 4 * ok_calls)
    check(f"phase {phase}: daemon still running", d.alive(), d.tail())


# --- 4: token expiry, then a revoked refresh token -------------------------

def s_tokens(rng):
    ttl = 10 if Q else 30
    n = 20000 if Q else 40000
    db, dsn = new_db("tokens")
    # slow answers stretch the sync beyond two token lifetimes
    sim = Sim("tokens", "--items", str(n), "--no-limits", "--token-ttl", str(ttl),
              "--seed", str(A.seed + 25), "--faults", "slow=1:120")
    try:
        cfg = write_config(os.path.join(TMP, "tokens.yaml"), dsn, sim, workers=2)
        d = Daemon(cfg, "t1")
        d.start()
        t0 = time.time()
        rid = request(dsn, "stock", "--all-items")
        fin = wait_for(lambda: psql_try(dsn, f"SELECT status FROM tds.sync_runs WHERE id = {rid}")
                       in ("completed", "failed", "cancelled", "interrupted"), 300, 1)
        took = time.time() - t0
        c = sim.ctl("GET", "/_sim/counters")
        minted = c.get("tokens_minted", 0)
        r401 = sum(v.get("401", 0) for v in c["requests"].values())
        say(f"  .. sync took {took:.0f} s with token TTL {ttl} s: {minted} tokens minted,"
            f" {r401} calls answered 401")
        check(f"the sync outlived two token lifetimes ({took:.0f} s > {2 * ttl} s)",
              took > 2 * ttl)
        st = psql(dsn, f"SELECT status, failed, coalesce(error, '') FROM tds.sync_runs WHERE id = {rid}")
        check("the sync survived token expiry (completed, nothing failed)", fin and
              st.startswith("completed|0|"), st)
        check(f"fresh tokens were minted as they expired ({minted} >= {int(took // ttl)})",
              minted >= max(2, int(took // ttl)))
        ok, out = compare(sim, dsn)
        check(f"exact: {out.splitlines()[-1]}", ok, out)
        # the refresh token is revoked and every access token expired mid-sync
        psql(dsn, "TRUNCATE zoho.items CASCADE")
        sim.ctl("POST", "/_sim/counters/reset", {})
        rid = request(dsn, "stock", "--all-items")
        wait_for(lambda: int(psql_try(dsn, "SELECT count(*) FROM zoho.items") or 0) > 400, 60)
        sim.ctl("POST", "/_sim/config", {"revoke_refresh_token": True, "expire_tokens": True})
        t1 = time.time()
        fin = wait_for(lambda: psql_try(dsn, f"SELECT status FROM tds.sync_runs WHERE id = {rid}")
                       in ("completed", "failed", "cancelled", "interrupted"), 120, 0.5)
        st = psql(dsn, f"SELECT status, coalesce(error, '') FROM tds.sync_runs WHERE id = {rid}")
        say(f"  .. after the revocation the run ended in {time.time() - t1:.1f} s: {st[:200]}")
        check("revoked refresh token: the sync stops (failed), not hanging or retrying forever",
              fin and st.startswith("failed|"), st)
        time.sleep(8)  # time for a second alert, a retry loop, a crash to show
        al = psql(dsn, "SELECT alert_type, severity, occurrences FROM tds.alerts"
                       " WHERE severity = 'critical'")
        check("exactly one critical alert, zoho_auth", len(al.splitlines()) == 1 and
              al.startswith("zoho_auth|critical|"),
              al or psql(dsn, "SELECT alert_type, severity, title FROM tds.alerts"))
        c = sim.ctl("GET", "/_sim/counters")
        tok = sum(c["requests"].get("POST /oauth/v2/token", {}).values())
        check(f"token endpoint not hammered after the revocation ({tok} refresh attempts)",
              tok <= 20, c["requests"].get("POST /oauth/v2/token"))
        check("the daemon is still running (it waits for a new token)", d.alive(), d.tail())
        d.term()
    finally:
        sim.stop()
        drop_db(db)


# --- 5: three engines, one killed every 10 s -------------------------------

def synthetic(i):
    iid = str(9000000000000 + i)
    rec = {"item_id": iid, "name": f"Rel item {i}", "sku": f"REL-{i}", "status": "active",
           "rate": 10.5, "stock_on_hand": i % 100,
           "last_modified_time": "2025-11-05T09:15:00+0530"}
    return json.dumps(rec)


def s_fleet_kills(rng):
    dur = 40 if Q else 80
    db, dsn = new_db("fleet")
    sim = Sim("fleet", "--items", "300", "--no-limits", "--seed", str(A.seed + 26))
    stop = threading.Event()
    try:
        psql(dsn, APPLY_COUNTER)
        cfg = write_config(os.path.join(TMP, "fleet.yaml"), dsn, sim, workers=2, schedule={
            "stock_sync": "* * * * *", "full_sync": "", "incremental_sync": "",
            "reconcile": "", "auto_heal": "*/15 * * * *"})
        ds = [Daemon(cfg, f"e{i}") for i in (1, 2, 3)]
        for d in ds:
            d.start()
        check("three engines running", all(daemon_ready(dsn, d.instance) for d in ds))
        enq = [0]

        def feeder():
            while not stop.is_set():
                k = enq[0]
                enqueue_records(dsn, [synthetic(k + j) for j in range(100)])
                enq[0] += 100
                stop.wait(0.5)

        # start at second 50 of a minute: the next slot comes 10 s in (and
        # another 60 s later in the full run)
        time.sleep((50 - time.time() % 60) % 60)
        th = threading.Thread(target=feeder)
        th.start()
        t0 = time.time()
        start_ts = psql(dsn, "SELECT now()")
        kills = []
        while time.time() - t0 < dur:
            time.sleep(10 - ((time.time() - t0) % 10))
            if time.time() - t0 >= dur + 1:
                break
            d = rng.choice(ds)
            leader = psql(dsn, "SELECT holder FROM tds.leases WHERE name = 'leader'")
            d.kill()
            kills.append(d.instance + ("*" if leader == d.instance else ""))
            time.sleep(1)
            d.start()
        stop.set()
        th.join()
        end_ts = psql(dsn, "SELECT now()")
        say(f"  .. {len(kills)} kills in {time.time() - t0:.0f} s (* = the leader): "
            + " ".join(kills) + f"; {enq[0]} queue items fed meanwhile")
        check(f"{len(kills)} engines killed, one every 10 s", len(kills) >= dur // 10 - 1)
        fin = wait_for(lambda: psql_try(dsn, "SELECT count(*) FROM tds.sync_queue"
                                             " WHERE status <> 'completed'") == "0", 90, 0.5)
        check("work continued: every queue item completed", fin,
              psql(dsn, "SELECT status, count(*) FROM tds.sync_queue GROUP BY 1"))
        have = psql(dsn, "SELECT count(*) FROM zoho.items WHERE item_id >= '9000000000000'")
        check(f"every fed item applied ({have} of {enq[0]})", int(have) == enq[0])
        applies_check(dsn, "fleet")
        slots = psql(dsn, "SELECT count(*) FROM generate_series(date_trunc('minute',"
                          f" '{start_ts}'::timestamptz) + interval '1 min',"
                          f" '{end_ts}'::timestamptz, interval '1 min')")
        per = psql(dsn, "SELECT date_trunc('minute', created_at), count(*) FROM tds.sync_runs"
                        " WHERE trigger = 'schedule' GROUP BY 1 ORDER BY 1")
        counts = [int(x.split("|")[1]) for x in per.splitlines()]
        sched = psql(dsn, "SELECT name, last_status FROM tds.schedules WHERE name = 'stock_sync'")
        say(f"  .. {slots} minute slots passed; scheduled runs per minute: "
            + (", ".join(per.splitlines()) or "none") + f"; schedule: {sched}")
        check("no slot fired twice (at most one scheduled run per minute)",
              all(c == 1 for c in counts), per)
        check(f"the scheduler fired despite the kills ({sum(counts)} runs for {slots} slots)",
              sum(counts) >= max(1, int(slots) - 1), per)
        fin = wait_for(lambda: active_runs(dsn) == 0, 90, 0.5)
        runs = psql(dsn, "SELECT status, trigger, count(*) FROM tds.sync_runs GROUP BY 1, 2")
        say("  .. runs: " + runs.replace("\n", "; "))
        unres = psql(dsn, "SELECT count(*) FROM tds.sync_runs WHERE status NOT IN"
                          " ('completed', 'interrupted') OR (status = 'interrupted' AND"
                          " resumed_at IS NULL)")
        check("every run completed or was interrupted and resumed", fin and unres == "0", runs)
        for d in ds:
            d.term()
    finally:
        stop.set()
        sim.stop()
        drop_db(db)


SCENARIOS = [("stock-kills", s_stock_kills), ("queue-kills", s_queue_kills),
             ("pg-restart", s_pg_restart), ("faults", s_faults), ("tokens", s_tokens),
             ("fleet-kills", s_fleet_kills)]


def main():
    only = {x for x in A.only.split(",") if x}
    t_all = time.time()
    timings = []
    for i, (name, fn) in enumerate(SCENARIOS):
        if only and name not in only:
            continue
        seed = A.seed * 1000 + i
        say(f"== {name} (seed {seed}{', quick' if Q else ''})")
        t0 = time.time()
        try:
            fn(random.Random(seed))
        except Exception as e:  # a broken scenario is a failure, the others still run
            check(f"{name} ran to its end", False, f"{e}\n{traceback.format_exc()[-1200:]}")
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            procs.clear()
        timings.append(f"{name} {time.time() - t0:.0f}s")
        say(f"   {name}: {time.time() - t0:.0f} s")
    say(f"reliability: {', '.join(timings)}; total {time.time() - t_all:.0f} s;"
        f" logs in {TMP}" if A.keep or failed else
        f"reliability: {', '.join(timings)}; total {time.time() - t_all:.0f} s")
    if not (A.keep or failed):
        shutil.rmtree(TMP, ignore_errors=True)
    say(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


main()
