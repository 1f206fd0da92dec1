#!/usr/bin/env bash
# Runs the canmatrix peer test with Debian's python (see dbc_peer_test.py).
set -euo pipefail
here="${TEST_SRCDIR}/${TEST_WORKSPACE}/device_drivers/can"
exec /usr/bin/python3 "$here/testdata/dbc_peer_test.py" "$here/dbc_peer_frames" \
  "$here/evgate_wallbox.dbc"
