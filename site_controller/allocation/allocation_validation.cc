// ValidateInput (allocation.h): every structural and range rule of an
// allocation input, each error with its scenario field path.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "site_controller/allocation/allocation.h"
#include "site_controller/allocation/internal/numeric.h"

namespace evgate::allocation {
namespace {

using internal::StepsCeil;
using internal::StepsFloor;

// A scenario field path ("evses[3].phases[1]"), turned into text only when there is an error:
// validation runs on every allocation and must not allocate strings on the good path.
struct FieldPath {
  const char* list = nullptr;  // "circuits", "stations", "evses"; nullptr for "grid.…" etc.
  size_t index = 0;
  const char* field = "";
  int sub = -1;  // array element, or -1

  FieldPath At(int element) const { return FieldPath{list, index, field, element}; }
  std::string ToString() const {
    std::string s;
    if (list != nullptr) s = absl::StrCat(list, "[", index, "].");
    s += field;
    if (sub >= 0) s += absl::StrCat("[", sub, "]");
    return s;
  }
};

FieldPath Top(const char* field) { return FieldPath{nullptr, 0, field, -1}; }
FieldPath In(const char* list, size_t index, const char* field) {
  return FieldPath{list, index, field, -1};
}

class Errors {
 public:
  void Add(const FieldPath& path, const std::string& message) {
    lines_.push_back(absl::StrCat(path.ToString(), ": ", message));
  }
  absl::Status ToStatus() const {
    if (lines_.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrJoin(lines_, "\n"));
  }

 private:
  std::vector<std::string> lines_;
};

bool ValidPhase(Phase p) { return static_cast<int>(p) >= 0 && static_cast<int>(p) < kPhaseCount; }

void CheckNumber(Errors& errors, const FieldPath& path, double value, double min_value,
                 bool min_exclusive = false) {
  if (!std::isfinite(value)) {
    errors.Add(path, "must be a finite number");
  } else if (min_exclusive ? value <= min_value : value < min_value) {
    errors.Add(path, absl::StrFormat("must be %s %g, got %g", min_exclusive ? ">" : ">=", min_value,
                                     value));
  }
}

void CheckFinite(Errors& errors, const FieldPath& path, const std::optional<double>& value) {
  if (value && !std::isfinite(*value)) errors.Add(path, "must be finite");
}

void CheckLimits(Errors& errors, const FieldPath& path, const PhaseLimits& limits) {
  bool any = false;
  for (int p = 0; p < kPhaseCount; ++p) {
    if (!limits[p]) continue;
    any = true;
    CheckNumber(errors, path.At(p), *limits[p], 0.0);
  }
  if (!any) errors.Add(path, "needs a limit for at least one phase");
}

void CheckMeasured(Errors& errors, const FieldPath& path, const std::optional<PhaseValues>& m) {
  if (!m) return;
  for (int p = 0; p < kPhaseCount; ++p) {
    if (!std::isfinite((*m)[p])) errors.Add(path.At(p), "must be finite");
  }
}

}  // namespace

absl::Status ValidateInput(const AllocationInput& in) {
  Errors errors;
  const Grid& g = in.grid;
  CheckLimits(errors, Top("grid.limit_a"), g.limit_a);
  if (g.contract_power_w) CheckNumber(errors, Top("grid.contract_power_w"), *g.contract_power_w, 0);
  if (g.export_limit_w) CheckNumber(errors, Top("grid.export_limit_w"), *g.export_limit_w, 0);
  CheckNumber(errors, Top("grid.nominal_voltage_v"), g.nominal_voltage_v, 0, true);
  CheckMeasured(errors, Top("grid.measured_a"), g.measured_a);
  CheckNumber(errors, Top("grid.meter_age_s"), g.meter_age_s, 0);
  if (g.meter_timeout_s)
    CheckNumber(errors, Top("grid.meter_timeout_s"), *g.meter_timeout_s, 0, true);
  CheckNumber(errors, Top("margin_a"), in.margin_a, 0);
  if (!std::isfinite(in.now_s)) errors.Add(Top("now_s"), "must be finite");
  CheckNumber(errors, Top("min_pause_s"), in.min_pause_s, 0);
  if (in.min_run_s) CheckNumber(errors, Top("min_run_s"), *in.min_run_s, 0);

  std::unordered_map<std::string_view, int> circuit_index;
  circuit_index.reserve(in.circuits.size());
  for (size_t i = 0; i < in.circuits.size(); ++i) {
    const Circuit& c = in.circuits[i];
    if (c.id.empty()) {
      errors.Add(In("circuits", i, "id"), "must not be empty");
    } else if (c.id == kGridId) {
      errors.Add(In("circuits", i, "id"), "\"grid\" is reserved for the grid connection");
    } else if (!circuit_index.emplace(c.id, static_cast<int>(i)).second) {
      errors.Add(In("circuits", i, "id"), absl::StrCat("duplicate circuit id \"", c.id, "\""));
    }
    CheckLimits(errors, In("circuits", i, "limit_a"), c.limit_a);
    CheckMeasured(errors, In("circuits", i, "measured_a"), c.measured_a);
  }
  auto limits_of = [&](const std::string& node) -> const PhaseLimits* {
    if (node == kGridId) return &g.limit_a;
    auto it = circuit_index.find(node);
    return it == circuit_index.end() ? nullptr : &in.circuits[it->second].limit_a;
  };
  for (size_t i = 0; i < in.circuits.size(); ++i) {
    const Circuit& c = in.circuits[i];
    const PhaseLimits* parent = limits_of(c.parent);
    if (parent == nullptr) {
      errors.Add(In("circuits", i, "parent"), absl::StrCat("unknown circuit \"", c.parent, "\""));
      continue;
    }
    for (int p = 0; p < kPhaseCount; ++p) {
      if (c.limit_a[p] && !(*parent)[p]) {
        errors.Add(In("circuits", i, "limit_a").At(p),
                   absl::StrCat("phase ", PhaseName(static_cast<Phase>(p)),
                                " does not exist on parent \"", c.parent, "\""));
      }
    }
    // Cycle check: walking up must reach the grid within circuits.size() steps.
    std::string_view node = c.parent;
    size_t hops = 0;
    while (node != kGridId && hops <= in.circuits.size()) {
      auto it = circuit_index.find(node);
      if (it == circuit_index.end()) break;
      node = in.circuits[it->second].parent;
      ++hops;
    }
    if (hops > in.circuits.size()) errors.Add(In("circuits", i, "parent"), "circuits form a cycle");
  }

  std::unordered_map<std::string_view, int> station_index;
  station_index.reserve(in.stations.size());
  for (size_t i = 0; i < in.stations.size(); ++i) {
    const Station& s = in.stations[i];
    if (s.id.empty()) {
      errors.Add(In("stations", i, "id"), "must not be empty");
    } else if (!station_index.emplace(s.id, static_cast<int>(i)).second) {
      errors.Add(In("stations", i, "id"), absl::StrCat("duplicate station id \"", s.id, "\""));
    }
    CheckNumber(errors, In("stations", i, "max_power_w"), s.max_power_w, 0);
  }

  // Duplicate ids: sort (hash, index) pairs and compare the strings of equal hashes. Cheaper
  // than a hash map of 1,000 strings (no allocation per id) or sorting the strings.
  std::vector<std::pair<size_t, size_t>> ids;
  ids.reserve(in.evses.size());
  for (size_t i = 0; i < in.evses.size(); ++i) {
    ids.emplace_back(std::hash<std::string_view>()(in.evses[i].id), i);
  }
  std::sort(ids.begin(), ids.end());
  for (size_t k = 1; k < ids.size(); ++k) {
    for (size_t j = k; j > 0 && ids[j - 1].first == ids[k].first; --j) {
      const std::string& id = in.evses[ids[k].second].id;
      if (!id.empty() && in.evses[ids[j - 1].second].id == id) {
        errors.Add(In("evses", ids[k].second, "id"),
                   absl::StrCat("duplicate EVSE id \"", id, "\""));
        break;
      }
    }
  }
  for (size_t i = 0; i < in.evses.size(); ++i) {
    const Evse& e = in.evses[i];
    auto at = [i](const char* field) { return In("evses", i, field); };
    if (e.id.empty()) errors.Add(at("id"), "must not be empty");
    const PhaseLimits* node = limits_of(e.circuit);
    if (node == nullptr)
      errors.Add(at("circuit"), absl::StrCat("unknown circuit \"", e.circuit, "\""));
    if (e.phases.empty() || e.phases.size() > 3)
      errors.Add(at("phases"), "must list 1 to 3 site phases");
    bool seen[kPhaseCount] = {false, false, false};
    for (size_t k = 0; k < e.phases.size() && k < 3; ++k) {
      const FieldPath path = at("phases").At(static_cast<int>(k));
      if (!ValidPhase(e.phases[k])) {
        errors.Add(path, "must be L1, L2 or L3");
        continue;
      }
      const int p = static_cast<int>(e.phases[k]);
      if (seen[p]) errors.Add(path, absl::StrCat("phase ", PhaseName(e.phases[k]), " twice"));
      seen[p] = true;
      if (node != nullptr && !(*node)[p]) {
        errors.Add(path, absl::StrCat("phase ", PhaseName(e.phases[k]),
                                      " does not exist on circuit \"", e.circuit, "\""));
      }
    }
    CheckNumber(errors, at("session_energy_wh"), e.session_energy_wh, 0);
    CheckFinite(errors, at("plugged_at_s"), e.plugged_at_s);
    CheckFinite(errors, at("running_since_s"), e.running_since_s);
    CheckFinite(errors, at("paused_since_s"), e.paused_since_s);
    if (e.running_since_s && e.paused_since_s) {
      errors.Add(at("paused_since_s"), "an EVSE cannot be both running and paused");
    }
    if (e.connector < 0) errors.Add(at("connector"), "must be >= 0");
    if (e.reserved_a) CheckNumber(errors, at("reserved_a"), *e.reserved_a, 0);
    if (!e.station.empty() && station_index.find(e.station) == station_index.end()) {
      errors.Add(at("station"), absl::StrCat("unknown station \"", e.station, "\""));
    }
    if (e.type == EvseType::kAc) {
      CheckNumber(errors, at("min_a"), e.min_a, 0, true);
      CheckNumber(errors, at("step_a"), e.step_a, 0, true);
      if (!std::isfinite(e.max_a)) {
        errors.Add(at("max_a"), "must be a finite number");
      } else if (e.max_a < e.min_a) {
        errors.Add(at("max_a"), absl::StrFormat("must be >= min_a (%g), got %g", e.min_a, e.max_a));
      } else if (e.step_a > 0 && std::isfinite(e.step_a) && e.min_a > 0 &&
                 StepsCeil(e.min_a, e.step_a) > StepsFloor(e.max_a, e.step_a)) {
        errors.Add(at("step_a"), "no multiple of step_a lies in [min_a, max_a]");
      }
      if (e.measured_a) {
        if (e.measured_a->size() != e.phases.size()) {
          errors.Add(at("measured_a"), absl::StrFormat("has %d values for %d wired phases",
                                                       e.measured_a->size(), e.phases.size()));
        }
        for (size_t k = 0; k < e.measured_a->size(); ++k) {
          if (!std::isfinite((*e.measured_a)[k])) {
            errors.Add(at("measured_a").At(static_cast<int>(k)), "must be finite");
          }
        }
      }
      if (e.setpoint_a) CheckNumber(errors, at("setpoint_a"), *e.setpoint_a, 0);
      CheckNumber(errors, at("failsafe_a"), e.failsafe_a, 0);
      if (e.failsafe_a > 0 && (e.failsafe_a < e.min_a || e.failsafe_a > e.max_a)) {
        errors.Add(at("failsafe_a"),
                   absl::StrFormat("must be 0 or within [min_a, max_a] = [%g, %g], got %g", e.min_a,
                                   e.max_a, e.failsafe_a));
      }
    } else {
      if (!(e.efficiency > 0 && e.efficiency <= 1)) {
        errors.Add(at("efficiency"), absl::StrFormat("must be in (0, 1], got %g", e.efficiency));
      }
      CheckNumber(errors, at("min_w"), e.min_w, 0);
      CheckNumber(errors, at("step_w"), e.step_w, 0, true);
      if (!std::isfinite(e.max_w) || e.max_w < e.min_w) {
        errors.Add(at("max_w"), absl::StrFormat("must be >= min_w (%g), got %g", e.min_w, e.max_w));
      } else if (e.max_w > 0 && e.step_w > 0 && std::isfinite(e.step_w) &&
                 StepsCeil(e.min_w, e.step_w) > StepsFloor(e.max_w, e.step_w)) {
        errors.Add(at("step_w"), "no multiple of step_w lies in [min_w, max_w]");
      }
      CheckFinite(errors, at("measured_w"), e.measured_w);
      CheckFinite(errors, at("setpoint_w"), e.setpoint_w);
      CheckNumber(errors, at("failsafe_w"), e.failsafe_w, 0);
      CheckNumber(errors, at("max_discharge_w"), e.max_discharge_w, 0);
      if (e.soc_pct && !(*e.soc_pct >= 0 && *e.soc_pct <= 100)) {
        errors.Add(at("soc_pct"), "must be in [0, 100]");
      }
      if (!(e.soc_min_pct >= 0 && e.soc_min_pct <= 100)) {
        errors.Add(at("soc_min_pct"), "must be in [0, 100]");
      }
      if (!(e.soc_max_pct >= 0 && e.soc_max_pct <= 100)) {
        errors.Add(at("soc_max_pct"), "must be in [0, 100]");
      } else if (e.soc_max_pct < e.soc_min_pct) {
        errors.Add(at("soc_max_pct"), "must be >= soc_min_pct");
      }
    }
  }
  return errors.ToStatus();
}

}  // namespace evgate::allocation
