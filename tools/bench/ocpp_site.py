#!/usr/bin/python3
"""Writes a site.yaml of N simulated DS60 chargers (2 connectors each) on one
bridge, for tools/bench/ocpp_1000.sh. Usage: ocpp_site.py N OCPP_PORT API_PORT DB"""
import sys

n, ocpp_port, api_port, db = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
out = ["insecure_demo: true",
       "site: {id: bench-%d, name: \"%d DS60 chargers\"}" % (n, n),
       "grid: {fuse_limit_a: 100000, nominal_voltage_v: 230, phases: [L1, L2, L3]}",
       "circuits:",
       "  - {id: dc-feeder, parent: grid, limit_a: 100000}",
       "devices:"]
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
out += ["ocpp:",
        "  local: {listen: \"127.0.0.1:%d\", security_profile: 0}" % ocpp_port,
        "services:",
        "  api_listen: 127.0.0.1:%d" % api_port,
        "  session_database: %s" % db,
        "simulation:",
        "  devices: [%s]" % ", ".join("ds60-%d" % i for i in range(n))]
print("\n".join(out))
