#!/usr/bin/env bash
# The demo site in one process (`evgate run`, every service, the simulator
# included), as an operator sees it:
#   - every device the simulator serves is live in `evgatectl devices list`:
#     the grid meter with a current, every wallbox with its link OK;
#   - the cars the simulator plugs in at start charge under the load
#     balancer: wb1 above its failsafe current;
#   - the simulated wallbox follows the load balancer's setpoint (after the
#     car's lag) and the grid meter the drivers read includes the EV current
#     on top of the building load;
#   - the simulated DS60 connects to the local Central System over OCPP
#     1.6J, its card becomes a session and it delivers what the load
#     balancer's charging profile allows.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/e2e/lib.sh"

# The van at dc1 takes 8 kW here, not the demo's 30 kW: then no limit
# binds on the grid, so the wallboxes' shares stay put while they are checked.
make_site "$tmp/site.yaml" 's|^      max_power_w: 30000$|      max_power_w: 8000|'
grep -q "max_power_w: 8000" "$tmp/site.yaml" || fail "make_site: the van at dc1 was not found"
start_evgate evgate --site "$tmp/site.yaml"
server=$started_server

devices_live() {
  ctl "$server" -o json devices list | "$py" -c '
import json, sys
devices = {d["device_id"]: d for d in json.load(sys.stdin)["devices"]}
meter = devices["grid-meter"]
assert not meter["link"].get("stale") and "last_seen" in meter["link"], meter["link"]
current = meter["meter"]["current_a"]
assert all(current.get(p, 0) > 0 for p in ("l1", "l2", "l3")), current
for d in ("wallbox-1", "wallbox-2", "wallbox-3", "wallbox-4", "offgrid-box"):
    link = devices[d]["link"]
    assert not link.get("stale") and "last_seen" in link, (d, link)
'
}
wait_for 20 "devices list: the grid meter with a live current and every wallbox linked" devices_live

# The table an installer reads says the same.
out=$(ctl "$server" devices list)
grep <<<"$out" -Eq '^grid-meter +METER +eastron_sdm630 +rs485-1 +1 +ok ' ||
  fail "devices list table: $out"
for wb in wallbox-1 wallbox-2 wallbox-3 wallbox-4; do
  grep <<<"$out" -Eq "^$wb +AC_WALLBOX .* ok " || fail "devices list: $wb not ok: $out"
done

# The load balancer's allocation, the simulated wallbox and the grid meter
# as the driver reads it, all at once. Passes when
#   - the allocation is not failsafe and gives wb1 more than its failsafe;
#   - the simulated wb1 offers exactly that and its car draws it (0.2 A);
#   - the grid meter's L1 (driver view) minus the simulated building load on
#     L1 is what the simulated EVSEs draw on L1 (wb1 and wb3), within 1.5 A
#     (the meter is polled once a second; the building load wanders a little).
following() {
  local allocation sim devices
  allocation=$(ctl "$server" -o json allocation show) || return 1
  sim=$(ctl "$server" -o json sim list) || return 1
  devices=$(ctl "$server" -o json devices list) || return 1
  "$py" - "$allocation" "$sim" "$devices" <<'PY'
import json, sys
allocation = json.loads(sys.argv[1])["allocation"]
sim = json.loads(sys.argv[2])
devices = {d["device_id"]: d for d in json.loads(sys.argv[3])["devices"]}
assert not allocation.get("failsafe"), "allocation is failsafe"
wb1 = {e["evse_id"]: e for e in allocation["evses"]}["wb1"]
setpoint = wb1.get("current_a", 0)
assert setpoint > 6 and not wb1.get("paused"), ("wb1 not above its 6 A failsafe", wb1)
evses = {e["evse_id"]: e for d in sim["devices"] for e in d.get("evses", [])}
sim_wb1 = evses["wb1"]
assert not sim_wb1.get("failsafe_active"), sim_wb1
for p in ("l1", "l2", "l3"):
    offered = sim_wb1["offered_current_a"].get(p, 0)
    drawn = sim_wb1["current_a"].get(p, 0)
    assert abs(offered - setpoint) <= 0.2, ("wb1 offers", offered, "allocation", setpoint)
    assert abs(drawn - setpoint) <= 0.2, ("wb1's car draws", drawn, "allocation", setpoint)
# Every simulated EVSE on L1: wb1, wb3 and the DS60's dc1 (its AC side).
ev_l1 = sum(e["current_a"].get("l1", 0) for e in evses.values())
building_l1 = sim["building_load"]["current_a"]["l1"]
meter_l1 = devices["grid-meter"]["meter"]["current_a"]["l1"]
assert ev_l1 > 12, ("EV current on L1", ev_l1)
assert abs(meter_l1 - building_l1 - ev_l1) <= 1.5, (
    "grid meter L1", meter_l1, "building", building_l1, "EVs", ev_l1)
print("wb1 %.1f A, grid L1 %.1f A = building %.1f A + EVs %.1f A" %
      (setpoint, meter_l1, building_l1, ev_l1))
PY
}
# The DS60, simulated as an OCPP 1.6J charge point of evgate's own Central
# System: Van 7's card presented at dc1 became a session, and the charger
# delivers what the load balancer's profile allows (after its ramp), no more.
dc_charging() {
  local allocation sim sessions devices
  allocation=$(ctl "$server" -o json allocation show) || return 1
  sim=$(ctl "$server" -o json sim list) || return 1
  sessions=$(ctl "$server" -o json sessions list --evse dc1) || return 1
  devices=$(ctl "$server" -o json devices list) || return 1
  "$py" - "$allocation" "$sim" "$sessions" "$devices" <<'PY'
import json, sys
allocation = {e["evse_id"]: e for e in json.loads(sys.argv[1])["allocation"]["evses"]}
sim = {e["evse_id"]: e for d in json.loads(sys.argv[2])["devices"] for e in d.get("evses", [])}
sessions = json.loads(sys.argv[3]).get("sessions", [])
devices = {d["device_id"]: d for d in json.loads(sys.argv[4])["devices"]}
active = [s for s in sessions if s["state"] == "SESSION_STATE_ACTIVE"]
assert len(active) == 1 and active[0]["id_tag"] == "04D4E5F6071829", sessions
ds60 = devices["ds60-1"]
assert not ds60["link"].get("stale"), ds60["link"]
faults = [f["code"] for e in ds60.get("evses", []) for f in e.get("faults", [])]
assert "SETPOINT_NOT_FOLLOWED" not in faults, faults
setpoint = allocation["dc1"].get("power_w", 0)
dc1 = sim["dc1"]
assert dc1["ocpp_status"] == "Charging" and int(dc1.get("transaction_id", "0")) > 0, dc1
assert setpoint > 1000, ("dc1 gets no power", allocation["dc1"])
power = dc1.get("power_w", 0)
assert 0.9 * setpoint <= power <= setpoint * 1.02 + 100, ("dc1 delivers", power, "setpoint", setpoint)
print("dc1 %.1f kW of its %.1f kW setpoint, session %s" % (power / 1000, setpoint / 1000,
                                                            active[0]["session_id"]))
PY
}
# First: until it ramps up, the load balancer moves the others' share.
if wait_for 40 "dc1 (the simulated DS60) charging Van 7 under the load balancer" dc_charging; then
  echo "after ${waited}s: $(dc_charging 2>&1)"
fi


# The cards are tapped 3 s after the wallboxes are under control, the load
# balancer ramps at 5 A/s and the cars follow after 2 s.
if wait_for 45 "wb1 charging at the load balancer's setpoint, seen by the grid meter" following; then
  echo "after ${waited}s: $(following 2>&1)"
  # And it stays so: the same holds a few seconds later.
  sleep 3
  following >/dev/null || fail "wb1 stopped following the allocation: $(following 2>&1)"
fi

finish
