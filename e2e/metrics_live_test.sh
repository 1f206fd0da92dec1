#!/usr/bin/env bash
# Issue #12's proof on live data: the demo site in one process serves
# /metrics; a real Prometheus (Debian prometheus 2.42) scrapes it every
# second with the alert rules of dashboards/prometheus/alerts.yml. Then:
#   - `promtool check metrics` passes on the live /metrics, which has every
#     catalogue metric (docs/metrics.md) and nothing else;
#   - every panel query, variable and alert expression of dashboards/ runs in
#     that Prometheus; panels and variables return data, and every metric an
#     alert watches has data;
#   - faults on the simulator make the matching alerts go pending or firing:
#     an over-current on wb2 -> EvgateChargerFaulted; the grid meter stops
#     answering -> EvgateMeterStale and EvgateSiteFailsafe; the grid goes
#     (the off-grid box loses it) -> EvgateGridOutage;
#   - the metrics served only in an outage: the standby countdown, then (a
#     van on the ICE-22 forms the island) the island's discharge limit.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/e2e/lib.sh"
dashboards="$runfiles/dashboards"
check="$py $runfiles/e2e/metrics_live_check.py"
command -v prometheus >/dev/null || { fail "prometheus is not installed (tools/setup.sh)"; finish; }

make_site "$tmp/site.yaml"
metrics_port=$(sed -n 's/^ *metrics_listen: 127.0.0.1:\([0-9]*\)$/\1/p' "$tmp/site.yaml")
[ -n "$metrics_port" ] || { fail "make_site: no metrics_listen"; finish; }
start_evgate evgate --site "$tmp/site.yaml"
server=$started_server
metrics="http://127.0.0.1:$metrics_port/metrics"

all_up() {
  local out
  out=$("$py" -c "import urllib.request,sys; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())" "$metrics") || return 1
  for s in load_balancer device_drivers session ocpp_bridge; do
    grep <<<"$out" -q "^evgate_up{service=\"$s\"} 1$" || { echo "$s not up"; return 1; }
  done
  grep <<<"$out" -q '^evgate_ocpp_charge_point_connected{charge_point="[^"]*"} 1$' || { echo "no DC charger connected"; return 1; }
  # The van at dc1 charging under a session (its SoC and session energy).
  grep <<<"$out" -q '^evgate_evse_soc_percent{evse="dc1"}' || { echo "no SoC from dc1"; return 1; }
  grep <<<"$out" -q '^evgate_session_energy_joules{evse="dc1"}' || { echo "no session at dc1"; return 1; }
}
wait_for 45 "every service up in /metrics, the DS60 charging the van in a session" all_up

# A charger fault first, so that the fault metric and its panels have data.
ctl "$server" sim fault wb2 OCP >/dev/null || fail "sim fault wb2 OCP"
fault_served() {
  "$py" -c "import urllib.request,sys; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())" "$metrics" |
    grep -q '^evgate_device_fault{device="wallbox-2",evse="wb2",code="OVER_CURRENT",severity="error"} 1$'
}
wait_for 15 "the wb2 over-current in /metrics" fault_served

"$py" -c "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())" "$metrics" > "$tmp/metrics.txt"
promtool check metrics < "$tmp/metrics.txt" > "$tmp/promtool.log" 2>&1 || { fail "promtool check metrics: $(cat "$tmp/promtool.log")"; }
# Served only during an outage: checked below, once the grid is gone.
outage_only=(evgate_grid_standby_remaining_seconds evgate_grid_island_discharge_limit_watts)
$check scrape "$metrics" "$dashboards" "${outage_only[@]}" || fail "catalogue and live scrape differ"

# A real Prometheus, scraping and evaluating the rules every second.
prom_port=$(free_port tcp)
prom="http://127.0.0.1:$prom_port"
cp -L "$dashboards/prometheus/alerts.yml" "$tmp/alerts.yml"
cat > "$tmp/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - alerts.yml
scrape_configs:
  - job_name: evgate
    static_configs:
      - targets: ['127.0.0.1:$metrics_port']
YAML
promtool check config "$tmp/prometheus.yml" > /dev/null || fail "test's prometheus.yml"
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" > "$tmp/prometheus.log" 2>&1 &
pids+=("$!")

scraped() {  # at least 5 scrapes of the exporter, so 1m rates have data
  $py -c '
import json, sys, urllib.parse, urllib.request
q = urllib.parse.urlencode({"query": "count(count_over_time(evgate_up{service=\"load_balancer\"}[1m]) >= 5) and count(count_over_time(evgate_device_fault[1m]) >= 5)"})
r = json.loads(urllib.request.urlopen(sys.argv[1] + "/api/v1/query?" + q, timeout=5).read())
sys.exit(0 if r["data"]["result"] else 1)' "$prom"
}
wait_for 60 "Prometheus scraped the exporter 5 times" scraped

EVGATE_EVSE=wb1 $check queries "$prom" "$dashboards" || fail "a dashboard or alert query failed on live data"

# The faults, seen by Prometheus's own rule evaluation.
# The grid goes: the standby countdown is served; a van at 80 % on the ICE-22
# forms the island: the most it may discharge into it is served.
ctl "$server" sim grid-outage >/dev/null || fail "sim grid-outage"
wait_for 15 "the standby countdown in /metrics" $check serves "$metrics" "$dashboards" \
  "${outage_only[0]}"
ctl "$server" sim plug v2x1 --soc 80 --id-tag 04E5F60718293A >/dev/null || fail "sim plug v2x1"
wait_for 40 "the island's discharge limit in /metrics" $check serves "$metrics" "$dashboards" \
  "${outage_only[1]}"
ctl "$server" sim stop-device grid-meter >/dev/null || fail "sim stop-device grid-meter"
alerts_active() { $check alerts "$prom" "$dashboards" EvgateChargerFaulted EvgateMeterStale EvgateSiteFailsafe \
  EvgateGridOutage; }
wait_for 45 "the alerts for the faults go pending or firing" alerts_active
[ "$failures" -eq 0 ] && echo "alerts pending/firing after ${waited}s"

finish
