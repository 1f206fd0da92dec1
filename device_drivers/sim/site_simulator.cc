#include "device_drivers/sim/site_simulator.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "device_drivers/can/socketcan_bus.h"
#include "device_drivers/can/udp_can_bus.h"
#include "device_drivers/can/wallbox_protocol.h"
#include "google/protobuf/util/time_util.h"
#include "runtime/grpc_status.h"
#include "runtime/log.h"
#include "runtime/secret_file.h"
#include "site_controller/config/api_conversions.h"

namespace evgate::sim {
namespace {

using ::evgate::api::ToProto;

namespace wb = can::wallbox;

constexpr log::Logger kLog("simulator");

constexpr double kPi = 3.14159265358979323846;
// The off-grid box's backup battery as a "low" fault shows it, V.
constexpr double kLowBackupBatteryV = 21.0;
// SDM630 current registers L1..L3 (float32, high word first).
constexpr uint16_t kSdmCurrentRegisters[3] = {0x0006, 0x0008, 0x000A};

int Index(site::Phase phase) { return static_cast<int>(phase); }

// "04B2C3D4E5F607" (':' and '-' allowed between bytes) -> bytes.
absl::StatusOr<std::vector<uint8_t>> ParseUid(const std::string& text) {
  std::string hex;
  for (char c : text) {
    if (c == ':' || c == '-') continue;
    hex.push_back(c);
  }
  if (hex.size() < 2 || hex.size() > 20 || hex.size() % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("card UID '", text, "' must be 2-20 hex digits, an even count (1-10 bytes)"));
  }
  std::vector<uint8_t> bytes;
  for (size_t i = 0; i < hex.size(); i += 2) {
    int value = 0;
    for (size_t j = i; j < i + 2; ++j) {
      const char c = absl::ascii_tolower(hex[j]);
      int digit = 0;
      if (c >= '0' && c <= '9') {
        digit = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        digit = c - 'a' + 10;
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("card UID '", text, "' has a character that is not a hex digit"));
      }
      value = value * 16 + digit;
    }
    bytes.push_back(static_cast<uint8_t>(value));
  }
  return bytes;
}

std::string CaburCodes() {
  std::vector<std::string> names;
  names.reserve(wb::kErrorCodeCount);
  for (int i = 0; i < wb::kErrorCodeCount; ++i) {
    names.emplace_back(wb::ErrorCodeName(static_cast<wb::ErrorCode>(i)));
  }
  return absl::StrJoin(names, " ");
}

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

// ---- construction ------------------------------------------------------------

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
                               vehicle.id_tag.value_or(""), vehicle.max_power_w});
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
    const int p = Index(config_.grid.phases[i]);
    load[p] = std::max(0.0, profile[i] + noise_a_[p]);
  }
  return load;
}

SiteSimulator::PhaseArray SiteSimulator::ToSitePhases(const Evse& evse,
                                                      const std::array<double, 3>& own) const {
  PhaseArray site{};
  const std::vector<site::Phase>& wiring = evse.config->phases;
  for (size_t i = 0; i < wiring.size() && i < own.size(); ++i) site[Index(wiring[i])] += own[i];
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

void SiteSimulator::StepLocked(absl::Time now) {
  for (auto& device : devices_) {
    if (device->kind == Kind::kOcpp) device->ocpp->Step(now);
  }
  building_a_ = BuildingLoadLocked(now);
  std::map<std::string, PhaseArray> node;
  node[site::kGridCircuitId] = building_a_;
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
  for (site::Phase phase : config_.grid.phases) energized[Index(phase)] = true;
  const PhaseArray& grid = node[site::kGridCircuitId];
  constexpr double kReferenceFuseA = 63;
  double fuse_a = kReferenceFuseA;
  for (double limit : config_.grid.fuse_limit_a) fuse_a = std::max(fuse_a, limit);
  const double supply_ohm = options_.supply_resistance_ohm * kReferenceFuseA / fuse_a;
  for (auto& device : devices_) {
    if (device->kind != Kind::kSdm630) continue;
    MeterState state;
    if (!device->measures.empty()) state.current_a = node[device->measures];
    for (int p = 0; p < 3; ++p) {
      state.voltage_v[p] =
          energized[p] ? config_.grid.nominal_voltage_v - supply_ohm * grid[p] : 0.0;
      device->meter->SetPhase(p, {state.voltage_v[p], state.current_a[p], 1.0});
    }
    device->meter->SetFrequency(kGridFrequencyHz);
    meter_state_[device.get()] = state;
  }
}

// ---- control -------------------------------------------------------------------

absl::StatusOr<v1::SimulatedEvse> SiteSimulator::PlugInLocked(Evse& evse, VehicleParams params) {
  if (evse.vehicle) {
    return absl::FailedPreconditionError(
        absl::StrCat("a vehicle is plugged into ", evse.config->id, " already; unplug it first"));
  }
  if (evse.device->kind == Kind::kOcpp) return PlugInOcppLocked(evse, std::move(params));
  if (params.max_current_a == 0 && evse.config->ac) {
    params.max_current_a = evse.config->ac->max_current_a;
  }
  if (params.phases == 0) params.phases = evse.config->phases.size() == 1 ? 1 : 3;
  if (params.energy_to_full_wh == 0) {
    params.energy_to_full_wh = site::defaults::kSimVehicleEnergyToFullWh;
  }
  if (!(params.max_current_a > 0 && params.max_current_a <= 80)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "vehicle maximum current %g A: must be above 0 and at most 80 A", params.max_current_a));
  }
  if (params.phases != 1 && params.phases != 3) {
    return absl::InvalidArgumentError(
        absl::StrFormat("vehicle phases %d: must be 1 or 3", params.phases));
  }
  if (!(params.energy_to_full_wh > 0)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("vehicle energy to full %g Wh: must be above 0", params.energy_to_full_wh));
  }
  Device& device = *evse.device;
  Vehicle vehicle;
  if (!params.id_tag.empty()) {
    if (device.kind != Kind::kCabur) {
      return absl::FailedPreconditionError(absl::StrCat("device '", device.config->id, "' (",
                                                        device.config->profile->name,
                                                        ") has no RFID reader evgate can read"));
    }
    absl::StatusOr<std::vector<uint8_t>> uid = ParseUid(params.id_tag);
    if (!uid.ok()) return uid.status();
    vehicle.card = *std::move(uid);
    vehicle.card_text = params.id_tag;
  }
  vehicle.max_current_a = params.max_current_a;
  vehicle.phases = params.phases;
  vehicle.energy_to_full_wh = params.energy_to_full_wh;
  if (device.kind == Kind::kCabur) {
    EvParams ev;
    ev.max_current_a = params.max_current_a;
    ev.phases = params.phases;
    ev.energy_to_full_wh = params.energy_to_full_wh;
    if (absl::Status s = device.can->host->PlugIn(device.config->address.value_or(0), ev);
        !s.ok()) {
      return s;
    }
  } else {
    vehicle.energy_at_plug_in_wh = device.heidelberg->energy_wh();
    device.heidelberg->PlugIn(params.max_current_a, params.phases, /*charge=*/true);
  }
  evse.vehicle = vehicle;
  return DescribeEvseLocked(evse);
}

absl::StatusOr<v1::SimulatedEvse> SiteSimulator::PlugInOcppLocked(Evse& evse,
                                                                  VehicleParams params) {
  const site::DcEvseLimits* dc = evse.config->dc ? &*evse.config->dc : nullptr;
  const double max_w = dc != nullptr ? dc->max_power_w : 0;
  if (params.max_power_w == 0) params.max_power_w = max_w;
  if (params.energy_to_full_wh == 0) {
    params.energy_to_full_wh = site::defaults::kSimVehicleEnergyToFullWh;
  }
  if (!(params.max_power_w > 0 && params.max_power_w <= 1e6)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "vehicle maximum power %g W: must be above 0 and at most 1 MW", params.max_power_w));
  }
  if (!(params.energy_to_full_wh > 0)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("vehicle energy to full %g Wh: must be above 0", params.energy_to_full_wh));
  }
  if (!params.id_tag.empty()) {
    // The charger sends it as an OCPP idTag: at most 20 characters.
    if (absl::StatusOr<std::vector<uint8_t>> uid = ParseUid(params.id_tag); !uid.ok()) {
      return uid.status();
    }
    if (params.id_tag.size() > 20) {
      return absl::InvalidArgumentError(
          absl::StrCat("card ", params.id_tag, ": an OCPP idTag has at most 20 characters"));
    }
  }
  OcppSimVehicle vehicle;
  vehicle.max_power_w = params.max_power_w;
  vehicle.energy_to_full_wh = params.energy_to_full_wh;
  vehicle.id_tag = params.id_tag;
  if (absl::Status s = evse.device->ocpp->PlugIn(evse.config->connector, vehicle, clock_.Now());
      !s.ok()) {
    return s;
  }
  Vehicle plugged;
  plugged.energy_to_full_wh = params.energy_to_full_wh;
  plugged.phases = static_cast<int>(evse.config->phases.size());
  plugged.card_text = params.id_tag;
  evse.vehicle = plugged;
  return DescribeEvseLocked(evse);
}

absl::StatusOr<v1::SimulatedEvse> SiteSimulator::PlugIn(const std::string& evse_id,
                                                        VehicleParams vehicle) {
  Evse* evse = FindEvse(evse_id);
  if (evse == nullptr) {
    return absl::NotFoundError(absl::StrCat("no simulated EVSE '", evse_id, "'"));
  }
  absl::MutexLock lock(&mu_);
  absl::StatusOr<v1::SimulatedEvse> out = PlugInLocked(*evse, std::move(vehicle));
  if (out.ok()) kLog.Info("vehicle plugged into %s", evse_id);
  return out;
}

absl::StatusOr<v1::SimulatedEvse> SiteSimulator::Unplug(const std::string& evse_id) {
  Evse* evse = FindEvse(evse_id);
  if (evse == nullptr) {
    return absl::NotFoundError(absl::StrCat("no simulated EVSE '", evse_id, "'"));
  }
  absl::MutexLock lock(&mu_);
  if (!evse->vehicle) {
    return absl::FailedPreconditionError(absl::StrCat("no vehicle is plugged into ", evse_id));
  }
  Device& device = *evse->device;
  if (device.kind == Kind::kCabur) {
    if (absl::Status s = device.can->host->Unplug(device.config->address.value_or(0)); !s.ok()) {
      return s;
    }
  } else if (device.kind == Kind::kOcpp) {
    if (absl::Status s = device.ocpp->Unplug(evse->config->connector, clock_.Now()); !s.ok()) {
      return s;
    }
  } else {
    device.heidelberg->Unplug();
  }
  evse->vehicle.reset();
  kLog.Info("vehicle unplugged from %s", evse_id);
  return DescribeEvseLocked(*evse);
}

absl::Status SiteSimulator::TapCard(const std::string& evse_id, const std::string& id_tag) {
  Evse* evse = FindEvse(evse_id);
  if (evse == nullptr) {
    return absl::NotFoundError(absl::StrCat("no simulated EVSE '", evse_id, "'"));
  }
  absl::StatusOr<std::vector<uint8_t>> uid = ParseUid(id_tag);
  if (!uid.ok()) return uid.status();
  const Device& device = *evse->device;
  if (device.kind == Kind::kOcpp) {
    return absl::FailedPreconditionError(absl::StrCat(
        "device '", device.config->id,
        "' is an OCPP charger: its reader is behind OCPP; present the card with PlugIn's id_tag"));
  }
  if (device.kind != Kind::kCabur) {
    return absl::FailedPreconditionError(absl::StrCat("device '", device.config->id, "' (",
                                                      device.config->profile->name,
                                                      ") has no RFID reader evgate can read"));
  }
  absl::MutexLock lock(&mu_);
  if (absl::Status s = device.can->host->TapCard(device.config->address.value_or(0), *uid);
      !s.ok()) {
    return s;
  }
  kLog.Info("card %s tapped at %s", id_tag, evse_id);
  return absl::OkStatus();
}

absl::StatusOr<v1::SimulatedDevice> SiteSimulator::SetFault(const std::string& target_id,
                                                            const std::string& vendor_code,
                                                            bool active) {
  Device* device = FindTarget(target_id);
  if (device == nullptr) {
    return absl::NotFoundError(absl::StrCat("no simulated device or EVSE '", target_id, "'"));
  }
  if (device->kind == Kind::kNone) {
    return absl::FailedPreconditionError(absl::StrCat(
        "device '", device->config->id, "' is not simulated: ", device->not_simulated_reason));
  }
  const std::string code = absl::AsciiStrToUpper(vendor_code);
  absl::MutexLock lock(&mu_);
  std::set<std::string>& faults = faults_[device];
  auto unknown = [&](const std::string& codes) {
    return absl::InvalidArgumentError(
        absl::StrCat("device '", device->config->id, "' (", device->config->profile->name,
                     ") has no fault '", vendor_code, "'; its codes: ", codes));
  };
  auto not_active = [&]() {
    return absl::FailedPreconditionError(
        absl::StrCat("fault ", code, " is not active on device '", device->config->id, "'"));
  };
  switch (device->kind) {
    case Kind::kCabur: {
      std::optional<wb::ErrorCode> error = wb::ErrorCodeFromName(code);
      if (!error) return unknown(CaburCodes());
      const int address = device->config->address.value_or(0);
      if (active) {
        if (absl::Status s = device->can->host->InjectFault(address, *error); !s.ok()) return s;
      } else {
        std::optional<CaburWallboxSnapshot> snap = device->can->host->Snapshot(address);
        if (!snap || (snap->errors & wb::ErrorBit(*error)) == 0) return not_active();
        if (absl::Status s = device->can->host->ClearFault(address, *error); !s.ok()) return s;
      }
      break;
    }
    case Kind::kHeidelberg: {
      if (code != "STATE_E" && code != "STATE_F") return unknown("STATE_E STATE_F");
      if (active) {
        faults.clear();  // the box shows one error state at a time
        faults.insert(code);
        device->heidelberg->InjectFault(code == "STATE_E" ? HeidelbergSimulator::Fault::kStateE
                                                          : HeidelbergSimulator::Fault::kStateF);
      } else {
        if (faults.erase(code) == 0) return not_active();
        device->heidelberg->InjectFault(HeidelbergSimulator::Fault::kNone);
      }
      break;
    }
    case Kind::kOffGridBox: {
      OffGridBoxSimulator& box = *device->box;
      if (code == "GRID_LOSS") {
        box.SetGridPresent(!active);
      } else if (code == "QF1_OPEN") {
        box.SetQf1Closed(!active);
      } else if (code == "QF2_OPEN") {
        box.SetQf2Closed(!active);
      } else if (code == "BACKUP_BATTERY_LOW") {
        box.SetBackupBatteryVoltage(active ? std::optional<double>(kLowBackupBatteryV)
                                           : std::nullopt);
      } else {
        return unknown("GRID_LOSS QF1_OPEN QF2_OPEN BACKUP_BATTERY_LOW");
      }
      if (active) {
        faults.insert(code);
      } else if (faults.erase(code) == 0) {
        return not_active();
      }
      break;
    }
    case Kind::kSdm630: {
      if (code != "NAN_CURRENT") return unknown("NAN_CURRENT");
      if (active) {
        for (uint16_t address : kSdmCurrentRegisters) {
          device->meter->ForceFloat(address, std::numeric_limits<float>::quiet_NaN());
        }
        faults.insert(code);
      } else {
        if (faults.erase(code) == 0) return not_active();
        device->meter->ClearForced();
      }
      break;
    }
    case Kind::kOcpp: {
      // Any vendor code, as the charger's StatusNotification carries it
      // (e.g. a DS60 status code "012252"); on an EVSE: its connector.
      if (code.empty() || code.size() > 50) {
        return absl::InvalidArgumentError("an OCPP vendorErrorCode has 1 to 50 characters");
      }
      const Evse* evse = FindEvse(target_id);
      const int connector = evse != nullptr ? evse->config->connector : 0;
      if (active) {
        faults.insert(code);
      } else if (faults.erase(code) == 0) {
        return not_active();
      }
      if (absl::Status s = device->ocpp->SetFault(connector, code, active, clock_.Now()); !s.ok()) {
        return s;
      }
      break;
    }
    case Kind::kNone:
      break;
  }
  kLog.Info("fault %s %s on %s", code, active ? "raised" : "cleared", device->config->id);
  return DescribeLocked(*device);
}

absl::StatusOr<v1::SimulatedDevice> SiteSimulator::SetResponding(const std::string& target_id,
                                                                 bool responding) {
  Device* device = FindTarget(target_id);
  if (device == nullptr) {
    return absl::NotFoundError(absl::StrCat("no simulated device or EVSE '", target_id, "'"));
  }
  absl::MutexLock lock(&mu_);
  switch (device->kind) {
    case Kind::kSdm630:
      device->meter->SetResponding(responding);
      break;
    case Kind::kHeidelberg:
      device->heidelberg->SetResponding(responding);
      break;
    case Kind::kOffGridBox:
      device->box->SetResponding(responding);
      break;
    case Kind::kCabur:
      if (absl::Status s =
              device->can->host->SetResponding(device->config->address.value_or(0), responding);
          !s.ok()) {
        return s;
      }
      break;
    case Kind::kOcpp:
      // Not answering = offline: its connection drops and stays down.
      device->ocpp->SetOnline(responding);
      break;
    case Kind::kNone:
      return absl::FailedPreconditionError(absl::StrCat(
          "device '", device->config->id, "' is not simulated: ", device->not_simulated_reason));
  }
  responding_[device] = responding;
  kLog.Info("device %s %s", device->config->id, responding ? "answers again" : "stopped answering");
  return DescribeLocked(*device);
}

absl::StatusOr<v1::BuildingLoad> SiteSimulator::SetBuildingLoad(
    std::optional<std::array<double, 3>> current_a) {
  if (current_a) {
    for (double a : *current_a) {
      if (!(a >= 0 && a <= 10000)) {
        return absl::InvalidArgumentError(
            absl::StrFormat("building load %g A: must be between 0 and 10000 A", a));
      }
    }
  }
  absl::MutexLock lock(&mu_);
  if (current_a) {
    PhaseArray load{};
    for (site::Phase phase : config_.grid.phases) load[Index(phase)] = (*current_a)[Index(phase)];
    building_override_ = load;
    kLog.Info("building load set to %.1f/%.1f/%.1f A", load[0], load[1], load[2]);
  } else {
    building_override_.reset();
    kLog.Info("building load follows the daily profile again");
  }
  StepLocked(clock_.Now());
  v1::BuildingLoad out;
  for (site::Phase phase : config_.grid.phases) {
    api::SetPhase(out.mutable_current_a(), phase, building_a_[Index(phase)]);
  }
  out.set_from_profile(!building_override_.has_value());
  return out;
}

}  // namespace evgate::sim
