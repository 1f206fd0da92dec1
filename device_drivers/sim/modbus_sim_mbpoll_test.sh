#!/usr/bin/env bash
# Third-party client: Debian's mbpoll against modbus_sim, a Heidelberg wallbox
# (unit 3) and a V2X off-grid box (unit 2) behind one Modbus TCP port, then
# the wallbox over Modbus RTU (19200 8E1) on a pty. mbpoll numbers registers
# from 1 (-r 6 = PDU address 5); -t 3 input registers, -t 4 holding.
set -uo pipefail
sim="${TEST_SRCDIR}/${TEST_WORKSPACE}/device_drivers/sim/modbus_sim"
out="${TEST_TMPDIR}/sim.out"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
values() { grep '^\[' | sed 's/ *$//'; }

"$sim" --listen 127.0.0.1:0 --rtu-pty 1=sdm630:10 2=offgrid_box 3=heidelberg:13 >"$out" 2>&1 &
sim_pid=$!
trap 'kill "$sim_pid" 2>/dev/null; wait "$sim_pid" 2>/dev/null' EXIT
port="" pty=""
for _ in $(seq 100); do
  port=$(sed -n 's/^modbus_sim listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$out")
  pty=$(sed -n 's/^modbus_sim rtu on \(.*\)$/\1/p' "$out")
  [ -n "$port" ] && [ -n "$pty" ] && break
  sleep 0.05
done
[ -n "$port" ] && [ -n "$pty" ] || { echo "simulator did not start: $(cat "$out")"; exit 1; }
tcp=(mbpoll -m tcp -p "$port" -1 -o 1)

# Wallbox: charging state C2 (7) at once (an EV wanting 13 A is plugged in),
# voltages 230 V; settings at their power-up defaults.
state=$("${tcp[@]}" -a 3 -t 3 -r 6 -c 1 127.0.0.1 | values)
[ "$state" = $'[6]: \t7' ] || fail "charging state: '$state' (expected 7 = C2)"
volts=$("${tcp[@]}" -a 3 -t 3 -r 11 -c 3 127.0.0.1 | values)
[ "$volts" = $'[11]: \t230\n[12]: \t230\n[13]: \t230' ] || fail "voltages: $volts"
defaults=$("${tcp[@]}" -a 3 -t 4 -r 258 -c 6 127.0.0.1 | values)
expected=$'[258]: \t15000\n[259]: \t0\n[260]: \t1\n[261]: \t0\n[262]: \t160\n[263]: \t0'
[ "$defaults" = "$expected" ] || fail "holding defaults:"$'\n'"$defaults"

# mbpoll writes the max current (register 261 = mbpoll 262) and reads it back.
"${tcp[@]}" -a 3 -t 4 -r 262 127.0.0.1 100 >/dev/null || fail "write of max current refused"
limit=$("${tcp[@]}" -a 3 -t 4 -r 262 -c 1 127.0.0.1 | values)
[ "$limit" = $'[262]: \t100' ] || fail "max current after write: $limit"
# 16.1 A is more than the box takes: mbpoll reports the exception.
if "${tcp[@]}" -a 3 -t 4 -r 262 127.0.0.1 161 >/dev/null 2>&1; then
  fail "the wallbox accepted 161 (16.1 A)"
fi
# The EV follows the new limit after its 2 s lag: 10 A on each phase.
sleep 2.5
amps=$("${tcp[@]}" -a 3 -t 3 -r 7 -c 3 127.0.0.1 | values)
[ "$amps" = $'[7]: \t100\n[8]: \t100\n[9]: \t100' ] || fail "currents (0.1 A): $amps"

# Off-grid box: grid present, on-grid, QF1/QF2 closed, battery 26.40 V.
box=$("${tcp[@]}" -a 2 -t 3 -r 5 -c 5 127.0.0.1 | values)
[ "$box" = $'[5]: \t1\n[6]: \t1\n[7]: \t1\n[8]: \t1\n[9]: \t2640' ] || fail "box state: $box"
# Standby countdown setting (0x0102 = mbpoll 259): write 300 s, read back.
"${tcp[@]}" -a 2 -t 4 -r 259 127.0.0.1 300 >/dev/null || fail "countdown write refused"
countdown=$("${tcp[@]}" -a 2 -t 4 -r 259 -c 1 127.0.0.1 | values)
[ "$countdown" = $'[259]: \t300' ] || fail "countdown: $countdown"

# The same wallbox over RTU, 19200 baud, even parity.
rtu=$(mbpoll -m rtu -b 19200 -P even -a 3 -t 3 -r 6 -c 1 -1 -o 1 "$pty" | values)
[ "$rtu" = $'[6]: \t7' ] || fail "charging state over RTU: '$rtu'"
# Unit 9 is not on the bus: no answer.
if mbpoll -m rtu -b 19200 -P even -a 9 -t 3 -r 1 -c 1 -1 -o 0.3 "$pty" >/dev/null 2>&1; then
  fail "unit 9 answered over RTU"
fi

echo "$failures failures"
[ "$failures" -eq 0 ]
