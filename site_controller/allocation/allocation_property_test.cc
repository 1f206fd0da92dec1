// Randomized invariants of the allocation engine over generated sites: circuit trees up to three
// levels below the grid, 1- and 3-phase EVSEs with rotations, DC stations, V2X, priorities,
// stale meters, metered and unmetered circuits.
//
// The checks below recompute base loads and limits from the input on their own (they do not
// reuse engine code), so they test the documented semantics, not the implementation.
//
// 20 blocks × 550 sites = 11,000 sites; site i uses seed kBaseSeed + i (override the base with
// EVGATE_PROPERTY_SEED). A failure prints the seed and the scenario JSON, which the `allocate`
// CLI can replay.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "site_controller/allocation/allocation.h"
#include "site_controller/allocation/allocation_reference.h"
#include "site_controller/allocation/scenario.h"

namespace evgate::allocation {
namespace {

constexpr uint64_t kBaseSeed = 20261121;
constexpr int kBlocks = 20;
constexpr int kSitesPerBlock = 550;
// Slack for floating-point noise when comparing a load with a limit.
constexpr double kTol = 1e-6;

uint64_t BaseSeed() {
  const char* env = std::getenv("EVGATE_PROPERTY_SEED");
  return env == nullptr ? kBaseSeed : std::strtoull(env, nullptr, 10);
}

// ---------------------------------------------------------------------------------------------
// Generator.

class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed) {}
  double Uniform(double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(rng_);
  }
  int Int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool Chance(double p) { return Uniform(0, 1) < p; }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[Int(0, static_cast<int>(v.size()) - 1)];
  }
  // Values on a coarse grid make ties and exact fits common.
  double Coarse(double lo, double hi, double unit) {
    return std::round(Uniform(lo, hi) / unit) * unit;
  }
  std::mt19937_64& rng() { return rng_; }

 private:
  std::mt19937_64 rng_;
};

std::vector<int> PhasesOf(const PhaseLimits& limits) {
  std::vector<int> phases;
  for (int p = 0; p < kPhaseCount; ++p) {
    if (limits[p]) phases.push_back(p);
  }
  return phases;
}

AllocationInput GenerateSite(uint64_t seed) {
  Gen g(seed);
  AllocationInput in;
  Grid& grid = in.grid;
  const bool single_phase_site = g.Chance(0.08);
  for (int p = 0; p < kPhaseCount; ++p) {
    if (p == 0 || !single_phase_site) grid.limit_a[p] = g.Coarse(16, 250, 1);
  }
  if (g.Chance(0.4)) grid.contract_power_w = g.Coarse(3000, 150000, 100);
  if (g.Chance(0.25)) grid.export_limit_w = g.Coarse(0, 30000, 100);
  grid.nominal_voltage_v = g.Chance(0.9) ? 230 : g.Pick(std::vector<double>{120, 240, 220});
  const double metered = g.Uniform(0, 1);
  if (metered < 0.8) {
    PhaseValues m{0, 0, 0};
    for (int p : PhasesOf(grid.limit_a)) m[p] = g.Coarse(-5, *grid.limit_a[p] * 1.15, 0.5);
    grid.measured_a = m;
  }
  if (metered < 0.8 || g.Chance(0.1)) {
    if (g.Chance(0.7)) grid.meter_timeout_s = g.Pick(std::vector<double>{1, 3, 5});
    grid.meter_age_s = g.Chance(0.9) ? g.Uniform(0, 1) : g.Uniform(0, 8);
  }
  in.margin_a = g.Chance(0.5) ? 0 : g.Coarse(0, 3, 0.5);
  in.now_s = g.Coarse(0, 2000, 10);
  in.min_pause_s = g.Pick(std::vector<double>{0, 60, 300});
  if (g.Chance(0.3)) in.min_run_s = g.Pick(std::vector<double>{0, 120, 600});

  // Circuit tree: depth of each node (grid = 0), at most 3 levels of circuits.
  std::vector<std::string> nodes = {"grid"};
  std::vector<int> depth = {0};
  std::vector<PhaseLimits> node_limits = {grid.limit_a};
  const int circuits = g.Int(0, 8);
  for (int i = 0; i < circuits; ++i) {
    int parent = g.Int(0, static_cast<int>(nodes.size()) - 1);
    if (depth[parent] >= 3) parent = 0;
    Circuit c;
    c.id = absl::StrCat("c", i);
    c.parent = nodes[parent];
    const std::vector<int> phases = PhasesOf(node_limits[parent]);
    if (g.Chance(0.8)) {
      for (int p : phases) c.limit_a[p] = g.Coarse(6, 125, 1);
    } else {
      c.limit_a[g.Pick(phases)] = g.Coarse(6, 63, 1);
    }
    if (g.Chance(0.5)) {
      PhaseValues m{0, 0, 0};
      for (int p : PhasesOf(c.limit_a)) m[p] = g.Coarse(-2, *c.limit_a[p] * 1.2, 0.5);
      c.measured_a = m;
    }
    nodes.push_back(c.id);
    depth.push_back(depth[parent] + 1);
    node_limits.push_back(c.limit_a);
    in.circuits.push_back(std::move(c));
  }
  const int stations = g.Int(0, 3);
  for (int i = 0; i < stations; ++i) {
    in.stations.push_back({absl::StrCat("s", i), g.Coarse(10000, 150000, 1000)});
  }

  const int evses = g.Int(0, 25);
  const std::vector<double> energies = {0, 0, 1000, 2500, 10000, 30000};
  const std::vector<double> plug_times = {0, 100, 100, 500};
  for (int i = 0; i < evses; ++i) {
    Evse e;
    e.id = absl::StrCat("e", i);
    const int node = g.Int(0, static_cast<int>(nodes.size()) - 1);
    e.circuit = nodes[node];
    const std::vector<int> phases = PhasesOf(node_limits[node]);
    e.type = g.Chance(0.7) ? EvseType::kAc : EvseType::kDc;
    if (phases.size() == 3 && g.Chance(0.6)) {
      const int rotation = g.Int(0, 2);
      for (int k = 0; k < 3; ++k) e.phases.push_back(static_cast<Phase>((k + rotation) % 3));
      if (g.Chance(0.2)) std::swap(e.phases[1], e.phases[2]);
    } else {
      e.phases.push_back(static_cast<Phase>(g.Pick(phases)));
    }
    e.active = g.Chance(0.88);
    e.priority = g.Chance(0.7) ? 0 : g.Int(0, 2);
    e.session_energy_wh = g.Pick(energies);
    if (g.Chance(0.8)) e.plugged_at_s = g.Pick(plug_times);
    const double state = g.Uniform(0, 1);
    if (state < 0.35) {
      e.running_since_s = in.now_s - g.Coarse(0, 900, 30);
    } else if (state < 0.6) {
      e.paused_since_s = in.now_s - g.Coarse(0, 900, 30);
    }
    e.connector = g.Int(0, 2);
    if (!in.stations.empty() && g.Chance(e.type == EvseType::kDc ? 0.6 : 0.1)) {
      e.station = g.Pick(in.stations).id;
    }
    const int n = static_cast<int>(e.phases.size());
    if (e.type == EvseType::kAc) {
      e.step_a = g.Pick(std::vector<double>{0.1, 0.1, 0.5, 1, 0.01});
      e.min_a = g.Chance(0.8) ? 6 : g.Coarse(1, 10, 0.5);
      e.max_a = std::max(e.min_a + 1, g.Coarse(6, 32, 0.1));
      if (g.Chance(0.5)) {
        e.measured_a = std::vector<double>();
        for (int k = 0; k < n; ++k) e.measured_a->push_back(g.Coarse(0, e.max_a, 0.1));
      } else if (g.Chance(0.5)) {
        e.setpoint_a = g.Coarse(0, e.max_a, 0.1);
      }
      e.failsafe_a = g.Chance(0.5) ? 0 : e.min_a;
    } else {
      e.step_w = g.Pick(std::vector<double>{1, 1, 10, 100});
      e.efficiency = g.Coarse(0.85, 1, 0.005);
      e.max_w = g.Chance(0.05) ? 0 : g.Coarse(1000, 150000, 100);
      e.min_w = g.Chance(0.6) ? 0 : g.Coarse(0, std::min(e.max_w, 20000.0), 100);
      if (g.Chance(0.5))
        e.measured_w = g.Coarse(-20000, e.max_w, 100);
      else if (g.Chance(0.5))
        e.setpoint_w = g.Coarse(0, e.max_w, 100);
      e.failsafe_w = g.Chance(0.5) ? 0 : e.min_w;
      if (g.Chance(0.35)) {
        e.bidirectional = true;
        e.max_discharge_w = g.Pick(std::vector<double>{0, 11000, 22000, 19800});
      }
      if (g.Chance(0.6)) {
        e.soc_pct = g.Coarse(0, 100, 1);
        e.soc_min_pct = g.Coarse(10, 40, 5);
        e.soc_max_pct = g.Coarse(70, 100, 5);
      }
    }
    in.evses.push_back(std::move(e));
  }
  // EVSEs that are not controlled (unreachable, or under a failed circuit meter): from their own
  // generator, so that the sites above stay what they were before reservations existed.
  Gen r(seed ^ 0x5eed5eed5eedULL);
  for (Evse& e : in.evses) {
    if (!r.Chance(0.12)) continue;
    const double n = static_cast<double>(e.phases.size());
    const double max_a =
        e.type == EvseType::kAc ? e.max_a : e.max_w / (n * grid.nominal_voltage_v * e.efficiency);
    e.reserved_a = r.Chance(0.2) ? 0.0 : r.Coarse(0, std::max(1.0, max_a), 0.5);
  }
  return in;
}

// ---------------------------------------------------------------------------------------------
// Independent model of the documented semantics.

struct Model {
  const AllocationInput& in;
  std::map<std::string, int> node;  // id → index; grid = 0
  std::vector<int> parent;
  std::vector<PhaseLimits> limits;
  std::vector<PhaseValues> base_raw;

  explicit Model(const AllocationInput& input) : in(input) {
    node["grid"] = 0;
    parent.push_back(-1);
    limits.push_back(in.grid.limit_a);
    for (size_t i = 0; i < in.circuits.size(); ++i)
      node[in.circuits[i].id] = static_cast<int>(i + 1);
    for (const Circuit& c : in.circuits) {
      parent.push_back(node.at(c.parent));
      limits.push_back(c.limit_a);
    }
    std::vector<PhaseValues> ev(limits.size(), PhaseValues{0, 0, 0});
    for (const Evse& e : in.evses) {
      const PhaseValues m = MeasuredEv(e);
      for (int n : Path(e)) {
        for (int p = 0; p < kPhaseCount; ++p) ev[n][p] += m[p];
      }
    }
    base_raw.assign(limits.size(), PhaseValues{0, 0, 0});
    for (size_t n = 0; n < limits.size(); ++n) {
      const std::optional<PhaseValues>& m =
          n == 0 ? in.grid.measured_a : in.circuits[n - 1].measured_a;
      if (!m) continue;
      for (int p = 0; p < kPhaseCount; ++p) base_raw[n][p] = (*m)[p] - ev[n][p];
    }
  }

  std::vector<int> Path(const Evse& e) const {
    std::vector<int> path;
    for (int n = node.at(e.circuit); n >= 0; n = parent[n]) path.push_back(n);
    return path;
  }

  double V() const { return in.grid.nominal_voltage_v; }

  // AC amperes per wired phase for a DC power.
  double DcAmps(const Evse& e, double w) const {
    const double n = static_cast<double>(e.phases.size());
    return w >= 0 ? w / (n * V() * e.efficiency) : w * e.efficiency / (n * V());
  }

  PhaseValues MeasuredEv(const Evse& e) const {
    PhaseValues m{0, 0, 0};
    for (size_t k = 0; k < e.phases.size(); ++k) {
      double a = 0;
      // A reserved EVSE's setpoint is not trusted: only a measurement counts.
      const bool in_force = e.active && !e.reserved_a;
      if (e.type == EvseType::kAc) {
        a = e.measured_a ? (*e.measured_a)[k] : (in_force ? e.setpoint_a.value_or(0) : 0);
      } else {
        a = DcAmps(e, e.measured_w ? *e.measured_w : (in_force ? e.setpoint_w.value_or(0) : 0));
      }
      m[static_cast<int>(e.phases[k])] += a;
    }
    return m;
  }

  double BaseUp(int n, int p) const { return std::max(0.0, base_raw[n][p]); }
  double Usable(int n, int p) const { return *limits[n][p] - in.margin_a; }
  double Room(int n, int p) const { return Usable(n, p) - BaseUp(n, p); }
  double ContractRoom() const {
    double w = 0;
    for (int p = 0; p < kPhaseCount; ++p) w += BaseUp(0, p) * V();
    return *in.grid.contract_power_w - w;
  }
};

// One EVSE's output expressed as per-phase AC amperes (negative = discharge) and power.
struct Load {
  double amps = 0;       // per wired phase
  double ac_w = 0;       // AC power (for the contract)
  double station_w = 0;  // power counted by its station (DC side for DC, AC for AC)
};

Load LoadOf(const Model& m, const Evse& e, const EvseAllocation& a) {
  Load l;
  const double n = static_cast<double>(e.phases.size());
  if (e.reserved_a) {  // counts at its worst case, whatever it is told
    l.amps = *e.reserved_a;
    l.ac_w = l.amps * n * m.V();
    l.station_w = e.type == EvseType::kAc ? l.ac_w : l.ac_w * e.efficiency;
    return l;
  }
  if (e.type == EvseType::kAc) {
    l.amps = a.current_a;
    l.ac_w = a.current_a * n * m.V();
    l.station_w = l.ac_w;
  } else {
    l.amps = m.DcAmps(e, a.power_w);
    l.ac_w = l.amps * n * m.V();
    l.station_w = a.power_w;
  }
  return l;
}

struct Usage {
  std::vector<PhaseValues> charge, discharge;  // per node and phase (discharge ≤ 0)
  double contract_charge_w = 0, contract_discharge_w = 0;
  std::map<std::string, double> station_w;
  // The part of `charge`, `contract_charge_w`, `station_w` that reserved EVSEs take.
  std::vector<PhaseValues> reserved;
  double contract_reserved_w = 0;
  std::map<std::string, double> station_reserved_w;
};

Usage ComputeUsage(const Model& m, const std::vector<Load>& loads) {
  Usage u;
  u.charge.assign(m.limits.size(), PhaseValues{0, 0, 0});
  u.discharge.assign(m.limits.size(), PhaseValues{0, 0, 0});
  u.reserved.assign(m.limits.size(), PhaseValues{0, 0, 0});
  for (size_t i = 0; i < m.in.evses.size(); ++i) {
    const Evse& e = m.in.evses[i];
    const Load& l = loads[i];
    for (int n : m.Path(e)) {
      for (Phase ph : e.phases) {
        (l.amps >= 0 ? u.charge : u.discharge)[n][static_cast<int>(ph)] += l.amps;
        if (e.reserved_a) u.reserved[n][static_cast<int>(ph)] += l.amps;
      }
    }
    (l.ac_w >= 0 ? u.contract_charge_w : u.contract_discharge_w) += l.ac_w;
    if (!e.station.empty() && l.station_w > 0) u.station_w[e.station] += l.station_w;
    if (e.reserved_a) {
      u.contract_reserved_w += l.ac_w;
      if (!e.station.empty()) u.station_reserved_w[e.station] += l.station_w;
    }
  }
  return u;
}

bool Chargeable(const Evse& e) {
  if (!e.active) return false;
  if (e.type == EvseType::kDc) {
    if (e.soc_pct && *e.soc_pct >= e.soc_max_pct) return false;
    if (std::floor(e.max_w / e.step_w + 1e-9) <= 0) return false;
  }
  return true;
}

// Would `extra` more per-phase amperes (and `extra_ac_w` / `extra_station_w`) for EVSE `e` fit
// in every charging room on its path, with margin to spare for floating-point noise?
bool Fits(const Model& m, const Usage& u, const Evse& e, double extra_amps, double extra_ac_w,
          double extra_station_w) {
  for (int n : m.Path(e)) {
    for (Phase ph : e.phases) {
      const int p = static_cast<int>(ph);
      if (u.charge[n][p] + extra_amps > m.Room(n, p) - kTol) return false;
    }
  }
  if (m.in.grid.contract_power_w && u.contract_charge_w + extra_ac_w > m.ContractRoom() - 1e-3) {
    return false;
  }
  if (!e.station.empty()) {
    double max_w = 0;
    for (const Station& s : m.in.stations) {
      if (s.id == e.station) max_w = s.max_power_w;
    }
    auto it = u.station_w.find(e.station);
    const double used = it == u.station_w.end() ? 0 : it->second;
    if (used + extra_station_w > max_w - 1e-3) return false;
  }
  return true;
}

bool MultipleOf(double value, double step) {
  const double k = value / step;
  return std::abs(k - std::round(k)) < 1e-6 * std::max(1.0, std::abs(k));
}

// Returns a description of every violated invariant (empty when all hold).
std::vector<std::string> CheckInvariants(const AllocationInput& in, const Allocation& out) {
  std::vector<std::string> bad;
  auto fail = [&](std::string s) { bad.push_back(std::move(s)); };
  if (out.evses.size() != in.evses.size()) {
    fail("wrong number of EVSEs in the output");
    return bad;
  }
  const Grid& g = in.grid;
  const bool metered = g.measured_a.has_value() || g.meter_timeout_s.has_value();
  const bool stale = metered && (!g.measured_a ||
                                 g.meter_age_s > g.meter_timeout_s.value_or(kDefaultMeterTimeoutS));
  if (out.failsafe != stale) fail(absl::StrCat("failsafe = ", out.failsafe, ", expected ", stale));
  if (stale) {
    for (size_t i = 0; i < in.evses.size(); ++i) {
      const Evse& e = in.evses[i];
      const EvseAllocation& a = out.evses[i];
      if (e.type == EvseType::kAc && a.current_a != (e.active ? e.failsafe_a : 0)) {
        fail(absl::StrCat(e.id, ": failsafe current ", a.current_a));
      }
      if (e.type == EvseType::kDc && a.power_w != (e.active ? e.failsafe_w : 0)) {
        fail(absl::StrCat(e.id, ": failsafe power ", a.power_w));
      }
    }
    return bad;
  }

  const Model m(in);
  std::vector<Load> loads;
  for (size_t i = 0; i < in.evses.size(); ++i) {
    const Evse& e = in.evses[i];
    const EvseAllocation& a = out.evses[i];
    if (a.id != e.id) fail(absl::StrCat("output ", i, " is ", a.id, ", expected ", e.id));
    if (e.reserved_a) {
      // Not controlled: reported at its failsafe value, and flagged.
      const double want = e.active ? (e.type == EvseType::kAc ? e.failsafe_a : e.failsafe_w) : 0;
      const double got = e.type == EvseType::kAc ? a.current_a : a.power_w;
      if (got != want || a.paused != (want <= 0) || a.controlled) {
        fail(absl::StrCat(e.id, ": reserved EVSE at ", got, " (controlled ", a.controlled,
                          "), expected its failsafe ", want));
      }
      loads.push_back(LoadOf(m, e, a));
      continue;
    }
    if (!a.controlled) fail(absl::StrCat(e.id, ": not reserved but reported not controlled"));
    if (e.type == EvseType::kAc) {
      const double x = a.current_a;
      if (x != 0 && (x < e.min_a - kTol || x > e.max_a + kTol || !MultipleOf(x, e.step_a))) {
        fail(absl::StrCat(e.id, ": AC current ", x, " not 0 or a step multiple in [min, max]"));
      }
      if (x != 0 && !e.active) fail(absl::StrCat(e.id, ": inactive but ", x, " A"));
      if (a.paused != (x == 0)) fail(absl::StrCat(e.id, ": paused flag wrong"));
    } else {
      const double w = a.power_w;
      if (w > 0 && (w < e.min_w - 1e-6 || w > e.max_w + 1e-6 || !MultipleOf(w, e.step_w))) {
        fail(absl::StrCat(e.id, ": DC power ", w, " not 0 or a step multiple in [min, max]"));
      }
      if (w > 0 && e.soc_pct && *e.soc_pct >= e.soc_max_pct) {
        fail(absl::StrCat(e.id, ": charges at SOC ", *e.soc_pct, " >= max ", e.soc_max_pct));
      }
      if (w < 0) {
        if (!e.bidirectional) fail(absl::StrCat(e.id, ": discharges but is not bidirectional"));
        if (-w > e.max_discharge_w + 1e-6) fail(absl::StrCat(e.id, ": discharge over its limit"));
        if (!e.soc_pct || *e.soc_pct <= e.soc_min_pct) {
          fail(absl::StrCat(e.id, ": discharges at or below the SOC lower limit"));
        }
      }
      if (w != 0 && !e.active) fail(absl::StrCat(e.id, ": inactive but ", w, " W"));
      if (a.paused != (w == 0)) fail(absl::StrCat(e.id, ": paused flag wrong"));
    }
    loads.push_back(LoadOf(m, e, a));
  }
  const Usage u = ComputeUsage(m, loads);

  // Limits: every circuit phase, contract power, export, stations.
  for (size_t n = 0; n < m.limits.size(); ++n) {
    for (int p = 0; p < kPhaseCount; ++p) {
      if (!m.limits[n][p]) continue;
      const double charge = u.charge[n][p];
      const double reserved = u.reserved[n][p];
      const double allocated = charge - reserved;  // to controlled EVSEs
      const double dis = u.discharge[n][p];
      const double total = m.BaseUp(n, p) + charge + dis;
      // Base load and reservations are fixed: the engine can only keep from adding to them.
      const bool fixed_over = m.Room(n, p) - reserved < 0;
      if (total > m.Usable(n, p) + kTol && !(fixed_over && allocated <= kTol)) {
        fail(absl::StrFormat("node %d L%d: load %.6f over %.6f", n, p + 1, total, m.Usable(n, p)));
      }
      // Discharging never makes room for charging; reservations take theirs first.
      if (allocated > std::max(0.0, m.Room(n, p) - reserved) + kTol) {
        fail(absl::StrFormat("node %d L%d: EV charging %.6f over room %.6f (reserved %.6f)", n,
                             p + 1, allocated, m.Room(n, p), reserved));
      }
      if (dis < 0 && m.base_raw[n][p] + dis < std::min(m.base_raw[n][p], -m.Usable(n, p)) - kTol) {
        fail(absl::StrFormat("node %d L%d: discharge drives reverse current over the limit", n,
                             p + 1));
      }
    }
  }
  if (g.contract_power_w) {
    const double room = m.ContractRoom() - u.contract_reserved_w;
    const double allocated = u.contract_charge_w - u.contract_reserved_w;
    if (allocated > std::max(0.0, room) + 1e-3) {
      fail(absl::StrFormat("contract: EV charging %.3f W over room %.3f W", allocated, room));
    }
  }
  if (g.export_limit_w && u.contract_discharge_w < 0) {
    double raw_w = 0;
    for (int p = 0; p < kPhaseCount; ++p) raw_w += m.base_raw[0][p] * m.V();
    if (raw_w + u.contract_discharge_w < std::min(raw_w, -*g.export_limit_w) - 1e-3) {
      fail("export limit exceeded by discharging");
    }
  }
  for (const Station& s : in.stations) {
    auto it = u.station_w.find(s.id);
    auto res = u.station_reserved_w.find(s.id);
    const double reserved = res == u.station_reserved_w.end() ? 0 : res->second;
    if (it != u.station_w.end() &&
        it->second - reserved > std::max(0.0, s.max_power_w - reserved) + 1e-3) {
      fail(absl::StrCat("station ", s.id, " at ", it->second, " W over ", s.max_power_w,
                        " (reserved ", reserved, ")"));
    }
  }

  // Discharge only where base load alone is over a limit on the EVSE's path.
  for (size_t i = 0; i < in.evses.size(); ++i) {
    const Evse& e = in.evses[i];
    if (out.evses[i].power_w >= 0 || e.type != EvseType::kDc) continue;
    bool overloaded = g.contract_power_w && m.ContractRoom() < 0;
    for (int n : m.Path(e)) {
      for (Phase ph : e.phases) overloaded |= m.Room(n, static_cast<int>(ph)) < 0;
    }
    if (!overloaded) fail(absl::StrCat(e.id, ": discharges without an overload on its path"));
  }

  // Pareto: no chargeable EVSE below its maximum could take one more step (or its minimum).
  // Priority: no paused higher-priority EVSE would fit if a lower-priority one were paused.
  for (size_t i = 0; i < in.evses.size(); ++i) {
    const Evse& e = in.evses[i];
    const EvseAllocation& a = out.evses[i];
    if (!Chargeable(e) || e.reserved_a || a.power_w < 0) continue;
    const double n = static_cast<double>(e.phases.size());
    double next_amps = 0, next_ac_w = 0, next_station_w = 0;
    if (e.type == EvseType::kAc) {
      const double max_q = std::floor(e.max_a / e.step_a + 1e-9) * e.step_a;
      if (a.current_a >= max_q - kTol) continue;
      const double next = a.current_a == 0 ? std::ceil(e.min_a / e.step_a - 1e-9) * e.step_a
                                           : a.current_a + e.step_a;
      next_amps = next - a.current_a;
      next_ac_w = next_amps * n * m.V();
      next_station_w = next_ac_w;
    } else {
      const double max_q = std::floor(e.max_w / e.step_w + 1e-9) * e.step_w;
      if (a.power_w >= max_q - 1e-6) continue;
      double next = a.power_w + e.step_w;
      if (a.power_w == 0)
        next = std::max(e.step_w, std::ceil(e.min_w / e.step_w - 1e-9) * e.step_w);
      next_amps = m.DcAmps(e, next) - m.DcAmps(e, a.power_w);
      next_ac_w = next_amps * n * m.V();
      next_station_w = next - a.power_w;
    }
    if (Fits(m, u, e, next_amps, next_ac_w, next_station_w)) {
      fail(absl::StrCat(e.id, ": Pareto: one more step fits (at ",
                        e.type == EvseType::kAc ? a.current_a : a.power_w, ")"));
    }
    if (!a.paused) continue;
    for (size_t j = 0; j < in.evses.size(); ++j) {
      const Evse& low = in.evses[j];
      if (low.priority >= e.priority || low.reserved_a || out.evses[j].paused ||
          out.evses[j].power_w < 0) {
        continue;
      }
      std::vector<Load> without = loads;
      without[j] = Load{};
      const Usage uw = ComputeUsage(m, without);
      if (Fits(m, uw, e, next_amps, next_ac_w, next_station_w)) {
        fail(absl::StrCat(e.id, " (priority ", e.priority, ") paused while ", low.id, " (priority ",
                          low.priority, ") runs in its way"));
      }
    }
  }
  return bad;
}

// Exact equality of every field, doubles compared with == (not through JSON formatting).
bool BitIdentical(const Allocation& a, const Allocation& b) {
  if (a.failsafe != b.failsafe || a.failsafe_reason != b.failsafe_reason ||
      a.evses.size() != b.evses.size() || a.circuits.size() != b.circuits.size()) {
    return false;
  }
  for (size_t i = 0; i < a.evses.size(); ++i) {
    const EvseAllocation& x = a.evses[i];
    const EvseAllocation& y = b.evses[i];
    if (x.id != y.id || x.type != y.type || x.current_a != y.current_a || x.power_w != y.power_w ||
        x.paused != y.paused || x.limited_by != y.limited_by || x.pause_reason != y.pause_reason ||
        x.controlled != y.controlled || x.limit.kind != y.limit.kind ||
        x.limit.circuit != y.limit.circuit || x.limit.phase != y.limit.phase ||
        x.limit.station != y.limit.station) {
      return false;
    }
  }
  for (size_t i = 0; i < a.circuits.size(); ++i) {
    if (a.circuits[i].id != b.circuits[i].id || a.circuits[i].load_a != b.circuits[i].load_a ||
        a.circuits[i].headroom_a != b.circuits[i].headroom_a) {
      return false;
    }
  }
  return true;
}

class AllocationProperty : public ::testing::TestWithParam<int> {};

TEST_P(AllocationProperty, InvariantsHoldOnRandomSites) {
  const uint64_t base = BaseSeed();
  int failsafe = 0, paused = 0, discharging = 0, evses = 0, reserved = 0;
  // Written by every site in turn: what an earlier site left in it must not show through.
  Allocation carried;
  for (int k = 0; k < kSitesPerBlock; ++k) {
    const uint64_t seed = base + static_cast<uint64_t>(GetParam()) * kSitesPerBlock + k;
    const AllocationInput in = GenerateSite(seed);
    const std::string context = absl::StrCat("seed ", seed, " (EVGATE_PROPERTY_SEED=", base,
                                             ")\nscenario: ", ScenarioToJson(in));
    absl::StatusOr<Allocation> out = Allocate(in);
    ASSERT_TRUE(out.ok()) << out.status() << "\n" << context;
    const std::vector<std::string> bad = CheckInvariants(in, *out);
    ASSERT_TRUE(bad.empty()) << absl::StrJoin(bad, "\n") << "\n"
                             << context << "\nallocation: " << AllocationToJson(*out);

    // Determinism and the prepared path: a PreparedSite, prepared and warmed up on a different
    // snapshot of the same structure, must give the plain path's result bit for bit.
    AllocationInput other = in;
    other.now_s += 400;
    if (other.grid.measured_a) {
      for (double& a : *other.grid.measured_a) a += 7.5;
    }
    for (size_t i = 0; i < other.evses.size(); i += 3) other.evses[i].active ^= true;
    absl::StatusOr<PreparedSite> prepared = PreparedSite::Create(other);
    ASSERT_TRUE(prepared.ok()) << prepared.status() << "\n" << context;
    ASSERT_TRUE(prepared->SameStructure(in));
    ASSERT_TRUE(prepared->Allocate(other).ok()) << context;
    absl::StatusOr<Allocation> again = prepared->Allocate(in);
    ASSERT_TRUE(again.ok()) << again.status() << "\n" << context;
    ASSERT_TRUE(BitIdentical(*again, *out))
        << "prepared: " << AllocationToJson(*again) << "\nplain: " << AllocationToJson(*out) << "\n"
        << context;
    // Once more on the same snapshot: the prepared site reuses its previous ranking.
    absl::StatusOr<Allocation> reused = prepared->Allocate(in);
    ASSERT_TRUE(reused.ok() && BitIdentical(*reused, *out))
        << "prepared, reused ranking: " << AllocationToJson(*reused) << "\n"
        << context;
    // Into a result of an earlier site (other sizes, failsafe or not): the same, bit for bit.
    ASSERT_TRUE(prepared->Allocate(in, carried).ok()) << context;
    ASSERT_TRUE(BitIdentical(carried, *out))
        << "into a reused result: " << AllocationToJson(carried) << "\n"
        << context;
    // The engine before its performance work, plain and prepared: the same, bit for bit.
    absl::StatusOr<Allocation> before = reference::AllocateReference(in);
    ASSERT_TRUE(before.ok()) << before.status() << "\n" << context;
    ASSERT_TRUE(BitIdentical(*before, *out)) << "reference: " << AllocationToJson(*before)
                                             << "\ncurrent: " << AllocationToJson(*out) << "\n"
                                             << context;
    absl::StatusOr<reference::PreparedSiteReference> prepared_before =
        reference::PreparedSiteReference::Create(other);
    ASSERT_TRUE(prepared_before.ok());
    ASSERT_TRUE(prepared_before->Allocate(other).ok());
    absl::StatusOr<Allocation> again_before = prepared_before->Allocate(in);
    ASSERT_TRUE(again_before.ok() && BitIdentical(*again_before, *out)) << context;
    AllocationInput shuffled = in;
    std::mt19937_64 rng(seed);
    std::shuffle(shuffled.evses.begin(), shuffled.evses.end(), rng);
    absl::StatusOr<Allocation> reordered = Allocate(shuffled);
    ASSERT_TRUE(reordered.ok());
    std::map<std::string, const EvseAllocation*> by_id;
    for (const EvseAllocation& e : reordered->evses) by_id[e.id] = &e;
    for (const EvseAllocation& e : out->evses) {
      const EvseAllocation& r = *by_id.at(e.id);
      ASSERT_TRUE(e.current_a == r.current_a && e.power_w == r.power_w && e.paused == r.paused)
          << e.id << " differs when the EVSEs are shuffled: " << AllocationToJson(*reordered)
          << "\n"
          << context;
    }
    failsafe += out->failsafe;
    for (const EvseAllocation& e : out->evses) {
      ++evses;
      paused += e.paused;
      discharging += e.power_w < 0;
      reserved += !e.controlled;
    }
  }
  // The generator must exercise the interesting cases, or the invariants prove little.
  EXPECT_GT(failsafe, 0);
  EXPECT_GT(paused, evses / 20);
  EXPECT_GT(discharging, 0);
  EXPECT_GT(reserved, evses / 20);
  EXPECT_LT(paused, evses * 9 / 10);
}

INSTANTIATE_TEST_SUITE_P(Blocks, AllocationProperty, ::testing::Range(0, kBlocks));

}  // namespace
}  // namespace evgate::allocation
