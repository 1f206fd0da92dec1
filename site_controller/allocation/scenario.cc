#include "site_controller/allocation/scenario.h"

#include <cmath>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace evgate::allocation {
namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

// Reads typed fields out of parsed JSON, collecting every error with its path.
class Reader {
 public:
  void Error(const std::string& path, const std::string& message) {
    errors_.push_back(absl::StrCat(path, ": ", message));
  }
  const std::vector<std::string>& errors() const { return errors_; }

  static std::string Join(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : absl::StrCat(path, ".", std::string(key));
  }

  bool ExpectObject(const Json& j, const std::string& path) {
    if (j.is_object()) return true;
    Error(path.empty() ? "(top level)" : path,
          absl::StrCat("expected an object, got ", j.type_name()));
    return false;
  }

  // Reports every key of `obj` that is not in `known`.
  void OnlyKnown(const Json& obj, const std::string& path,
                 std::initializer_list<std::string_view> known, std::string_view what) {
    for (const auto& [key, value] : obj.items()) {
      bool found = false;
      for (std::string_view k : known) found |= (k == key);
      if (!found) Error(Join(path, key), absl::StrCat("unknown field of ", std::string(what)));
    }
  }

  // nullptr when absent.
  static const Json* Find(const Json& obj, std::string_view key) {
    auto it = obj.find(key);
    return it == obj.end() ? nullptr : &*it;
  }

  bool Number(const Json& v, const std::string& path, double* out) {
    if (!v.is_number()) {
      Error(path, absl::StrCat("expected a number, got ", v.type_name()));
      return false;
    }
    *out = v.get<double>();
    if (!std::isfinite(*out)) {
      Error(path, "must be finite");
      return false;
    }
    return true;
  }

  void Number(const Json& obj, const std::string& path, std::string_view key, double* out,
              bool required) {
    const Json* v = Find(obj, key);
    if (v == nullptr || (v->is_null() && !required)) {
      if (required) Error(Join(path, key), "required field is missing");
      return;
    }
    Number(*v, Join(path, key), out);
  }

  void OptNumber(const Json& obj, const std::string& path, std::string_view key,
                 std::optional<double>* out) {
    const Json* v = Find(obj, key);
    if (v == nullptr || v->is_null()) return;
    double d = 0;
    if (Number(*v, Join(path, key), &d)) *out = d;
  }

  void Int(const Json& obj, const std::string& path, std::string_view key, int* out) {
    const Json* v = Find(obj, key);
    if (v == nullptr || v->is_null()) return;
    double d = 0;
    if (!Number(*v, Join(path, key), &d)) return;
    if (d != std::floor(d) || std::abs(d) > 1e9) {
      Error(Join(path, key), absl::StrCat("expected an integer, got ",
                                          v->dump(-1, ' ', false, Json::error_handler_t::replace)));
      return;
    }
    *out = static_cast<int>(d);
  }

  void Bool(const Json& obj, const std::string& path, std::string_view key, bool* out) {
    const Json* v = Find(obj, key);
    if (v == nullptr || v->is_null()) return;
    if (!v->is_boolean()) {
      Error(Join(path, key), absl::StrCat("expected true or false, got ", v->type_name()));
      return;
    }
    *out = v->get<bool>();
  }

  void String(const Json& obj, const std::string& path, std::string_view key, std::string* out,
              bool required) {
    const Json* v = Find(obj, key);
    if (v == nullptr || v->is_null()) {
      if (required) Error(Join(path, key), "required field is missing");
      return;
    }
    if (!v->is_string()) {
      Error(Join(path, key), absl::StrCat("expected a string, got ", v->type_name()));
      return;
    }
    *out = v->get<std::string>();
  }

  // [a, b, c]: a number per site phase, null where the node lacks the phase.
  void Limits(const Json& obj, const std::string& path, std::string_view key, PhaseLimits* out) {
    const std::string p = Join(path, key);
    const Json* v = Find(obj, key);
    if (v == nullptr || v->is_null()) {
      Error(p, "required field is missing");
      return;
    }
    if (!v->is_array() || v->size() != kPhaseCount) {
      Error(p, "expected an array of 3 values (L1, L2, L3; null for a missing phase)");
      return;
    }
    for (int i = 0; i < kPhaseCount; ++i) {
      const Json& e = (*v)[i];
      if (e.is_null()) continue;
      double d = 0;
      if (Number(e, absl::StrCat(p, "[", i, "]"), &d)) (*out)[i] = d;
    }
  }

  // [a, b, c] measured per site phase; null allowed only where `limits` has no phase.
  void Measured(const Json& obj, const std::string& path, std::string_view key,
                const PhaseLimits& limits, std::optional<PhaseValues>* out) {
    const std::string p = Join(path, key);
    const Json* v = Find(obj, key);
    if (v == nullptr || v->is_null()) return;
    if (!v->is_array() || v->size() != kPhaseCount) {
      Error(p, "expected an array of 3 numbers (L1, L2, L3) or null (unmetered)");
      return;
    }
    PhaseValues values{0, 0, 0};
    bool ok = true;
    for (int i = 0; i < kPhaseCount; ++i) {
      const Json& e = (*v)[i];
      const std::string ep = absl::StrCat(p, "[", i, "]");
      if (e.is_null()) {
        if (limits[i]) {
          Error(ep, absl::StrCat("missing reading for phase ", PhaseName(static_cast<Phase>(i))));
          ok = false;
        }
        continue;
      }
      ok &= Number(e, ep, &values[i]);
    }
    if (ok) *out = values;
  }

  void Phases(const Json& obj, const std::string& path, std::vector<Phase>* out) {
    const std::string p = Join(path, "phases");
    const Json* v = Find(obj, "phases");
    if (v == nullptr || v->is_null()) {
      Error(p, "required field is missing");
      return;
    }
    if (!v->is_array()) {
      Error(p,
            absl::StrCat("expected an array like [\"L1\", \"L2\", \"L3\"], got ", v->type_name()));
      return;
    }
    for (size_t i = 0; i < v->size(); ++i) {
      const Json& e = (*v)[i];
      const std::string name = e.is_string() ? e.get<std::string>() : "";
      if (name == "L1") {
        out->push_back(Phase::kL1);
      } else if (name == "L2") {
        out->push_back(Phase::kL2);
      } else if (name == "L3") {
        out->push_back(Phase::kL3);
      } else {
        Error(absl::StrCat(p, "[", i, "]"),
              absl::StrCat("expected \"L1\", \"L2\" or \"L3\", got ",
                           e.dump(-1, ' ', false, Json::error_handler_t::replace)));
      }
    }
  }

  void NumberList(const Json& obj, const std::string& path, std::string_view key,
                  std::optional<std::vector<double>>* out) {
    const std::string p = Join(path, key);
    const Json* v = Find(obj, key);
    if (v == nullptr || v->is_null()) return;
    if (!v->is_array()) {
      Error(p, absl::StrCat("expected an array of numbers or null, got ", v->type_name()));
      return;
    }
    std::vector<double> values(v->size());
    bool ok = true;
    for (size_t i = 0; i < v->size(); ++i) {
      ok &= Number((*v)[i], absl::StrCat(p, "[", i, "]"), &values[i]);
    }
    if (ok) *out = std::move(values);
  }

 private:
  std::vector<std::string> errors_;
};

void ReadGrid(Reader& r, const Json& j, Grid* g) {
  const std::string path = "grid";
  if (!r.ExpectObject(j, path)) return;
  r.OnlyKnown(j, path,
              {"limit_a", "contract_power_w", "export_limit_w", "nominal_voltage_v", "measured_a",
               "meter_age_s", "meter_timeout_s"},
              "the grid");
  r.Limits(j, path, "limit_a", &g->limit_a);
  r.OptNumber(j, path, "contract_power_w", &g->contract_power_w);
  r.OptNumber(j, path, "export_limit_w", &g->export_limit_w);
  r.Number(j, path, "nominal_voltage_v", &g->nominal_voltage_v, false);
  r.Measured(j, path, "measured_a", g->limit_a, &g->measured_a);
  r.Number(j, path, "meter_age_s", &g->meter_age_s, false);
  r.OptNumber(j, path, "meter_timeout_s", &g->meter_timeout_s);
}

void ReadCircuit(Reader& r, const Json& j, const std::string& path, Circuit* c) {
  if (!r.ExpectObject(j, path)) return;
  r.OnlyKnown(j, path, {"id", "parent", "limit_a", "measured_a"}, "a circuit");
  r.String(j, path, "id", &c->id, true);
  r.String(j, path, "parent", &c->parent, false);
  r.Limits(j, path, "limit_a", &c->limit_a);
  r.Measured(j, path, "measured_a", c->limit_a, &c->measured_a);
}

void ReadStation(Reader& r, const Json& j, const std::string& path, Station* s) {
  if (!r.ExpectObject(j, path)) return;
  r.OnlyKnown(j, path, {"id", "max_power_w"}, "a station");
  r.String(j, path, "id", &s->id, true);
  r.Number(j, path, "max_power_w", &s->max_power_w, true);
}

void ReadEvse(Reader& r, const Json& j, const std::string& path, Evse* e) {
  if (!r.ExpectObject(j, path)) return;
  std::string type;
  r.String(j, path, "type", &type, true);
  if (type == "ac") {
    e->type = EvseType::kAc;
    r.OnlyKnown(
        j, path,
        {"id", "circuit", "type", "phases", "active", "priority", "session_energy_wh",
         "plugged_at_s", "running_since_s", "paused_since_s", "connector", "station", "min_a",
         "max_a", "step_a", "measured_a", "setpoint_a", "failsafe_a", "reserved_a"},
        "an AC EVSE");
  } else if (type == "dc") {
    e->type = EvseType::kDc;
    r.OnlyKnown(j, path,
                {"id",
                 "circuit",
                 "type",
                 "phases",
                 "active",
                 "priority",
                 "session_energy_wh",
                 "plugged_at_s",
                 "running_since_s",
                 "paused_since_s",
                 "connector",
                 "station",
                 "min_w",
                 "max_w",
                 "step_w",
                 "efficiency",
                 "measured_w",
                 "setpoint_w",
                 "failsafe_w",
                 "bidirectional",
                 "max_discharge_w",
                 "soc_pct",
                 "soc_min_pct",
                 "soc_max_pct",
                 "reserved_a"},
                "a DC EVSE");
  } else if (!type.empty()) {
    r.Error(Reader::Join(path, "type"),
            absl::StrCat("expected \"ac\" or \"dc\", got \"", type, "\""));
  }
  r.String(j, path, "id", &e->id, true);
  r.String(j, path, "circuit", &e->circuit, false);
  r.Phases(j, path, &e->phases);
  r.Bool(j, path, "active", &e->active);
  r.Int(j, path, "priority", &e->priority);
  r.Number(j, path, "session_energy_wh", &e->session_energy_wh, false);
  r.OptNumber(j, path, "plugged_at_s", &e->plugged_at_s);
  r.OptNumber(j, path, "running_since_s", &e->running_since_s);
  r.OptNumber(j, path, "paused_since_s", &e->paused_since_s);
  r.Int(j, path, "connector", &e->connector);
  r.String(j, path, "station", &e->station, false);
  r.OptNumber(j, path, "reserved_a", &e->reserved_a);
  if (e->type == EvseType::kAc) {
    r.Number(j, path, "min_a", &e->min_a, false);
    r.Number(j, path, "max_a", &e->max_a, true);
    r.Number(j, path, "step_a", &e->step_a, false);
    r.NumberList(j, path, "measured_a", &e->measured_a);
    r.OptNumber(j, path, "setpoint_a", &e->setpoint_a);
    r.Number(j, path, "failsafe_a", &e->failsafe_a, false);
  } else {
    r.Number(j, path, "min_w", &e->min_w, false);
    r.Number(j, path, "max_w", &e->max_w, true);
    r.Number(j, path, "step_w", &e->step_w, false);
    r.Number(j, path, "efficiency", &e->efficiency, true);
    r.OptNumber(j, path, "measured_w", &e->measured_w);
    r.OptNumber(j, path, "setpoint_w", &e->setpoint_w);
    r.Number(j, path, "failsafe_w", &e->failsafe_w, false);
    r.Bool(j, path, "bidirectional", &e->bidirectional);
    r.Number(j, path, "max_discharge_w", &e->max_discharge_w, false);
    r.OptNumber(j, path, "soc_pct", &e->soc_pct);
    r.Number(j, path, "soc_min_pct", &e->soc_min_pct, false);
    r.Number(j, path, "soc_max_pct", &e->soc_max_pct, false);
  }
}

template <typename T, typename ReadFn>
void ReadList(Reader& r, const Json& top, std::string_view key, bool required, std::vector<T>* out,
              ReadFn read) {
  const Json* v = Reader::Find(top, key);
  if (v == nullptr || v->is_null()) {
    if (required) r.Error(std::string(key), "required field is missing");
    return;
  }
  if (!v->is_array()) {
    r.Error(std::string(key), absl::StrCat("expected an array, got ", v->type_name()));
    return;
  }
  out->resize(v->size());
  for (size_t i = 0; i < v->size(); ++i) {
    read(r, (*v)[i], absl::StrCat(std::string(key), "[", i, "]"), &(*out)[i]);
  }
}

// "[json.exception.parse_error.101] parse error at line 1, column 5: ..." → "line 1, column 5:
// ...".
std::string SyntaxErrorMessage(const std::string& what) {
  std::string message = what;
  const size_t bracket = message.find("] ");
  if (message.rfind("[json.exception.", 0) == 0 && bracket != std::string::npos) {
    message = message.substr(bracket + 2);
  }
  const std::string prefix = "parse error at ";
  if (message.rfind(prefix, 0) == 0) message = message.substr(prefix.size());
  return message;
}

OrderedJson LimitsJson(const PhaseLimits& limits) {
  OrderedJson a = OrderedJson::array();
  for (const auto& l : limits) a.push_back(l ? OrderedJson(*l) : OrderedJson(nullptr));
  return a;
}

OrderedJson ValuesJson(const PhaseValues& values, const PhaseLimits& limits) {
  OrderedJson a = OrderedJson::array();
  for (int p = 0; p < kPhaseCount; ++p) {
    a.push_back(limits[p] ? OrderedJson(values[p]) : OrderedJson(nullptr));
  }
  return a;
}

}  // namespace

absl::StatusOr<AllocationInput> ParseScenario(std::string_view json_text) {
  Json top;
  try {
    top = Json::parse(json_text.begin(), json_text.end());
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("invalid JSON: ", SyntaxErrorMessage(e.what())));
  }
  Reader r;
  AllocationInput in;
  if (!r.ExpectObject(top, "")) return absl::InvalidArgumentError(r.errors().front());
  r.OnlyKnown(top, "",
              {"description", "expected", "grid", "margin_a", "circuits", "stations", "evses",
               "now_s", "min_pause_s", "min_run_s"},
              "a scenario");
  if (const Json* grid = Reader::Find(top, "grid"); grid != nullptr) {
    ReadGrid(r, *grid, &in.grid);
  } else {
    r.Error("grid", "required field is missing");
  }
  r.Number(top, "", "margin_a", &in.margin_a, false);
  r.Number(top, "", "now_s", &in.now_s, false);
  r.Number(top, "", "min_pause_s", &in.min_pause_s, false);
  r.OptNumber(top, "", "min_run_s", &in.min_run_s);
  ReadList(r, top, "circuits", false, &in.circuits, ReadCircuit);
  ReadList(r, top, "stations", false, &in.stations, ReadStation);
  ReadList(r, top, "evses", true, &in.evses, ReadEvse);
  if (!r.errors().empty()) return absl::InvalidArgumentError(absl::StrJoin(r.errors(), "\n"));
  if (absl::Status status = ValidateInput(in); !status.ok()) return status;
  return in;
}

std::string ScenarioToJson(const AllocationInput& in, int indent) {
  OrderedJson top;
  const Grid& g = in.grid;
  OrderedJson grid;
  grid["limit_a"] = LimitsJson(g.limit_a);
  if (g.contract_power_w) grid["contract_power_w"] = *g.contract_power_w;
  if (g.export_limit_w) grid["export_limit_w"] = *g.export_limit_w;
  grid["nominal_voltage_v"] = g.nominal_voltage_v;
  if (g.measured_a) grid["measured_a"] = ValuesJson(*g.measured_a, g.limit_a);
  grid["meter_age_s"] = g.meter_age_s;
  if (g.meter_timeout_s) grid["meter_timeout_s"] = *g.meter_timeout_s;
  top["grid"] = std::move(grid);
  top["margin_a"] = in.margin_a;
  top["now_s"] = in.now_s;
  top["min_pause_s"] = in.min_pause_s;
  if (in.min_run_s) top["min_run_s"] = *in.min_run_s;
  top["circuits"] = OrderedJson::array();
  for (const Circuit& c : in.circuits) {
    OrderedJson j;
    j["id"] = c.id;
    j["parent"] = c.parent;
    j["limit_a"] = LimitsJson(c.limit_a);
    j["measured_a"] = c.measured_a ? ValuesJson(*c.measured_a, c.limit_a) : OrderedJson(nullptr);
    top["circuits"].push_back(std::move(j));
  }
  top["stations"] = OrderedJson::array();
  for (const Station& s : in.stations) {
    top["stations"].push_back(OrderedJson{{"id", s.id}, {"max_power_w", s.max_power_w}});
  }
  top["evses"] = OrderedJson::array();
  for (const Evse& e : in.evses) {
    OrderedJson j;
    j["id"] = e.id;
    j["circuit"] = e.circuit;
    j["type"] = e.type == EvseType::kAc ? "ac" : "dc";
    if (!e.station.empty()) j["station"] = e.station;
    j["connector"] = e.connector;
    OrderedJson phases = OrderedJson::array();
    for (Phase p : e.phases) phases.push_back(std::string(PhaseName(p)));
    j["phases"] = std::move(phases);
    j["active"] = e.active;
    j["priority"] = e.priority;
    j["session_energy_wh"] = e.session_energy_wh;
    if (e.plugged_at_s) j["plugged_at_s"] = *e.plugged_at_s;
    if (e.running_since_s) j["running_since_s"] = *e.running_since_s;
    if (e.paused_since_s) j["paused_since_s"] = *e.paused_since_s;
    if (e.reserved_a) j["reserved_a"] = *e.reserved_a;
    if (e.type == EvseType::kAc) {
      j["min_a"] = e.min_a;
      j["max_a"] = e.max_a;
      j["step_a"] = e.step_a;
      j["measured_a"] = e.measured_a ? OrderedJson(*e.measured_a) : OrderedJson(nullptr);
      if (e.setpoint_a) j["setpoint_a"] = *e.setpoint_a;
      j["failsafe_a"] = e.failsafe_a;
    } else {
      j["min_w"] = e.min_w;
      j["max_w"] = e.max_w;
      j["step_w"] = e.step_w;
      j["efficiency"] = e.efficiency;
      j["measured_w"] = e.measured_w ? OrderedJson(*e.measured_w) : OrderedJson(nullptr);
      if (e.setpoint_w) j["setpoint_w"] = *e.setpoint_w;
      j["failsafe_w"] = e.failsafe_w;
      j["bidirectional"] = e.bidirectional;
      j["max_discharge_w"] = e.max_discharge_w;
      if (e.soc_pct) j["soc_pct"] = *e.soc_pct;
      j["soc_min_pct"] = e.soc_min_pct;
      j["soc_max_pct"] = e.soc_max_pct;
    }
    top["evses"].push_back(std::move(j));
  }
  return top.dump(indent, ' ', false, OrderedJson::error_handler_t::replace);
}

std::string AllocationToJson(const Allocation& a, int indent) {
  OrderedJson top;
  top["failsafe"] = a.failsafe;
  if (a.failsafe) top["failsafe_reason"] = a.failsafe_reason;
  top["evses"] = OrderedJson::array();
  for (const EvseAllocation& e : a.evses) {
    OrderedJson j;
    j["id"] = e.id;
    if (e.type == EvseType::kAc) {
      j["current_a"] = e.current_a;
    } else {
      j["power_w"] = e.power_w;
    }
    j["paused"] = e.paused;
    if (!e.limited_by.empty()) j["limited_by"] = e.limited_by;
    if (e.pause_reason != PauseReason::kNone) {
      j["pause_reason"] = std::string(PauseReasonName(e.pause_reason));
    }
    if (!e.controlled) j["controlled"] = false;
    top["evses"].push_back(std::move(j));
  }
  top["circuits"] = OrderedJson::array();
  for (const CircuitLoad& c : a.circuits) {
    OrderedJson load = OrderedJson::array();
    OrderedJson headroom = OrderedJson::array();
    for (int p = 0; p < kPhaseCount; ++p) {
      load.push_back(c.load_a[p] ? OrderedJson(*c.load_a[p]) : OrderedJson(nullptr));
      headroom.push_back(c.headroom_a[p] ? OrderedJson(*c.headroom_a[p]) : OrderedJson(nullptr));
    }
    top["circuits"].push_back(OrderedJson{
        {"id", c.id}, {"load_a", std::move(load)}, {"headroom_a", std::move(headroom)}});
  }
  return top.dump(indent, ' ', false, OrderedJson::error_handler_t::replace);
}

}  // namespace evgate::allocation
