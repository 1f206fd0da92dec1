#include "site_controller/control/site_model.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace evgate::control {
namespace {

allocation::Phase ToEnginePhase(site::Phase p) {
  return static_cast<allocation::Phase>(static_cast<int>(p));
}

// limit_a[i] belongs to phases[i].
absl::StatusOr<allocation::PhaseLimits> ToPhaseLimits(const std::vector<site::Phase>& phases,
                                                      const std::vector<double>& limit_a,
                                                      const std::string& path) {
  if (phases.size() != limit_a.size() || phases.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", limit_a.size(), " limits for ", phases.size(), " phases"));
  }
  allocation::PhaseLimits limits;
  for (size_t i = 0; i < phases.size(); ++i) limits[static_cast<int>(phases[i])] = limit_a[i];
  return limits;
}

}  // namespace

absl::Duration SetpointTtl(const site::ControllerConfig& controller) {
  return std::max(3 * absl::Milliseconds(controller.tick_ms), absl::Seconds(3));
}

ControlParams ControlParamsFromConfig(const site::ControllerConfig& controller) {
  ControlParams p;
  p.margin_a = controller.margin_a;
  p.ramp_up_a_per_s = controller.ramp_up_a_per_s;
  p.hysteresis_a = controller.hysteresis_a;
  p.meter_timeout_s = controller.meter_timeout_ms / 1000.0;
  p.min_pause_s = controller.min_pause_s;
  p.setpoint_ttl_s = absl::ToDoubleSeconds(SetpointTtl(controller));
  return p;
}

absl::StatusOr<allocation::AllocationInput> AllocationInputFromConfig(
    const site::SiteConfig& config) {
  using allocation::AllocationInput;
  AllocationInput in;
  const ControlParams params = ControlParamsFromConfig(config.controller);
  in.margin_a = params.margin_a;
  in.min_pause_s = params.min_pause_s;

  absl::StatusOr<allocation::PhaseLimits> grid_limits =
      ToPhaseLimits(config.grid.phases, config.grid.fuse_limit_a, "grid.fuse_limit_a");
  if (!grid_limits.ok()) return grid_limits.status();
  in.grid.limit_a = *grid_limits;
  in.grid.contract_power_w = config.grid.contract_power_w;
  in.grid.export_limit_w = config.grid.export_limit_w;
  in.grid.nominal_voltage_v = config.grid.nominal_voltage_v;
  if (config.grid.meter) in.grid.meter_timeout_s = params.meter_timeout_s;

  // Phases of each node, to wire EVSEs that do not list their own.
  std::vector<std::pair<std::string, std::vector<site::Phase>>> node_phases = {
      {std::string(allocation::kGridId), config.grid.phases}};
  for (size_t i = 0; i < config.circuits.size(); ++i) {
    const site::CircuitConfig& c = config.circuits[i];
    absl::StatusOr<allocation::PhaseLimits> limits =
        ToPhaseLimits(c.phases, c.limit_a, absl::StrCat("circuits[", i, "].limit_a"));
    if (!limits.ok()) return limits.status();
    allocation::Circuit circuit;
    circuit.id = c.id;
    circuit.parent = c.parent;
    circuit.limit_a = *limits;
    // Marks it metered (a reading of 0 A, base load 0, until the first one arrives).
    if (c.meter) circuit.measured_a = allocation::PhaseValues{0, 0, 0};
    in.circuits.push_back(std::move(circuit));
    node_phases.emplace_back(c.id, c.phases);
  }
  auto phases_of = [&](const std::string& node) -> const std::vector<site::Phase>* {
    for (const auto& [id, phases] : node_phases) {
      if (id == node) return &phases;
    }
    return nullptr;
  };

  for (size_t s = 0; s < config.stations.size(); ++s) {
    const site::StationConfig& station = config.stations[s];
    if (station.max_power_w > 0) in.stations.push_back({station.id, station.max_power_w});
    for (size_t k = 0; k < station.evses.size(); ++k) {
      const site::EvseConfig& ec = station.evses[k];
      const std::string path = absl::StrCat("stations[", s, "].evses[", k, "]");
      allocation::Evse e;
      e.id = ec.id;
      e.circuit = station.circuit;
      e.active = false;
      e.priority = ec.priority;
      e.connector = ec.connector;
      if (station.max_power_w > 0) e.station = station.id;
      const std::vector<site::Phase>* phases =
          ec.phases.empty() ? phases_of(station.circuit) : &ec.phases;
      if (phases == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": unknown circuit \"", station.circuit, "\""));
      }
      for (site::Phase p : *phases) e.phases.push_back(ToEnginePhase(p));
      if (ec.ac) {
        e.type = allocation::EvseType::kAc;
        e.min_a = ec.ac->min_current_a;
        e.max_a = ec.ac->max_current_a;
        e.step_a = ec.ac->current_step_a;
        e.failsafe_a = ec.ac->failsafe_current_a;
      } else if (ec.dc) {
        e.type = allocation::EvseType::kDc;
        e.min_w = ec.dc->min_power_w;
        e.max_w = ec.dc->max_power_w;
        e.efficiency = ec.dc->efficiency;
        e.failsafe_w = ec.dc->failsafe_power_w;
        e.bidirectional = ec.dc->bidirectional;
        e.max_discharge_w = ec.dc->bidirectional ? ec.dc->max_discharge_power_w : 0.0;
        e.soc_min_pct = ec.dc->soc_min_pct;
        e.soc_max_pct = ec.dc->soc_max_pct;
      } else {
        return absl::InvalidArgumentError(absl::StrCat(path, ": neither AC nor DC limits"));
      }
      in.evses.push_back(std::move(e));
    }
  }
  if (absl::Status status = allocation::ValidateInput(in); !status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("site.yaml does not give a valid site for the engine:\n", status.message()));
  }
  return in;
}

}  // namespace evgate::control
