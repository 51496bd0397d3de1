#!/usr/bin/env bash
# man-coverage.sh TDS: tds(1) documents every command of `tds --help`, every
# global option, and every long option any subcommand accepts (read from the
# option tables in src/main.c and src/cli/*.c); both man pages pass
# `mandoc -T lint` with no output.  (Key bindings: tests/tui; configuration
# keys: the config test.)
set -u
tds=$1
src=${TDS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
man=$src/man/tds.1
fails=0
bad() { echo "FAIL: $1"; fails=$((fails + 1)); }

# Commands listed by --help.
cmds=$("$tds" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }')
[ -n "$cmds" ] || bad "tds --help lists no commands"
for c in $cmds; do
    grep -qE "^\.It Cm $c( |$)" "$man" && echo "ok: command $c" || bad "command '$c' is not documented in man/tds.1"
done
# Every long option of every option table.
opts=$(grep -hoE '\{"[a-z][a-z-]*", *(no|required|optional)_argument' "$src"/src/main.c "$src"/src/cli/*.c |
       cut -d'"' -f2 | sort -u)
for o in $opts; do
    esc=$(printf '%s' "$o" | sed 's/-/\\\\-/g')
    grep -qE "Fl \\\\-$esc([^a-z-]|$)" "$man" && echo "ok: option --$o" || bad "option '--$o' is not documented in man/tds.1"
done
if command -v mandoc >/dev/null; then
    for page in "$src/man/tds.1" "$src/man/tds.yaml.5"; do
        out=$(mandoc -T lint "$page" 2>&1)
        [ -z "$out" ] && echo "ok: mandoc lint $(basename "$page")" || bad "mandoc -T lint $(basename "$page"): $out"
    done
else
    bad "mandoc is not installed (scripts/install-deps installs it)"
fi
echo "$fails failed"
[ "$fails" = 0 ]
