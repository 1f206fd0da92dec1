// SiteSimulator's running part: start and stop, the lookups, and the physics
// stepped every tick (building load, what each vehicle draws, the meters).
// Construction from site.yaml is in site_simulator_build.cc, the operator's
// controls in site_simulator_controls.cc, the API's views in
// site_simulator_view.cc.
#include "device_drivers/sim/site_simulator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/log.h"

namespace evgate::sim {
namespace {

constexpr log::Logger kLog("simulator");

constexpr double kPi = 3.14159265358979323846;

}  // namespace

std::vector<double> BuildingLoadProfile(const site::BuildingLoadConfig& building, absl::Time t) {
  // Hours since UTC midnight.
  const absl::Duration since_midnight =
      t - absl::FromCivil(absl::ToCivilDay(t, absl::UTCTimeZone()), absl::UTCTimeZone());
  const double hour = absl::ToDoubleHours(since_midnight);
  // Office hours: a half sine from 06:00 to 20:00 with its peak at 13:00.
  const double share = hour > 6 && hour < 20 ? std::sin(kPi * (hour - 6) / 14) : 0.0;
  std::vector<double> out;
  for (size_t i = 0; i < building.base_a.size() && i < building.peak_a.size(); ++i) {
    out.push_back(building.base_a[i] + (building.peak_a[i] - building.base_a[i]) * share);
  }
  return out;
}

// ---- lifecycle -----------------------------------------------------------------

absl::Status SiteSimulator::Start() {
  for (auto& bus : modbus_buses_) {
    const site::BusConfig& config = *bus->config;
    if (config.modbus_tcp) {
      const site::ModbusTcpSettings& tcp = *config.modbus_tcp;
      if (absl::Status s = bus->server->ListenTcp(tcp.host, tcp.port); !s.ok()) {
        StopServing();
        return absl::UnavailableError(
            absl::StrFormat("cannot serve the simulated Modbus bus '%s' on %s:%d: %s", config.id,
                            tcp.host, tcp.port, s.message()));
      }
      bus->endpoint = absl::StrFormat("modbus tcp %s:%d", tcp.host, bus->server->tcp_port());
    } else if (config.modbus_rtu) {
      const site::ModbusRtuSettings& rtu = *config.modbus_rtu;
      RtuLineOptions line;
      line.baud = rtu.baud;
      line.parity = rtu.parity == site::Parity::kEven  ? 'E'
                    : rtu.parity == site::Parity::kOdd ? 'O'
                                                       : 'N';
      line.data_bits = rtu.data_bits;
      line.stop_bits = rtu.stop_bits;
      absl::StatusOr<std::string> pty = bus->server->ServeRtuPty(line);
      if (!pty.ok()) {
        StopServing();
        return absl::UnavailableError(
            absl::StrFormat("cannot serve the simulated Modbus RTU bus '%s' on a pty: %s",
                            config.id, pty.status().message()));
      }
      bus->endpoint = absl::StrCat("modbus rtu pty ", *pty);
      kLog.Warning(
          "bus '%s' is modbus_rtu on %s, the driver's end of a serial line; the simulator serves "
          "it on the pseudo-terminal %s instead (set the bus's port to it to drive it)",
          config.id, rtu.port, *pty);
    }
  }
  for (auto& bus : can_buses_) {
    if (absl::Status s = options_.can_threads ? bus->host->Start() : bus->host->Open(); !s.ok()) {
      StopServing();
      return absl::UnavailableError(
          absl::StrFormat("cannot serve the simulated CAN bus '%s' (%s): %s", bus->config->id,
                          bus->transport->Describe(), s.message()));
    }
    bus->endpoint = absl::StrCat("can ", bus->transport->Describe());
  }

  std::vector<std::string> simulated;
  for (const auto& device : devices_) {
    if (device->kind == Kind::kNone) {
      kLog.Warning("device '%s' is not simulated: %s", device->config->id,
                   device->not_simulated_reason);
    } else {
      simulated.push_back(device->config->id);
    }
  }
  {
    absl::MutexLock lock(&mu_);
    started_ = true;
    StepLocked(clock_.Now());
    for (const site::SimulatedVehicleConfig& vehicle : config_.simulation.vehicles) {
      Evse* evse = FindEvse(vehicle.evse);
      if (evse == nullptr) {
        kLog.Warning("no vehicle plugged into %s at start: its device is not simulated",
                     vehicle.evse);
        continue;
      }
      absl::StatusOr<v1::SimulatedEvse> plugged =
          PlugInLocked(*evse, {vehicle.max_current_a, vehicle.phases, vehicle.energy_to_full_wh,
                               vehicle.id_tag.value_or(""), vehicle.max_power_w, std::nullopt});
      if (!plugged.ok()) {
        kLog.Warning("no vehicle plugged into %s at start: %s", vehicle.evse,
                     plugged.status().message());
        continue;
      }
      kLog.Info("vehicle plugged into %s at start (%s, full after %g kWh%s)", vehicle.evse,
                vehicle.max_power_w > 0
                    ? absl::StrFormat("%g kW", vehicle.max_power_w / 1000)
                    : absl::StrFormat("%g A, %d-phase", vehicle.max_current_a, vehicle.phases),
                vehicle.energy_to_full_wh / 1000,
                vehicle.id_tag ? absl::StrCat("; card ", *vehicle.id_tag,
                                              evse->device->kind == Kind::kOcpp
                                                  ? " presented at the charger"
                                                  : " once a controller drives the wallbox")
                               : "");
    }
  }
  std::vector<std::string> endpoints;
  for (const auto& bus : modbus_buses_) endpoints.push_back(bus->endpoint);
  for (const auto& bus : can_buses_) endpoints.push_back(bus->endpoint);
  if (ocpp_clients_) {
    // The chargers keep trying until the Central System listens (it may
    // start after the simulator).
    ocpp_clients_->Start();
    for (const auto& device : devices_) {
      if (device->kind == Kind::kOcpp) endpoints.push_back(device->ocpp_endpoint);
    }
  }
  kLog.Info("simulating %d devices (%s) on %s", simulated.size(), absl::StrJoin(simulated, ", "),
            endpoints.empty() ? "no bus" : absl::StrJoin(endpoints, ", "));

  if (options_.physics_thread) {
    {
      absl::MutexLock lock(&run_mu_);
      stop_ = false;
    }
    thread_ = std::thread([this] { RunPhysics(); });
  }
  return absl::OkStatus();
}

void SiteSimulator::RunPhysics() {
  while (true) {
    Step();
    absl::MutexLock lock(&run_mu_);
    if (run_mu_.AwaitWithTimeout(absl::Condition(&stop_), options_.physics_period)) return;
  }
}

void SiteSimulator::StopServing() {
  if (ocpp_clients_) ocpp_clients_->Stop();
  for (auto& bus : can_buses_) bus->host->Stop();
  for (auto& bus : modbus_buses_) bus->server->Stop();
}

void SiteSimulator::Stop() {
  if (thread_.joinable()) {
    {
      absl::MutexLock lock(&run_mu_);
      stop_ = true;
    }
    thread_.join();
  }
  StopServing();
}

// ---- lookups -------------------------------------------------------------------

SiteSimulator::Device* SiteSimulator::FindDevice(const std::string& id) {
  for (auto& device : devices_) {
    if (device->config->id == id) return device.get();
  }
  return nullptr;
}

SiteSimulator::Evse* SiteSimulator::FindEvse(const std::string& id) {
  for (auto& evse : evses_) {
    if (evse->config->id == id) return evse.get();
  }
  return nullptr;
}

SiteSimulator::Device* SiteSimulator::FindTarget(const std::string& id) {
  if (Device* device = FindDevice(id)) return device;
  if (Evse* evse = FindEvse(id)) return evse->device;
  return nullptr;
}

// ---- physics -------------------------------------------------------------------

void SiteSimulator::Step() {
  if (!options_.can_threads) {
    for (auto& bus : can_buses_) {
      if (absl::StatusOr<int> events = bus->host->Step(); !events.ok()) {
        kLog.Warning("CAN bus '%s' not stepped: %s", bus->config->id, events.status().message());
      }
    }
  }
  absl::MutexLock lock(&mu_);
  StepLocked(clock_.Now());
}

SiteSimulator::PhaseArray SiteSimulator::BuildingLoadLocked(absl::Time now) {
  const double dt_s = last_step_ ? std::max(0.0, absl::ToDoubleSeconds(now - *last_step_)) : 0.0;
  last_step_ = now;
  if (building_override_) return *building_override_;
  PhaseArray load{};
  if (!config_.simulation.building_load) return load;
  // Ornstein-Uhlenbeck noise: stationary standard deviation noise_a, drawn
  // in a fixed order from the seeded generator.
  const double tau_s = std::max(1e-3, absl::ToDoubleSeconds(options_.noise_time_constant));
  const double keep = std::exp(-dt_s / tau_s);
  const double spread = options_.noise_a * std::sqrt(1 - keep * keep);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (double& n : noise_a_) n = keep * n + spread * normal(rng_);
  const std::vector<double> profile = BuildingLoadProfile(*config_.simulation.building_load, now);
  for (size_t i = 0; i < profile.size() && i < config_.grid.phases.size(); ++i) {
    const int p = site::PhaseIndex(config_.grid.phases[i]);
    load[p] = std::max(0.0, profile[i] + noise_a_[p]);
  }
  return load;
}

SiteSimulator::PhaseArray SiteSimulator::ToSitePhases(const Evse& evse,
                                                      const std::array<double, 3>& own) const {
  PhaseArray site{};
  const std::vector<site::Phase>& wiring = evse.config->phases;
  for (size_t i = 0; i < wiring.size() && i < own.size(); ++i)
    site[site::PhaseIndex(wiring[i])] += own[i];
  return site;
}

SiteSimulator::PhaseArray SiteSimulator::EvseDraw(const Evse& evse) {
  const Device& device = *evse.device;
  if (device.kind == Kind::kCabur) {
    return ToSitePhases(evse, device.can->host->CurrentDraw(device.config->address.value_or(0)));
  }
  if (device.kind == Kind::kHeidelberg) {
    return ToSitePhases(evse, device.heidelberg->PhaseCurrents());
  }
  if (device.kind == Kind::kOcpp) {
    return ToSitePhases(evse, device.ocpp->AcCurrent(evse.config->connector));
  }
  return {};
}

void SiteSimulator::UpdateIslandLocked() {
  bool island = false;
  for (auto& device : devices_) {
    if (device->kind == Kind::kOffGridBox &&
        device->box->transfer_switch() == OffGridBoxSimulator::Switch::kOffGrid) {
      island = true;
    }
  }
  double load_w = 0;
  for (int p = 0; p < 3; ++p) load_w += building_a_[p] * config_.grid.nominal_voltage_v;
  for (auto& evse : evses_) {
    if (evse->device->kind != Kind::kOcpp || !evse->config->dc ||
        !evse->config->dc->bidirectional) {
      continue;
    }
    evse->device->ocpp->SetIslandLoad(evse->config->connector,
                                      island ? std::optional<double>(load_w) : std::nullopt);
  }
}

void SiteSimulator::StepLocked(absl::Time now) {
  for (auto& device : devices_) {
    if (device->kind == Kind::kOcpp) device->ocpp->Step(now);
  }
  building_a_ = BuildingLoadLocked(now);
  std::map<std::string, PhaseArray> node;
  node[site::kGridCircuitId] = building_a_;
  UpdateIslandLocked();
  for (auto& evse : evses_) {
    const PhaseArray draw = EvseDraw(*evse);
    for (const std::string& circuit : evse->circuits) {
      PhaseArray& sum = node[circuit];
      for (int p = 0; p < 3; ++p) sum[p] += draw[p];
    }
    if (!evse->vehicle) continue;
    Vehicle& vehicle = *evse->vehicle;
    Device& device = *evse->device;
    if (device.kind == Kind::kCabur && (!vehicle.full || !vehicle.card.empty())) {
      const int address = device.config->address.value_or(0);
      std::optional<CaburWallboxSnapshot> snap = device.can->host->Snapshot(address);
      if (!snap) continue;
      // A vehicle whose battery is full stops asking for current (C -> B).
      if (snap->session_energy_wh >= vehicle.energy_to_full_wh - 0.5) vehicle.full = true;
      // The driver taps the card once a controller drives the wallbox.
      if (!vehicle.card.empty()) {
        if (!snap->watchdog_configured || snap->failsafe_active) {
          vehicle.driven_since.reset();
        } else if (!vehicle.driven_since) {
          vehicle.driven_since = now;
        } else if (now - *vehicle.driven_since >= options_.card_tap_delay) {
          if (absl::Status s = device.can->host->TapCard(address, vehicle.card); s.ok()) {
            kLog.Info("card %s tapped at %s after plug-in", vehicle.card_text, evse->config->id);
          } else {
            kLog.Warning("card %s not tapped at %s: %s", vehicle.card_text, evse->config->id,
                         s.message());
          }
          vehicle.card.clear();
          vehicle.card_text.clear();
        }
      }
    } else if (device.kind == Kind::kOcpp) {
      if (std::optional<OcppSimConnectorView> view =
              device.ocpp->Describe(evse->config->connector, now)) {
        vehicle.full = view->full;
        // The card is presented at plug-in; shown pending until it starts.
        if (view->transaction_id || view->transaction_pending) vehicle.card_text.clear();
      }
    } else if (device.kind == Kind::kHeidelberg && !vehicle.full &&
               device.heidelberg->energy_wh() - vehicle.energy_at_plug_in_wh >=
                   vehicle.energy_to_full_wh) {
      device.heidelberg->SetEvCharging(false);
      vehicle.full = true;
    }
  }
  std::array<bool, 3> energized{};
  for (site::Phase phase : config_.grid.phases) energized[site::PhaseIndex(phase)] = true;
  const PhaseArray& grid = node[site::kGridCircuitId];
  constexpr double kReferenceFuseA = 63;
  double fuse_a = kReferenceFuseA;
  for (double limit : config_.grid.fuse_limit_a) fuse_a = std::max(fuse_a, limit);
  const double supply_ohm = options_.supply_resistance_ohm * kReferenceFuseA / fuse_a;
  for (auto& device : devices_) {
    if (device->kind != Kind::kSdm630) continue;
    MeterState state;
    // No grid: nothing flows through the connection point or its circuits.
    if (!device->measures.empty() && grid_present_) state.current_a = node[device->measures];
    for (int p = 0; p < 3; ++p) {
      state.voltage_v[p] = energized[p] && grid_present_
                               ? config_.grid.nominal_voltage_v - supply_ohm * grid[p]
                               : 0.0;
      device->meter->SetPhase(p, {state.voltage_v[p], state.current_a[p], 1.0});
    }
    device->meter->SetFrequency(kGridFrequencyHz);
    meter_state_[device.get()] = state;
  }
}

}  // namespace evgate::sim
