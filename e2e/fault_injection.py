"""Fault injection on a split site: kill -9 a random service, restart it,
and check from a continuous record that nothing unsafe happened meanwhile.

Started by fault_injection_test.sh / fault_injection_soak.sh (which write the
site and generate the Python protobuf modules); runs the five processes of the
split site itself, so it can kill and restart them:

  simulator                      never killed: it is the physical world
  device_drivers                 killed and restarted
  load_balancer                  killed and restarted
  session                        killed and restarted

While they run, two recorder threads keep a continuous record:

  - the Simulator API (ListSimulatedDevices) every --sample-period (0.1 s,
    the simulator's physics period, so no physics step is skipped by design):
    what every wallbox offers, what its car draws, its failsafe state, the
    building load and the grid meter;
  - the load balancer's WatchAllocations stream (every allocation that
    differs from the previous one), reconnected within 50 ms whenever the
    load balancer comes back.

Checked at every sample, from the moment every car charges under control
(warm-up) to the end:

  (a) limits: the current of every node of the circuit tree (the grid: the
      building load plus every wallbox; a circuit: the wallboxes below it)
      on each of its phases is at most its limit (site.yaml limit_a /
      fuse_limit_a, without the controller's margin), and the grid meter's
      power at most contract_power_w and at least -export_limit_w. A car
      follows a new offer only after its lag (SiteSimulatorOptions::ev_lag,
      2 s, device_drivers/sim/site_simulator.h; the record shows it too and
      the test checks that), so an excursion is tolerated when it lasts at
      most the allowance ev_lag + 2 x the sampling period (each end of an
      excursion is seen up to one sample late). Longer is a violation.
  (b) setpoints: every wallbox offers either its failsafe current (site.yaml
      failsafe_current_a, else controller.failsafe_current_a; also what the
      drivers send when a setpoint's TTL runs out) or a value the load
      balancer allocated to it (EvseAllocation current_a, 0 when paused,
      rounded down to the wallbox's 0.1 A) while that value can still be in
      force: allocated at most setpoint TTL (max(3 x tick_ms, 3 s),
      site_controller/control/site_model.cc) + the wallbox watchdog (from the
      Simulator API) + 1 s before the sample, or the last one before that.
      A wallbox that says failsafe_active must offer exactly its failsafe.
      Every wallbox keeps its watchdog configured.
  (c) sessions: after every restart, once the session service answers,
      every session open at warm-up still exists and is ACTIVE with energy
      that never decreases, or is closed properly (COMPLETED/STOPPED with a
      stop reason and a stop meter); none is lost.

At the end every car must charge again under control (liveness).

Randomness (which service, when, for how long it stays down) comes from one
seed, printed at the start; the same seed gives the same schedule (timing on
a loaded machine still varies by some ms).
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import grpc
import yaml

PHASES = ("l1", "l2", "l3")
SIM = "/evgate.v1.Simulator/"
LB = "/evgate.v1.LoadBalancer/"
SESSIONS = "/evgate.v1.SessionService/"
# The simulated car's lag behind a new offer: SiteSimulatorOptions::ev_lag
# (device_drivers/sim/site_simulator.h, docs/simulator.md "the car follows
# after 2 s"). Verified against the record (measured_lags).
EV_LAG_S = 2.0
EPS_A = 0.01
# How long after a wallbox shows a value the load balancer's allocation
# stream may bring it: the loop publishes an allocation after its
# ApplySetpoints call returned (services/load_balancer/control_loop.cc), and
# this process receives it a little later still.
PUBLISH_LATE_S = 1.0
CHANNEL_OPTIONS = [("grpc.use_local_subchannel_pool", 1),
                   ("grpc.initial_reconnect_backoff_ms", 20),
                   ("grpc.min_reconnect_backoff_ms", 20),
                   ("grpc.max_reconnect_backoff_ms", 50)]


def log(msg):
    print("[%7.2f] %s" % (time.monotonic() - T0, msg), flush=True)


T0 = time.monotonic()


class Site:
    """What the checks need from site.yaml: limits, wiring, failsafes."""

    def __init__(self, path):
        with open(path) as f:
            y = yaml.safe_load(f)
        self.yaml = y
        grid = y["grid"]
        self.grid_phases = [p.lower() for p in grid.get("phases", ["L1", "L2", "L3"])]
        self.nodes = {}  # node -> {"parent", "phases", "limit": {phase: A}}
        fuse = grid["fuse_limit_a"]
        fuse = fuse if isinstance(fuse, list) else [fuse] * len(self.grid_phases)
        self.nodes["grid"] = {"parent": None, "limit": dict(zip(self.grid_phases, fuse))}
        for c in y.get("circuits", []):
            phases = [p.lower() for p in c.get("phases", [])] or list(
                self.nodes[c["parent"]]["limit"].keys())
            lim = c["limit_a"]
            lim = lim if isinstance(lim, list) else [lim] * len(phases)
            self.nodes[c["id"]] = {"parent": c["parent"], "limit": dict(zip(phases, lim))}
        self.contract_w = grid.get("contract_power_w")
        self.export_w = grid.get("export_limit_w")
        ctl = y.get("controller", {})
        default_failsafe = ctl.get("failsafe_current_a", 6)
        tick_s = ctl.get("tick_ms", 1000) / 1000.0
        self.setpoint_ttl_s = max(3 * tick_s, 3.0)
        self.evse_nodes = {}  # evse -> [nodes above it, itself's circuit first]
        self.failsafe = {}
        for st in y.get("stations", []):
            for e in st.get("evses", []):
                chain, node = [], st["circuit"]
                while node is not None:
                    chain.append(node)
                    node = self.nodes[node]["parent"]
                self.evse_nodes[e["id"]] = chain
                self.failsafe[e["id"]] = e.get("failsafe_current_a", default_failsafe)


def pv(msg_field):
    """PhaseValues -> {phase: value} of the phases present."""
    return {p: getattr(msg_field, p) for p in PHASES if msg_field.HasField(p)}


class Record:
    """Everything the recorder threads saw, and the checks over it."""

    def __init__(self, site, sample_period, report_limit=20):
        self.site = site
        self.sample_period = sample_period
        self.allowance_s = EV_LAG_S + 2 * sample_period
        self.lock = threading.Lock()
        self.violations = []  # (kind, text)
        self.report_limit = report_limit
        self.armed = False  # checks run once warm-up is over
        self.samples = 0
        self.max_gap = 0.0
        self.last_sample_at = None
        self.gaps_over = 0
        self.excursions = {}  # (node, phase) -> start time
        self.excursion_max = {}  # (node, phase) -> (peak, start)
        self.worst_excursion_s = 0.0
        self.peak = {}  # (node, phase) -> highest current seen
        self.alloc = {}  # evse -> [(time, value A)]
        self.alloc_connected = False
        # (from, to): a new load balancer allocated before its stream connected.
        self.unseen = []
        self.lb_started_at = 0.0
        self.unverified = 0
        self.offer_since = {}  # evse -> (offer, time it first showed it)
        self.pending_offers = []  # samples waiting PUBLISH_LATE_S for (b)
        self.lb_sequence = None
        self.offer_changes = {}  # evse -> (time, offer) of the last offer change
        self.prev_offer = {}
        self.prev_draw = {}
        self.measured_lags = []
        self.watchdog_s = {}
        self.last = None  # the last sample (dict)

    def violation(self, kind, text):
        with self.lock:
            self.violations.append((kind, text))
            n = len(self.violations)
        if n <= self.report_limit:
            log("VIOLATION (%s): %s" % (kind, text))
        elif n == self.report_limit + 1:
            log("further violations are counted, not printed")

    # ---- the load balancer's allocations ---------------------------------

    def on_allocation(self, allocation, now):
        with self.lock:
            self.lb_sequence = allocation.sequence
            for e in allocation.evses:
                value = 0.0 if e.paused or not e.HasField("current_a") else e.current_a
                hist = self.alloc.setdefault(e.evse_id, [])
                if not hist or hist[-1][1] != value:
                    hist.append((now, value))

    def on_stream_start(self, allocation, now):
        """A (re)connected stream: allocations before its first one were not seen."""
        log("allocation stream connected at allocation #%d" % allocation.sequence)
        with self.lock:
            restarted = self.lb_sequence is None or allocation.sequence <= self.lb_sequence
            if restarted and allocation.sequence > 1:
                self.unseen.append((self.lb_started_at, now))
                log("the new load balancer made %d allocations before the stream connected" %
                    (allocation.sequence - 1))
            self.lb_sequence = allocation.sequence

    def allocated_values(self, evse, t, window_s, late_s=PUBLISH_LATE_S):
        """Values the load balancer allocated to `evse` that can be in force at t."""
        with self.lock:
            hist = list(self.alloc.get(evse, []))
        values, before = [], None
        for at, value in hist:
            if at < t - window_s:
                before = value
            elif at <= t + late_s:
                values.append(value)
        if before is not None:
            values.append(before)
        return values

    # ---- the simulator's samples -----------------------------------------

    def on_sample(self, resp, now):
        site = self.site
        evses = {}
        grid_meter = None
        for d in resp.devices:
            for e in d.evses:
                evses[e.evse_id] = e
            if d.measures_circuit_id == "grid" and d.HasField("meter"):
                grid_meter = d.meter
        building = pv(resp.building_load.current_a)
        if self.last_sample_at is not None:
            gap = now - self.last_sample_at
            self.max_gap = max(self.max_gap, gap) if self.armed else self.max_gap
            if self.armed and gap > self.allowance_s / 2:
                self.gaps_over += 1
                self.violation("record", "no sample for %.2f s: the record has a hole" % gap)
        self.last_sample_at = now
        self.samples += 1
        # Node currents from what each car draws.
        load = {n: {p: 0.0 for p in spec["limit"]} for n, spec in site.nodes.items()}
        for p, a in building.items():
            if p in load["grid"]:
                load["grid"][p] += a
        for evse_id, e in evses.items():
            drawn = pv(e.current_a)
            for node in site.evse_nodes.get(evse_id, []):
                for p, a in drawn.items():
                    if p in load[node]:
                        load[node][p] += a
        self.last = {"evses": evses, "load": load, "at": now}
        for evse_id, e in evses.items():
            offered = pv(e.offered_current_a)
            o = round(max(offered.values()) if offered else 0.0, 2)
            if self.offer_since.get(evse_id, (None,))[0] != o:
                self.offer_since[evse_id] = (o, now)
        self._lags(evses, now)
        if not self.armed:
            return
        # (a) limits.
        for node, spec in site.nodes.items():
            for p, limit in spec["limit"].items():
                a = load[node][p]
                key = (node, p)
                self.peak[key] = max(self.peak.get(key, 0.0), a)
                self._excursion(key, a > limit + EPS_A, a, limit, now)
        power = None
        if grid_meter is not None and grid_meter.HasField("total_power_w"):
            power = grid_meter.total_power_w
        if power is not None and self.site.contract_w is not None:
            self.peak[("grid", "power_w")] = max(self.peak.get(("grid", "power_w"), 0.0), power)
            self._excursion(("grid", "power_w"), power > self.site.contract_w + 1, power,
                            self.site.contract_w, now)
        if power is not None and self.site.export_w is not None:
            self._excursion(("grid", "export_w"), -power > self.site.export_w + 1, -power,
                            self.site.export_w, now)
        # (b) setpoints, once the allocation stream has had time to bring
        # the value the sample shows.
        self.pending_offers.append((now, evses, dict(self.offer_since)))
        self.check_offers(now - PUBLISH_LATE_S)

    def check_offers(self, until):
        while self.pending_offers and self.pending_offers[0][0] <= until:
            at, evses, since = self.pending_offers.pop(0)
            for evse_id, e in evses.items():
                self._check_offer(evse_id, e, at, since.get(evse_id, (None, at))[1])

    def _excursion(self, key, over, value, limit, now):
        start = self.excursions.get(key)
        if over:
            if start is None:
                self.excursions[key] = now
                self.excursion_max[key] = value
                return
            self.excursion_max[key] = max(self.excursion_max[key], value)
            length = now - start
            if length > self.allowance_s and key not in getattr(self, "_reported", set()):
                self._reported = getattr(self, "_reported", set()) | {key}
                self.violation(
                    "limit", "%s %s above its limit %.1f for %.2f s so far (peak %.2f; allowance "
                    "%.2f s = EV lag %.1f s + 2 x %.2f s sampling)" %
                    (key[0], key[1], limit, length, self.excursion_max[key], self.allowance_s,
                     EV_LAG_S, self.sample_period))
        elif start is not None:
            length = now - start
            if length <= self.allowance_s:
                self.worst_excursion_s = max(self.worst_excursion_s, length)
            log("%s %s was above its limit %.1f for %.2f s (peak %.2f; allowance %.2f s)" %
                (key[0], key[1], limit, length, self.excursion_max[key], self.allowance_s))
            del self.excursions[key]
            if hasattr(self, "_reported"):
                self._reported.discard(key)

    def _check_offer(self, evse_id, e, now, shown_since):
        offered = pv(e.offered_current_a)
        o = max(offered.values()) if offered else 0.0
        failsafe = self.site.failsafe.get(evse_id, 6)
        if e.HasField("watchdog_timeout"):
            self.watchdog_s[evse_id] = e.watchdog_timeout.seconds + e.watchdog_timeout.nanos / 1e9
        if not e.watchdog_configured:
            self.violation("setpoint", "%s: watchdog not configured" % evse_id)
            return
        if any(abs(v - o) > EPS_A and v > EPS_A for v in offered.values()):
            self.violation("setpoint", "%s offers different currents per phase: %s" %
                           (evse_id, offered))
        if e.failsafe_active:
            if abs(e.failsafe_current_a - failsafe) > EPS_A or abs(o - failsafe) > EPS_A:
                self.violation("setpoint", "%s in failsafe offers %.2f A, failsafe %.2f A, "
                               "site.yaml %.2f A" % (evse_id, o, e.failsafe_current_a, failsafe))
            return
        if abs(o - failsafe) <= EPS_A:
            return
        window = self.site.setpoint_ttl_s + self.watchdog_s.get(evse_id, 5.0) + 1.0
        values = self.allocated_values(evse_id, now, window)
        for v in values:
            # The driver rounds down to 0.1 A; below the wallbox's 6 A means pause.
            if (v - 0.1 - 1e-6 <= o <= v + 1e-6) or (o == 0 and v < 6):
                return
        # A restarted load balancer allocates (and dispatches) before it
        # listens, so its first allocations cannot be watched: a value the
        # wallbox took on in that interval cannot be verified.
        for start, end in self.unseen:
            if start <= shown_since <= end + PUBLISH_LATE_S:
                self.unverified += 1
                if self.unverified <= 5:
                    log("unverified: %s offers %.2f A since %.2f s, while the new load balancer "
                        "was not watched yet" % (evse_id, o, shown_since - T0))
                return
        with self.lock:
            recent = ", ".join("%.2f A at %+.2f s" % (v, at - now)
                               for at, v in self.alloc.get(evse_id, [])[-4:])
        self.violation("setpoint", "%s offers %.2f A, which is neither its failsafe %.1f A nor "
                       "a load balancer allocation that can be in force (%.1f s window; the "
                       "last allocations: %s)" % (evse_id, o, failsafe, window,
                                                  recent or "none recorded"))

    def _lags(self, evses, now):
        """Measures how long after an offer change the draw follows."""
        for evse_id, e in evses.items():
            offered = pv(e.offered_current_a)
            drawn = pv(e.current_a)
            o = max(offered.values()) if offered else 0.0
            d = max(drawn.values()) if drawn else 0.0
            if not e.HasField("vehicle") or e.vehicle.full:
                self.offer_changes.pop(evse_id, None)
            elif evse_id in self.prev_offer and abs(o - self.prev_offer[evse_id]) > 0.05:
                self.offer_changes[evse_id] = (now, o)
            change = self.offer_changes.get(evse_id)
            if change and abs(d - self.prev_draw.get(evse_id, d)) > 0.05 and \
                    abs(d - min(change[1], e.vehicle.max_current_a)) < 0.05:
                self.measured_lags.append(now - change[0])
                del self.offer_changes[evse_id]
            self.prev_offer[evse_id] = o
            self.prev_draw[evse_id] = d


class Recorder:
    def __init__(self, record, sim_target, lb_target, stubs):
        self.record = record
        self.stubs = stubs
        self.stop = threading.Event()
        self.sim = grpc.insecure_channel(sim_target, options=CHANNEL_OPTIONS)
        self.lb_target = lb_target
        self.list = self.sim.unary_unary(
            SIM + "ListSimulatedDevices",
            request_serializer=stubs.sim.ListSimulatedDevicesRequest.SerializeToString,
            response_deserializer=stubs.sim.ListSimulatedDevicesResponse.FromString)
        self.threads = [threading.Thread(target=self._poll, daemon=True),
                        threading.Thread(target=self._watch, daemon=True)]
        self.sim_errors = 0

    def start(self):
        for t in self.threads:
            t.start()

    def _poll(self):
        period = self.record.sample_period
        next_at = time.monotonic()
        while not self.stop.is_set():
            try:
                resp = self.list(self.stubs.sim.ListSimulatedDevicesRequest(), timeout=2)
                self.record.on_sample(resp, time.monotonic())
            except grpc.RpcError as err:
                self.sim_errors += 1
                self.record.violation("record", "the simulator did not answer: %s" % err.code())
            next_at += period
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_at = time.monotonic()

    def _watch(self):
        # Its own subchannel with a short reconnect backoff: the stream is
        # back within ~50 ms of a restarted load balancer listening (gRPC's
        # default backoff, shared between channels, grows to minutes).
        channel = grpc.insecure_channel(self.lb_target, options=CHANNEL_OPTIONS)
        watch = channel.unary_stream(
            LB + "WatchAllocations",
            request_serializer=self.stubs.lb.WatchAllocationsRequest.SerializeToString,
            response_deserializer=self.stubs.lb.WatchAllocationsResponse.FromString)
        while not self.stop.is_set():
            first = True
            try:
                for msg in watch(self.stubs.lb.WatchAllocationsRequest(), wait_for_ready=True,
                                 timeout=3600):
                    now = time.monotonic()
                    if first:
                        self.record.on_stream_start(msg.allocation, now)
                        first = False
                    self.record.alloc_connected = True
                    self.record.on_allocation(msg.allocation, now)
                    if self.stop.is_set():
                        break
            except grpc.RpcError:
                pass
            if not first:
                log("allocation stream lost")
            self.record.alloc_connected = False
            time.sleep(0.01)
        channel.close()


class Stubs:
    def __init__(self):
        from evgate.v1 import load_balancer_pb2, session_pb2, simulator_pb2
        self.sim = simulator_pb2
        self.lb = load_balancer_pb2
        self.session = session_pb2


class Process:
    """One `evgate run --services ...` process of the split site."""

    def __init__(self, name, services, evgate, site, port, logdir):
        self.name, self.services, self.evgate, self.site = name, services, evgate, site
        self.port = port
        self.log_path = os.path.join(logdir, name + ".log")
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        logf = open(self.log_path, "a")
        logf.write("==== start %d\n" % self.starts)
        logf.flush()
        self.proc = subprocess.Popen(
            [self.evgate, "run", "--site", self.site, "--services", self.services, "--listen",
             "127.0.0.1:%d" % self.port], stdout=logf, stderr=subprocess.STDOUT)
        logf.close()

    def wait_listening(self, timeout=20):
        channel = grpc.insecure_channel("127.0.0.1:%d" % self.port, options=CHANNEL_OPTIONS)
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise SystemExit("FAIL: %s did not listen on port %d within %d s (log %s)" %
                             (self.name, self.port, timeout, self.log_path))
        finally:
            channel.close()
        if self.proc.poll() is not None:
            raise SystemExit("FAIL: %s exited with %s" % (self.name, self.proc.returncode))

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def terminate(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


class SessionCheck:
    """(c): the sessions open at warm-up survive every restart."""

    def __init__(self, record, target, stubs):
        self.record, self.stubs = record, stubs
        self.channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
        self.list = self.channel.unary_unary(
            SESSIONS + "ListSessions",
            request_serializer=stubs.session.ListSessionsRequest.SerializeToString,
            response_deserializer=stubs.session.ListSessionsResponse.FromString)
        self.tracked = {}  # session id -> (evse, last energy)
        self.closed = {}

    def sessions(self, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            try:
                resp = self.list(self.stubs.session.ListSessionsRequest(page_size=1000),
                                 timeout=2, wait_for_ready=True)
                return {s.session_id: s for s in resp.sessions}
            except grpc.RpcError as err:
                if time.monotonic() > deadline:
                    self.record.violation("session", "the session service did not answer "
                                          "ListSessions within %d s: %s" % (timeout, err.code()))
                    return None
                time.sleep(0.2)

    def open_ones(self, evses):
        """The ACTIVE session of every EVSE in `evses`, or None if one has none."""
        all_ = self.sessions()
        if all_ is None:
            return None
        active = {}
        state = self.stubs.session.SESSION_STATE_ACTIVE
        for s in all_.values():
            if s.state == state:
                active.setdefault(s.evse_id, s)
        return active if all(e in active for e in evses) else None

    def track(self, active):
        for s in active.values():
            self.tracked[s.session_id] = (s.evse_id, s.energy_charged_wh)
        log("sessions tracked: %s" % ", ".join(
            "%s on %s" % (sid, ev) for sid, (ev, _) in sorted(self.tracked.items())))

    def check(self, when):
        all_ = self.sessions()
        if all_ is None:
            return
        pb = self.stubs.session
        for sid, (evse, energy) in list(self.tracked.items()):
            s = all_.get(sid)
            if s is None:
                self.record.violation("session", "%s: session %s of %s is gone" %
                                      (when, sid, evse))
                continue
            if s.state in (pb.SESSION_STATE_ACTIVE, pb.SESSION_STATE_PENDING_PLUG_IN):
                if s.energy_charged_wh + 1e-6 < energy:
                    self.record.violation("session", "%s: session %s on %s lost energy: %.1f -> "
                                          "%.1f Wh" % (when, sid, evse, energy,
                                                       s.energy_charged_wh))
                self.tracked[sid] = (evse, max(energy, s.energy_charged_wh))
                continue
            if sid in self.closed:
                continue
            reason = pb.StopReason.Name(s.stop_reason)
            state = pb.SessionState.Name(s.state)
            if s.stop_reason == pb.STOP_REASON_UNSPECIFIED or not s.HasField("meter_stop_wh"):
                self.record.violation("session", "%s: session %s on %s closed improperly: %s, %s, "
                                      "stop meter %s" % (when, sid, evse, state, reason,
                                                         s.meter_stop_wh if s.HasField(
                                                             "meter_stop_wh") else "none"))
            else:
                log("%s: session %s on %s closed: %s %s (the car is still plugged in)" %
                    (when, sid, evse, state, reason))
            self.closed[sid] = s


def wait_until(what, timeout, predicate, period=0.5):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            return None
        time.sleep(period)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--evgate", required=True)
    ap.add_argument("--site", required=True)
    ap.add_argument("--logdir", required=True)
    ap.add_argument("--port", type=int, action="append", required=True,
                    help="simulator, device_drivers, load_balancer, session (in that order)")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--gap", type=float, nargs=2, default=[1.0, 5.0],
                    help="seconds between a restart and the next kill (uniform)")
    ap.add_argument("--down", type=float, nargs=2, default=[0.0, 5.0],
                    help="seconds a killed service stays down (uniform)")
    ap.add_argument("--sample-period", type=float, default=0.1)
    ap.add_argument("--plug", default="wb4", help="a free-vend EVSE to plug a car into")
    ap.add_argument("--building-load", default="30,22,26",
                    help="fixed building load per phase (A), so the grid limit binds")
    ap.add_argument("--result", help="write a one-line JSON summary here")
    args = ap.parse_args()
    started = time.monotonic()

    site = Site(args.site)
    stubs = Stubs()
    rng = random.Random(args.seed)
    log("seed %d (rerun with FAULT_INJECTION_SEED=%d), %d kills, gap %s s, down %s s" %
        (args.seed, args.seed, args.kills, args.gap, args.down))
    sim_port, drivers_port, lb_port, session_port = args.port
    procs = {
        "simulator": Process("simulator", "simulator", args.evgate, args.site, sim_port,
                             args.logdir),
        "device_drivers": Process("device_drivers", "device_drivers", args.evgate, args.site,
                                  drivers_port, args.logdir),
        "load_balancer": Process("load_balancer", "load_balancer", args.evgate, args.site,
                                 lb_port, args.logdir),
        "session": Process("session", "session", args.evgate, args.site, session_port,
                           args.logdir),
    }
    record = Record(site, args.sample_period)
    try:
        for name in ("simulator", "device_drivers", "session", "load_balancer"):
            if name == "load_balancer":
                record.lb_started_at = time.monotonic()
            procs[name].start()
            procs[name].wait_listening()
        building = [float(x) for x in args.building_load.split(",")]
        sim_channel = grpc.insecure_channel("127.0.0.1:%d" % sim_port)
        set_load = sim_channel.unary_unary(
            SIM + "SetBuildingLoad",
            request_serializer=stubs.sim.SetBuildingLoadRequest.SerializeToString,
            response_deserializer=stubs.sim.SetBuildingLoadResponse.FromString)
        req = stubs.sim.SetBuildingLoadRequest()
        for p, a in zip(PHASES, building):
            setattr(req.current_a, p, a)
        set_load(req, timeout=5)
        # The free-vend car, plugged in now that the session service sees it.
        plug = sim_channel.unary_unary(
            SIM + "PlugIn", request_serializer=stubs.sim.PlugInRequest.SerializeToString,
            response_deserializer=stubs.sim.PlugInResponse.FromString)
        plug(stubs.sim.PlugInRequest(evse_id=args.plug, max_current_a=16, phases=1,
                                     energy_to_full_wh=100000), timeout=5)
        recorder = Recorder(record, "127.0.0.1:%d" % sim_port, "127.0.0.1:%d" % lb_port, stubs)
        recorder.start()
        sessions = SessionCheck(record, "127.0.0.1:%d" % session_port, stubs)

        # Warm-up: every car charges under control with its session.
        cars = sorted([v["evse"] for v in site.yaml["simulation"].get("vehicles", [])] +
                      [args.plug])

        def all_charging():
            last = record.last
            if not last or not record.alloc_connected:
                return None
            for evse in cars:
                e = last["evses"].get(evse)
                if e is None or not e.watchdog_configured or e.failsafe_active:
                    return None
                if max(pv(e.current_a).values() or [0]) < 5.9:
                    return None
            return sessions.open_ones(cars)

        active = wait_until("warm-up", 60, all_charging)
        if not active:
            last = record.last
            print("FAIL: not every car (%s) charged under control with a session within 60 s" %
                  ", ".join(cars))
            if last:
                for evse in cars:
                    print("  %s: %s" % (evse, str(last["evses"].get(evse)).replace("\n", " ")))
            return 1
        sessions.track(active)
        record.armed = True
        log("warm-up done after %.1f s: cars on %s charge; checks armed" %
            (time.monotonic() - started, ", ".join(cars)))

        victims = ["device_drivers", "load_balancer", "session"]
        kills = {v: 0 for v in victims}
        for i in range(1, args.kills + 1):
            gap = rng.uniform(*args.gap)
            victim = rng.choice(victims)
            down = rng.uniform(*args.down)
            time.sleep(gap)
            procs[victim].kill9()
            kills[victim] += 1
            log("kill %d/%d: kill -9 %s (pid %d), restart in %.2f s" %
                (i, args.kills, victim, procs[victim].proc.pid, down))
            time.sleep(down)
            if victim == "load_balancer":
                record.lb_started_at = time.monotonic()
            procs[victim].start()
            procs[victim].wait_listening()
            sessions.check("after kill %d (%s)" % (i, victim))

        # Liveness: everything recovers.
        recovered = wait_until("recovery", 60, all_charging)
        if not recovered:
            record.violation("liveness", "not every car charges under control with an ACTIVE "
                             "session within 60 s after the last restart")
        sessions.check("at the end")
        time.sleep(record.allowance_s + 0.5)  # lets a last excursion finish
        recorder.stop.set()
        time.sleep(0.3)
        record.check_offers(float("inf"))
    finally:
        for p in procs.values():
            p.terminate()

    lags = sorted(record.measured_lags)
    if lags:
        lag_text = "min %.2f / median %.2f / max %.2f s over %d offer changes" % (
            lags[0], lags[len(lags) // 2], lags[-1], len(lags))
        if lags[-1] > EV_LAG_S + 2 * args.sample_period + 0.2:
            record.violation("record", "a car followed its offer only after %.2f s, more than "
                             "the %.1f s lag the allowance assumes" % (lags[-1], EV_LAG_S))
    else:
        lag_text = "no offer change seen"
    wall = time.monotonic() - started
    print("---- fault injection summary (seed %d)" % args.seed)
    print("kills: %d (%s)" % (sum(kills.values()),
                              ", ".join("%s %d" % kv for kv in sorted(kills.items()))))
    print("samples: %d every %.2f s, largest gap %.2f s; allocations recorded: %d" %
          (record.samples, args.sample_period, record.max_gap,
           sum(len(h) for h in record.alloc.values())))
    print("offers not verifiable (a new load balancer not watched yet): %d samples; "
          "unwatched starts: %d" % (record.unverified, len(record.unseen)))
    print("EV lag measured: %s; limit allowance %.2f s; longest tolerated excursion %.2f s" %
          (lag_text, record.allowance_s, record.worst_excursion_s))
    for key in sorted(record.peak):
        node, phase = key
        limit = (site.contract_w if phase == "power_w" else site.nodes[node]["limit"][phase])
        print("  peak %-11s %-7s %9.2f (limit %s)" % (node, phase, record.peak[key], limit))
    by_kind = {}
    for kind, _ in record.violations:
        by_kind[kind] = by_kind.get(kind, 0) + 1
    print("violations: %d %s" % (len(record.violations), json.dumps(by_kind)))
    print("wall time: %.0f s" % wall)
    if args.result:
        with open(args.result, "w") as f:
            json.dump({"seed": args.seed, "kills": sum(kills.values()), "by_victim": kills,
                       "violations": len(record.violations), "by_kind": by_kind,
                       "wall_s": round(wall), "samples": record.samples,
                       "max_gap_s": round(record.max_gap, 3), "lag": lag_text,
                       "unverified_samples": record.unverified}, f)
            f.write("\n")
    return 1 if record.violations else 0


if __name__ == "__main__":
    sys.exit(main())
