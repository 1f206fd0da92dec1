#!/usr/bin/env bash
# evgate's local OCPP Central System against a third-party strict peer: the
# npm ocpp-rpc 2.2.1 client (strictMode: every CALL and answer of evgate is
# checked against the OCA 1.6 schemas) as the demo's DS60 charger, under
# security profile 1 (basic auth with the password from its password_file).
#
# Checked: boot Pending -> configuration -> Accepted; the state requests
# after boot; Heartbeat, StatusNotification, Authorize through the session
# service (accepted and blocked cards), StartTransaction twice -> one id,
# MeterValues, StopTransaction twice and an unknown one -> recorded once, and
# the transaction as one completed session of the session service;
# DataTransfer; the charger as a device of DeviceDriver (`evgatectl devices
# get`): the failsafe charging profile on both connectors at boot, the load
# balancer's live profiles and their read-back (GetCompositeSchedule); `evgatectl ocpp list|show|command`. Hostile inputs: a schema
# violation, a wrong type, an unknown action, an action only a Central System
# sends, an unknown message type, malformed JSON, a CALLRESULT with no CALL, a
# duplicate message id, an unknown identity, a wrong password, a second
# connection of the same identity, an invalid command payload, and kill -9 of
# evgate mid-transaction (the charger reconnects; its StopTransaction is
# recorded exactly once).
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/e2e/lib.sh"

node=$(command -v node) || { echo "FAIL: node is not installed (tools/setup.sh installs it)"; exit 1; }
export NODE_PATH="${TEST_SRCDIR}/npm"
charger="$runfiles/e2e/ocpp_charger.js"
[ -f "$NODE_PATH/ocpp-rpc/package.json" ] || { echo "FAIL: no ocpp-rpc in $NODE_PATH"; exit 1; }

password=0123456789abcdef0123
printf '%s\n' "$password" > "$tmp/ds60.key"
printf '%s\n' "abcdefabcdefabcdef" > "$tmp/ice22.key"
# The JS charger plays the DS60 and the test expects the ICE-22 away, so the
# simulator simulates neither (and no vehicle at dc1).
make_site "$tmp/site.yaml" \
  's|wallbox-4, ds60-1,|wallbox-4,|' \
  's|ice22-1, offgrid-box|offgrid-box|' \
  '/evse: dc1 /,/id_tag:/d' \
  's|security_profile: 0 .*|security_profile: 1|' \
  "s|charge_point_id: DS60-DEPOT-01|charge_point_id: DS60-DEPOT-01\n    password_file: $tmp/ds60.key|" \
  "s|charge_point_id: ICE22-DEPOT-01|charge_point_id: ICE22-DEPOT-01\n    password_file: $tmp/ice22.key|"
ocpp_port=$(sed -n '/^  local:/,/^  [a-z]/s/^    listen: 127.0.0.1:\([0-9]*\)$/\1/p' "$tmp/site.yaml")
[ -n "$ocpp_port" ] || { fail "no ocpp.local listen port in the site"; finish; }
url="ws://127.0.0.1:$ocpp_port/ocpp"
cp_id=DS60-DEPOT-01

start_evgate evgate --site "$tmp/site.yaml"
server=$started_server

# The charger: boot, a transaction, hostile frames; then it stays connected.
"$node" "$charger" session "$url" "$cp_id" "$password" >"$tmp/charger.out" 2>"$tmp/charger.log" &
charger_pid=$!
pids+=("$charger_pid")
ready() { grep -q '"event":"ready"' "$tmp/charger.out"; }
wait_for 40 "the charger's scenario" ready || { cat "$tmp/charger.out"; finish; }

grep '"event":"result"' "$tmp/charger.out" | "$py" -c '
import json, sys
r = json.loads(sys.stdin.readline())
problems = []
def check(cond, what):
    if not cond: problems.append(what)
check(r["failures"] == [], "ocpp-rpc strict mode or the charger reported: %s" % r["failures"])
check(r["boot"]["first"] == "Pending" and r["boot"]["firstInterval"] == 30, "first boot: %s" % r["boot"])
check(r["boot"]["final"] == "Accepted" and r["boot"]["finalInterval"] == 300, "final boot: %s" % r["boot"])
calls = r["calls"]
for c in ["GetConfiguration", "ChangeConfiguration MeterValueSampleInterval=10",
          "ChangeConfiguration MeterValuesSampledData=", "TriggerMessage BootNotification",
          "TriggerMessage StatusNotification", "TriggerMessage MeterValues"]:
    check(any(x.startswith(c) for x in calls), "evgate did not send %s: %s" % (c, calls))
check(r["heartbeat"].get("currentTime", "").endswith("Z"), "heartbeat: %s" % r["heartbeat"])
check(r["authorize"]["status"] == "Accepted", "Van 7 card: %s" % r["authorize"])
check(r["authorizeBlocked"]["status"] == "Blocked", "lost card: %s" % r["authorizeBlocked"])
check(r["startIdTagStatus"] == "Accepted", "start: %s" % r["startIdTagStatus"])
check(r["repeatedStartSameId"], "a repeated StartTransaction got another transactionId")
check(r["repeatedStop"] == r["stop"], "repeated stop answered %s vs %s" % (r["repeatedStop"], r["stop"]))
check(r["unknownStop"] == {}, "unknown stop: %s" % r["unknownStop"])
check(r["dataTransfer"] == {"status": "UnknownVendorId"}, "DataTransfer: %s" % r["dataTransfer"])
h = r["hostile"]
def error(frame, code):
    return frame is not None and frame[0] == 4 and frame[2] == code
check(error(h["schemaViolation"], "FormationViolation"), "additional property: %s" % h["schemaViolation"])
check(error(h["wrongType"], "TypeConstraintViolation"), "wrong type: %s" % h["wrongType"])
check(error(h["unknownAction"], "NotImplemented"), "unknown action: %s" % h["unknownAction"])
check(error(h["centralSystemAction"], "NotSupported"), "Reset from a charger: %s" % h["centralSystemAction"])
check(error(h["messageType"], "ProtocolError"), "message type 9: %s" % h["messageType"])
check(h["malformed"] is None, "malformed JSON was answered: %s" % h["malformed"])
check(h["strayResult"] is None, "a stray CALLRESULT was answered: %s" % h["strayResult"])
check(h["duplicateSameAnswer"], "a duplicate message id got another answer")
check(r["heartbeatAfterHostile"], "the connection did not survive the hostile frames")
for p in problems: print("FAIL: " + p)
sys.exit(1 if problems else 0)
' || fail "the charger's scenario (above)"
tx=$(grep '"event":"result"' "$tmp/charger.out" | "$py" -c 'import json,sys; print(json.loads(sys.stdin.readline())["transactionId"])')

# The transaction is the session of the card on dc1, in the session service:
# opened by the StartTransaction, ended by the StopTransaction with its
# reason, energy from the charger's registers (120000 -> 135500 Wh).
dc_session_ok() {
  ctl "$server" -o json sessions list --evse dc1 | "$py" -c '
import json, sys
sessions = json.load(sys.stdin).get("sessions", [])
assert len(sessions) == 1, sessions
s = sessions[0]
assert s["id_tag"] == "04D4E5F6071829" and s["start_mode"] == "START_MODE_RFID", s
assert s["state"] == "SESSION_STATE_COMPLETED", s
assert s["stop_reason"] == "STOP_REASON_EV_DISCONNECTED" and s["vendor_stop_code"] == "EVDisconnected", s
assert s.get("meter_start_wh") == 120000 and s.get("meter_stop_wh") == 135500, s
assert s.get("energy_charged_wh") == 15500, s
'
}
wait_for 10 "the OCPP transaction as a completed session of dc1" dc_session_ok ||
  ctl "$server" -o json sessions list --evse dc1

# The charger as a device: at boot the station limit on connector 0 and the
# failsafe profile (stack 0, no end) on both connectors, then the load
# balancer's live profiles (stack 1, valid for the setpoint TTL), all in W.
profiles_ok() {
  "$py" - "$tmp/charger.out" <<'EOF'
import json, sys
every = [json.loads(l) for l in open(sys.argv[1]) if '"event":"profile"' in l]
station = [p for p in every if p["purpose"] == "ChargePointMaxProfile"]
profiles = [p for p in every if p["purpose"] != "ChargePointMaxProfile"]
# The DS60's 60 kW station limit on the whole charge point (connector 0).
assert station and all(p["connectorId"] == 0 and p["limit"] == 60000 and p["unit"] == "W"
                       and p["validTo"] is None for p in station), station
failsafe = {p["connectorId"] for p in profiles if p["stackLevel"] == 0 and p["validTo"] is None}
live = {p["connectorId"] for p in profiles if p["stackLevel"] == 1 and p["validTo"]}
assert all(p["unit"] == "W" and p["purpose"] == "TxDefaultProfile" for p in profiles), profiles
assert failsafe == {1, 2}, "failsafe profiles: %s" % profiles
assert live == {1, 2}, "live profiles from the load balancer: %s" % profiles
# Verify, don't trust: evgate read the schedule back on both connectors.
composite = {c["connectorId"] for c in (json.loads(l) for l in open(sys.argv[1]))
             if c["event"] == "composite" and c["limit"] is not None}
assert composite == {1, 2}, "GetCompositeSchedule read-backs: %s" % composite
EOF
}
wait_for 20 "charging profiles from evgate, read back" profiles_ok
device_ok() {
  ctl "$server" devices get ds60-1 | "$py" -c '
import json, sys
d = json.load(sys.stdin)
assert d["bus_id"] == "ocpp" and not d["link"].get("stale"), d
evses = {e["evse_id"]: e for e in d["evses"]}
assert evses["dc2"]["connector_status"] in ("CONNECTOR_STATUS_AVAILABLE", "CONNECTOR_STATUS_FAULTED"), evses
assert evses["dc1"]["setpoint"]["source"] == "SETPOINT_SOURCE_CONTROLLER", evses["dc1"]
# It follows its profiles: no SETPOINT_NOT_FOLLOWED.
for e in evses.values():
    assert all(f["code"] != "SETPOINT_NOT_FOLLOWED" for f in e.get("faults", [])), e
'
}
wait_for 10 "ds60-1 online in evgatectl devices get, under control" device_ok

# What operators see.
cp_json() {  # prints charge point $1 from `evgatectl ocpp show`
  ctl "$server" ocpp show "$1"
}
out=$(cp_json "$cp_id") || fail "ocpp show: $out"
echo "$out" | "$py" -c '
import json, sys
cp = json.load(sys.stdin)
assert cp["connection_state"] == "CHARGE_POINT_CONNECTION_STATE_CONNECTED", cp
assert cp["registration_status"] == "REGISTRATION_STATUS_ACCEPTED", cp
assert cp["device_id"] == "ds60-1" and cp["vendor"] == "DS" and cp["firmware_version"] == "2.4.1", cp
assert cp["security_profile"] == 1 and cp["remote_address"].startswith("127.0.0.1:"), cp
conn = {c.get("connector_id", 0): c for c in cp["connectors"]}
assert conn[1]["evse_id"] == "dc1", conn
assert set(conn) == {0, 1, 2}, conn
' || fail "ocpp show $cp_id: $out"
out=$(ctl "$server" ocpp list) || fail "ocpp list: $out"
grep <<<"$out" -q "^$cp_id .*CONNECTED.*ACCEPTED.*DS DS Series 60kW" || fail "ocpp list row of $cp_id: $out"
grep <<<"$out" -q "^ICE22-DEPOT-01 .*DISCONNECTED" || fail "ocpp list row of the ICE-22: $out"

out=$(ctl "$server" ocpp command "$cp_id" Reset '{"type":"Soft"}' 2>&1) || fail "ocpp command Reset: $out"
[ "$out" = '{"status":"Accepted"}' ] || fail "Reset answer: $out"
out=$(ctl "$server" ocpp command "$cp_id" UpdateFirmware \
  '{"location":"https://example.com/fw.bin","retrieveDate":"2027-01-01T00:00:00Z"}' 2>&1)
code=$?
[ "$code" -eq 1 ] && grep <<<"$out" -q "CALLERROR NotSupported" ||
  fail "UpdateFirmware on a charger without it: exit $code: $out"
out=$(ctl "$server" ocpp command "$cp_id" Reset '{"type":"Medium"}' 2>&1)
code=$?
[ "$code" -eq 1 ] && grep <<<"$out" -qi "Medium\|enum\|type" ||
  fail "an invalid Reset payload: exit $code: $out"
out=$(ctl "$server" ocpp command ICE22-DEPOT-01 ClearCache 2>&1)
code=$?
[ "$code" -eq 1 ] && grep <<<"$out" -q "not connected" || fail "command to a disconnected charger: exit $code: $out"

# Refused connections: an unknown identity (404, then listed as rejected) and
# a wrong password (401; the charger's live connection is untouched).
out=$("$node" "$charger" connect "$url" NOT-A-CHARGER "$password")
grep <<<"$out" -q '"ok":false' || fail "an unknown identity was let in: $out"
out=$("$node" "$charger" connect "$url" "$cp_id" wrong-password-0000)
grep <<<"$out" -q '"ok":false' || fail "a wrong password was let in: $out"
out=$("$node" "$charger" connect "ws://127.0.0.1:$ocpp_port/ocpp" "$cp_id" "")
grep <<<"$out" -q '"ok":false' || fail "no password was let in: $out"
out=$(ctl "$server" ocpp list) || fail "ocpp list: $out"
grep <<<"$out" -q "^NOT-A-CHARGER .*REJECTED" || fail "the unknown identity is not listed: $out"
grep <<<"$out" -q "^$cp_id .*CONNECTED" || fail "a failed login changed $cp_id: $out"

# A second connection of the same identity replaces the first, cleanly.
"$node" "$charger" hold "$url" "$cp_id" "$password" >"$tmp/second.out" 2>&1 &
second_pid=$!
pids+=("$second_pid")
replaced() { grep -q '"event":"closed","code":1000' "$tmp/charger.out"; }
wait_for 10 "the first connection closed with 1000 when the second came" replaced
grep -q '"event":"open"' "$tmp/second.out" || fail "the second connection did not open: $(cat "$tmp/second.out")"
out=$(ctl "$server" ocpp list) || fail "ocpp list: $out"
grep <<<"$out" -q "^$cp_id .*CONNECTED" || fail "after the replacement: $out"
kill "$second_pid" 2>/dev/null

# kill -9 mid-transaction: the charger's StopTransaction, retried until
# evgate is back, is recorded exactly once.
"$node" "$charger" start "$url" "$cp_id" "$password" >"$tmp/start.out" 2>&1 &
pids+=("$!")
started() { grep -q '"event":"started"' "$tmp/start.out"; }
wait_for 20 "a transaction before the kill" started
# The bridge's profiles may come in before StartTransaction's answer: the
# "started" line is wherever it is.
out=$(grep -m1 '"event":"started"' "$tmp/start.out")
open_tx=$(echo "$out" | "$py" -c 'import json,sys; e=json.loads(sys.stdin.readline()); assert e["event"]=="started" and not e["failures"], e; print(e["transactionId"])') ||
  fail "start before the kill: $(cat "$tmp/start.out")"
kill -KILL "$started_pid"
"$node" "$charger" stop "$url" "$cp_id" "$password" "$open_tx" >"$tmp/stop.out" 2>&1 &
stop_pid=$!
pids+=("$stop_pid")
start_evgate evgate-restarted --site "$tmp/site.yaml"
stopped() { grep -q '"event":"stopped"' "$tmp/stop.out"; }
wait_for 30 "the charger's StopTransaction after the restart" stopped || cat "$tmp/stop.out"
"$py" - "$tmp/ocpp_transactions.db" "$tx" "$open_tx" <<'EOF' || fail "the transaction book"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
first, second = int(sys.argv[2]), int(sys.argv[3])
rows = db.execute("SELECT transaction_id, stopped, meter_start_wh, meter_stop_wh, stop_reason "
                  "FROM transactions ORDER BY transaction_id").fetchall()
by_id = {r[0]: r for r in rows}
assert by_id[first][1:] == (1, 120000, 135500, "EVDisconnected"), by_id[first]
assert by_id[second][1:] == (1, 5000, 9000, "PowerLoss"), by_id[second]
assert len(rows) == 2, rows   # the repeated start made no row
orphans = db.execute("SELECT transaction_id FROM orphan_stops").fetchall()
assert orphans == [(987654,)], orphans
EOF

finish
