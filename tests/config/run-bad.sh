#!/usr/bin/env bash
# tests/config/run-bad.sh: runs `tds check-config` on every bad configuration
# in tests/config/bad and checks the exit status (2) and the exact stderr
# against NAME.expected; then checks that the good configurations in
# tests/config/good and tds.yaml.sample pass (exit 0), and that no output
# ever contains a secret value (every secret in the fixtures contains
# "TOPSECRET").
#
#   run-bad.sh TDS            TDS: the tds binary, or a build directory holding it
#   run-bad.sh TDS --update   rewrite the .expected files from what tds prints
#
# Runs from inside tests/config/bad so the messages carry the bare file
# name.  NAME.env, when present, holds VAR=value lines for that run.
# The environment the loader reads is cleared first.  Git does not keep
# file modes, so the secret fixtures get theirs here.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tds=${1:?usage: run-bad.sh TDS_BINARY_OR_BUILD_DIR [--update]}
[ -d "$tds" ] && tds=$tds/tds
case $tds in /*) ;; *) tds=$PWD/$tds ;; esac
update=${2:-}
[ -x "$tds" ] || { echo "run-bad.sh: $tds is not executable" >&2; exit 2; }

clear_vars=(TDS_CONFIG TDS_DATABASE_URL ZOHO_CLIENT_ID ZOHO_CLIENT_SECRET ZOHO_ORGANIZATION_ID
    ZOHO_REFRESH_TOKEN TDS_WORKER_COUNT TDS_BATCH_SIZE TDS_RETRY_MAX_ATTEMPTS
    TDS_RETRY_BACKOFF_SECONDS TDS_ENABLE_AUTO_SYNC TDS_STOCK_SYNC_INTERVAL_MINUTES TDS_LOG_LEVEL)
unset_args=()
for v in "${clear_vars[@]}"; do unset_args+=(-u "$v"); done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
checked=0

chmod 644 "$here/bad/world-readable.secret"
chmod 600 "$here/bad/private.secret" "$here"/good/*.secret

# run DIR CONFIG NAME: runs check-config, leaving $tmp/out, $tmp/err, $rc.
run() {
    local dir=$1 config=$2 name=$3
    local -a vars=()
    if [ -f "$dir/$name.env" ]; then
        while IFS= read -r line; do
            [ -n "$line" ] && vars+=("$line")
        done <"$dir/$name.env"
    fi
    (cd "$dir" && env "${unset_args[@]}" "${vars[@]}" "$tds" --config "$config" check-config \
        >"$tmp/out" 2>"$tmp/err")
    rc=$?
}

no_secret() {
    if grep -q TOPSECRET "$tmp/out" "$tmp/err"; then
        echo "FAIL $1: a secret value appears in the output"
        fails=$((fails + 1))
    fi
}

check_bad() {
    local name=$1 config=$2 expected=$here/bad/$1.expected
    run "$here/bad" "$config" "$name"
    checked=$((checked + 1))
    if [ "$update" = --update ]; then
        cp "$tmp/err" "$expected"
    fi
    if [ "$rc" -ne 2 ]; then
        echo "FAIL $name: exit status $rc, expected 2"
        fails=$((fails + 1))
    elif [ ! -f "$expected" ]; then
        echo "FAIL $name: $expected is missing"
        fails=$((fails + 1))
    elif ! diff -u "$expected" "$tmp/err" >"$tmp/diff"; then
        echo "FAIL $name: stderr differs from $name.expected"
        cat "$tmp/diff"
        fails=$((fails + 1))
    elif [ -s "$tmp/out" ]; then
        echo "FAIL $name: printed on stdout"
        fails=$((fails + 1))
    else
        echo "ok   $name: exit 2, $(wc -l <"$tmp/err") line(s): $(head -n 1 "$tmp/err")"
    fi
    no_secret "$name"
}

for f in "$here"/bad/*.yaml; do
    name=$(basename "$f" .yaml)
    check_bad "$name" "$name.yaml"
done
# A configuration file that does not exist.
check_bad missing-file missing-file.yaml

# Hostile shapes are refused fast (issue 18, point 9): 100,000 nested
# lists, refused at the 65th with FILE:LINE:COL (libyaml's loader alone took
# 40 s on it), and mappings of 80,000 unknown or duplicate keys (checking
# each key against all before it took a minute): each within a second, with
# at most 100 messages and a count of the rest.
fast() { # fast NAME FIRST-LINE LAST-LINE (the file is $tmp/NAME.yaml)
    local name=$1 first=$2 last=$3
    local t0 t1 ms
    t0=$(date +%s%N)
    (cd "$tmp" && env "${unset_args[@]}" timeout 60 "$tds" --config "$name.yaml" check-config \
        >"$tmp/out" 2>"$tmp/err")
    rc=$?
    t1=$(date +%s%N)
    ms=$(((t1 - t0) / 1000000))
    checked=$((checked + 1))
    if [ "$rc" -ne 2 ]; then
        echo "FAIL $name: exit status $rc after ${ms} ms, expected 2"
        fails=$((fails + 1))
    elif [ "$(head -n 1 "$tmp/err")" != "$first" ] || [ "$(tail -n 1 "$tmp/err")" != "$last" ]; then
        echo "FAIL $name: stderr is: $(head -c 300 "$tmp/err") ... $(tail -n 1 "$tmp/err")"
        fails=$((fails + 1))
    elif [ "$(wc -l <"$tmp/err")" -gt 101 ]; then
        echo "FAIL $name: $(wc -l <"$tmp/err") lines of messages (at most 101)"
        fails=$((fails + 1))
    elif [ "$ms" -ge 1000 ]; then
        echo "FAIL $name: refused, but after ${ms} ms (limit 1000)"
        fails=$((fails + 1))
    else
        echo "ok   $name: exit 2 in ${ms} ms: $first"
    fi
}
gen() { # gen NAME PYTHON-EXPRESSION: writes $tmp/NAME.yaml
    python3 -c "import sys; sys.stdout.write($2)" >"$tmp/$1.yaml"
}
too_deep="nested deeper than 64 levels of mappings and lists (a configuration needs 3)"
gen deep-lists "'[' * 100000 + ']' * 100000 + '\\n'"
fast deep-lists "deep-lists.yaml:1:65: $too_deep" "deep-lists.yaml:1:65: $too_deep"
gen deep-mappings "'{a: ' * 100000 + '}' * 100000 + '\\n'"
fast deep-mappings "deep-mappings.yaml:1:257: $too_deep" "deep-mappings.yaml:1:257: $too_deep"
gen deep-block-lists "'- ' * 100000 + 'x\\n'"
fast deep-block-lists "deep-block-lists.yaml:1:129: $too_deep" "deep-block-lists.yaml:1:129: $too_deep"
gen wide-unknown "'engine:\\n' + ''.join('  k%d: 1\\n' % i for i in range(80000))"
fast wide-unknown 'wide-unknown.yaml:2:3: unknown key "k0" in engine' \
    "wide-unknown.yaml: 79900 more problems not shown"
gen wide-duplicate "'engine:\\n' + '  workers: 1\\n' * 80000"
fast wide-duplicate 'wide-duplicate.yaml:3:3: duplicate key "workers" in engine (first at line 2)' \
    "wide-duplicate.yaml: 79899 more problems not shown"

# Connection errors and the daemon's log never show a DSN password either,
# however it is spelt: a '/' in a URI password makes libpq read part of it
# as the port; a glued `client_secret:VALUE` is refused at the daemon's start.
leak_free() { # leak_free NAME WANT-RC GREP-PATTERN CMD...
    local name=$1 want=$2 pat=$3; shift 3
    (cd "$here/bad" && env "${unset_args[@]}" "$@" >"$tmp/out" 2>"$tmp/err")
    rc=$?
    checked=$((checked + 1))
    if [ "$rc" -ne "$want" ]; then
        echo "FAIL $name: exit status $rc, expected $want: $(head -c 300 "$tmp/err")"
        fails=$((fails + 1))
    elif ! grep -qE -- "$pat" "$tmp/err"; then
        echo "FAIL $name: stderr lacks /$pat/: $(head -c 300 "$tmp/err")"
        fails=$((fails + 1))
    else
        echo "ok   $name: exit $rc: $(head -n 1 "$tmp/err")"
    fi
    no_secret "$name"
}
leak_free migrate-uri-slash 2 "cannot connect to u:<redacted>" \
    TDS_DATABASE_URL="postgresql://u:TOPSECRET-c1/TOPSECRET-c2@127.0.0.1:1/x" "$tds" migrate
leak_free migrate-kv-malformed 2 "TDS_DATABASE_URL: not a valid connection string: .*<hidden>" \
    TDS_DATABASE_URL="host=127.0.0.1 port=1 password=TOPSECRET-c3 TOPSECRET-c4" "$tds" migrate
leak_free daemon-uri-slash 124 "retrying" \
    TDS_DATABASE_URL="postgresql://u:TOPSECRET-c5/TOPSECRET-c6@127.0.0.1:1/x" TDS_LOG_LEVEL=info \
    timeout 2 "$tds" --daemon
leak_free daemon-glued-secret 2 "client_secret:\.\.\." "$tds" --daemon -c secret-glued.yaml

check_good() {
    local dir=$1 config=$2 name=$3
    run "$dir" "$config" "$name"
    checked=$((checked + 1))
    if [ "$rc" -ne 0 ]; then
        echo "FAIL $name: exit status $rc, expected 0"
        cat "$tmp/err"
        fails=$((fails + 1))
    elif [ -s "$tmp/err" ]; then
        echo "FAIL $name: wrote to stderr"
        cat "$tmp/err"
        fails=$((fails + 1))
    else
        echo "ok   $name: exit 0, $(grep -c ' # ' "$tmp/out") keys printed"
    fi
    no_secret "$name"
}

for f in "$here"/good/*.yaml; do
    name=$(basename "$f" .yaml)
    check_good "$here/good" "$name.yaml" "$name"
    if [ -f "$here/good/$name.expect-stdout" ]; then
        while IFS= read -r want; do
            if ! grep -qF -- "$want" "$tmp/out"; then
                echo "FAIL $name: stdout lacks: $want"
                fails=$((fails + 1))
            fi
        done <"$here/good/$name.expect-stdout"
    fi
done
check_good "$root" tds.yaml.sample tds.yaml.sample

echo "run-bad.sh: $checked configurations checked, $fails failure(s)"
[ "$fails" -eq 0 ]
