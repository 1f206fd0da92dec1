# Shared by the end-to-end tests of the simulated demo site (sourced).
#
# Each test runs evgate on a copy of gateway/sites/demo.yaml whose ports are
# free ones picked by the kernel (simulated Modbus TCP bus, virtual CAN bus,
# OCPP, metrics) and whose charge records live in the test's directory, so
# tests can run in parallel with each other and with a running demo.
set -uo pipefail

runfiles="${TEST_SRCDIR}/${TEST_WORKSPACE}"
evgate="$runfiles/gateway/evgate"
ctl_bin="$runfiles/tools/evgatectl/evgatectl"
demo="$runfiles/gateway/sites/demo.yaml"
tmp="${TEST_TMPDIR}"
py=/usr/bin/python3
failures=0
pids=()

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# Ends every evgate this test started (by pid) when the script exits.
cleanup() {
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
}
trap cleanup EXIT

free_port() {  # tcp|udp
  "$py" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if sys.argv[1] == "tcp" else socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' "$1"
}

# make_site OUT [sed expressions...]: the demo with free ports, records in
# $tmp, and a building load without its daily swing (base = peak), plus the
# caller's own edits.
make_site() {
  local out=$1; shift
  [ -s "$demo" ] || { fail "make_site: no demo site at $demo (a data dependency of the test?)"; return 1; }
  local edits=()
  for e in "$@"; do edits+=(-e "$e"); done
  sed -e "s|session_database: .*|session_database: $tmp/sessions-$(basename "$out" .yaml).db|" \
      -e "s|^    port: 15020|    port: $(free_port tcp)|" \
      -e "s|^    udp_port: 15030|    udp_port: $(free_port udp)|" \
      -e "s|listen: 127.0.0.1:9000|listen: 127.0.0.1:$(free_port tcp)|" \
      -e "s|metrics_listen: .*|metrics_listen: 127.0.0.1:$(free_port tcp)|" \
      -e "s|peak_a: \[30, 25, 28\]|peak_a: [12, 8, 10]|" \
      ${edits[@]+"${edits[@]}"} "$demo" > "$out"
  grep -q "port: 15020" "$out" && fail "make_site: the Modbus port was not replaced"
  grep -q "udp_port: 15030" "$out" && fail "make_site: the CAN port was not replaced"
}

# start_evgate NAME ARGS...: runs `evgate run ARGS --listen 127.0.0.1:0` in
# the background (log $tmp/NAME.log) and sets $started_pid and $started_server
# once it listens.
start_evgate() {
  local name=$1; shift
  "$evgate" run "$@" --listen 127.0.0.1:0 >"$tmp/$name.log" 2>&1 &
  started_pid=$!
  pids+=("$started_pid")
  local port=""
  for _ in $(seq 1 200); do
    port=$(sed -n 's/.*listening on .* (port \([0-9]*\),.*/\1/p' "$tmp/$name.log" | head -1)
    [ -n "$port" ] && break
    kill -0 "$started_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$port" ]; then
    fail "evgate $name did not start listening"
    cat "$tmp/$name.log"
    exit 1
  fi
  started_server="127.0.0.1:$port"
}

# ctl SERVER ARGS...: evgatectl against SERVER.
ctl() { local server=$1; shift; "$ctl_bin" --server "$server" --timeout 5 "$@"; }

# wait_for SECONDS WHAT FUNCTION [ARGS...]: calls FUNCTION every 0.5 s until it
# succeeds; fails the test with WHAT and the function's last output if it
# never does. Sets $waited (seconds, fractional) on success.
wait_for() {
  local limit=$1 what=$2; shift 2
  local start end out
  start=$(date +%s.%N)
  end=$("$py" -c "print($start + $limit)")
  while :; do
    if out=$("$@" 2>&1); then
      waited=$("$py" -c "print(round($(date +%s.%N) - $start, 2))")
      return 0
    fi
    if "$py" -c "import sys; sys.exit(0 if $(date +%s.%N) > $end else 1)"; then
      fail "$what (not within ${limit}s): $out"
      return 1
    fi
    sleep 0.5
  done
}

# The demo's simulated wallboxes wb1-wb4, read from the Simulator API at
# SERVER (the process that hosts the simulator).
#
# wallboxes_driven SERVER: every one under a controller's command (watchdog
# programmed, not in failsafe) and wb1's car offered more than 6 A; prints
# the wallboxes' watchdog time.
wallboxes_driven() {
  ctl "$1" -o json sim list | "$py" -c '
import json, sys
evses = {e["evse_id"]: e for d in json.load(sys.stdin)["devices"] for e in d.get("evses", [])}
for evse in ("wb1", "wb2", "wb3", "wb4"):
    e = evses[evse]
    assert e.get("watchdog_configured") and not e.get("failsafe_active"), (evse, e)
assert evses["wb1"]["offered_current_a"]["l1"] > 6, evses["wb1"]
print(evses["wb1"]["watchdog_timeout"])
'
}

# wallboxes_at_failsafe SERVER [watchdog]: every one offers its failsafe
# current (site.yaml: 6 A, wb4 0 A), set by a driver when the setpoints'
# TTL ends or by the wallbox's own watchdog; with "watchdog", by the
# watchdog (failsafe_active).
wallboxes_at_failsafe() {
  local server=$1; shift
  ctl "$server" -o json sim list | "$py" -c '
import json, sys
evses = {e["evse_id"]: e for d in json.load(sys.stdin)["devices"] for e in d.get("evses", [])}
for evse, amps in {"wb1": 6, "wb2": 6, "wb3": 6, "wb4": 0}.items():
    e = evses[evse]
    assert e.get("failsafe_current_a", 0) == amps, (evse, e.get("failsafe_current_a"))
    assert len(sys.argv) < 2 or e.get("failsafe_active"), (evse, "not in failsafe")
    offered = list(e["offered_current_a"].values())
    assert offered and all(abs(v - amps) < 1e-9 for v in offered), (evse, offered)
' "$@"
}

# grid_mode_is SERVER MODE [PYTHON_CONDITION]: the GridController at SERVER reports MODE
# (GRID_MODE_ without the prefix) and the condition on its state `s` holds; prints the last
# transition's reason and detail.
grid_mode_is() {
  local server=$1; shift
  ctl "$server" -o json grid status | "$py" -c '
import json, sys
s = json.load(sys.stdin)
assert s.get("mode") == "GRID_MODE_" + sys.argv[1], (s.get("mode"), s.get("last_transition_detail"))
if len(sys.argv) > 2:
    assert eval(sys.argv[2]), s
print(s.get("last_transition_reason"), s.get("last_transition_detail"))' "$@"
}

# evse_allocation SERVER EVSE PYTHON_CONDITION: the allocation of EVSE by the load balancer at
# SERVER (as `e`: current_a / power_w, paused, pause_reason) meets the condition; prints it.
evse_allocation() {
  local server=$1; shift
  ctl "$server" -o json allocation show | "$py" -c '
import json, sys
a = json.load(sys.stdin)
e = {x["evse_id"]: x for x in a.get("evses", [])}[sys.argv[1]].get("allocation", {})
assert eval(sys.argv[2]), e
print(json.dumps(e))' "$@"
}

# finish: prints the logs on failure and exits with the test's verdict.
finish() {
  if [ "$failures" -ne 0 ]; then
    for log in "$tmp"/*.log; do echo "--- $log"; tail -n 80 "$log"; done
    exit 1
  fi
  echo "all checks passed"
  exit 0
}
