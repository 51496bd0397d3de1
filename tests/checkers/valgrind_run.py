#!/usr/bin/env python3
"""valgrind_run.py TDS SIM SUPP: valgrind memcheck over (1) a short daemon
run (start against the simulator, one small stock sync, SIGTERM) and (2) a
console session (`tds --attach` in tmux against the same database, now with
runs, queue, DLQ and alert rows: every pane, help, quit).  Each must end
with exit status 0 under --error-exitcode=1 and --errors-for-leak-kinds=
definite: no invalid access, no use of uninitialised memory, no definite
leak.  Run by tests/checkers/run, which exports TDS_TEST_PG.  Writes "passed
failed" to $TMPDIR/tds-vg-result."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TDS, SIM, SUPP = (os.path.abspath(a) for a in sys.argv[1:4])
PG = os.environ["TDS_TEST_PG"]
TMP = tempfile.mkdtemp(prefix="tds-vg-")
os.chmod(TMP, 0o755)
SOCK = f"tds-vg-{os.getpid()}"
VG = ["valgrind", "--tool=memcheck", "--leak-check=full", "--show-leak-kinds=definite",
      "--errors-for-leak-kinds=definite", "--error-exitcode=1", f"--suppressions={SUPP}",
      "--gen-suppressions=all", "--num-callers=30", "--child-silent-after-fork=yes"]
res = [0, 0]
procs = []


def check(name, cond, detail=""):
    res[0 if cond else 1] += 1
    print(("ok: " if cond else "FAIL: ") + name + ("" if cond or not detail else f"\n{detail}"),
          flush=True)


def psql(dsn, sql):
    return subprocess.run(["psql", "-X", dsn, "-qAt", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


def wait_for(pred, timeout, step=0.3):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


def summary(log):
    """the errors valgrind found, with their stacks, from the log file."""
    text = open(log).read()
    m = re.search(r"ERROR SUMMARY: (\d+) errors", text)
    lost = re.search(r"definitely lost: ([\d,]+) bytes", text)
    blocks = [b for b in re.split(r"\n==\d+== \n", text)
              if re.search(r"Invalid|uninitialised|definitely lost in|Mismatched|overlap", b)]
    short = "\n".join(blocks)[:6000]
    return (int(m.group(1)) if m else -1), (lost.group(1) if lost else "0"), short


def tmux(*a):
    return subprocess.run(["tmux", "-L", SOCK, *a], capture_output=True, text=True)


def screen():
    return tmux("capture-pane", "-p", "-t", "c").stdout


db = f"vg_{os.getpid()}"
psql(PG, f"CREATE DATABASE {db}")
dsn = f"{PG} dbname={db}"
env = dict(os.environ, XDG_CONFIG_HOME="/nonexistent", TDS_DATABASE_URL=dsn)
env.pop("TDS_CONFIG", None)
try:
    subprocess.run([TDS, "migrate"], env=env, check=True, capture_output=True)
    pf = os.path.join(TMP, "port")
    sim = subprocess.Popen([SIM, "--listen", "127.0.0.1:0", "--port-file", pf, "--items", "300",
                            "--no-limits", "--quiet"], stdout=subprocess.DEVNULL)
    procs.append(sim)
    wait_for(lambda: os.path.exists(pf) and open(pf).read().strip(), 20, 0.1)
    base = f"http://127.0.0.1:{open(pf).read().strip()}"
    cfg = os.path.join(TMP, "tds.yaml")
    with open(cfg, "w") as f:
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
  rate_limit: {{per_minute: 10000}}
engine:
  workers: 2
  heartbeat_seconds: 1
schedule:
  enabled: false
images:
  enabled: false
""")

    # 1. a short daemon run
    dlog = os.path.join(TMP, "daemon.vg")
    t0 = time.time()
    d = subprocess.Popen(VG + [f"--log-file={dlog}", TDS, "--daemon", "--config", cfg,
                               "--instance", "vg1"], env=env, stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(TMP, "daemon.err"), "w"))
    procs.append(d)
    up = wait_for(lambda: psql(dsn, "SELECT count(*) FROM tds.engines WHERE instance = 'vg1'"
                                    " AND state = 'running'") == "1", 120)
    check("valgrind daemon: engine running", up)
    rid = subprocess.run([TDS, "sync", "stock", "--all-items"], env=env, capture_output=True,
                         text=True).stdout.strip()
    # queue items with payloads, one that fails (to the DLQ), for the console too
    psql(dsn, """INSERT INTO tds.sync_queue (entity_type, zoho_id, payload, priority)
        SELECT 'items', (7000000000000 + g)::text,
               jsonb_build_object('item_id', (7000000000000 + g)::text, 'name', 'VG ' || g,
                  'status', 'active', 'rate', CASE WHEN g = 1 THEN to_jsonb('bad'::text)
                  ELSE to_jsonb(1.5) END, 'last_modified_time', '2025-11-05T09:15:00+0530'), 5
        FROM generate_series(1, 50) g""")
    wait_for(lambda: psql(dsn, f"SELECT status FROM tds.sync_runs WHERE id = {rid}")
             in ("completed", "failed"), 240, 1)
    check("valgrind daemon: the stock sync completed",
          psql(dsn, f"SELECT status FROM tds.sync_runs WHERE id = {rid}") == "completed",
          psql(dsn, "SELECT id, status, error FROM tds.sync_runs"))
    wait_for(lambda: psql(dsn, "SELECT count(*) FROM tds.sync_queue WHERE status IN"
                               " ('pending', 'processing')") == "0", 60, 1)
    d.send_signal(signal.SIGTERM)
    try:
        rc = d.wait(120)
    except subprocess.TimeoutExpired:
        d.kill()
        rc = "timeout"
    errs, lost, detail = summary(dlog)
    print(f"valgrind daemon: {time.time() - t0:.0f} s, exit {rc}, {errs} errors,"
          f" {lost} bytes definitely lost (log {dlog})")
    check("valgrind daemon: exit 0, no memory errors, no definite leaks", rc == 0 and errs == 0,
          detail or open(dlog).read()[-3000:])

    # 2. a console session, attached
    psql(dsn, "INSERT INTO tds.alerts (alert_type, severity, title, dedup_key)"
              " VALUES ('vg', 'warning', 'valgrind test alert', 'vg')")
    clog = os.path.join(TMP, "console.vg")
    cmd = (f"env LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=screen-256color XDG_CONFIG_HOME=/nonexistent "
           f"{' '.join(VG)} --log-file={clog} {TDS} --attach --config {cfg}; "
           f"echo EXITED $?; sleep 120")
    t0 = time.time()
    tmux("new-session", "-d", "-s", "c", "-x", "120", "-y", "40", cmd)
    drawn = wait_for(lambda: "Dashboard" in screen() or "dashboard" in screen(), 120, 0.5)
    check("valgrind console: the dashboard is drawn", drawn, screen())
    for k in ["2", "3", "4", "5", "6", "1", "?"]:
        tmux("send-keys", "-t", "c", k)
        time.sleep(2)
    help_seen = wait_for(lambda: "Help: keys" in screen(), 20, 0.5)
    tmux("send-keys", "-t", "c", "q")  # closes the help
    wait_for(lambda: "Help: keys" not in screen(), 20, 0.5)
    tmux("send-keys", "-t", "c", "q")  # quits
    ex = wait_for(lambda: re.search(r"EXITED (\d+)", screen()), 120, 0.5)
    rc = int(ex.group(1)) if ex else "none"
    errs, lost, detail = summary(clog) if os.path.exists(clog) else (-1, "?", "no log")
    print(f"valgrind console: {time.time() - t0:.0f} s, help shown {help_seen}, exit {rc},"
          f" {errs} errors, {lost} bytes definitely lost (log {clog})")
    check("valgrind console: the help screen opened", help_seen, screen())
    check("valgrind console: exit 0, no memory errors, no definite leaks", rc == 0 and errs == 0,
          detail or (open(clog).read()[-3000:] if os.path.exists(clog) else screen()))
finally:
    tmux("kill-server")
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    subprocess.run(["psql", "-X", PG, "-qc", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"],
                   capture_output=True)
    with open(os.path.join(os.environ.get("TMPDIR", "/tmp"), "tds-vg-result"), "w") as f:
        f.write(f"{res[0]} {res[1]}\n")
    if res[1] == 0:
        shutil.rmtree(TMP, ignore_errors=True)
sys.exit(1 if res[1] else 0)
