#!/usr/bin/env bash
# The V2X outage story on the simulated demo site, end to end (issue #15), as an operator sees
# it through `evgatectl grid watch` and `evgatectl grid status`:
#   sim grid-outage -> OUTAGE_STANDBY (countdown running, every EVSE paused) -> a vehicle at
#   80 % on the ICE-22 -> the grid controller transfers the box to the island -> OFF_GRID, the
#   load balancer gives v2x1 a discharge limit and the simulated ICE-22 supplies the building
#   -> sim grid-restore -> RESYNC -> (stable for resync_stable_s) -> ON_GRID, charging again
#   with the ramp. Then a second outage with a vehicle near its SOC lower limit: discharge
#   stops at the limit and the site goes to OUTAGE_SLEEP; the countdown of a third outage with
#   no vehicle ends in OUTAGE_SLEEP too, and the backup battery button wakes it.
# Times shortened in the test's site: countdown 20 s, resync 3 s.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/e2e/lib.sh"

make_site "$tmp/site.yaml" \
  's|standby_countdown_s: 180 .*|standby_countdown_s: 20|' \
  's|resync_stable_s: 30 .*|resync_stable_s: 3|'
grep -q 'standby_countdown_s: 20' "$tmp/site.yaml" || fail "the test site kept the 180 s countdown"
start_evgate evgate --site "$tmp/site.yaml"
server=$started_server

mode_is() { grid_mode_is "$server" "$@"; }  # MODE [PYTHON_CONDITION] (lib.sh)
# EVSE PYTHON_CONDITION on the load balancer's allocation `e` (lib.sh)
allocation_is() { evse_allocation "$server" "$@"; }
sim_evse() {  # EVSE PYTHON_CONDITION on the simulator's view `e`
  ctl "$server" -o json sim list | "$py" -c '
import json, sys
e = {x["evse_id"]: x for d in json.load(sys.stdin)["devices"] for x in d.get("evses", [])}[sys.argv[1]]
assert eval(sys.argv[2]), e
print(json.dumps(e.get("vehicle", {})))' "$@"
}

wait_for 30 "ON_GRID at start" mode_is ON_GRID || finish
wait_for 60 "wb1 charging before the outage" allocation_is wb1 \
  'not e.get("paused") and e.get("current_a", 0) > 6' || finish

# The transitions as an operator watches them.
"$ctl_bin" --server "$server" grid watch --interval 0 > "$tmp/watch.out" 2>&1 &
watch_pid=$!

# 1. Outage, then a dischargeable vehicle on the ICE-22.
ctl "$server" sim grid-outage > /dev/null || fail "sim grid-outage"
wait_for 15 "OUTAGE_STANDBY with its countdown" mode_is OUTAGE_STANDBY \
  '"standby_remaining" in s' || finish
wait_for 15 "wb1 paused for the grid mode" allocation_is wb1 \
  'e.get("paused") and e.get("pause_reason") == "PAUSE_REASON_GRID_MODE"'
ctl "$server" sim plug v2x1 --soc 80 --id-tag 04E5F60718293A > /dev/null || fail "sim plug v2x1"
wait_for 40 "OFF_GRID with v2x1 forming the island" mode_is OFF_GRID \
  's.get("forming_evse_id") == "v2x1" and s.get("last_transition_reason") == "GRID_TRANSITION_REASON_DISCHARGE_STARTED"' ||
  finish
wait_for 15 "v2x1 given a discharge limit" allocation_is v2x1 'e.get("power_w", 0) < -1000'
wait_for 30 "the simulated ICE-22 supplying the building" sim_evse v2x1 \
  'e.get("power_w", 0) < -1000'
wait_for 5 "every other EVSE paused off grid" allocation_is wb1 'e.get("paused")'

# 2. The grid comes back: resync, then on grid and charging with the ramp.
ctl "$server" sim grid-restore > /dev/null || fail "sim grid-restore"
wait_for 15 "RESYNC" mode_is RESYNC || true  # may already be past it after 3 s
wait_for 30 "ON_GRID after the resync" mode_is ON_GRID \
  's.get("last_transition_reason") == "GRID_TRANSITION_REASON_RESYNC_COMPLETE"' || finish
wait_for 60 "wb1 charging again" allocation_is wb1 \
  'not e.get("paused") and e.get("current_a", 0) > 6'
ctl "$server" sim unplug v2x1 > /dev/null || fail "sim unplug v2x1"

# 3. A vehicle near its lower limit (30 %): discharge stops there, the system sleeps.
ctl "$server" sim plug v2x1 --soc 31 --energy-kwh 2 --id-tag 04E5F60718293A > /dev/null ||
  fail "sim plug v2x1 at 31 %"
ctl "$server" sim grid-outage > /dev/null || fail "second sim grid-outage"
wait_for 40 "OFF_GRID with the second vehicle" mode_is OFF_GRID || finish
wait_for 90 "OUTAGE_SLEEP at the SOC lower limit" mode_is OUTAGE_SLEEP \
  's.get("last_transition_reason") == "GRID_TRANSITION_REASON_SOC_LOWER_LIMIT"' || finish
soc_floor() { sim_evse v2x1 'e["vehicle"]["soc_pct"] >= 29.5'; }
soc_floor || fail "the vehicle was discharged below its lower limit: $(sim_evse v2x1 True)"
ctl "$server" sim unplug v2x1 > /dev/null || fail "sim unplug v2x1 (2)"
ctl "$server" sim grid-restore > /dev/null || fail "second sim grid-restore"
wait_for 40 "ON_GRID after the second outage" mode_is ON_GRID || finish

# 4. No vehicle: the countdown ends, the button wakes the system.
ctl "$server" sim grid-outage > /dev/null || fail "third sim grid-outage"
wait_for 15 "OUTAGE_STANDBY (third)" mode_is OUTAGE_STANDBY || finish
wait_for 40 "OUTAGE_SLEEP after the 20 s countdown" mode_is OUTAGE_SLEEP \
  's.get("last_transition_reason") == "GRID_TRANSITION_REASON_STANDBY_TIMEOUT"' || finish
ctl "$server" sim button > /dev/null || fail "sim button"
wait_for 15 "OUTAGE_STANDBY after the button" mode_is OUTAGE_STANDBY \
  's.get("last_transition_reason") == "GRID_TRANSITION_REASON_BUTTON_PRESSED"'
# Off grid is refused with the reason while no vehicle can form the island.
if out=$(ctl "$server" grid off-grid 2>&1); then
  fail "grid off-grid without a vehicle was accepted: $out"
else
  grep -q "no vehicle on v2x1" <<<"$out" || fail "grid off-grid: $out"
fi
ctl "$server" sim grid-restore > /dev/null || fail "third sim grid-restore"
wait_for 30 "ON_GRID at the end" mode_is ON_GRID || finish

kill "$watch_pid" 2>/dev/null
wait "$watch_pid" 2>/dev/null
for step in "* OUTAGE_STANDBY (GRID_LOST" "* OFF_GRID (DISCHARGE_STARTED" "* RESYNC (GRID_RESTORED" \
  "* ON_GRID (RESYNC_COMPLETE" "* OUTAGE_SLEEP (SOC_LOWER_LIMIT" "* OUTAGE_SLEEP (STANDBY_TIMEOUT" \
  "* OUTAGE_STANDBY (BUTTON_PRESSED"; do
  grep -qF "$step" "$tmp/watch.out" || fail "grid watch never showed '$step'"
done
echo "--- evgatectl grid watch"
cat "$tmp/watch.out"
finish
