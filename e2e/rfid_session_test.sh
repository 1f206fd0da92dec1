#!/usr/bin/env bash
# An RFID card at a simulated wallbox, end to end: `evgatectl sim tap` makes
# the simulated Cabur wallbox send the card's frames on the CAN bus, the CAN
# bus owner reports the tap, the session service starts a session, the load
# balancer gives it energy and the session's energy grows; a second tap of
# the same card stops it, and the charge record is in the CSV export.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/e2e/lib.sh"

# The demo, but wb1's car comes without a card tap of its own.
make_site "$tmp/site.yaml" '/id_tag: "04B2C3D4E5F607"/d'
grep -q 'id_tag: "04B2C3D4E5F607"' "$tmp/site.yaml" && fail "the site still taps Van 12's card at start"
start_evgate evgate --site "$tmp/site.yaml"
server=$started_server
card=04B2C3D4E5F607

sim_wb1() {  # prints wb1 of the Simulator API as JSON
  ctl "$server" -o json sim list | "$py" -c '
import json, sys
evses = {e["evse_id"]: e for d in json.load(sys.stdin)["devices"] for e in d.get("evses", [])}
print(json.dumps(evses["wb1"]))'
}
# Before the tap: the car is plugged in, the wallbox is under control and
# gets no energy (no authorized session).
paused_with_car() {
  sim_wb1 | "$py" -c '
import json, sys
e = json.load(sys.stdin)
assert "vehicle" in e and e.get("watchdog_configured") and not e.get("failsafe_active"), e
assert all(v == 0 for v in e["offered_current_a"].values()), e["offered_current_a"]
'
}
wait_for 30 "wb1 with its car, under control, without energy" paused_with_car || finish

out=$(ctl "$server" sim tap wb1 "$card" 2>&1) || fail "sim tap: $out"

# session_of_card prints the session of $card on wb1 (the newest), or fails.
session_of_card() {
  ctl "$server" -o json sessions list --evse wb1 --id-tag "$card" | "$py" -c '
import json, sys
sessions = json.load(sys.stdin).get("sessions", [])
assert sessions, "no session of the card on wb1"
print(json.dumps(sessions[0]))'
}
active_with_energy() {
  session_of_card | "$py" -c '
import json, sys
s = json.load(sys.stdin)
assert s["state"] == "SESSION_STATE_ACTIVE", s["state"]
assert s.get("energy_charged_wh", 0) > 0, ("no energy yet", s.get("energy_charged_wh"))
print(s["session_id"], s["energy_charged_wh"])'
}
if wait_for 30 "an ACTIVE session of the card on wb1 with energy" active_with_energy; then
  read -r session first_wh < <(active_with_energy)
  echo "session $session: ${first_wh} Wh"
  # The table shows it too.
  grep -Eq <<<"$(ctl "$server" sessions list)" "^$session +wb1 +$card +ACTIVE " ||
    fail "sessions list: $(ctl "$server" sessions list 2>&1)"
  # Energy grows: the car draws, and the load balancer gives it current.
  grown() {
    local now
    now=$(active_with_energy | awk '{print $2}') || return 1
    "$py" -c "import sys; sys.exit(0 if $now > $first_wh + 5 else 1)" || { echo "$now Wh"; return 1; }
  }
  wait_for 20 "the session's energy grows beyond ${first_wh} Wh" grown

  out=$(ctl "$server" sim tap wb1 "$card" 2>&1) || fail "second sim tap: $out"
  completed() {
    session_of_card | "$py" -c '
import json, sys
s = json.load(sys.stdin)
assert s["state"] == "SESSION_STATE_COMPLETED", s["state"]
assert s.get("stop_reason") == "STOP_REASON_LOCAL", s.get("stop_reason")
assert s.get("energy_charged_wh", 0) > 0, s
print(s["energy_charged_wh"])'
  }
  wait_for 30 "the second tap stops the session (COMPLETED, LOCAL)" completed
  # The wallbox stops offering current.
  stopped() {
    sim_wb1 | "$py" -c '
import json, sys
e = json.load(sys.stdin)
assert all(v == 0 for v in e["current_a"].values()), e["current_a"]'
  }
  wait_for 15 "wb1's car stops drawing after the stop" stopped

  csv=$(ctl "$server" sessions export --format csv 2>&1) || fail "export: $csv"
  grep <<<"$csv" -q "^$session,wb1,wb1,1,$card,COMPLETED,CHARGE," ||
    fail "the CSV has no completed row for $session: $csv"
fi

finish
