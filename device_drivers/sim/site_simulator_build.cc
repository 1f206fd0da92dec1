// SiteSimulator's construction: the simulated devices, buses and vehicles
// made from site.yaml, and where each simulated OCPP charger connects.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "device_drivers/can/socketcan_bus.h"
#include "device_drivers/can/udp_can_bus.h"
#include "device_drivers/can/wallbox_protocol.h"
#include "device_drivers/sim/site_simulator.h"
#include "runtime/secret_file.h"

namespace evgate::sim {

namespace wb = can::wallbox;

SiteSimulator::SiteSimulator(const site::SiteConfig& config, const Clock& clock,
                             SiteSimulatorOptions options)
    : config_(config), clock_(clock), options_(std::move(options)), rng_(options_.seed) {}

SiteSimulator::~SiteSimulator() { Stop(); }

absl::StatusOr<std::unique_ptr<SiteSimulator>> SiteSimulator::Create(const site::SiteConfig& config,
                                                                     const Clock& clock,
                                                                     SiteSimulatorOptions options) {
  std::unique_ptr<SiteSimulator> simulator(new SiteSimulator(config, clock, std::move(options)));
  if (absl::Status s = simulator->Build(); !s.ok()) return s;
  return simulator;
}

absl::StatusOr<OcppClientTarget> SiteSimulator::OcppTarget(const site::DeviceConfig& device) const {
  const std::string profile(device.profile->name);
  if (!config_.ocpp.local) {
    return absl::FailedPreconditionError(absl::StrCat(
        "OCPP charger (", profile, ") with no ocpp.local in site.yaml: nothing to connect to"));
  }
  const site::OcppLocalConfig& local = *config_.ocpp.local;
  if (local.security_profile >= 2) {
    return absl::FailedPreconditionError(
        absl::StrCat("OCPP charger (", profile, ") under security profile ", local.security_profile,
                     ": the simulator connects over plain ws:// only (profiles 0 and 1), not TLS"));
  }
  OcppClientTarget target;
  const size_t colon = local.listen.rfind(':');
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(local.listen.substr(colon + 1), &target.port) || target.port <= 0 ||
      target.port > 65535) {
    return absl::FailedPreconditionError(
        absl::StrCat("OCPP charger (", profile, "): ocpp.local.listen \"", local.listen,
                     "\" has no fixed port the simulator could connect to"));
  }
  target.host = local.listen.substr(0, colon);
  if (absl::StartsWith(target.host, "[") && absl::EndsWith(target.host, "]")) {
    target.host = target.host.substr(1, target.host.size() - 2);
  }
  // A wildcard address is reached on this machine.
  if (target.host.empty() || target.host == "0.0.0.0") target.host = "127.0.0.1";
  if (target.host == "::") target.host = "::1";
  if (local.security_profile == 1) {
    if (!device.password_file) {
      return absl::FailedPreconditionError(absl::StrCat("OCPP charger (", profile,
                                                        ") under security profile 1 without a "
                                                        "password_file"));
    }
    absl::StatusOr<std::string> password = ReadSecretFile(*device.password_file);
    if (!password.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "OCPP charger (", profile, "): its password: ", password.status().message()));
    }
    target.password = *std::move(password);
  }
  return target;
}

OcppChargerSimConfig SiteSimulator::OcppChargerConfig(const site::DeviceConfig& device) const {
  OcppChargerSimConfig charger;
  charger.charge_point_id = device.charge_point_id.value_or(device.id);
  const std::string profile(device.profile->name);
  if (profile == "ds60") {
    charger.vendor = "DS Series";
    charger.model = "DSWx601";
  } else if (profile == "ice22_v2x") {
    charger.vendor = "InCharge";
    charger.model = "ICE-22 V2X";
  } else {
    charger.model = profile;
  }
  charger.serial = absl::StrCat("SIM-", device.id);
  charger.voltage_v = config_.grid.nominal_voltage_v;
  charger.station_max_power_w = device.profile->station_max_power_w;
  for (const site::StationConfig& station : config_.stations) {
    if (station.device != device.id) continue;
    if (station.max_power_w > 0) charger.station_max_power_w = station.max_power_w;
    for (const site::EvseConfig& evse : station.evses) {
      if (!evse.dc) continue;
      OcppChargerSimConnector connector;
      connector.connector = evse.connector;
      connector.max_power_w = evse.dc->max_power_w;
      connector.min_power_w = evse.dc->min_power_w;
      connector.efficiency = evse.dc->efficiency;
      connector.bidirectional = evse.dc->bidirectional;
      connector.max_discharge_power_w = evse.dc->max_discharge_power_w;
      connector.soc_min_pct = evse.dc->soc_min_pct;
      connector.phases = std::clamp(static_cast<int>(evse.phases.size()), 1, 3);
      charger.connectors.push_back(connector);
    }
  }
  return charger;
}

absl::Status SiteSimulator::Build() {
  auto modbus_bus = [this](const site::BusConfig& bus) {
    for (auto& b : modbus_buses_) {
      if (b->config == &bus) return b.get();
    }
    auto b = std::make_unique<ModbusBusSim>();
    b->config = &bus;
    b->server = std::make_unique<ModbusServer>();
    modbus_buses_.push_back(std::move(b));
    return modbus_buses_.back().get();
  };
  auto can_bus = [this](const site::BusConfig& bus) {
    for (auto& b : can_buses_) {
      if (b->config == &bus) return b.get();
    }
    auto b = std::make_unique<CanBusSim>();
    b->config = &bus;
    const site::CanSettings& can = *bus.can;
    if (options_.can_transport) {
      b->transport = options_.can_transport(bus);
    } else if (can.transport == site::CanTransport::kUdp) {
      can::UdpCanBusOptions udp;
      udp.name = can.interface;
      udp.group = can.udp_group;
      udp.port = can.udp_port;
      udp.interface_address = options_.udp_interface_address;
      b->transport = std::make_unique<can::UdpCanBus>(udp, clock_);
    } else {
      can::SocketCanOptions socketcan;
      socketcan.interface = can.interface;
      b->transport = std::make_unique<can::SocketCanBus>(socketcan, clock_);
    }
    b->host = std::make_unique<CanWallboxSimHost>(*b->transport, clock_, options_.can_tick);
    can_buses_.push_back(std::move(b));
    return can_buses_.back().get();
  };

  for (const std::string& id : config_.simulation.devices) {
    const site::DeviceConfig* config = config_.FindDevice(id);
    if (config == nullptr || config->profile == nullptr) continue;  // the loader rejects this
    auto device = std::make_unique<Device>();
    device->config = config;
    const site::BusConfig* bus = config->bus ? config_.FindBus(*config->bus) : nullptr;
    const std::string profile(config->profile->name);
    const int address = config->address.value_or(0);
    if (profile == "eastron_sdm630" || profile == "heidelberg_energy_control" ||
        profile == "v2x_offgrid_box") {
      if (bus == nullptr) continue;
      device->modbus = modbus_bus(*bus);
      ModbusUnit* unit = nullptr;
      if (profile == "eastron_sdm630") {
        device->kind = Kind::kSdm630;
        device->meter = std::make_unique<Sdm630Simulator>(clock_, address);
        unit = device->meter.get();
      } else if (profile == "heidelberg_energy_control") {
        device->kind = Kind::kHeidelberg;
        HeidelbergSimulator::Options heidelberg;
        heidelberg.lag = options_.ev_lag;
        heidelberg.voltage_v = config_.grid.nominal_voltage_v;
        for (const site::StationConfig& station : config_.stations) {
          if (station.device == id && !station.evses.empty()) {
            heidelberg.phases = station.evses[0].phases.size() == 1 ? 1 : 3;
          }
        }
        device->heidelberg = std::make_unique<HeidelbergSimulator>(clock_, heidelberg);
        unit = device->heidelberg.get();
      } else {
        device->kind = Kind::kOffGridBox;
        device->box = std::make_unique<OffGridBoxSimulator>(clock_);
        device->box->SetGridVoltage(config_.grid.nominal_voltage_v, kGridFrequencyHz);
        unit = device->box.get();
      }
      device->modbus->server->AddUnit(address, unit);
    } else if (profile == "cabur_ev_plus_22kw" || profile == "cabur_ev_plus_7kw") {
      if (bus == nullptr || !bus->can) continue;
      device->kind = Kind::kCabur;
      device->can = can_bus(*bus);
      CaburWallboxConfig wallbox;
      wallbox.address = address;
      wallbox.model = profile == "cabur_ev_plus_22kw" ? wb::Model::kEvPlus22kW3Phase
                                                      : wb::Model::kEvPlus7kW1Phase;
      wallbox.voltage_v = config_.grid.nominal_voltage_v;
      wallbox.ev_lag = options_.ev_lag;
      wallbox.serial = absl::StrCat("SIM-", id).substr(0, 28);
      for (const site::StationConfig& station : config_.stations) {
        if (station.device == id && !station.evses.empty() && station.evses[0].ac) {
          // The wallbox's own Max Current setting (whole amperes, 6-32).
          wallbox.max_current_a =
              std::clamp(static_cast<int>(std::floor(station.evses[0].ac->max_current_a)), 6, 32);
        }
      }
      if (absl::Status s = device->can->host->AddWallbox(wallbox); !s.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("simulated device '", id, "': ", s.message()));
      }
    } else if (config->profile->bus == site::BusKind::kOcpp) {
      absl::StatusOr<OcppClientTarget> target = OcppTarget(*config);
      if (!target.ok()) {
        device->not_simulated_reason = std::string(target.status().message());
      } else {
        device->kind = Kind::kOcpp;
        device->ocpp = std::make_unique<OcppChargerSimulator>(OcppChargerConfig(*config));
        device->ocpp_endpoint = absl::StrCat("ocpp ws://", target->host, ":", target->port, "/",
                                             *config->charge_point_id);
        if (!ocpp_clients_) ocpp_clients_ = std::make_unique<OcppChargePointClients>(clock_);
        ocpp_clients_->Add(device->ocpp.get(), *std::move(target));
      }
    } else if (profile == "generic_meter") {
      device->not_simulated_reason =
          "generic meters have an installer-defined register map; the simulator serves "
          "eastron_sdm630 meters";
    } else {
      device->not_simulated_reason = absl::StrCat("no simulator for profile ", profile);
    }
    if (device->kind == Kind::kSdm630) {
      if (config_.grid.meter == id) {
        device->measures = site::kGridCircuitId;
      } else {
        for (const site::CircuitConfig& circuit : config_.circuits) {
          if (circuit.meter == id) {
            device->measures = circuit.id;
            break;
          }
        }
      }
    }
    devices_.push_back(std::move(device));
  }

  // The EVSEs of simulated wallboxes, with every circuit above them.
  for (const site::StationConfig& station : config_.stations) {
    Device* device = FindDevice(station.device);
    if (device == nullptr || (device->kind != Kind::kCabur && device->kind != Kind::kHeidelberg &&
                              device->kind != Kind::kOcpp)) {
      continue;
    }
    for (const site::EvseConfig& config : station.evses) {
      auto evse = std::make_unique<Evse>();
      evse->config = &config;
      evse->device = device;
      std::string node = station.circuit;
      // The loader guarantees the tree has no cycles and leads to "grid".
      while (evse->circuits.insert(node).second && node != site::kGridCircuitId) {
        const site::CircuitConfig* circuit = config_.FindCircuit(node);
        if (circuit == nullptr) break;
        node = circuit->parent;
      }
      evse->circuits.insert(site::kGridCircuitId);
      device->evses.push_back(evse.get());
      evses_.push_back(std::move(evse));
    }
  }
  return absl::OkStatus();
}

}  // namespace evgate::sim
