#!/usr/bin/env bash
# End to end: the evgate binary and evgatectl as an operator uses them.
# validate (good and broken site), run the demo site, health over gRPC from
# evgatectl and from a third-party client (python3-grpcio), simulate through
# the API, a taken port, an unavailable service, graceful SIGTERM.
set -uo pipefail

runfiles="${TEST_SRCDIR}/${TEST_WORKSPACE}"
evgate="$runfiles/gateway/evgate"
ctl="$runfiles/tools/evgatectl/evgatectl"
demo="$runfiles/gateway/sites/demo.yaml"
tmp="${TEST_TMPDIR}"
failures=0

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
expect_code() {  # expected actual what
  [ "$1" -eq "$2" ] || fail "$3: exit code $2, expected $1"
}

# --- validate -----------------------------------------------------------
out=$("$evgate" validate "$demo" 2>&1); code=$?
expect_code 0 $code "validate demo"
[ "$out" = "OK" ] || fail "validate demo printed: $out"

cat > "$tmp/broken.yaml" <<'YAML'
site:
  id: broken
grid:
  fuse_limit_a: [63, 63, 63]
  nominal_voltage_v: 230
circuits:
  - id: garage
    parent: nowhere
    limit_a: 32
YAML
out=$("$evgate" validate "$tmp/broken.yaml" 2>&1); code=$?
expect_code 1 $code "validate broken"
grep <<<"$out" -q "broken.yaml:8: circuits\[0\].parent: " || fail "no file:line error for the unknown parent: $out"

# --- run the demo -------------------------------------------------------
# The demo as shipped, but with its charge records in the test's directory
# rather than /var/lib/evgate, and its simulated buses on ports nobody else
# uses right now (the kernel's picks), so a running demo or a parallel test
# does not collide with it.
free_port() {  # tcp|udp
  /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if sys.argv[1] == "tcp" else socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' "$1"
}
sed -e "s|session_database: .*|session_database: $tmp/demo-sessions.db|" \
    -e "s|^    port: 15020|    port: $(free_port tcp)|" \
    -e "s|^    udp_port: 15030|    udp_port: $(free_port udp)|" \
    -e "s|listen: 127.0.0.1:9000|listen: 127.0.0.1:$(free_port tcp)|" \
    -e "s|metrics_listen: .*|metrics_listen: 127.0.0.1:$(free_port tcp)|" "$demo" > "$tmp/demo.yaml"
grep -q "port: 15020" "$tmp/demo.yaml" && fail "the demo's Modbus port was not replaced"
demo="$tmp/demo.yaml"
"$evgate" run --site "$demo" --listen 127.0.0.1:0 >"$tmp/evgate.log" 2>&1 &
pid=$!
port=""
for _ in $(seq 1 100); do
  port=$(sed -n 's/.*listening on .* (port \([0-9]*\),.*/\1/p' "$tmp/evgate.log" | head -1)
  [ -n "$port" ] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.1
done
if [ -z "$port" ]; then
  fail "evgate did not start listening"; cat "$tmp/evgate.log"; exit 1
fi
server="127.0.0.1:$port"

out=$("$ctl" --server "$server" health 2>&1); code=$?
expect_code 0 $code "evgatectl health"
grep <<<"$out" -Eq '^\(server\) +SERVING$' || fail "server not SERVING: $out"
grep <<<"$out" -Eq '^evgate.v1.LoadBalancer +SERVING$' || fail "LoadBalancer not SERVING: $out"

# A third-party gRPC client (Debian's python3-grpcio) sees the same health.
/usr/bin/python3 - "$server" <<'PY' || fail "python3-grpcio health check"
import sys, grpc
channel = grpc.insecure_channel(sys.argv[1])
check = channel.unary_unary("/grpc.health.v1.Health/Check",
                            request_serializer=lambda name: b"\x0a" + bytes([len(name)]) + name.encode(),
                            response_deserializer=lambda raw: raw)
reply = check("evgate.v1.LoadBalancer", timeout=5)
assert reply == b"\x08\x01", reply  # status: SERVING
PY

# Simulate through the API: wb1 on a 3x32 A unmetered garage, grid 63 A with
# 40/22/18 A measured of which wb1 draws 10 A per phase.
cat > "$tmp/scenario.json" <<'JSON'
{"grid": {"limit_a": [63, 63, 63], "nominal_voltage_v": 230, "measured_a": [40, 22, 18],
          "meter_age_s": 0.4, "meter_timeout_s": 3},
 "margin_a": 0,
 "circuits": [{"id": "garage", "parent": "grid", "limit_a": [32, 32, 32], "measured_a": null}],
 "evses": [{"id": "wb1", "circuit": "garage", "type": "ac", "phases": ["L1", "L2", "L3"],
            "min_a": 6, "max_a": 32, "step_a": 0.1, "active": true, "measured_a": [10, 10, 10]}]}
JSON
out=$("$ctl" --server "$server" allocation simulate --scenario "$tmp/scenario.json" 2>&1); code=$?
expect_code 0 $code "allocation simulate"
echo "$out" | /usr/bin/python3 -c '
import json, sys
a = json.load(sys.stdin)
assert a["failsafe"] is False, a
wb1 = [e for e in a["evses"] if e["id"] == "wb1"][0]
# Base load on L1 is 40 - 10 = 30 A, so L1 allows 33 A; the garage (32 A) and
# the wallbox maximum (32 A) bind first.
assert wb1["current_a"] == 32.0 and wb1["paused"] is False, wb1
' || fail "simulate result: $out"

echo '{"grid": {"limit_a": "lots"}}' > "$tmp/bad.json"
out=$("$ctl" --server "$server" allocation simulate --scenario "$tmp/bad.json" 2>&1); code=$?
expect_code 1 $code "simulate malformed scenario"
grep <<<"$out" -q "invalid_argument: .*grid.limit_a" || fail "malformed scenario error: $out"

# Sessions through evgatectl: a remote start waits for its vehicle, a remote
# stop cancels it, and the record exports to CSV.
# (wb2: the simulator plugs vehicles into wb1 and wb3 at start.)
out=$("$ctl" --server "$server" sessions start --evse wb2 --id-tag 04B2C3D4E5F607 2>&1); code=$?
expect_code 0 $code "sessions start"
grep <<<"$out" -q "PENDING_PLUG_IN" || fail "sessions start: $out"
out=$("$ctl" --server "$server" sessions start --evse wb2 --id-tag 04B2C3D4E5F607 2>&1); code=$?
expect_code 1 $code "second start on the same EVSE"
grep <<<"$out" -q "failed_precondition: EVSE wb2 already has session" || fail "double start: $out"
out=$("$ctl" --server "$server" sessions stop --evse wb2 2>&1); code=$?
expect_code 0 $code "sessions stop"
grep <<<"$out" -q "CANCELLED" || fail "sessions stop: $out"
out=$("$ctl" --server "$server" sessions export --format csv 2>&1); code=$?
expect_code 0 $code "sessions export"
grep <<<"$out" -q ",wb2,wb2,1,04B2C3D4E5F607,CANCELLED,CHARGE," || fail "export: $out"

out=$("$ctl" --server "$server" authorize DEADBEEF --evse wb1 2>&1); code=$?
expect_code 1 $code "authorize a blocked card"
grep <<<"$out" -q "BLOCKED" || fail "authorize: $out"
out=$("$ctl" --server "$server" cards list 2>&1); code=$?
expect_code 0 $code "cards list"
grep <<<"$out" -q "04A1B2C3D4E5F6 .*Depot manager.*master.*site.yaml" || fail "cards list: $out"

# The simulator serves all the demo's devices, the DC chargers as OCPP
# charge points connecting to the bridge, and warns about none.
grep -q "simulator: simulating 8 devices .*ocpp ws://127.0.0.1:[0-9]*/DS60-DEPOT-01" "$tmp/evgate.log" ||
  fail "the simulator did not start with the DC chargers"
grep -q "is not simulated" "$tmp/evgate.log" && fail "the demo leaves a device unsimulated"
out=$("$ctl" --server "$server" sim list 2>&1); code=$?
expect_code 0 $code "sim list"
grep <<<"$out" -Eq '^grid-meter +eastron_sdm630 +modbus tcp 127.0.0.1:[0-9]+ +answering +grid ' ||
  fail "sim list: no grid meter: $out"
grep <<<"$out" -Eq '^wb1 +32 A 3ph ' || fail "sim list: no vehicle in wb1: $out"

# A second evgate on the same port: clear error, exit 3.
out=$("$evgate" run --site "$demo" --listen "$server" 2>&1); code=$?
expect_code 3 $code "second evgate on a taken port"
grep <<<"$out" -q "Address already in use" || fail "taken port message: $out"

# --- shutdown -------------------------------------------------------------
kill -TERM $pid
code=0
for _ in $(seq 1 50); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
if kill -0 $pid 2>/dev/null; then fail "evgate ignored SIGTERM"; kill -KILL $pid; fi
wait $pid; code=$?
expect_code 0 $code "evgate after SIGTERM"
grep -q "stopped" "$tmp/evgate.log" || fail "no orderly shutdown in the log"

out=$("$ctl" --server "$server" --timeout 2 health 2>&1); code=$?
expect_code 3 $code "evgatectl against a stopped server"
grep <<<"$out" -q "cannot reach evgate at $server" || fail "unreachable message: $out"

# --- services not in this build, bad config -------------------------------
missing=$("$evgate" services | awk -F'\t' '$2 == "not in this build" {print $1; exit}')
if [ -n "$missing" ]; then
  out=$("$evgate" run --site "$demo" --services "$missing" 2>&1); code=$?
  expect_code 2 $code "run an unavailable service ($missing)"
  grep <<<"$out" -q "not part of this build yet" || fail "unavailable service message: $out"
fi

out=$("$evgate" run --site "$tmp/broken.yaml" 2>&1); code=$?
expect_code 1 $code "run a broken site"
grep <<<"$out" -q "nothing started" || fail "broken site message: $out"

if [ $failures -ne 0 ]; then
  echo "--- evgate log"; cat "$tmp/evgate.log"
  exit 1
fi
echo "all end-to-end checks passed"
