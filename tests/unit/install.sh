#!/usr/bin/env bash
# install.sh BUILD_DIR: `meson install --destdir` puts every file where it
# belongs: the binaries, both man pages, the themes, the sample
# configuration, the systemd unit and the bash completion; and the unit and
# the completion are sane (ExecStart points at the installed binary; the
# completion knows every entity of the descriptor table).
set -u
build=$1
src=${TDS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >/dev/null 2>&1 ||
    meson install -C "$build" --destdir "$dest" --no-rebuild >/dev/null || { echo "FAIL: meson install"; exit 1; }
prefix=$(meson introspect "$build" --buildoptions | python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
root=$dest$prefix
fails=0
want() {
    if [ -e "$root/$1" ]; then echo "ok: $1"; else echo "FAIL: missing $1"; fails=$((fails + 1)); fi
}
want bin/tds
want bin/tds-zoho-sim
want share/man/man1/tds.1
want share/man/man5/tds.yaml.5
want share/doc/tds/tds.yaml.sample
want lib/systemd/system/tds.service
want share/bash-completion/completions/tds
for t in default mono dark high-contrast; do want "share/tds/themes/$t.yaml"; done
if grep -q "^ExecStart=$prefix/bin/tds --daemon" "$root/lib/systemd/system/tds.service" &&
   grep -q '^Type=notify' "$root/lib/systemd/system/tds.service"; then
    echo "ok: unit runs the installed binary as Type=notify"
else
    echo "FAIL: unit ExecStart/Type"; fails=$((fails + 1))
fi
for e in $(grep -oE '^    \{"[a-z]+", "[a-z_]+", ZOHO_' "$src/src/zoho/entity.c" | cut -d'"' -f2); do
    grep -q "entities=.*\b$e\b" "$root/share/bash-completion/completions/tds" ||
        { echo "FAIL: completion lacks entity $e"; fails=$((fails + 1)); }
done
bash -n "$root/share/bash-completion/completions/tds" && echo "ok: completion parses" ||
    { echo "FAIL: completion syntax"; fails=$((fails + 1)); }
echo "$fails failed"
[ "$fails" = 0 ]
