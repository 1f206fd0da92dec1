#!/usr/bin/env bash
# The OCPP bridge with N simulated DS60 charge points (default 1,000): the
# bridge alone in one `evgate run --services ocpp_bridge`, the simulator (one
# OCPP 1.6J websocket client per charger, all on one I/O thread) in another.
# Prints how long until every charger is connected and Accepted (read with
# `evgatectl ocpp list` once a second), the bridge's RSS then and after
# HOLD_S more seconds, and the warnings and errors both processes logged.
# Record the figures in docs/performance.md. Run `bazel build //gateway:evgate
# //tools/evgatectl` first.
#   tools/bench/ocpp_1000.sh [N] [HOLD_S]
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
n=${1:-1000}
hold=${2:-60}
evgate="$root/bazel-bin/gateway/evgate"
ctl="$root/bazel-bin/tools/evgatectl/evgatectl"
tmp=$(mktemp -d /var/tmp/evgate-ocpp-bench.XXXXXX)
trap 'kill $bridge $sim 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
/usr/bin/python3 "$root/tools/bench/ocpp_site.py" "$n" 19100 19151 "$tmp/s.db" > "$tmp/site.yaml"
"$evgate" run --site "$tmp/site.yaml" --services ocpp_bridge --listen 127.0.0.1:19152 \
  > "$tmp/bridge.log" 2>&1 &
bridge=$!
for _ in $(seq 1 50); do "$ctl" --server 127.0.0.1:19152 health > /dev/null 2>&1 && break; sleep 0.2; done
start=$(date +%s.%N)
"$evgate" run --site "$tmp/site.yaml" --services simulator --listen 127.0.0.1:19153 \
  > "$tmp/sim.log" 2>&1 &
sim=$!
accepted=0
while :; do
  accepted=$(grep -c " CONNECTED .*ACCEPTED" <<<"$("$ctl" --server 127.0.0.1:19152 ocpp list 2>/dev/null)")
  elapsed=$(/usr/bin/python3 -c "import time; print('%.1f' % (time.time() - $start))")
  [ "$accepted" -ge "$n" ] && break
  /usr/bin/python3 -c "import sys; sys.exit(0 if $elapsed < 60 else 1)" || break
  sleep 1
done
echo "$accepted of $n charge points connected and Accepted after ${elapsed} s (polled every ~1 s)"
echo "bridge RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$bridge/status)"
sleep "$hold"
echo "bridge RSS after ${hold} s more: $(awk '/VmRSS/ {print $2, $3}' /proc/$bridge/status)"
accepted=$(grep -c " CONNECTED .*ACCEPTED" <<<"$("$ctl" --server 127.0.0.1:19152 ocpp list 2>/dev/null)")
echo "still connected and Accepted: $accepted"
echo "warnings/errors: bridge $(grep -c ' WARN \| ERROR ' "$tmp/bridge.log"), simulator $(grep -c ' WARN \| ERROR ' "$tmp/sim.log")"
grep ' WARN \| ERROR ' "$tmp/bridge.log" "$tmp/sim.log" | cut -c1-240 | head -5
