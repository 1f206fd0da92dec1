#!/usr/bin/env bash
# A split deployment: the simulated site in one process, the device drivers
# and the load balancer in another. When the second process dies (kill -9,
# nothing is cleaned up), every simulated wallbox falls back to its failsafe
# current within its watchdog time, as the real wallboxes do; the Simulator
# API shows it (failsafe flag, offered current).
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/e2e/lib.sh"

make_site "$tmp/site.yaml"
start_evgate simulator --site "$tmp/site.yaml" --services simulator
sim_server=$started_server
start_evgate drivers --site "$tmp/site.yaml" --services device_drivers,load_balancer
drivers_pid=$started_pid
drivers_server=$started_server

# Without a session service in its process the load balancer lets every
# connected car charge: wb1 and wb3 get setpoints above 6 A, wb2 and wb4 (no
# car) are driven too (no failsafe).
sim_json() { ctl "$sim_server" -o json sim list; }
driven() { wallboxes_driven "$sim_server"; }
wait_for 30 "every simulated wallbox under the load balancer's control" driven || finish
watchdog=$(driven | tr -d 's\n')
echo "wallbox watchdog: ${watchdog}s"
"$py" -c "import sys; sys.exit(0 if 1 <= $watchdog <= 30 else 1)" ||
  fail "implausible wallbox watchdog: $watchdog"
grep -Eq <<<"$(ctl "$drivers_server" allocation show)" '^wb1 +[0-9.]+ A ' ||
  fail "no allocation for wb1: $(ctl "$drivers_server" allocation show 2>&1)"

kill -KILL "$drivers_pid"
killed_at=$(date +%s.%N)

# Every wallbox offers its failsafe current once its watchdog has seen no
# setpoint for `watchdog`.
all_failsafe() { wallboxes_at_failsafe "$sim_server" watchdog; }
if wait_for "$("$py" -c "print($watchdog + 10)")" "every wallbox at its failsafe after the drivers died" all_failsafe; then
  elapsed=$("$py" -c "print(round($(date +%s.%N) - $killed_at, 2))")
  echo "all wallboxes in failsafe ${elapsed}s after kill -9 (watchdog ${watchdog}s)"
  # Not before the watchdog: the last setpoint went out at most a refresh
  # period (1 s) before the kill. Not much after it either.
  "$py" -c "import sys; sys.exit(0 if $watchdog - 1.5 <= $elapsed <= $watchdog + 3 else 1)" ||
    fail "failsafe after ${elapsed}s, expected within the ${watchdog}s watchdog (-1.5 s/+3 s)"
fi

# The cars follow the failsafe offer after their lag: wb1 draws 6 A.
wb1_at_failsafe() {
  sim_json | "$py" -c '
import json, sys
evses = {e["evse_id"]: e for d in json.load(sys.stdin)["devices"] for e in d.get("evses", [])}
drawn = evses["wb1"]["current_a"]
assert all(abs(v - 6) < 1e-9 for v in drawn.values()), drawn
'
}
wait_for 10 "wb1's car draws the 6 A failsafe current" wb1_at_failsafe

finish
