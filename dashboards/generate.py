#!/usr/bin/env python3
"""Writes the Grafana dashboards of evgate (grafana/dashboards/*.json).

The JSON files are generated from this script and checked in, so that they
import into Grafana 10+ unchanged; edit this file and rerun it
(`/usr/bin/python3 dashboards/generate.py`). `--check` exits 1 when a JSON
file differs from what this script writes (run by //dashboards:dashboards_test).

Every panel reads the Prometheus datasource provisioned with the fixed uid
`evgate-prometheus` (grafana/provisioning/datasources/evgate.yaml); every
metric is one of docs/metrics.md.
"""
import json
import os
import sys

DATASOURCE = {"type": "prometheus", "uid": "evgate-prometheus"}
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "grafana", "dashboards")


class Dashboard:
    def __init__(self, uid, title, description, variables=()):
        self.uid, self.title, self.description = uid, title, description
        self.variables = list(variables)
        self.panels = []
        self.x = self.y = self.row_h = 0

    def panel(self, kind, title, targets, unit=None, w=12, h=8, description="", **extra):
        if self.x + w > 24:
            self.x, self.y = 0, self.y + self.row_h
            self.row_h = 0
        defaults = {"unit": unit} if unit else {}
        defaults.update(extra.pop("defaults", {}))
        p = {
            "id": len(self.panels) + 1,
            "type": kind,
            "title": title,
            "description": description,
            "datasource": DATASOURCE,
            "gridPos": {"h": h, "w": w, "x": self.x, "y": self.y},
            "targets": [
                {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr,
                 "legendFormat": legend}
                for i, (expr, legend) in enumerate(targets)
            ],
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": extra.pop("options", {}),
        }
        p.update(extra)
        self.panels.append(p)
        self.x += w
        self.row_h = max(self.row_h, h)

    def json(self):
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["evgate"],
            "editable": False,
            "schemaVersion": 38,
            "version": 1,
            "timezone": "browser",
            "refresh": "5s",
            "time": {"from": "now-1h", "to": "now"},
            "templating": {"list": self.variables},
            "annotations": {"list": []},
            "links": [{"type": "dashboards", "tags": ["evgate"], "title": "evgate", "asDropdown": True}],
            "panels": self.panels,
        }


def on_off(ok_text, bad_text):
    """Value mappings for a 0/1 stat: 0 green, 1 red."""
    return {
        "mappings": [{"type": "value", "options": {
            "0": {"text": ok_text, "color": "green", "index": 0},
            "1": {"text": bad_text, "color": "red", "index": 1}}}],
        "color": {"mode": "thresholds"},
        "thresholds": {"mode": "absolute", "steps": [
            {"color": "green", "value": None}, {"color": "red", "value": 1}]},
    }


def site_overview():
    d = Dashboard("evgate-site-overview", "evgate / Site overview",
                  "How close each circuit phase is to its limit, who gets what, and whether the "
                  "load balancer is in failsafe.")
    d.panel("stat", "Failsafe", [("max(evgate_failsafe_active)", "site")], w=4, h=4,
            description="FAILSAFE: every EVSE held at its failsafe value (grid meter stale or invalid).",
            defaults=on_off("OK", "FAILSAFE"),
            options={"colorMode": "background", "graphMode": "none", "textMode": "value"})
    d.panel("stat", "Circuits in failsafe", [("sum(evgate_circuit_failsafe)", "circuits")], w=4, h=4,
            defaults={"thresholds": {"mode": "absolute", "steps": [
                {"color": "green", "value": None}, {"color": "red", "value": 1}]}},
            options={"colorMode": "background", "graphMode": "none"})
    d.panel("stat", "Services", [("evgate_up", "{{service}}")], w=8, h=4,
            defaults={"mappings": [{"type": "value", "options": {
                "0": {"text": "down", "color": "red", "index": 0},
                "1": {"text": "up", "color": "green", "index": 1}}}],
                "thresholds": {"mode": "absolute", "steps": [
                    {"color": "red", "value": None}, {"color": "green", "value": 1}]}},
            options={"colorMode": "background", "graphMode": "none", "textMode": "value_and_name"})
    d.panel("stat", "Open sessions", [("sum(evgate_sessions_open{state=\"active\"})", "charging")],
            w=4, h=4, options={"graphMode": "none"})
    d.panel("stat", "Energy in open sessions",
            [("sum(evgate_session_energy_joules) / 3.6e6 or vector(0)", "kWh")],
            unit="kwatth", w=4, h=4, options={"graphMode": "none"})
    d.panel("bargauge", "Headroom per circuit phase", [
        ("evgate_circuit_headroom_amperes", "{{circuit}} {{phase}}")], unit="amp", w=12, h=10,
        description="Limit in force (after dynamic limits, minus the margin) minus load. Red: at or "
                    "beyond the margin.",
        defaults={"min": 0, "thresholds": {"mode": "absolute", "steps": [
            {"color": "red", "value": None}, {"color": "orange", "value": 1},
            {"color": "green", "value": 5}]}},
        options={"orientation": "horizontal", "displayMode": "gradient"})
    d.panel("bargauge", "Who gets what (setpoint per phase)", [
        ("evgate_evse_setpoint_amperes", "{{evse}}")], unit="amp", w=12, h=10,
        options={"orientation": "horizontal", "displayMode": "basic"})
    d.panel("timeseries", "Grid current and limit", [
        ("evgate_circuit_current_amperes{circuit=\"grid\"}", "{{phase}} measured"),
        ("evgate_circuit_limit_amperes{circuit=\"grid\"}", "{{phase}} limit")], unit="amp")
    d.panel("timeseries", "EV current per circuit", [
        ("sum by (circuit) (evgate_circuit_ev_current_amperes)", "{{circuit}}")], unit="amp")
    d.panel("timeseries", "Grid power and contract", [
        ("evgate_grid_power_watts", "grid (import +)"),
        ("evgate_grid_contract_power_watts", "contract")], unit="watt")
    d.panel("timeseries", "Power per EVSE (setpoint)", [
        ("evgate_evse_setpoint_watts", "{{evse}}")], unit="watt",
        defaults={"custom": {"stacking": {"mode": "normal"}, "fillOpacity": 30}})
    d.panel("table", "Paused EVSEs by reason", [
        ("sum by (reason) (evgate_evse_paused)", "{{reason}}")], w=12, h=6,
        options={"showHeader": True})
    d.panel("timeseries", "Grid meter age", [
        ("evgate_grid_meter_age_seconds", "age"),
        ("evgate_grid_meter_timeout_seconds", "failsafe at")], unit="s", w=12, h=6)
    d.panel("stat", "Grid mode", [("max by (state) (evgate_grid_mode) == 1", "{{state}}")], w=6, h=6,
            description="The V2X grid mode (docs/v2x.md): anything but on_grid means no grid and no "
                        "charging; off_grid: a vehicle powers the building. Empty on a site "
                        "without an off-grid box.",
            defaults={"color": {"mode": "fixed", "fixedColor": "blue"}},
            options={"colorMode": "background", "graphMode": "none", "textMode": "name"})
    d.panel("timeseries", "Island power (V2X off grid)", [
        ("evgate_grid_island_power_watts", "building supplied by the vehicle")], unit="watt",
        w=18, h=6,
        description="Power the vehicle forming the island supplies to the backup loads (at most "
                    "19.8 kW); 0 on the grid.")
    return d


def evse_detail():
    var = {
        "name": "evse", "label": "EVSE", "type": "query", "datasource": DATASOURCE,
        "query": {"query": "label_values(evgate_evse_setpoint_amperes, evse)", "refId": "evse"},
        "definition": "label_values(evgate_evse_setpoint_amperes, evse)",
        "refresh": 2, "sort": 1, "multi": False, "includeAll": False,
        "current": {}, "options": [],
    }
    d = Dashboard("evgate-evse-detail", "evgate / EVSE detail",
                  "One EVSE: what the load balancer gives it, what it draws, its state and session.",
                  [var])
    sel = 'evse="$evse"'
    d.panel("stat", "Connector status", [(f"max by (state) (evgate_evse_status{{{sel}}}) == 1", "{{state}}")],
            w=6, h=4, options={"textMode": "name", "graphMode": "none"})
    d.panel("stat", "Paused", [(f"max by (reason) (evgate_evse_paused{{{sel}}})", "{{reason}}")], w=6, h=4,
            defaults=on_off("charging", "paused"), options={"textMode": "value_and_name", "graphMode": "none"})
    d.panel("stat", "Controlled", [(f"max by (reason) (evgate_evse_controlled{{{sel}}})", "{{reason}}")],
            w=6, h=4, options={"textMode": "value_and_name", "graphMode": "none"},
            defaults={"mappings": [{"type": "value", "options": {
                "0": {"text": "worst case", "color": "red", "index": 0},
                "1": {"text": "commanded", "color": "green", "index": 1}}}]})
    d.panel("stat", "Priority", [(f"evgate_evse_priority{{{sel}}}", "priority")], w=6, h=4,
            options={"graphMode": "none"})
    d.panel("timeseries", "Setpoint and measured current", [
        (f"evgate_evse_setpoint_amperes{{{sel}}}", "setpoint"),
        (f"evgate_evse_current_amperes{{{sel}}}", "{{phase}} measured")], unit="amp")
    d.panel("timeseries", "Setpoint and measured power", [
        (f"evgate_evse_setpoint_watts{{{sel}}}", "setpoint"),
        (f"evgate_evse_power_watts{{{sel}}}", "measured")], unit="watt")
    d.panel("timeseries", "Session energy", [
        (f"sum(evgate_session_energy_joules{{{sel}}}) / 3.6e6 or vector(0)", "open session")],
        unit="kwatth")
    d.panel("timeseries", "Active (vehicle wants energy)", [(f"evgate_evse_active{{{sel}}}", "active")],
            defaults={"min": 0, "max": 1})
    return d


def devices_ocpp():
    d = Dashboard("evgate-devices-ocpp", "evgate / Buses, devices, OCPP and control",
                  "Every device's link and faults, the buses' traffic, the OCPP chargers and the "
                  "control loop's timings.")
    d.panel("table", "Devices online", [("evgate_device_online", "{{device}}")], w=12, h=8,
            options={"showHeader": True}, defaults={"mappings": [
                {"type": "value", "options": {
                    "0": {"text": "offline", "color": "red", "index": 0},
                    "1": {"text": "online", "color": "green", "index": 1}}}]})
    d.panel("stat", "Active faults", [("count(evgate_device_fault) or vector(0)", "faults")], w=4, h=8,
            defaults={"thresholds": {"mode": "absolute", "steps": [
                {"color": "green", "value": None}, {"color": "red", "value": 1}]}},
            options={"colorMode": "background", "graphMode": "none"})
    d.panel("table", "Faults by unified code", [
        ("sum by (device, evse, code, severity) (evgate_device_fault)", "{{device}} {{code}}")],
        w=8, h=8, options={"showHeader": True})
    d.panel("timeseries", "Bus requests", [
        ("sum by (bus) (rate(evgate_bus_requests_total[$__rate_interval]))", "{{bus}}")], unit="reqps")
    d.panel("timeseries", "Bus errors and timeouts", [
        ("sum by (bus) (rate(evgate_bus_errors_total[$__rate_interval]))", "{{bus}} errors"),
        ("sum by (bus) (rate(evgate_bus_timeouts_total[$__rate_interval]))", "{{bus}} timeouts")],
        unit="reqps")
    d.panel("timeseries", "Modbus request duration p50 / p99", [
        ("histogram_quantile(0.5, sum by (bus, le) (rate(evgate_bus_request_duration_seconds_bucket[$__rate_interval])))", "{{bus}} p50"),
        ("histogram_quantile(0.99, sum by (bus, le) (rate(evgate_bus_request_duration_seconds_bucket[$__rate_interval])))", "{{bus}} p99")],
        unit="s", w=8)
    d.panel("timeseries", "CAN frames", [
        ("sum by (bus, direction) (rate(evgate_can_frames_total[$__rate_interval]))", "{{bus}} {{direction}}")],
        unit="pps", w=8)
    d.panel("timeseries", "CAN error frames and interface losses", [
        ("sum by (bus, kind) (rate(evgate_can_error_frames_total[$__rate_interval]))", "{{bus}} {{kind}}"),
        ("sum by (bus) (increase(evgate_can_interface_down_total[$__rate_interval]))", "{{bus}} interface down")],
        w=8)
    d.panel("stat", "OCPP charge points", [("evgate_ocpp_charge_point_connected", "{{charge_point}}")],
            w=8, h=6, options={"textMode": "value_and_name", "colorMode": "background", "graphMode": "none"},
            defaults={"mappings": [{"type": "value", "options": {
                "0": {"text": "offline", "color": "red", "index": 0},
                "1": {"text": "connected", "color": "green", "index": 1}}}]})
    d.panel("timeseries", "OCPP calls pending", [
        ("evgate_ocpp_charge_point_pending_calls", "{{charge_point}}")], w=8, h=6)
    d.panel("timeseries", "OCPP messages by action and result", [
        ("sum by (direction, action, result) (rate(evgate_ocpp_messages_total[$__rate_interval]))",
         "{{direction}} {{action}} {{result}}")], unit="ops", w=24)
    d.panel("stat", "Upstream CSMS", [("max by (state) (evgate_ocpp_upstream_state) == 1", "{{state}}"),
                                      ("evgate_ocpp_upstream_queue_length", "queued")],
            w=8, h=6, options={"textMode": "value_and_name", "graphMode": "none"})
    d.panel("timeseries", "Control reaction p50 / p99", [
        ("histogram_quantile(0.5, sum by (le) (rate(evgate_control_reaction_seconds_bucket[$__rate_interval])))", "p50"),
        ("histogram_quantile(0.99, sum by (le) (rate(evgate_control_reaction_seconds_bucket[$__rate_interval])))", "p99")],
        unit="s", description="Meter sample to setpoints dispatched.")
    d.panel("timeseries", "Allocation compute p99", [
        ("histogram_quantile(0.99, sum by (le) (rate(evgate_allocation_compute_seconds_bucket[$__rate_interval])))", "p99")],
        unit="s")
    d.panel("timeseries", "Setpoints sent, refused and expired", [
        ("sum(rate(evgate_setpoints_sent_total[$__rate_interval]))", "sent"),
        ("sum(rate(evgate_setpoints_refused_total[$__rate_interval]))", "refused"),
        ("sum by (bus) (rate(evgate_setpoints_expired_total[$__rate_interval]))", "expired on {{bus}}")],
        unit="ops", description="Refused: the driver did not take it; the load balancer counts "
                                "that EVSE at its worst case. Expired: no new setpoint came within "
                                "its TTL and the EVSE fell back to its failsafe.")
    d.panel("table", "Setpoints refused in the last hour, by reason", [
        ("sum by (reason) (increase(evgate_setpoints_refused_total[1h]))", "{{reason}}")],
        options={"showHeader": True})
    d.panel("stat", "What the EVSEs run on", [
        ("sum by (source) (evgate_evse_setpoint_source)", "{{source}}")], w=12, h=8,
        description="controller: a live setpoint; failsafe: the setpoint expired (or none came) "
                    "and the EVSE's watchdog value is in force.",
        options={"textMode": "value_and_name", "graphMode": "none"})
    d.panel("timeseries", "Allocations by trigger", [
        ("sum by (trigger) (rate(evgate_allocations_total[$__rate_interval]))", "{{trigger}}")], unit="ops")
    d.panel("stat", "Energy of completed sessions (1 h)",
            [("sum(increase(evgate_energy_delivered_joules_total[1h])) / 3.6e6", "kWh")],
            unit="kwatth", w=6, h=8, options={"graphMode": "none"})
    d.panel("timeseries", "Sessions completed by stop reason (1 h)", [
        ("sum by (reason) (increase(evgate_sessions_completed_total[1h]))", "{{reason}}")], w=18)
    d.panel("timeseries", "Vehicle state of charge (DC)", [("evgate_evse_soc_percent", "{{evse}}")],
            unit="percent", defaults={"min": 0, "max": 100})
    d.panel("timeseries", "Exporter memory", [("process_resident_memory_bytes", "RSS")],
            unit="bytes")
    d.panel("timeseries", "Exporter: time to read each service", [
        ("evgate_peer_read_seconds", "{{service}}")], unit="s")
    return d


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for dashboard in (site_overview(), evse_detail(), devices_ocpp()):
        path = os.path.join(OUT, dashboard.uid.replace("evgate-", "") + ".json")
        text = json.dumps(dashboard.json(), indent=2, ensure_ascii=False) + "\n"
        if check:
            try:
                with open(path, encoding="utf-8") as f:
                    if f.read() != text:
                        stale.append(path)
            except FileNotFoundError:
                stale.append(path)
        else:
            os.makedirs(OUT, exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    if stale:
        print("not what dashboards/generate.py writes (rerun it): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
