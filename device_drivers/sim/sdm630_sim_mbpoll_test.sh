#!/usr/bin/env bash
# Third-party client: Debian's mbpoll reads our SDM630 simulator over Modbus
# TCP. mbpoll numbers registers from 1 (-r 1 = PDU address 0x0000); -B = high
# word first, as the SDM630 sends floats.
set -uo pipefail
sim="${TEST_SRCDIR}/${TEST_WORKSPACE}/device_drivers/sim/sdm630_sim"
out="${TEST_TMPDIR}/sim.out"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

"$sim" --listen 127.0.0.1:0 --unit 3 --current-a 10,8.5,6 --voltage-v 230,231,229 \
  --frequency-hz 49.95 >"$out" 2>&1 &
sim_pid=$!
trap 'kill "$sim_pid" 2>/dev/null; wait "$sim_pid" 2>/dev/null' EXIT
port=""
for _ in $(seq 100); do
  port=$(sed -n 's/^sdm630_sim listening on 127\.0\.0\.1:\([0-9]*\) unit 3$/\1/p' "$out")
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "simulator did not start: $(cat "$out")"; exit 1; }

# Voltages and currents: 6 floats from 30001.
values=$(mbpoll -m tcp -a 3 -t 3:float -B -r 1 -c 6 -p "$port" -1 127.0.0.1 | grep '^\[')
expected=$'[1]: \t230\n[3]: \t231\n[5]: \t229\n[7]: \t10\n[9]: \t8.5\n[11]: \t6'
[ "$values" = "$expected" ] || fail "V/A read by mbpoll:"$'\n'"$values"$'\n'"expected:"$'\n'"$expected"

# Total power (0x0034 = 30053) = sum of V x I; frequency (0x0046 = 30071).
total=$(mbpoll -m tcp -a 3 -t 3:float -B -r 53 -c 1 -p "$port" -1 127.0.0.1 | grep '^\[')
[ "$total" = $'[53]: \t5637.5' ] || fail "total power: $total (expected 230*10+231*8.5+229*6 = 5637.5)"
hz=$(mbpoll -m tcp -a 3 -t 3:float -B -r 71 -c 1 -p "$port" -1 127.0.0.1 | grep '^\[')
[ "$hz" = $'[71]: \t49.95' ] || fail "frequency: $hz"

# Import energy counts up while power flows (0x0048 = 30073, kWh).
e1=$(mbpoll -m tcp -a 3 -t 3:float -B -r 73 -c 1 -p "$port" -1 127.0.0.1 | sed -n 's/^\[73\]: \t//p')
sleep 0.5
e2=$(mbpoll -m tcp -a 3 -t 3:float -B -r 73 -c 1 -p "$port" -1 127.0.0.1 | sed -n 's/^\[73\]: \t//p')
awk -v a="$e1" -v b="$e2" 'BEGIN { exit !(b > a && a > 0) }' || fail "import kWh did not count up: $e1 -> $e2"

# Another unit id gets no answer: mbpoll times out and says so.
if mbpoll -m tcp -a 9 -t 3:float -B -r 1 -c 1 -o 0.3 -p "$port" -1 127.0.0.1 >/dev/null 2>&1; then
  fail "unit 9 answered, but the simulator is unit 3"
fi

echo "$failures failures"
[ "$failures" -eq 0 ]
