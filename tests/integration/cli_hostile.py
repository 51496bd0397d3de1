#!/usr/bin/env python3
"""cli_hostile.py TDS: escape sequences and other hostile text stored in the
database never reach the terminal through the CLI (issue 18 point 4).

Hostile strings (ESC [2J, OSC 52, the 8-bit CSI as UTF-8 C2 9B and as a raw
9B byte, U+202E, invalid UTF-8, tabs and newlines) go into a run's error, a
dead letter's failure_reason and payload, an alert's title and message, a
queue item's last_error, an engine's instance and host, and an event's data.
The database is SQL_ASCII, so PostgreSQL keeps invalid UTF-8 as it is (a
UTF8 database would refuse it: this is how such bytes reach tds).  Every
command that prints data (status, runs, run ID, queue, dlq list, dlq show
ID, alerts list, engines) is run three ways: on a pseudo-terminal (the
table), piped (TSV) and with --json.  Each output must hold no control byte
but newline (and tab between TSV fields), no C1 code point, no bidi
control, only valid UTF-8; the hostile bytes must show visibly (\\x1b,
<U+009B>, \\x9b, <U+202E>); a TSV row must keep its field count; the JSON
must parse and give the valid-UTF-8 values back exactly."""
import json
import os
import pty
import select
import subprocess
import sys

if len(sys.argv) < 2:
    sys.exit("usage: cli_hostile.py TDS")
TDS = os.path.abspath(sys.argv[1])
PG = os.environ.get("TDS_TEST_PG")
if not PG:
    print("TDS_TEST_PG not set: run through tests/run")
    sys.exit(77)

DB = f"t_clihostile_{os.getpid()}"
DSN = f"{PG} dbname={DB}"
failures = []

# Bytes, since some of them are not UTF-8.
CLEAR = b"\x1b[2J\x1b[H"
OSC52 = b"\x1b]52;c;aGFja2Vk\x07"
CSI8 = b"\xc2\x9b" b"31m"
RAW9B = b"\x9b" b"2J"
RLO = "\u202e".encode()
LRI = "\u2066".encode()
BAD = b"\xff\xfe\xc0\xaf"
HOSTILE = b"boom " + CLEAR + b" " + OSC52 + b" " + CSI8 + b" " + RAW9B + b" " + RLO + \
    b"gpj.exe " + LRI + b" " + BAD + b" tab\there new\nline"
# The same without invalid UTF-8: what --json must give back exactly.
VALID = b"ok " + CLEAR + b" " + OSC52 + b" " + CSI8 + b" " + RLO + b"x\ty\nz"


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def psql(sql, db=DB):
    conn = PG if db is None else DSN
    r = subprocess.run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", conn, "-f", "-"],
                       input=sql.encode() if isinstance(sql, str) else sql, capture_output=True)
    if r.returncode:
        raise RuntimeError(f"psql failed: {r.stderr!r}")
    return r.stdout.decode("latin-1").strip()


def lit(b):
    """A bytes value as an SQL literal: E'\\xHH...' (the database is SQL_ASCII)."""
    return "E'" + "".join(f"\\x{c:02x}" for c in b) + "'"


ENV = dict(os.environ, TDS_DATABASE_URL=DSN, XDG_CONFIG_HOME="/nonexistent",
           LANG="C.UTF-8", LC_ALL="C.UTF-8")
ENV.pop("TDS_CONFIG", None)


def run_pipe(args):
    r = subprocess.run([TDS, *args], env=ENV, capture_output=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


def run_tty(args):
    """Runs tds with stdout and stderr on a pseudo-terminal; returns (status, bytes)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(TDS, [TDS, *args], ENV)
    out = b""
    while True:
        r, _, _ = select.select([fd], [], [], 30)
        if not r:
            break
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, st = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(st), out.replace(b"\r\n", b"\n")


def safe(name, out):
    """Checks that out (bytes) is harmless for a terminal (a tab is: it is
    JSON's indentation and the TSV separator; the TSV checks count fields)."""
    try:
        text = out.decode("utf-8")
    except UnicodeDecodeError as e:
        check(False, f"{name}: output is not valid UTF-8 ({e})")
        return ""
    allowed = "\n\t"
    bad = [f"U+{ord(c):04X}" for c in text
           if (ord(c) < 0x20 and c not in allowed) or 0x7f <= ord(c) <= 0x9f
           or 0x202a <= ord(c) <= 0x202e or 0x2066 <= ord(c) <= 0x2069]
    check(not bad, f"{name}: no control, C1 or bidi character reaches the terminal"
          + (f" (found {bad[:6]})" if bad else ""))
    return text


def visible(name, text, invalid=True):
    want = ["\\x1b[2J", "\\x1b]52;c;", "<U+009B>31m", "<U+202E>"]
    if invalid:
        want += ["\\x9b2J", "\\xff\\xfe"]
    missing = [w for w in want if w not in text]
    check(not missing, f"{name}: the hostile bytes show visibly" +
          (f" (missing {missing})" if missing else ""))


try:
    psql(f"CREATE DATABASE {DB} ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C'"
         " TEMPLATE template0", db=None)
    subprocess.run([TDS, "migrate"], env=ENV, check=True, capture_output=True)
    H, V = lit(HOSTILE), lit(VALID)
    jv = lit(json.dumps({"note": VALID.decode()}, ensure_ascii=False).encode())
    psql(f"""
INSERT INTO tds.engines (instance, host, pid, version, mode, threads, state)
  VALUES ({lit(b"eng " + CLEAR + RLO)}, {H}, 1, '0.1.0', 'daemon', 4, 'running');
INSERT INTO tds.sync_runs (run_type, entity_type, trigger, status, started_at, finished_at, error)
  VALUES ('stock', 'items', 'cli', 'failed', now(), now(), {H}),
         ('full', 'items', 'cli', 'failed', now(), now(), {V});
INSERT INTO tds.events (type, run_id, entity_type, entity_id, data)
  SELECT 'tds.sync.failed', id, 'items', {H}, {jv}::jsonb FROM tds.sync_runs;
INSERT INTO tds.sync_queue (entity_type, zoho_id, payload, last_error)
  VALUES ('items', {H}, {jv}::jsonb, {H});
INSERT INTO tds.dead_letter (entity_type, zoho_id, operation, payload, failure_reason, attempts,
                             error_history)
  VALUES ('items', {H}, 'upsert', {jv}::jsonb, {H}, 5, '[]'),
         ('items', 'v1', 'upsert', {jv}::jsonb, {V}, 5, '[]');
INSERT INTO tds.alerts (alert_type, severity, title, message, dedup_key)
  VALUES ('failure_rate', 'warning', {H}, {H}, 'h1');
""".encode())
    run_bad = psql("SELECT min(id) FROM tds.sync_runs")
    run_ok = psql("SELECT max(id) FROM tds.sync_runs")
    dlq_bad = psql("SELECT min(id) FROM tds.dead_letter")
    dlq_ok = psql("SELECT max(id) FROM tds.dead_letter")

    # (name, argv, rows in TSV or None, the JSON and the key holding a VALID value)
    commands = [
        ("status", ["status"], None),
        ("runs", ["runs"], 2),
        ("run (hostile error)", ["run", run_bad], None),
        ("run (valid error)", ["run", run_ok], None),
        ("queue", ["queue"], 1),
        ("dlq list", ["dlq", "list"], 2),
        ("dlq show (hostile)", ["dlq", "show", dlq_bad], None),
        ("dlq show (valid)", ["dlq", "show", dlq_ok], None),
        ("alerts list", ["alerts", "list"], 1),
        ("engines", ["engines"], 1),
    ]
    for name, argv, rows in commands:
        st, out = run_tty(argv)
        text = safe(f"{name} (terminal)", out)
        if rows is not None:  # a table cuts long cells: the start shows
            check("\\x1b[2J" in text, f"{name} (terminal): ESC shows as \\x1b")
        elif "valid" not in name or "hostile" in name:
            visible(f"{name} (terminal)", text, invalid="valid" not in name)

        st, out, err = run_pipe(argv)
        text = safe(f"{name} (piped)", out)
        safe(f"{name} (piped, stderr)", err)
        if "valid" not in name or "hostile" in name:
            visible(f"{name} (piped)", text, invalid="valid" not in name)
        if rows is not None:
            lines = text.split("\n")[:-1]
            nf = {line.count("\t") for line in lines}
            check(len(lines) == rows and len(nf) == 1,
                  f"{name} (TSV): {rows} rows with the same number of fields"
                  f" (got {len(lines)} rows, field counts {sorted(nf)})")
            check("tab\\there new\\nline" in text, f"{name} (TSV): tab and newline show as \\t \\n")

        st, out, err = run_pipe(argv + ["--json"])
        text = safe(f"{name} (--json)", out)
        try:
            doc = json.loads(text)
            check(True, f"{name} (--json): parses")
        except ValueError as e:
            check(False, f"{name} (--json): parses ({e}): {text[:200]!r}")
            continue
        flat = json.dumps(doc, ensure_ascii=False)
        if "valid" in name and "hostile" not in name:
            check(VALID.decode() in [doc.get("error"), doc.get("failure_reason")],
                  f"{name} (--json): valid UTF-8 comes back exactly")
        if name == "runs":
            check(any(r["error"] == VALID.decode() for r in doc),
                  "runs (--json): valid UTF-8 comes back exactly")
            bad = [r["error"] for r in doc if r["error"] != VALID.decode()][0]
            check("\ufffd" in bad and "\x1b[2J" in bad,
                  "runs (--json): invalid UTF-8 becomes U+FFFD, the rest is kept")
        del flat
finally:
    try:
        psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)", db=None)
    except Exception as e:  # noqa: BLE001
        print(f"cleanup: {e}")

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("all checks passed")
