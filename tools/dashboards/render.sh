#!/usr/bin/env bash
# Renders the dashboards (docs/dashboards/*.png) from the live demo: starts
# the demo site in one process on ports of its own, a Prometheus scraping its
# exporter every second, lets it run MINUTES (default 3) with one fault raised
# on the way (an over-current on wb2 after a third of the time, so the fault
# panels show one), then draws every panel with tools/dashboards/render.py.
# Needs tools/setup.sh (chromium, prometheus, npm uplot) and
# `bazel build //gateway:evgate //tools/evgatectl`.
#   tools/dashboards/render.sh [MINUTES] [OUT_DIR]
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
minutes=${1:-3}
out=$(realpath -m "${2:-$root/docs/dashboards}")
evgate="$root/bazel-bin/gateway/evgate"
ctl="$root/bazel-bin/tools/evgatectl/evgatectl"
py=/usr/bin/python3
tmp=$(mktemp -d /var/tmp/evgate-render.XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
port() { "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
udp_port() { "$py" -c 'import socket; s = socket.socket(type=socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

api=$(port); metrics=$(port); prom=$(port)
sed -e "s|session_database: .*|session_database: $tmp/sessions.db|" \
    -e "s|^    port: 15020|    port: $(port)|" \
    -e "s|^    udp_port: 15030|    udp_port: $(udp_port)|" \
    -e "s|listen: 127.0.0.1:9000|listen: 127.0.0.1:$(port)|" \
    -e "s|metrics_listen: .*|metrics_listen: 127.0.0.1:$metrics|" \
    "$root/gateway/sites/demo.yaml" > "$tmp/site.yaml"
"$evgate" run --site "$tmp/site.yaml" --listen "127.0.0.1:$api" > "$tmp/evgate.log" 2>&1 &
pids+=("$!")
cat > "$tmp/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: evgate
    static_configs: [{targets: ['127.0.0.1:$metrics']}]
YAML
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
  --web.listen-address="127.0.0.1:$prom" > "$tmp/prometheus.log" 2>&1 &
pids+=("$!")
seconds=$("$py" -c "print(int($minutes * 60))")
echo "render: demo on 127.0.0.1:$api, /metrics on $metrics, Prometheus on $prom; recording ${seconds}s"
sleep $((seconds / 3))
"$ctl" --server "127.0.0.1:$api" sim fault wb2 OCP
sleep $((seconds - seconds / 3))
"$py" "$root/tools/dashboards/render.py" "http://127.0.0.1:$prom" "$out" --minutes "$minutes"
