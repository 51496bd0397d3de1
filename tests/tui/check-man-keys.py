#!/usr/bin/env python3
"""Fails when a key binding of the console's keymap is not documented in
man/tds.1: every (section, key) printed by keymap_dump must appear as a
".It Cm KEY" item (items may list several keys separated by " , ") in the
KEY BINDINGS subsection of that pane (".Ss Global", ".Ss Dashboard", ...),
and the man page must not document keys the keymap does not have."""
import re
import subprocess
import sys

dump, man = sys.argv[1], sys.argv[2]
sections = {"global": "Global", "dashboard": "Dashboard", "runs": "Runs", "queue": "Queue",
            "dlq": "DLQ", "alerts": "Alerts", "events": "Events"}
want = set()
for line in subprocess.run([dump], check=True, capture_output=True, text=True).stdout.splitlines():
    sec, key, action, _help = line.split("\t")
    want.add((sections[sec], key))

have = set()
in_keys = False
current = None
for raw in open(man, encoding="utf-8"):
    line = raw.rstrip("\n")
    if line.startswith(".Sh "):
        in_keys = line[4:].strip() == "KEY BINDINGS"
        current = None
        continue
    if not in_keys:
        continue
    if line.startswith(".Ss "):
        current = line[4:].strip()
        continue
    m = re.match(r"\.It Cm (.*)$", line)
    if m and current:
        for k in m.group(1).split(" , "):
            k = k.strip().replace("\\&", "").replace("\\(aq", "'").replace("\\-", "-").replace("\\e", "\\")
            k = re.sub(r"^Cm ", "", k)
            have.add((current, k))

missing = sorted(want - have)
extra = sorted(have - want)
for sec, key in missing:
    print(f"man/tds.1: KEY BINDINGS, {sec}: key '{key}' is bound but not documented")
for sec, key in extra:
    print(f"man/tds.1: KEY BINDINGS, {sec}: key '{key}' is documented but not bound")
sys.exit(1 if missing or extra else 0)
