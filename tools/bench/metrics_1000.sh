#!/usr/bin/env bash
# The metrics exporter on a simulated 1,000-EVSE site (500 DS60 chargers with
# two connectors each, a vehicle with its own card at every connector, so
# 1,000 sessions; a simulated SDM630 grid meter; a 5 kA connection that binds,
# and a building load the script changes every 0.5 s, so that every meter
# sample changes every setpoint): the bridge, drivers,
# load balancer and session service in one `evgate run`, the simulator in a
# second, and the exporter alone in a third (reading the others over gRPC, as
# in a split deployment, so its RSS is its own). Scrapes it every 0.25 s for
# HOLD_S seconds and prints each scrape's latency (HTTP GET /metrics, whole
# body), the series count and the exporter's RSS. (The exporter's effect on
# the control loop's reaction time is measured in one process by
# `bazel run -c opt //services/load_balancer:control_loop_benchmark`, args
# 1000/0 and 1000/1.)
# Record the figures in docs/performance.md. Run `bazel build -c opt
# //gateway:evgate //tools/evgatectl` first (a fastbuild binary is 2-3x slower).
#   tools/bench/metrics_1000.sh [CHARGERS] [HOLD_S]
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
n=${1:-500}
hold=${2:-60}
evgate="$root/bazel-bin/gateway/evgate"
ctl="$root/bazel-bin/tools/evgatectl/evgatectl"
py=/usr/bin/python3
tmp=$(mktemp -d /var/tmp/evgate-metrics-bench.XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
api=19251; ocpp=19250; modbus=19260; metrics=19270; exporter_api=19252; sim_api=19253
site=(--grid-meter $modbus --vehicles --fuse-a 5000)
"$py" "$root/tools/bench/ocpp_site.py" "$n" $ocpp $api "$tmp/s.db" "${site[@]}" > "$tmp/site.yaml"
"$py" "$root/tools/bench/ocpp_site.py" "$n" $ocpp $api "$tmp/s.db" "${site[@]}" \
  --metrics-listen $metrics --peers 127.0.0.1:$api > "$tmp/exporter.yaml"

"$evgate" run --site "$tmp/site.yaml" --services simulator --listen 127.0.0.1:$sim_api \
  > "$tmp/sim.log" 2>&1 &
pids+=("$!")
"$evgate" run --site "$tmp/site.yaml" --services ocpp_bridge,device_drivers,load_balancer,session \
  --listen 127.0.0.1:$api > "$tmp/site.log" 2>&1 &
pids+=("$!")
for _ in $(seq 1 120); do
  accepted=$(grep -c " CONNECTED .*ACCEPTED" <<<"$("$ctl" --server 127.0.0.1:$api ocpp list 2>/dev/null)")
  [ "$accepted" -ge "$n" ] && break
  sleep 1
done
echo "$accepted of $n chargers connected and Accepted ($((2 * n)) EVSEs)"

sleep 20  # sessions start, the load balancer's first ramps settle
# The building load swings between 1,000 and 1,200 A every 0.5 s.
( while :; do
    for a in 1000 1200; do
      "$ctl" --server 127.0.0.1:$sim_api sim building-load "$a" >/dev/null 2>&1; sleep 0.5
    done
  done ) &
pids+=("$!")
"$evgate" run --site "$tmp/exporter.yaml" --services metrics_exporter \
  --listen 127.0.0.1:$exporter_api > "$tmp/exporter.log" 2>&1 &
exporter=$!
pids+=("$exporter")
sleep 2
"$py" - "http://127.0.0.1:$metrics/metrics" "$hold" "$exporter" > "$tmp/scrape.txt" <<'PYEOF' &
import sys, time, urllib.request
url, hold, pid = sys.argv[1], float(sys.argv[2]), sys.argv[3]
ms, sizes, series = [], [], 0
end = time.time() + hold
while time.time() < end:
    t = time.perf_counter()
    body = urllib.request.urlopen(url, timeout=10).read()
    ms.append((time.perf_counter() - t) * 1000)
    sizes.append(len(body))
    series = sum(1 for l in body.decode().splitlines() if l and not l.startswith("#"))
    time.sleep(0.25)
status = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status") if ":" in l)
ms.sort()
p = lambda q: ms[min(len(ms) - 1, int(len(ms) * q))]
print(f"scrape: p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {ms[-1]:.1f} ms over {len(ms)} scrapes; "
      f"{series} series, {sizes[-1] / 1024:.0f} KiB")
print(f"exporter RSS {int(status['VmRSS'].split()[0]) / 1024:.1f} MB, "
      f"peak {int(status['VmHWM'].split()[0]) / 1024:.1f} MB")
PYEOF
wait $!
cat "$tmp/scrape.txt"
grep -h " WARN \| ERROR " "$tmp"/*.log | cut -c26-200 | sort | uniq -c | sort -rn | head -5
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
