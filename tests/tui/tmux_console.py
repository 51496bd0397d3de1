#!/usr/bin/env python3
"""tmux runs of the real console (issue 7) against the private PostgreSQL of
tests/run: start `tds --attach`, switch panes, filter, mark, retry two DLQ
items with the exact count confirmed (and check the rows and the audit
trail in the database), resize below 80x24 and back, quit with the terminal
restored; a --read-only run where every action is refused; escape sequences
in item names and errors that never reach the terminal.  Stdlib only; the
tmux server is private (-L) and always killed."""
import os
import signal
import subprocess
import sys
import tempfile
import time

if len(sys.argv) < 2:
    sys.exit("usage: tmux_console.py TDS_BINARY")
TDS = os.path.abspath(sys.argv[1])
PG = os.environ.get("TDS_TEST_PG")
if not PG:
    print("TDS_TEST_PG not set: run through tests/run")
    sys.exit(77)
if subprocess.run(["sh", "-c", "command -v tmux psql"], capture_output=True).returncode:
    print("tmux or psql missing")
    sys.exit(77)

SOCK = f"tds-tui-{os.getpid()}"
DB = f"tui_tmux_{os.getpid()}"
failures = []


def psql(sql, db=None):
    conn = PG if db is None else PG.replace("dbname=postgres", f"dbname={db}")
    r = subprocess.run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", conn, "-c", sql],
                       capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"psql failed: {r.stderr}\n{sql}")
    return r.stdout.strip()


def tmux(*args, check=True):
    return subprocess.run(["tmux", "-L", SOCK, *args], capture_output=True, text=True,
                          check=check).stdout


def screen():
    return tmux("capture-pane", "-p", "-t", "t")


def wait_for(text, timeout=10.0, absent=False):
    end = time.time() + timeout
    s = ""
    while time.time() < end:
        try:
            s = screen()
        except subprocess.CalledProcessError:
            s = ""
        if (text in s) != absent:
            return s
        time.sleep(0.05)
    raise AssertionError(f"{'still' if absent else 'never'} saw {text!r}; screen:\n{s}")


def keys(*k):
    tmux("send-keys", "-t", "t", *k)


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def start(extra, cfg, env="LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=screen-256color"):
    cmd = (f"env {env} "
           f"TDS_THEME_DIR={os.environ.get('TDS_SOURCE_ROOT', '.')}/themes "
           f"{TDS} --attach --config {cfg} {extra}; echo EXITED $?; sleep 30")
    for attempt in range(20):  # the server of the last session may still be exiting
        r = subprocess.run(["tmux", "-L", SOCK, "new-session", "-d", "-s", "t", "-x", "120",
                            "-y", "40", cmd], capture_output=True, text=True)
        if r.returncode == 0:
            break
        time.sleep(0.1)
    else:
        raise RuntimeError(f"tmux new-session failed: {r.stderr}")
    wait_for("Dashboard")
    wait_for("Health")


def stop():
    tmux("kill-session", "-t", "t", check=False)


def new_session(cmd):
    """A tmux session running cmd (no waiting for the console to draw)."""
    for attempt in range(20):  # the server of the last session may still be exiting
        r = subprocess.run(["tmux", "-L", SOCK, "new-session", "-d", "-s", "t", "-x", "120",
                            "-y", "40", cmd], capture_output=True, text=True)
        if r.returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"tmux new-session failed: {r.stderr}")


def proc_stat(pid):
    """(state, cpu ticks) of a process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[11]) + int(fields[12])


def console_pid():
    """The pid of the tds process in the pane (the pane's process or its child)."""
    pane = int(tmux("display-message", "-p", "-t", "t", "#{pane_pid}").strip())
    for _ in range(100):
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as f:
                        st = f.read()
                except OSError:
                    continue
                comm, rest = st.split("(", 1)[1].rsplit(")", 1)
                if comm == "tds" and (int(d) == pane or int(rest.split()[1]) == pane):
                    return int(d)
        time.sleep(0.05)
    raise AssertionError("no tds process in the pane")


def gone_after(pid, action, what, limit=2.0):
    """Runs action(); checks that pid is gone (or a zombie) within limit
    seconds and used little CPU meanwhile (no busy loop after a hangup)."""
    before = proc_stat(pid)
    t0 = time.time()
    action()
    last = before
    while time.time() - t0 < 10:
        st = proc_stat(pid)
        if st is None or st[0] == "Z":
            break
        last = st
        time.sleep(0.02)
    took = time.time() - t0
    ticks = (last[1] - before[1]) if last and before else 0
    cpu = ticks / os.sysconf("SC_CLK_TCK")
    check(took <= limit, f"{what}: the console is gone in {took:.2f}s (at most {limit}s)")
    check(cpu <= 0.5, f"{what}: it used {cpu:.2f}s of CPU meanwhile (no busy loop)")
    if took > limit:  # do not leave it spinning
        try:
            os.kill(pid, 9)
        except OSError:
            pass


def handler_calls():
    """The functions called by the console's signal handlers (app.c, term.c):
    every function installed with sa_handler =, and what they call, read
    from the source."""
    import re
    root = os.environ.get("TDS_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
    src = ""
    for name in ("app.c", "term.c"):
        with open(os.path.join(root, "src", "tui", name)) as f:
            src += f.read() + "\n"

    def body(fn):
        m = re.search(r"^(?:static )?[a-z][a-z_ ]*\b" + fn + r"\([^)]*\)\n\{", src, re.M)
        if not m:
            return None
        i, depth = m.end(), 1
        while depth:
            depth += {"{": 1, "}": -1}.get(src[i], 0)
            i += 1
        return src[m.end():i]

    handlers = set(re.findall(r"sa_handler\s*=\s*(\w+)", src)) - {"SIG_DFL", "SIG_IGN"}
    calls, todo, seen = {}, list(handlers), set()
    while todo:
        fn = todo.pop()
        if fn in seen:
            continue
        seen.add(fn)
        b = body(fn)
        if b is None:
            calls[fn] = None  # a library function
            continue
        b = re.sub(r"/\*.*?\*/", "", b, flags=re.S)
        for c in set(re.findall(r"\b([a-z_][a-z0-9_]*)\s*\(", b)) - {"if", "while", "for",
                                                                    "sizeof", "return"}:
            todo.append(c)
        calls[fn] = b
    return handlers, {fn for fn, b in calls.items() if b is None}


FIXTURE = r"""
INSERT INTO tds.engines (instance, host, pid, version, mode, threads, busy, state)
  VALUES ('far-away-1', 'app9', 4242, '0.1.0', 'daemon', 4, 1, 'running');
INSERT INTO tds.sync_runs (run_type, entity_type, trigger, status, started_at, total, succeeded)
  VALUES ('stock', 'items', 'schedule', 'completed', now() - interval '10 minutes', 10, 10);
INSERT INTO tds.sync_queue (entity_type, zoho_id, payload, status, attempts, last_error, next_attempt_at)
  SELECT 'items', 'q' || g, '{"name": "item"}', 'retry', 1, 'HTTP 429', now() + interval '1 hour'
  FROM generate_series(1, 3) g;
INSERT INTO tds.sync_queue (entity_type, zoho_id, payload, status, last_error)
  VALUES ('items', E'evil\x1b]2;pwned\x07\x1b[2J', E'{"name": "\\u001b[31mred"}', 'pending',
          E'bad \x1b[31mRED\x1b[0m \x1b]0;pwned\x07 error');
WITH q AS (INSERT INTO tds.sync_queue (entity_type, zoho_id) VALUES ('items', 'beside1') RETURNING id)
INSERT INTO tds.queue_payloads (queue_id, payload) SELECT id, '{"name": "kept beside"}' FROM q;
INSERT INTO tds.dead_letter (entity_type, zoho_id, operation, payload, failure_reason, attempts)
  VALUES ('items', 'd1', 'upsert', '{"sku": "A"}', 'HTTP 400: invalid SKU', 5),
         ('items', 'd2', 'upsert', '{"sku": "B"}', 'HTTP 400: invalid SKU', 5),
         ('contacts', 'd3', 'upsert', '{"x": 1}', 'record not found', 5),
         ('invoices', E'\x1b[5mblink', 'delete', NULL, E'reason \x1b]0;pwned\x07 with OSC', 5);
INSERT INTO tds.alerts (alert_type, severity, title, dedup_key)
  VALUES ('failure_rate', 'error', 'Failure rate too high', 'fr'),
         ('api_budget', 'warning', 'API budget', 'ab');
INSERT INTO tds.events (type, entity_type, entity_id, data)
  VALUES ('tds.entity.update', 'items', 'q1', '{}'), ('tds.sync.started', 'items', NULL, '{}');
"""

tmpdir = tempfile.mkdtemp(prefix="tds-tui-")
try:
    psql(f"CREATE DATABASE {DB}")
    dsn = PG.replace("dbname=postgres", f"dbname={DB}")
    cfg = os.path.join(tmpdir, "tds.yaml")
    with open(cfg, "w") as f:
        f.write(f'database:\n  dsn: "{dsn}"\nconsole:\n  refresh_ms: 500\n'
                f'log:\n  file: "{tmpdir}/tds.log"\n')
    subprocess.run([TDS, "--config", cfg, "migrate"], check=True, capture_output=True)
    psql(FIXTURE, DB)

    # --- a normal run ---------------------------------------------------
    start("", cfg)
    s = screen()
    check("attached" in s and "LIVE" in s, "title shows attached and LIVE")
    check("far-away-1" in s, "dashboard lists the remote engine")
    keys("4")
    s = wait_for("invalid SKU")
    check("record not found" in s, "DLQ pane lists the items")
    check("pwned" not in tmux("display-message", "-p", "-t", "t", "#{pane_title}"),
          "an OSC in a failure reason does not retitle the terminal")
    check("\\x1b[5mblink" in s, "ESC in a Zoho id is shown as \\x1b")
    keys("/")
    keys("-l", "invalid SKU")
    keys("Enter")
    s = wait_for("record not found", absent=True)
    check("filter: invalid SKU" in s, "the filter is shown")
    keys("Space", "Space")
    s = wait_for("2 marked")
    keys("r")
    s = wait_for("Confirm")
    check("Retry 2 marked dead-letter items?" in s, "confirmation shows the exact count")
    keys("y")
    wait_for("done", timeout=10)
    resolved = psql("SELECT count(*) FROM tds.dead_letter WHERE resolved AND resolution = 'retried'", DB)
    check(resolved == "2", f"two DLQ rows were retried in the database (got {resolved})")
    audit = psql("SELECT count(*) FROM tds.audit WHERE action = 'dlq.retry' AND os_user <> ''", DB)
    check(audit == "1", f"one audit row for the retry (got {audit})")
    # grouped view and its window
    keys("/", "C-u", "Enter")
    keys("g")
    s = wait_for("by failure reason")
    check("last 24h" in s, "grouped view with its window")
    keys("g")
    # queue pane: detail view with the JSON payload
    keys("3")
    s = wait_for("HTTP 429")
    check("\\x1b[31mRED" in s, "escape sequences in last_error show as \\x1b")
    keys("Enter")
    s = wait_for("payload:")
    keys("q")
    wait_for("payload:", absent=True)
    # a record kept beside its row (tds.queue_payloads) is the item's payload too
    keys("/", "C-u")
    keys("-l", "beside1")
    keys("Enter")
    # the filter has applied once the other rows are gone ("beside1" shows
    # in the prompt before it does)
    wait_for("HTTP 429", absent=True)
    keys("Enter")
    s = wait_for("payload:")
    check("kept beside" in s, "a record kept in tds.queue_payloads shows as the item's payload")
    keys("q")
    wait_for("payload:", absent=True)
    keys("/", "C-u", "Enter")
    # help overlay from the keymap
    keys("?")
    s = wait_for("Help: keys")
    check("Retry now" in s or "retry now" in s, "help lists the pane's actions")
    keys("q")
    # resize below 80x24 and back
    tmux("resize-window", "-t", "t", "-x", "70", "-y", "20")
    s = wait_for("terminal too small")
    tmux("resize-window", "-t", "t", "-x", "120", "-y", "40")
    wait_for("Dashboard")
    # freeze
    keys("z")
    wait_for("FROZEN")
    keys("z")
    wait_for("LIVE")
    # a command with history
    keys(":")
    keys("-l", "theme mono")
    keys("Enter")
    wait_for("theme mono")
    # database stalls: keys still answer
    keys("q")
    s = wait_for("EXITED 0")
    check("Dashboard" not in s, "quit restores the terminal (the console screen is gone)")
    stop()

    # --- sync requests from the dashboard ---------------------------------
    start("", cfg)
    keys(":")
    keys("-l", "sync stock dry")
    keys("Enter")
    s = wait_for("Confirm")
    check("Start a stock sync of items (active only, dry run)?" in s,
          "the stock confirmation is drawn over the dashboard and names items")
    keys("y")
    wait_for("requested stock sync of items")
    row = psql("SELECT entity_type || ' ' || (config->>'dry_run') FROM tds.sync_runs"
               " WHERE run_type = 'stock' AND trigger = 'manual' ORDER BY id DESC LIMIT 1", DB)
    check(row == "items true", f"stock sync requested for items with dry_run (got {row!r})")
    # the s dialog, kind "items": ids asked, non-digits refused
    keys("s")
    wait_for("Start a sync")
    keys("Down", "Right", "Right", "Right", "Down", "Space", "Enter")
    wait_for("Item ids (comma-separated)")
    keys("-l", "123,4x5")
    keys("Enter")
    s = wait_for("is not digits")
    check("(comma-separated): 123,4x5" in s, "the ids prompt stays open after a refusal")
    keys("C-u")
    keys("-l", "123, 456")
    keys("Enter")
    s = wait_for("Confirm")
    check("Start an items sync of 2 items (123, 456) (dry run)?" in s, "items confirmation")
    keys("y")
    wait_for("requested items sync of items")
    row = psql("SELECT entity_type || ' ' || (config->'items')::text || ' ' ||"
               " (config->>'dry_run') FROM tds.sync_runs WHERE run_type = 'items'"
               " ORDER BY id DESC LIMIT 1", DB)
    check(row == 'items ["123", "456"] true', f"items run config (got {row!r})")
    keys("2")
    s = wait_for("items ")
    keys("Enter")
    s = wait_for("requested   ")
    check("config:" in s and '"items": [' in s, "run detail shows the config as indented JSON")
    check("+00" not in s and "Z (" in s and " ago)" in s, "run detail times read ...Z (age ago)")
    keys("q")
    keys("q")
    wait_for("EXITED 0")
    stop()

    # --- NO_COLOR: attributes only, no colour escape -----------------------
    start("", cfg, env="LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=xterm-256color NO_COLOR=1")
    esc = tmux("capture-pane", "-p", "-e", "-t", "t")
    import re
    colours = [m for m in re.findall(r"\x1b\[([0-9;]*)m", esc)
               if any(p in ("38", "48") or (p.isdigit() and (30 <= int(p) <= 37 or 40 <= int(p) <= 47
                                                            or 90 <= int(p) <= 107))
                      for p in m.split(";"))]
    check(not colours, f"NO_COLOR: no colour escapes (got {colours[:5]})")
    keys("q")
    wait_for("EXITED 0")
    stop()

    # --- 8 colours (TERM=xterm) and LANG=C: ASCII, every pane ---------------
    start("", cfg, env="LANG=C LC_ALL=C TERM=xterm")
    for k, text in (("2", "TYPE"), ("3", "ZOHO ID"), ("4", "REASON"), ("5", "SEVERITY"),
                    ("6", "TYPE"), ("1", "Health")):
        keys(k)
        wait_for(text)
    raw = tmux("capture-pane", "-p", "-t", "t")
    check(all(ord(c) < 128 for c in raw), "LANG=C: the screen is plain ASCII")
    keys("?")
    s = wait_for("Help: keys")
    check("+-" in s and "|" in s, "LANG=C: boxes drawn with + - |")
    keys("q")
    keys("q")
    wait_for("EXITED 0")
    stop()

    # --- read-only ------------------------------------------------------
    before = psql("SELECT count(*) FROM tds.audit", DB)
    start("--read-only", cfg)
    check("READ-ONLY" in screen(), "the title says READ-ONLY")
    keys("3")
    wait_for("HTTP 429")
    for k in ("r", "+", "-", "d"):
        keys(k)
        s = wait_for("read-only console")
        check("Confirm" not in s, f"queue '{k}' is refused")
    keys("4")
    wait_for("d3")
    for k in ("r", "x", "E"):
        keys(k)
        s = wait_for("read-only console")
        check("Confirm" not in s, f"DLQ '{k}' is refused")
    keys("5")
    wait_for("API budget")
    for k in ("a", "A"):
        keys(k)
        wait_for("read-only console")
    keys("2")
    keys("s")
    wait_for("read-only console")
    keys(":")
    keys("-l", "pause")
    keys("Enter")
    wait_for("read-only console")
    after = psql("SELECT count(*) FROM tds.audit", DB)
    check(before == after, "no audit row in read-only mode")
    paused = psql("SELECT value::text FROM tds.control WHERE key = 'paused'", DB)
    check(paused == "false", "the fleet was not paused")
    keys("q")
    wait_for("EXITED 0")
    stop()

    # --- signal handlers call no curses function (a static check) --------
    handlers, libcalls = handler_calls()
    SAFE = {"write", "signal", "raise", "tcsetattr"}
    check({"on_quit", "on_winch", "on_fatal"} <= handlers,
          f"the console's signal handlers were found ({sorted(handlers)})")
    check(libcalls <= SAFE, "signal handlers call only async-signal-safe functions, no curses"
          f" (they call {sorted(libcalls)})")

    # --- the terminal goes away: hangup ----------------------------------
    start("", cfg)
    pid = console_pid()
    gone_after(pid, lambda: tmux("kill-session", "-t", "t"), "tmux session killed (SIGHUP)")
    # SIGHUP ignored (nohup): the hangup on stdin still ends the loop
    new_session(f"trap '' HUP; exec env LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=screen-256color "
                f"{TDS} --attach --config {cfg}")
    wait_for("Health")
    pid = console_pid()
    gone_after(pid, lambda: tmux("kill-session", "-t", "t"),
               "tmux session killed with SIGHUP ignored (hangup seen on stdin)")
    # no SIGHUP at all (the terminal is not its controlling terminal, as
    # under setsid): read() gives EIO and poll() POLLHUP; it must not spin
    new_session(f"exec setsid -w env LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=screen-256color "
                f"{TDS} --attach --config {cfg}")
    wait_for("Health")
    pid = console_pid()
    gone_after(pid, lambda: tmux("kill-session", "-t", "t"),
               "tmux session killed, no SIGHUP delivered (hangup seen on stdin)")
    # SIGHUP to a console whose terminal is still there: it quits, restoring it
    start("", cfg)
    pid = console_pid()
    gone_after(pid, lambda: os.kill(pid, signal.SIGHUP), "SIGHUP to the console")
    s = wait_for("EXITED")
    check("Dashboard" not in s, "after SIGHUP the terminal is restored")
    stop()
    # SIGWINCH through the self-pipe: a resize is still seen
    start("", cfg)
    tmux("resize-window", "-t", "t", "-x", "70", "-y", "20")
    wait_for("terminal too small")
    tmux("resize-window", "-t", "t", "-x", "120", "-y", "40")
    wait_for("Dashboard")
    keys("q")
    wait_for("EXITED 0")
    stop()

    # --- terminals the console cannot drive -------------------------------
    for term, text in (("dumb", "TERM=dumb cannot move the cursor"),
                       ("no-such-terminal-type", "not a terminal type terminfo knows")):
        new_session(f"env TERM={term} {TDS} --attach --config {cfg}; echo EXITED $?; sleep 30")
        s = wait_for("EXITED")
        check(text in s and "EXITED 2" in s, f"TERM={term}: a clear message and exit 2")
        stop()
    r = subprocess.run([TDS, "--attach", "--config", cfg], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 2 and "needs a terminal" in r.stderr,
          f"no terminal: a clear message and exit 2 (got {r.returncode}: {r.stderr.strip()})")
finally:
    subprocess.run(["tmux", "-L", SOCK, "kill-server"], capture_output=True)
    try:
        psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    except Exception as e:  # noqa: BLE001
        print(f"cleanup: {e}")
    log = os.path.join(tmpdir, "tds.log")
    if failures and os.path.exists(log):
        print(open(log).read()[-4000:])

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("all checks passed")
