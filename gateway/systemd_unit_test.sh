#!/usr/bin/env bash
# gateway/evgate.service is a unit systemd accepts (systemd-analyze verify:
# syntax, known directives, the executables exist), pointed at this build's
# evgate, and its ExecStartPre validation passes on the demo site.
set -uo pipefail
runfiles="${TEST_SRCDIR}/${TEST_WORKSPACE}"
tmp="${TEST_TMPDIR}"
if ! command -v systemd-analyze >/dev/null; then
  echo "FAIL: systemd-analyze is not installed (Debian's systemd package)"
  exit 1
fi
unit="$tmp/evgate.service"
sed "s#/usr/local/bin/evgate#$runfiles/gateway/evgate#g" "$runfiles/gateway/evgate.service" > "$unit"
# Fails on the unit's own problems, not on other units of this host it loads.
out=$(systemd-analyze verify "$unit" 2>&1)
status=$?
own=$(grep -F "$unit" <<<"$out")
if [ $status -ne 0 ] || [ -n "$own" ]; then
  echo "FAIL: systemd-analyze verify (exit $status): ${own:-$out}"
  exit 1
fi
grep -q "^ExecStart=$runfiles/gateway/evgate run --site /etc/evgate/site.yaml$" "$unit" ||
  { echo "FAIL: ExecStart is not 'evgate run --site /etc/evgate/site.yaml'"; exit 1; }
"$runfiles/gateway/evgate" validate "$runfiles/gateway/sites/demo.yaml" >/dev/null ||
  { echo "FAIL: the demo site does not validate"; exit 1; }
echo PASS
