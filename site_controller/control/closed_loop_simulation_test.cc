// Closed-loop simulation of 24 h at a depot like gateway/sites/demo.yaml: random arrivals and
// departures, vehicles that follow a new setpoint only after a random lag of up to 5 s (IEC
// 61851-1), a building load trace (daily profile + noise), a grid meter sampled every second
// and the ControlPolicy deciding. Deterministic for a seed (EVGATE_SIM_SEED, default 1; printed).
//
// Reports and checks:
//  - overload: ampere-seconds above a fuse limit (grid 63 A, garage 32 A, per phase) that are
//    not explained by a vehicle still within its 5 s lag after a decrease; must be 0; and the
//    raw overload, lag included, below 1 A·s;
//  - energy delivered against the ideal: the same day with vehicles that follow instantly and
//    a controller without ramp or hysteresis (the engine's allocation, integrated).
//
// Event driven between the 1 s samples: loads are piecewise constant and change only when a
// vehicle applies a setpoint, so each second is integrated exactly.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "site_controller/control/control_policy.h"

namespace evgate::control {
namespace {

using allocation::AllocationInput;
using allocation::Evse;
using allocation::EvseType;
using allocation::Phase;
using allocation::PhaseValues;

constexpr double kVolts = 230;
constexpr double kMaxLagS = 5;  // IEC 61851-1
constexpr int kDayS = 24 * 3600;
constexpr double kGridFuseA = 63;
constexpr double kGarageFuseA = 32;
constexpr double kDcEfficiency = 0.95;

// grid 3 × 63 A (metered) → garage 3 × 32 A → wb1 (3-ph), wb2 (3-ph rotated L2-L3-L1),
// wb3 (1-ph L1), wb4 (1-ph L2, visitors, priority -1); dc1 (40 kW DC) on the grid.
AllocationInput Depot() {
  AllocationInput in;
  in.grid.limit_a = {kGridFuseA, kGridFuseA, kGridFuseA};
  in.grid.meter_timeout_s = 3;
  in.circuits.push_back({"garage", "grid", {kGarageFuseA, kGarageFuseA, kGarageFuseA}, {}});
  auto ac = [&](const char* id, std::vector<Phase> phases, double max_a, int priority) {
    Evse e;
    e.id = id;
    e.circuit = "garage";
    e.phases = std::move(phases);
    e.max_a = max_a;
    e.priority = priority;
    e.failsafe_a = 6;
    in.evses.push_back(e);
  };
  ac("wb1", {Phase::kL1, Phase::kL2, Phase::kL3}, 32, 0);
  ac("wb2", {Phase::kL2, Phase::kL3, Phase::kL1}, 32, 0);
  ac("wb3", {Phase::kL1}, 16, 0);
  ac("wb4", {Phase::kL2}, 16, -1);
  Evse dc;
  dc.id = "dc1";
  dc.type = EvseType::kDc;
  dc.phases = {Phase::kL1, Phase::kL2, Phase::kL3};
  dc.max_w = 40000;
  dc.step_w = 100;
  dc.efficiency = kDcEfficiency;
  in.evses.push_back(dc);
  return in;
}

struct Session {
  int evse;
  int arrive_s, depart_s;
  double need_wh;
  double ev_limit;  // the vehicle's own maximum: A per phase (AC) or W (DC)
};

// Non-overlapping sessions per EVSE: idle gaps (shorter in the day), dwell 0.5–8 h.
std::vector<Session> Sessions(std::mt19937_64& rng, int evses) {
  std::vector<Session> out;
  auto u = [&](double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(rng);
  };
  for (int i = 0; i < evses; ++i) {
    double t = u(0, 3600);
    while (true) {
      const int arrive = static_cast<int>(t);
      const int depart = arrive + static_cast<int>(u(1800, 8 * 3600));
      if (depart >= kDayS) break;
      Session s{i, arrive, depart, u(3000, 40000), 0};
      if (i == 4) {
        s.ev_limit = u(20000, 50000);
        s.need_wh = u(10000, 60000);
      } else {
        s.ev_limit = u(0, 1) < 0.5 ? 16 : 32;  // on-board charger
      }
      out.push_back(s);
      const double hour = std::fmod(depart / 3600.0, 24);
      t = depart + u(60, (hour > 7 && hour < 19) ? 1800 : 7200);
    }
  }
  return out;
}

// Per-phase building load for every second: base + office-hours bump + AR(1) noise, changing
// by at most 0.5 A per second (the 1 A margin covers one sample period).
std::vector<PhaseValues> BuildingTrace(std::mt19937_64& rng) {
  std::vector<PhaseValues> trace(kDayS);
  std::normal_distribution<double> noise(0, 0.15);
  const PhaseValues base = {12, 8, 10}, peak = {30, 25, 28};
  PhaseValues ar = {0, 0, 0}, prev = base;
  for (int t = 0; t < kDayS; ++t) {
    const double h = t / 3600.0;
    const double bump = (h > 7 && h < 19) ? std::pow(std::sin((h - 7) / 12 * M_PI), 2) : 0;
    for (int p = 0; p < 3; ++p) {
      ar[p] = 0.995 * ar[p] + noise(rng);
      double v = std::max(0.0, base[p] + (peak[p] - base[p]) * bump + ar[p]);
      v = std::clamp(v, prev[p] - 0.5, prev[p] + 0.5);
      trace[t][p] = prev[p] = v;
    }
  }
  return trace;
}

struct Pending {
  double at;
  double value;  // setpoint to follow (A or W)
  double sent_at;
};

struct Vehicle {
  const Session* session = nullptr;
  double draw = 0;            // what it takes now (A per phase, or W)
  double following = 0;       // the setpoint it has applied
  double setpoint = 0;        // the latest setpoint sent
  double decrease_at = -1e9;  // when the latest decrease was sent
  double energy_wh = 0;
  bool done = false;
  std::vector<Pending> pending;
};

struct Result {
  double overload_as = 0;      // beyond the lag allowance
  double raw_overload_as = 0;  // including what the lag explains
  double energy_wh = 0;
  double failsafe_s = 0;
  int decisions_with_changes = 0;
};

Result Simulate(uint64_t seed, bool ideal) {
  std::mt19937_64 rng(seed);
  const AllocationInput depot = Depot();
  const std::vector<Session> sessions = Sessions(rng, static_cast<int>(depot.evses.size()));
  const std::vector<PhaseValues> building = BuildingTrace(rng);
  std::mt19937_64 lag_rng(seed * 7919 + 1);
  std::uniform_real_distribution<double> lag(0, kMaxLagS);

  ControlParams params;
  params.margin_a = 1;
  params.min_pause_s = 120;
  params.meter_timeout_s = 3;
  if (ideal) {
    params.ramp_up_a_per_s = 1e9;
    params.hysteresis_a = 0;
  }
  absl::StatusOr<ControlPolicy> policy = ControlPolicy::Create(depot, params);
  EXPECT_TRUE(policy.ok()) << policy.status();
  if (!policy.ok()) return {};

  const int n = static_cast<int>(depot.evses.size());
  std::vector<Vehicle> ev(n);
  std::vector<std::vector<const Session*>> by_evse(n);
  for (const Session& s : sessions) by_evse[s.evse].push_back(&s);
  std::vector<size_t> next_session(n, 0);
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);

  // Per-phase AC current of a vehicle drawing `draw`.
  auto phase_currents = [&](int i, double draw, PhaseValues& acc) {
    const Evse& e = depot.evses[i];
    const double a = e.type == EvseType::kAc
                         ? draw
                         : draw / (static_cast<double>(e.phases.size()) * kVolts * kDcEfficiency);
    for (Phase p : e.phases) acc[static_cast<int>(p)] += a;
  };
  auto ev_watts = [&](int i, double draw) {
    const Evse& e = depot.evses[i];
    return e.type == EvseType::kAc ? draw * kVolts * static_cast<double>(e.phases.size()) : draw;
  };

  Result r;
  for (int t = 0; t < kDayS; ++t) {
    std::vector<EvseUpdate> updates;
    // Sessions: departures, full batteries, arrivals.
    for (int i = 0; i < n; ++i) {
      Vehicle& v = ev[i];
      if (v.session != nullptr && (t >= v.session->depart_s || v.done)) {
        v = Vehicle{};
        EvseUpdate u;
        u.evse = depot.evses[i].id;
        u.at = t0 + absl::Seconds(t);
        u.active = false;
        updates.push_back(u);
      }
      if (v.session == nullptr && next_session[i] < by_evse[i].size() &&
          by_evse[i][next_session[i]]->arrive_s <= t) {
        v.session = by_evse[i][next_session[i]++];
      }
    }
    // One poll cycle: every EVSE and the grid meter, as of now.
    PhaseValues grid = building[t];
    for (int i = 0; i < n; ++i) {
      phase_currents(i, ev[i].draw, grid);
      if (ev[i].session == nullptr) continue;
      EvseUpdate u;
      u.evse = depot.evses[i].id;
      u.at = t0 + absl::Seconds(t);
      u.active = true;
      if (depot.evses[i].type == EvseType::kAc) {
        u.measured_a = std::vector<double>(depot.evses[i].phases.size(), ev[i].draw);
      } else {
        u.measured_w = ev[i].draw;
      }
      u.session_energy_wh = ev[i].energy_wh;
      updates.push_back(u);
    }
    absl::StatusOr<Decision> d =
        policy->OnSamples({{"grid", t0 + absl::Seconds(t), grid}}, updates, t0 + absl::Seconds(t));
    if (!d.ok()) {
      ADD_FAILURE() << "t=" << t << ": " << d.status();
      return r;
    }
    if (d->failsafe) r.failsafe_s += 1;
    if (d->any_changed) ++r.decisions_with_changes;
    for (int i = 0; i < n; ++i) {
      const Setpoint& sp = d->setpoints[i];
      if (!sp.changed) continue;
      Vehicle& v = ev[i];
      const double value = depot.evses[i].type == EvseType::kAc ? sp.current_a : sp.power_w;
      if (value < v.setpoint) v.decrease_at = t;
      v.setpoint = value;
      if (v.session == nullptr) continue;
      const double last = v.pending.empty() ? t : v.pending.back().at;
      v.pending.push_back(
          {std::max(last, t + (ideal ? 0.0 : lag(lag_rng))), value, static_cast<double>(t)});
    }
    // Integrate [t, t + 1) piecewise between the vehicles' setpoint changes.
    double now = t;
    while (now < t + 1) {
      for (Vehicle& v : ev) {
        while (!v.pending.empty() && v.pending.front().at <= now) {
          v.following = v.pending.front().value;
          v.pending.erase(v.pending.begin());
        }
        v.draw = v.session == nullptr || v.done ? 0 : std::min(v.following, v.session->ev_limit);
      }
      double until = t + 1;
      for (const Vehicle& v : ev) {
        if (!v.pending.empty()) until = std::min(until, v.pending.front().at);
      }
      // A battery that fills up stops the vehicle inside the interval.
      for (int i = 0; i < n; ++i) {
        const Vehicle& v = ev[i];
        const double w = ev_watts(i, v.draw);
        if (v.session != nullptr && w > 0) {
          until = std::min(until, now + (v.session->need_wh - v.energy_wh) * 3600 / w);
        }
      }
      until = std::max(until, now + 1e-9);
      const double dt = until - now;
      PhaseValues total = building[t], garage = {0, 0, 0}, lagging = {0, 0, 0},
                  lagging_garage = {0, 0, 0};
      for (int i = 0; i < n; ++i) {
        const Vehicle& v = ev[i];
        phase_currents(i, v.draw, total);
        const bool in_garage = depot.evses[i].circuit == "garage";
        if (in_garage) phase_currents(i, v.draw, garage);
        // The lag allowance: above its setpoint, within 5 s of being told to decrease.
        if (v.draw > v.setpoint && now - v.decrease_at <= kMaxLagS + 1e-9) {
          PhaseValues excess = {0, 0, 0};
          phase_currents(i, v.draw - v.setpoint, excess);
          for (int p = 0; p < 3; ++p) {
            lagging[p] += excess[p];
            if (in_garage) lagging_garage[p] += excess[p];
          }
        }
      }
      for (int p = 0; p < 3; ++p) {
        r.raw_overload_as += std::max(0.0, total[p] - kGridFuseA) * dt;
        r.raw_overload_as += std::max(0.0, garage[p] - kGarageFuseA) * dt;
        r.overload_as += std::max(0.0, total[p] - lagging[p] - kGridFuseA) * dt;
        r.overload_as += std::max(0.0, garage[p] - lagging_garage[p] - kGarageFuseA) * dt;
      }
      for (int i = 0; i < n; ++i) {
        Vehicle& v = ev[i];
        if (v.session == nullptr) continue;
        const double wh = ev_watts(i, v.draw) * dt / 3600;
        v.energy_wh += wh;
        r.energy_wh += wh;
        if (v.energy_wh >= v.session->need_wh - 1e-6) v.done = true;
      }
      now = until;
    }
  }
  return r;
}

uint64_t Seed() {
  const char* s = std::getenv("EVGATE_SIM_SEED");
  return s != nullptr ? std::strtoull(s, nullptr, 10) : 1;
}

TEST(ClosedLoopSimulation, TwentyFourHoursWithoutUnexplainedOverload) {
  const uint64_t seed = Seed();
  const Result real = Simulate(seed, /*ideal=*/false);
  const Result ideal = Simulate(seed, /*ideal=*/true);
  const double ratio = ideal.energy_wh > 0 ? real.energy_wh / ideal.energy_wh : 0;
  std::cout << absl::StrFormat(
      "seed %d (EVGATE_SIM_SEED): overload beyond the lag allowance %.3f A·s (raw %.1f A·s); "
      "energy %.1f kWh vs ideal %.1f kWh (%.1f %%); failsafe %.0f s; %d decisions with "
      "changes\n",
      seed, real.overload_as, real.raw_overload_as, real.energy_wh / 1000, ideal.energy_wh / 1000,
      100 * ratio, real.failsafe_s, real.decisions_with_changes);
  EXPECT_EQ(real.overload_as, 0) << "seed " << seed;
  // What lagging cars explain is tolerated above, but the controller must not cause it: current
  // a decrease frees is not handed out while the lowered car may still draw it (75.9 A·s for
  // seed 1 when it was). What remains is building load rising faster than cars can follow.
  EXPECT_LT(real.raw_overload_as, 1.0) << "seed " << seed;
  EXPECT_EQ(ideal.overload_as, 0) << "seed " << seed;
  EXPECT_EQ(real.failsafe_s, 0) << "the meter is sampled every second";
  EXPECT_GT(ideal.energy_wh, 100000) << "the day must exercise the site";
  EXPECT_GT(ratio, 0.9) << "seed " << seed;
}

}  // namespace
}  // namespace evgate::control
