#!/usr/bin/python3
"""Writes a site.yaml of N simulated DS60 chargers (2 connectors each) on one
bridge, for tools/bench/ocpp_1000.sh and tools/bench/metrics_1000.sh.

  ocpp_site.py N OCPP_PORT API_PORT DB [--grid-meter MODBUS_PORT]
               [--metrics-listen PORT] [--peers HOST:PORT]

--grid-meter: a simulated SDM630 grid meter on Modbus TCP at that port, so the
  load balancer controls (and reacts to meter samples) instead of holding
  every EVSE at its failsafe for want of a meter.
--metrics-listen: services.metrics_listen.
--peers: every service's `endpoint` is HOST:PORT (a metrics exporter in its
  own process reading the others there).
--vehicles: a 30 kW vehicle plugged into every EVSE at start, each with a card
  of its own (so every EVSE has a session and draws energy).
--fuse-a: the grid fuse and feeder limit per phase (default 100000 A: nothing
  binds). Lower, the feeder limit binds and every change of the building load
  changes every setpoint.
"""
import argparse

ap = argparse.ArgumentParser()
ap.add_argument("n", type=int)
ap.add_argument("ocpp_port", type=int)
ap.add_argument("api_port", type=int)
ap.add_argument("db")
ap.add_argument("--grid-meter", type=int)
ap.add_argument("--metrics-listen", type=int)
ap.add_argument("--peers")
ap.add_argument("--vehicles", action="store_true")
ap.add_argument("--fuse-a", type=int, default=100000)
a = ap.parse_args()
n = a.n

out = ["insecure_demo: true",
       "site: {id: bench-%d, name: \"%d DS60 chargers\"}" % (n, n)]
grid = "grid: {fuse_limit_a: %d, nominal_voltage_v: 230, phases: [L1, L2, L3]" % a.fuse_a
if a.grid_meter:
    grid += ", meter: grid-meter"
out.append(grid + "}")
if a.grid_meter:
    out += ["buses:",
            "  - {id: rs485-1, type: modbus_tcp, host: 127.0.0.1, port: %d}" % a.grid_meter]
out += ["circuits:",
        "  - {id: dc-feeder, parent: grid, limit_a: %d}" % a.fuse_a,
        "devices:"]
if a.grid_meter:
    out.append("  - {id: grid-meter, profile: eastron_sdm630, bus: rs485-1, address: 1, "
               "poll_period_ms: 1000}")
for i in range(n):
    out.append("  - {id: ds60-%d, profile: ds60, charge_point_id: DS60-%04d}" % (i, i))
out.append("stations:")
for i in range(n):
    out += ["  - id: st%d" % i,
            "    device: ds60-%d" % i,
            "    circuit: dc-feeder",
            "    max_power_w: 60000",
            "    evses:",
            "      - {id: dc%da, connector: 1, connector_type: chademo, max_power_w: 60000}" % i,
            "      - {id: dc%db, connector: 2, connector_type: ccs1, max_power_w: 60000}" % i]
def card(evse):
    return "04%012X" % evse


evses = [2 * i + c for i in range(n) for c in (0, 1)]
if a.vehicles:
    out += ["authorization:", "  cards:"]
    out += ['    - {uid: "%s", name: "vehicle %d"}' % (card(e), e) for e in evses]
out += ["ocpp:",
        "  local: {listen: \"127.0.0.1:%d\", security_profile: 0}" % a.ocpp_port,
        "services:",
        "  api_listen: 127.0.0.1:%d" % a.api_port,
        "  session_database: %s" % a.db]
if a.metrics_listen:
    out.append("  metrics_listen: 127.0.0.1:%d" % a.metrics_listen)
if a.peers:
    for service in ("device_drivers", "load_balancer", "session", "ocpp_bridge"):
        out.append("  %s: {endpoint: \"%s\"}" % (service, a.peers))
simulated = (["grid-meter"] if a.grid_meter else []) + ["ds60-%d" % i for i in range(n)]
out += ["simulation:",
        "  devices: [%s]" % ", ".join(simulated)]
if a.vehicles:
    out.append("  vehicles:")
    for e in evses:
        out.append('    - {evse: dc%d%s, max_power_w: 30000, energy_to_full_wh: 1000000, '
                   'id_tag: "%s"}' % (e // 2, "ab"[e % 2], card(e)))
print("\n".join(out))
