#!/usr/bin/env bash
# rootfs.sh: the base layer has what an image needs and nothing writable
# but /data (the service user's) and /tmp; a binary layer is refused when the
# base lacks one of its libraries (here: the session binary, which needs
# SQLite, on a base made for evgate-probe alone).
set -uo pipefail
runfiles="${TEST_SRCDIR}/${TEST_WORKSPACE}"
rootfs="$runfiles/tools/images/rootfs.sh"
probe="$runfiles/tools/probe/evgate-probe"
session="$runfiles/services/session/session"
tmp="${TEST_TMPDIR}"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

"$rootfs" base "$tmp/base.tar" "$tmp/base.libs" "$probe" || { echo "FAIL: base layer"; exit 1; }
listing=$(tar -tvf "$tmp/base.tar")
has() { grep -Eq "$1" <<<"$listing" || fail "base layer: no $2 ($1)"; }
has '^-rwxr-xr-x 0/0 .* \./usr/bin/evgate-probe$' "evgate-probe, root-owned, not writable"
has '^-r.*0/0 .* \./lib64/ld-linux-x86-64\.so\.2$' "dynamic loader"
has '^-r.* \./lib/x86_64-linux-gnu/libc\.so\.6$' "libc"
has '^drwxr-x--- 65532/65532 .* \./data/?$' "/data owned by 65532, 0750"
has '^drwxrwxrwt 0/0 .* \./tmp/?$' "sticky /tmp"
has '^-rw-r--r-- 0/0 .* \./etc/passwd$' "passwd"
grep -q '^evgate:x:65532:65532:' <(tar -xOf "$tmp/base.tar" ./etc/passwd) || fail "no user 65532"
for shell in ./bin/sh ./bin/bash ./usr/bin/sh ./bin/busybox; do
  grep -q " $shell\$" <<<"$listing" && fail "base layer has a shell: $shell"
done
writable=$(grep -E '^.{8}w' <<<"$listing" | grep -v ' \./tmp/\?$')
[ -z "$writable" ] || fail "world-writable besides /tmp: $writable"
other_owned=$(grep -Ev ' 0/0 ' <<<"$listing" | grep -v ' \./data/\?$')
[ -z "$other_owned" ] || fail "not owned by root besides /data: $other_owned"
grep -q "libsqlite3" "$tmp/base.libs" && fail "evgate-probe's base has SQLite?"

# Reproducible: the same inputs, the same bytes.
"$rootfs" base "$tmp/again.tar" "$tmp/again.libs" "$probe" && cmp -s "$tmp/base.tar" "$tmp/again.tar" ||
  fail "the base layer is not reproducible"

out=$("$rootfs" binary "$tmp/session.tar" "$tmp/base.libs" "$session" 2>&1)
if [ $? -eq 0 ]; then
  fail "a binary layer was made although the base lacks its libraries"
else
  grep -q "session needs libraries the base layer lacks: .*libsqlite3" <<<"$out" ||
    fail "refused, but not saying which library: $out"
fi
"$rootfs" binary "$tmp/probe.tar" "$tmp/base.libs" "$probe" || fail "the probe's own layer"
tar -tf "$tmp/probe.tar" | grep -q '^\./usr/bin/evgate-probe$' || fail "the binary layer lacks its binary"

[ $failures -eq 0 ] && echo PASS || { echo "$failures failures"; exit 1; }
