#include "device_drivers/modbus/modbus_backend.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "device_drivers/modbus/builtin_profiles.h"
#include "device_drivers/modbus/device_reports.h"
#include "device_drivers/modbus/libmodbus_transport.h"
#include "runtime/log.h"
#include "site_controller/config/api_conversions.h"

namespace evgate::modbus {
namespace {

using ::evgate::api::GetPhase;
using ::evgate::api::SetPhase;
using ::evgate::api::ToProto;

namespace v1 = ::evgate::v1;

constexpr log::Logger kLog("modbus");

// Heidelberg facts (profiles/heidelberg_energy_control.yaml).
constexpr double kStandbyDisabled = 4;
constexpr double kUnlocked = 1;
constexpr double kLocked = 0;
constexpr absl::Duration kMaxWatchdog = absl::Milliseconds(65535);
// A box that failed to take its programming is tried again after this.
constexpr absl::Duration kProgramRetry = absl::Seconds(10);
// How often the timer thread wakes at most (real time) to check expiry.
constexpr absl::Duration kTimerIdle = absl::Milliseconds(100);

// Off-grid box commands (docs/protocols/offgrid-box.md).
constexpr double kTransferToOffGrid = 1;
constexpr double kTransferToOnGrid = 2;

// Half the 0.1 A resolution of the current registers (261, 262): a value
// read back within it is the value written.
constexpr double kLimitTolerance = 0.05;

// The value of a current limit in force of `in_force_a` (0 = paused) on the
// EVSE's wired `phases`; nullopt when not known.
std::optional<v1::SetpointValue> ValueInForce(std::optional<double> in_force_a,
                                              const std::vector<site::Phase>& phases) {
  if (!in_force_a) return std::nullopt;
  v1::SetpointValue value;
  if (*in_force_a == 0) {
    value.mutable_pause();
  } else {
    for (site::Phase p : phases) SetPhase(value.mutable_current_limit_a(), p, *in_force_a);
  }
  return value;
}

v1::SetpointRejectReason ReasonOf(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kOutOfRange:
      return v1::SETPOINT_REJECT_REASON_DEVICE_REJECTED;
    case absl::StatusCode::kUnavailable:
      return v1::SETPOINT_REJECT_REASON_DEVICE_OFFLINE;
    default:
      return v1::SETPOINT_REJECT_REASON_TIMEOUT;
  }
}

// Rounds `amps` down to the EVSE's step (with a little slack for values that
// are a whole number of steps in decimal but not in binary).
double QuantiseDown(double amps, double step) {
  if (step <= 0) return amps;
  return std::floor(amps / step + 1e-9) * step;
}

std::string Amps(double a) { return absl::StrFormat("%.1f A", a); }

}  // namespace

// One AC EVSE of a wallbox; guarded by mu_.
struct ModbusBackend::Evse {
  site::EvseConfig config;
  // The setpoint in force: unknown until read or written.
  std::optional<double> in_force_a;
  v1::SetpointSource source = v1::SETPOINT_SOURCE_DEVICE_DEFAULT;
  std::optional<absl::Time> applied_at;
  std::optional<absl::Time> expires_at;
  std::string batch_id;
  double failsafe_a = 0;
  absl::Duration watchdog;  // what the box should have
  // What was last published, to publish changes only.
  v1::Iec61851State published_iec = v1::IEC61851_STATE_UNSPECIFIED;
  v1::ConnectorStatus published_connector = v1::CONNECTOR_STATUS_UNSPECIFIED;
  std::string published_key;
  std::optional<v1::Fault> fault;  // active fault (raised at)
};

// One device; guarded by mu_ (the setup is immutable).
struct ModbusBackend::Device {
  ModbusDeviceSetup setup;
  std::optional<Evse> evse;
  bool programmed = false;
  absl::Time program_retry_at = absl::InfinitePast();
  v1::Availability availability = v1::AVAILABILITY_OPERATIVE;
  bool published_stale = true;  // last link state published
  std::optional<std::string> published_box_key;
};

ModbusBackend::ModbusBackend(BusOptions bus, std::vector<ModbusDeviceSetup> devices,
                             std::unique_ptr<ModbusTransport> transport, const Clock& clock,
                             ModbusBackendOptions options,
                             std::vector<std::unique_ptr<RegisterMap>> owned_maps)
    : bus_id_(bus.bus_id),
      clock_(clock),
      options_(options),
      owned_maps_(std::move(owned_maps)),
      transport_(transport.get()) {
  std::vector<PolledDevice> polled;
  for (ModbusDeviceSetup& setup : devices) {
    auto device = std::make_unique<Device>();
    if (setup.kind == site::DeviceKind::kAcWallbox) {
      // Heidelberg: its writes are read back (holding registers 257-262).
      setup.polled.read_back_writes = true;
      if (setup.evse && setup.evse->ac) {
        Evse evse;
        evse.config = *setup.evse;
        evse.failsafe_a = setup.evse->ac->failsafe_current_a;
        evse.watchdog =
            std::clamp(options_.default_watchdog, 3 * setup.polled.poll_period, kMaxWatchdog);
        device->evse = std::move(evse);
      }
    }
    polled.push_back(setup.polled);
    device->setup = std::move(setup);
    devices_.push_back(std::move(device));
  }
  owner_ = std::make_unique<ModbusBusOwner>(std::move(bus), std::move(polled), std::move(transport),
                                            clock_);
  owner_->SetListener(
      [this](const DeviceStatus& status, BusEvent event) { OnBusEvent(status, event); });
}

ModbusBackend::~ModbusBackend() { Stop(); }

ModbusBackend::Device* ModbusBackend::Find(const std::string& device_id) {
  for (auto& d : devices_) {
    if (d->setup.polled.id == device_id) return d.get();
  }
  return nullptr;
}

const ModbusBackend::Device* ModbusBackend::Find(const std::string& device_id) const {
  for (const auto& d : devices_) {
    if (d->setup.polled.id == device_id) return d.get();
  }
  return nullptr;
}

ModbusBackend::Device* ModbusBackend::FindByEvse(const std::string& evse_id) {
  for (auto& d : devices_) {
    if (d->evse && d->evse->config.id == evse_id) return d.get();
  }
  return nullptr;
}

std::string ModbusBackend::bus_id() const { return bus_id_; }

std::vector<std::string> ModbusBackend::DeviceIds() const {
  std::vector<std::string> ids;
  for (const auto& d : devices_) ids.push_back(d->setup.polled.id);
  return ids;
}

v1::BusHealth ModbusBackend::GetBusHealth() const {
  const BusCounters bus = owner_->Bus();
  v1::BusHealth health;
  health.set_bus_id(bus_id_);
  health.set_kind("modbus");
  health.set_requests_total(bus.requests_total);
  health.set_errors_total(bus.errors_total);
  health.set_timeouts_total(bus.timeouts_total);
  bus.request_duration.ToProto(health.mutable_request_duration());
  absl::MutexLock lock(&mu_);
  health.set_setpoints_expired_total(setpoints_expired_total_);
  return health;
}

std::vector<std::string> ModbusBackend::EvseIds() const {
  std::vector<std::string> ids;
  for (const auto& d : devices_) {
    if (d->evse) ids.push_back(d->evse->config.id);
  }
  return ids;
}

std::vector<std::optional<v1::SetpointValue>> ModbusBackend::SetpointsInForce(
    const std::vector<std::string>& evse_ids) const {
  absl::MutexLock lock(&mu_);
  std::vector<std::optional<v1::SetpointValue>> values;
  values.reserve(evse_ids.size());
  for (const std::string& id : evse_ids) {
    std::optional<v1::SetpointValue>& value = values.emplace_back();
    for (const auto& d : devices_) {
      if (d->evse && d->evse->config.id == id) {
        value = ValueInForce(d->evse->in_force_a, d->evse->config.phases);
      }
    }
  }
  return values;
}

void ModbusBackend::SetSink(devices::DeviceEventSink* sink) {
  absl::MutexLock lock(&mu_);
  sink_ = sink;
}

void ModbusBackend::Publish(std::vector<v1::WatchDevicesResponse> events) {
  devices::DeviceEventSink* sink;
  {
    absl::MutexLock lock(&mu_);
    sink = sink_;
  }
  if (sink == nullptr) return;
  for (v1::WatchDevicesResponse& event : events) sink->Publish(std::move(event));
}

v1::EvseState ModbusBackend::EvseStateLocked(const Device& device,
                                             const DeviceStatus& status) const {
  const Evse& evse = *device.evse;
  const site::EvseConfig& cfg = evse.config;
  const RegisterValues& v = status.values;
  v1::EvseState s;
  s.set_evse_id(cfg.id);
  s.set_connector_id(static_cast<uint32_t>(cfg.connector));
  s.set_kind(v1::EVSE_KIND_AC);
  v1::EvseCapabilities* caps = s.mutable_capabilities();
  for (site::Phase p : cfg.phases) caps->add_phases(ToProto(p));
  caps->set_min_current_a(cfg.ac->min_current_a);
  caps->set_max_current_a(cfg.ac->max_current_a);
  caps->set_current_step_a(cfg.ac->current_step_a);
  caps->set_per_phase_current_limit(false);

  const std::optional<double> code = v.Get(Quantity::kChargingState);
  if (code) {
    const int c = static_cast<int>(*code);
    s.set_iec61851_state(IecOf(c));
    const bool paused = evse.in_force_a.has_value() && *evse.in_force_a == 0;
    v1::ConnectorStatus connector = v1::CONNECTOR_STATUS_FAULTED;
    switch (c) {
      case 2:
      case 3:
        connector = device.availability == v1::AVAILABILITY_INOPERATIVE
                        ? v1::CONNECTOR_STATUS_UNAVAILABLE
                        : v1::CONNECTOR_STATUS_AVAILABLE;
        break;
      case 4:
        connector = paused ? v1::CONNECTOR_STATUS_SUSPENDED_EVSE : v1::CONNECTOR_STATUS_PREPARING;
        break;
      case 5:
        connector = v1::CONNECTOR_STATUS_SUSPENDED_EV;
        break;
      case 6:
        connector = v1::CONNECTOR_STATUS_SUSPENDED_EVSE;
        break;
      case 7:
        connector = v1::CONNECTOR_STATUS_CHARGING;
        break;
      default:
        break;
    }
    s.set_connector_status(connector);
    s.set_relay_closed(c == 7);
  }
  if (evse.fault) *s.add_faults() = *evse.fault;

  v1::EvseMeasurements* m = s.mutable_measurements();
  for (size_t i = 0; i < cfg.phases.size() && i < 3; ++i) {
    if (auto a = v.Get(kCurrent[i])) SetPhase(m->mutable_current_a(), cfg.phases[i], *a);
    if (auto u = v.Get(kVoltage[i])) SetPhase(m->mutable_voltage_v(), cfg.phases[i], *u);
  }
  if (auto x = v.Get(Quantity::kTotalPower)) m->set_power_w(*x);
  if (auto x = v.Get(Quantity::kEnergyTotal)) m->set_energy_import_wh(*x);
  if (auto x = v.Get(Quantity::kTemperature)) {
    v1::Temperature* t = m->add_temperatures();
    t->set_name("pcb");
    t->set_temperature_c(*x);
  }
  if (status.measured_at) *m->mutable_measured_at() = ToProto(*status.measured_at);

  v1::SetpointInForce* sp = s.mutable_setpoint();
  sp->set_source(evse.source);
  if (auto value = ValueInForce(evse.in_force_a, cfg.phases)) *sp->mutable_value() = *value;
  if (evse.applied_at) *sp->mutable_applied_at() = ToProto(*evse.applied_at);
  if (evse.expires_at) *sp->mutable_expires_at() = ToProto(*evse.expires_at);
  sp->set_batch_id(evse.batch_id);
  return s;
}

v1::DeviceState ModbusBackend::StateLocked(const Device& device, const DeviceStatus& status) const {
  v1::DeviceState s;
  s.set_device_id(device.setup.polled.id);
  s.set_kind(ToProto(device.setup.kind));
  s.set_profile(device.setup.profile);
  s.set_bus_id(bus_id_);
  s.set_address(absl::StrCat(device.setup.polled.unit_id));
  s.set_station_id(device.setup.station_id);
  *s.mutable_link() = LinkOf(status);
  s.set_availability(device.availability);
  switch (device.setup.kind) {
    case site::DeviceKind::kMeter:
      *s.mutable_meter() = MeterReadingOf(status);
      break;
    case site::DeviceKind::kAcWallbox:
      if (device.evse) *s.add_evses() = EvseStateLocked(device, status);
      break;
    case site::DeviceKind::kOffgridBox:
      *s.mutable_off_grid_box() = BoxStateOf(status);
      break;
    case site::DeviceKind::kDcCharger:
      break;
  }
  return s;
}

std::optional<v1::DeviceState> ModbusBackend::GetDevice(const std::string& device_id) const {
  const Device* device = Find(device_id);
  if (device == nullptr) return std::nullopt;
  const std::optional<DeviceStatus> status = owner_->Device(device_id);
  if (!status) return std::nullopt;
  absl::MutexLock lock(&mu_);
  return StateLocked(*device, *status);
}

void ModbusBackend::DiffEvseLocked(Device& device, const DeviceStatus& status,
                                   std::vector<v1::WatchDevicesResponse>* events) {
  if (!device.evse) return;
  Evse& evse = *device.evse;
  const absl::Time now = clock_.Now();
  // Faults first: a fault changes the EVSE state too.
  if (auto code = status.values.Get(Quantity::kChargingState); code && !status.stale) {
    std::optional<v1::Fault> fault = FaultOf(static_cast<int>(*code));
    const std::string was = evse.fault ? evse.fault->code() : "";
    const std::string is = fault ? fault->code() : "";
    if (was != is) {
      if (evse.fault) {
        v1::WatchDevicesResponse e;
        *e.mutable_at() = ToProto(now);
        e.set_device_id(device.setup.polled.id);
        e.mutable_fault_cleared()->set_evse_id(evse.config.id);
        *e.mutable_fault_cleared()->mutable_fault() = *evse.fault;
        events->push_back(std::move(e));
      }
      evse.fault = fault;
      if (fault) {
        *evse.fault->mutable_since() = ToProto(now);
        v1::WatchDevicesResponse e;
        *e.mutable_at() = ToProto(now);
        e.set_device_id(device.setup.polled.id);
        e.mutable_fault_raised()->set_evse_id(evse.config.id);
        *e.mutable_fault_raised()->mutable_fault() = *evse.fault;
        events->push_back(std::move(e));
      }
    }
  }
  v1::EvseState state = EvseStateLocked(device, status);
  v1::SetpointInForce key_setpoint = state.setpoint();
  key_setpoint.clear_expires_at();  // a refresh is not a change
  key_setpoint.clear_batch_id();
  const std::string key = absl::StrCat(state.iec61851_state(), "|", state.connector_status(), "|",
                                       state.has_relay_closed() ? state.relay_closed() : -1, "|",
                                       key_setpoint.SerializeAsString(), "|",
                                       state.faults_size() ? state.faults(0).code() : "");
  if (key == evse.published_key) return;
  v1::WatchDevicesResponse e;
  *e.mutable_at() = ToProto(now);
  e.set_device_id(device.setup.polled.id);
  v1::EvseStateChange* change = e.mutable_evse_state_change();
  change->set_previous_iec61851_state(evse.published_iec);
  change->set_previous_connector_status(evse.published_connector);
  evse.published_iec = state.iec61851_state();
  evse.published_connector = state.connector_status();
  evse.published_key = key;
  *change->mutable_state() = std::move(state);
  events->push_back(std::move(e));
}

void ModbusBackend::OnBusEvent(const DeviceStatus& status, BusEvent event) {
  if (event == BusEvent::kPollFailed) return;
  Device* device = Find(status.id);
  if (device == nullptr) return;
  if (!device->evse.has_value()) {
    HandleBusEvent(device, status, event);
    return;
  }
  // Wallboxes: the whole reaction runs under control_mu_, so a setting
  // compared here is not one a setpoint is being written over.
  absl::MutexLock control(&control_mu_);
  if (HandleBusEvent(device, status, event)) {
    absl::Status s = ProgramWallbox(*device);
    if (!s.ok()) {
      kLog.Warning("bus %s device %s: programming failed: %s", bus_id_, status.id, s.message());
      absl::MutexLock lock(&mu_);
      device->program_retry_at = clock_.Now() + kProgramRetry;
    }
  }
}

bool ModbusBackend::HandleBusEvent(Device* device, const DeviceStatus& status, BusEvent event) {
  const bool wallbox = device->evse.has_value();
  std::vector<v1::WatchDevicesResponse> events;
  bool program = false;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_.Now();
    const auto event_for = [&](v1::WatchDevicesResponse* e) {
      *e->mutable_at() = ToProto(now);
      e->set_device_id(status.id);
    };
    if (status.stale != device->published_stale) {
      device->published_stale = status.stale;
      v1::WatchDevicesResponse e;
      event_for(&e);
      *e.mutable_link_state_change()->mutable_link() = LinkOf(status);
      events.push_back(std::move(e));
      // Stale or back: either way the box may have lost its settings.
      device->programmed = false;
    }
    if (event == BusEvent::kPolled) {
      v1::WatchDevicesResponse e;
      event_for(&e);
      v1::Telemetry* t = e.mutable_telemetry();
      *t->mutable_link() = LinkOf(status);
      switch (device->setup.kind) {
        case site::DeviceKind::kMeter:
          *t->mutable_meter() = MeterReadingOf(status);
          break;
        case site::DeviceKind::kAcWallbox:
          if (wallbox) {
            v1::EvseTelemetry* et = t->add_evses();
            et->set_evse_id(device->evse->config.id);
            *et->mutable_measurements() = EvseStateLocked(*device, status).measurements();
          }
          break;
        case site::DeviceKind::kOffgridBox:
          *t->mutable_off_grid_box() = BoxStateOf(status);
          break;
        case site::DeviceKind::kDcCharger:
          break;
      }
      events.push_back(std::move(e));
      if (device->setup.kind == site::DeviceKind::kOffgridBox) {
        v1::OffGridBoxState box = BoxStateOf(status);
        const std::string key = BoxKey(box);
        if (!device->published_box_key || *device->published_box_key != key) {
          device->published_box_key = key;
          v1::WatchDevicesResponse change;
          event_for(&change);
          *change.mutable_off_grid_box_change() = std::move(box);
          events.push_back(std::move(change));
        }
      }
    }
    if (wallbox && !status.stale) {
      Evse& evse = *device->evse;
      const RegisterValues& v = status.values;
      // The limit in force before evgate wrote one: the box's own.
      if (!evse.in_force_a && v.Has(Quantity::kMaxCurrent)) {
        evse.in_force_a = *v.Get(Quantity::kMaxCurrent);
      }
      // A box whose settings read back different was restarted (or
      // changed by someone else): program it again.
      const auto differs = [&](Quantity q, double want, double tolerance) {
        const std::optional<double> is = v.Get(q);
        return is.has_value() && std::abs(*is - want) > tolerance;
      };
      if (device->programmed &&
          (differs(Quantity::kWatchdogTimeout, absl::ToDoubleSeconds(evse.watchdog), 0.0005) ||
           differs(Quantity::kStandbyMode, kStandbyDisabled, 0) ||
           differs(Quantity::kFailsafeCurrent, evse.failsafe_a, kLimitTolerance) ||
           differs(Quantity::kRemoteLock,
                   device->availability == v1::AVAILABILITY_INOPERATIVE ? kLocked : kUnlocked, 0) ||
           (evse.in_force_a &&
            differs(Quantity::kMaxCurrent, *evse.in_force_a, kLimitTolerance)))) {
        kLog.Warning("bus %s device %s: settings read back changed (restarted?); programming again",
                     bus_id_, status.id);
        device->programmed = false;
      }
      program = !device->programmed && now >= device->program_retry_at;
    }
    if (wallbox) DiffEvseLocked(*device, status, &events);
  }
  Publish(std::move(events));
  return program;
}

absl::StatusOr<double> ModbusBackend::ReadField(const Device& device, Quantity quantity) {
  const RegisterMap& map = *device.setup.polled.map;
  const FieldSpec* field = map.Find(quantity);
  if (field == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "device ", device.setup.polled.id, " (", map.name, ") has no ", QuantityName(quantity)));
  }
  absl::StatusOr<std::vector<uint16_t>> registers = owner_->Read(
      device.setup.polled.id, field->table, field->address, RegisterCount(field->type));
  if (!registers.ok()) return registers.status();
  return DecodeField(map, *field, *registers, device.setup.polled.id);
}

WriteResult ModbusBackend::WriteField(const Device& device, Quantity quantity, double value) {
  const RegisterMap& map = *device.setup.polled.map;
  const FieldSpec* field = map.Find(quantity);
  if (field == nullptr) {
    return {
        absl::FailedPreconditionError(absl::StrCat("device ", device.setup.polled.id, " (",
                                                   map.name, ") has no ", QuantityName(quantity))),
        {},
        std::nullopt};
  }
  absl::StatusOr<std::vector<uint16_t>> registers =
      EncodeField(map, *field, value, device.setup.polled.id);
  if (!registers.ok()) return {registers.status(), {}, std::nullopt};
  return owner_->Write(device.setup.polled.id, {field->address, *std::move(registers)});
}

absl::Status ModbusBackend::ProgramWallbox(Device& device) {
  double watchdog_s, lock, failsafe_a, limit_a;
  v1::SetpointSource source;
  std::optional<absl::Time> expires_at;
  std::string batch_id;
  {
    absl::MutexLock lock_mu(&mu_);
    const Evse& evse = *device.evse;
    watchdog_s = absl::ToDoubleSeconds(evse.watchdog);
    lock = device.availability == v1::AVAILABILITY_INOPERATIVE ? kLocked : kUnlocked;
    failsafe_a = evse.failsafe_a;
    const bool valid = evse.source == v1::SETPOINT_SOURCE_CONTROLLER && evse.expires_at &&
                       *evse.expires_at > clock_.Now() && evse.in_force_a;
    limit_a = valid ? *evse.in_force_a : failsafe_a;
    source = valid ? v1::SETPOINT_SOURCE_CONTROLLER : v1::SETPOINT_SOURCE_FAILSAFE;
    if (valid) {
      expires_at = evse.expires_at;
      batch_id = evse.batch_id;
    }
  }
  const std::string& id = device.setup.polled.id;
  kLog.Info("bus %s device %s: programming watchdog %.3f s, standby off, %s, failsafe %s, limit %s",
            bus_id_, id, watchdog_s, lock == kLocked ? "locked" : "unlocked", Amps(failsafe_a),
            Amps(limit_a));
  // 257 watchdog, 258 standby, 259 lock in one write; 262 failsafe; then the
  // limit (261), so the failsafe is in place before anything else.
  const RegisterMap& map = *device.setup.polled.map;
  std::vector<uint16_t> settings;
  for (auto [q, value] : {std::pair{Quantity::kWatchdogTimeout, watchdog_s},
                          std::pair{Quantity::kStandbyMode, kStandbyDisabled},
                          std::pair{Quantity::kRemoteLock, lock}}) {
    const FieldSpec* field = map.Find(q);
    if (field == nullptr) return absl::FailedPreconditionError("map without wallbox settings");
    absl::StatusOr<std::vector<uint16_t>> r = EncodeField(map, *field, value, id);
    if (!r.ok()) return r.status();
    if (field->address != map.Find(Quantity::kWatchdogTimeout)->address + settings.size()) {
      return absl::FailedPreconditionError("wallbox settings are not contiguous in the map");
    }
    settings.insert(settings.end(), r->begin(), r->end());
  }
  WriteResult w = owner_->Write(id, {map.Find(Quantity::kWatchdogTimeout)->address, settings});
  if (!w.status.ok()) return w.status;
  w = WriteField(device, Quantity::kFailsafeCurrent, failsafe_a);
  if (!w.status.ok()) return w.status;
  absl::Status s = WriteLimit(device, limit_a, source, expires_at, batch_id);
  if (!s.ok()) return s;
  absl::MutexLock lock_mu(&mu_);
  device.programmed = true;
  return absl::OkStatus();
}

absl::Status ModbusBackend::WriteLimit(Device& device, double amps, v1::SetpointSource source,
                                       std::optional<absl::Time> expires_at,
                                       const std::string& batch_id) {
  const WriteResult w = WriteField(device, Quantity::kMaxCurrent, amps);
  std::vector<v1::WatchDevicesResponse> events;
  {
    absl::MutexLock lock(&mu_);
    if (!w.status.ok()) return w.status;
    Evse& evse = *device.evse;
    evse.in_force_a = amps;
    evse.source = source;
    evse.applied_at = w.confirmed_at;
    evse.expires_at = expires_at;
    evse.batch_id = batch_id;
    if (std::optional<DeviceStatus> status = owner_->Device(device.setup.polled.id)) {
      DiffEvseLocked(device, *status, &events);
    }
  }
  Publish(std::move(events));
  return absl::OkStatus();
}

std::vector<v1::SetpointResult> ModbusBackend::ApplySetpoints(
    const std::vector<v1::Setpoint>& setpoints, absl::Duration ttl, const std::string& batch_id) {
  absl::MutexLock control(&control_mu_);
  std::vector<v1::SetpointResult> results;
  results.reserve(setpoints.size());
  for (const v1::Setpoint& setpoint : setpoints) {
    results.push_back(ApplyOne(setpoint, ttl, batch_id));
  }
  return results;
}

v1::SetpointResult ModbusBackend::ApplyOne(const v1::Setpoint& setpoint, absl::Duration ttl,
                                           const std::string& batch_id) {
  v1::SetpointResult result;
  result.set_evse_id(setpoint.evse_id());
  Device* device = FindByEvse(setpoint.evse_id());
  const auto reject = [&](v1::SetpointRejectReason reason, const std::string& message) {
    result.set_status(v1::SETPOINT_STATUS_REJECTED);
    result.set_reason(reason);
    result.set_message(message);
    if (device != nullptr) {
      if (std::optional<DeviceStatus> status = owner_->Device(device->setup.polled.id)) {
        absl::MutexLock lock(&mu_);
        *result.mutable_in_force() = EvseStateLocked(*device, *status).setpoint();
      }
    }
    return result;
  };
  if (device == nullptr) {
    return reject(v1::SETPOINT_REJECT_REASON_UNKNOWN_EVSE,
                  absl::StrCat("EVSE '", setpoint.evse_id(), "' is not on bus ", bus_id_));
  }
  const site::EvseConfig& cfg = device->evse->config;
  const site::AcEvseLimits& ac = *cfg.ac;
  double amps = 0;
  bool clamped = false;
  switch (setpoint.value().kind_case()) {
    case v1::SetpointValue::kPowerLimitW:
      return reject(v1::SETPOINT_REJECT_REASON_NOT_SUPPORTED,
                    absl::StrCat("EVSE ", cfg.id, " is an AC EVSE: send current_limit_a or pause"));
    case v1::SetpointValue::kPause:
      break;
    case v1::SetpointValue::kCurrentLimitA: {
      std::optional<double> lowest;
      for (site::Phase p : cfg.phases) {
        std::optional<double> a = GetPhase(setpoint.value().current_limit_a(), p);
        if (!a) {
          return reject(v1::SETPOINT_REJECT_REASON_INVALID_VALUE,
                        absl::StrCat("no current for wired phase ", site::PhaseName(p)));
        }
        if (!std::isfinite(*a) || *a < 0) {
          return reject(v1::SETPOINT_REJECT_REASON_INVALID_VALUE,
                        absl::StrCat(*a, " A on ", site::PhaseName(p), " is not a current limit"));
        }
        lowest = lowest ? std::min(*lowest, *a) : *a;
      }
      amps = QuantiseDown(*lowest, ac.current_step_a);
      if (amps > 0 && amps < ac.min_current_a) {
        return reject(v1::SETPOINT_REJECT_REASON_INVALID_VALUE,
                      absl::StrCat(Amps(amps), " (after the ", ac.current_step_a,
                                   " A step) is below the EVSE minimum ", Amps(ac.min_current_a),
                                   "; send pause instead"));
      }
      if (amps > ac.max_current_a) {
        amps = ac.max_current_a;
        clamped = true;
      }
      break;
    }
    case v1::SetpointValue::KIND_NOT_SET:
      return reject(v1::SETPOINT_REJECT_REASON_INVALID_VALUE, "setpoint without a value");
  }
  const std::optional<DeviceStatus> status = owner_->Device(device->setup.polled.id);
  if (!status || status->stale) {
    return reject(
        v1::SETPOINT_REJECT_REASON_DEVICE_OFFLINE,
        absl::StrCat("device ", device->setup.polled.id, " is stale; it runs on its failsafe (",
                     status ? status->last_error : "", ")"));
  }
  const absl::Time now = clock_.Now();
  bool refresh = false;
  absl::Duration watchdog;
  std::string unavailable;
  {
    absl::MutexLock lock(&mu_);
    Evse& evse = *device->evse;
    if (evse.fault) {
      unavailable = absl::StrCat("EVSE ", cfg.id, " is faulted: ", evse.fault->description());
    } else if (device->availability == v1::AVAILABILITY_INOPERATIVE) {
      unavailable = absl::StrCat("EVSE ", cfg.id, " is set inoperative by an operator");
    }
    watchdog = std::clamp(ttl, 3 * device->setup.polled.poll_period, kMaxWatchdog);
    refresh = unavailable.empty() && device->programmed &&
              evse.source == v1::SETPOINT_SOURCE_CONTROLLER && evse.in_force_a == amps;
  }
  if (!unavailable.empty()) return reject(v1::SETPOINT_REJECT_REASON_EVSE_UNAVAILABLE, unavailable);
  if (refresh) {
    // The value in force is what was written last, not necessarily what the
    // box holds now (a brown-out, another master): read 261 back, and only
    // extend the validity of what the box really runs with.
    const absl::StatusOr<double> held = ReadField(*device, Quantity::kMaxCurrent);
    if (!held.ok()) return reject(ReasonOf(held.status()), std::string(held.status().message()));
    if (std::abs(*held - amps) <= kLimitTolerance) {
      absl::MutexLock lock(&mu_);
      device->evse->expires_at = now + ttl;
      device->evse->batch_id = batch_id;
    } else {
      kLog.Warning("bus %s device %s: holds %s instead of the %s in force; writing it again",
                   bus_id_, device->setup.polled.id, Amps(*held), Amps(amps));
      refresh = false;
    }
  }
  absl::Status s;
  if (!refresh) {
    // The box's own watchdog follows the TTL the controller uses.
    bool new_watchdog;
    {
      absl::MutexLock lock(&mu_);
      new_watchdog = absl::AbsDuration(device->evse->watchdog - watchdog) >= absl::Seconds(1);
      if (new_watchdog) device->evse->watchdog = watchdog;
    }
    if (new_watchdog) {
      s = WriteField(*device, Quantity::kWatchdogTimeout, absl::ToDoubleSeconds(watchdog)).status;
    }
    if (s.ok()) s = WriteLimit(*device, amps, v1::SETPOINT_SOURCE_CONTROLLER, now + ttl, batch_id);
  }
  if (!s.ok()) return reject(ReasonOf(s), std::string(s.message()));
  result.set_status(clamped ? v1::SETPOINT_STATUS_CLAMPED : v1::SETPOINT_STATUS_ACCEPTED);
  if (clamped) result.set_message(absl::StrCat("clamped to the EVSE maximum ", Amps(amps)));
  absl::MutexLock lock(&mu_);
  *result.mutable_in_force() = EvseStateLocked(*device, *status).setpoint();
  return result;
}

absl::Time ModbusBackend::CheckExpiry() {
  absl::MutexLock control(&control_mu_);
  absl::Time next = absl::InfiniteFuture();
  for (auto& d : devices_) {
    if (!d->evse) continue;
    double failsafe_a;
    {
      absl::MutexLock lock(&mu_);
      Evse& evse = *d->evse;
      if (evse.source != v1::SETPOINT_SOURCE_CONTROLLER || !evse.expires_at) continue;
      if (*evse.expires_at > clock_.Now()) {
        next = std::min(next, *evse.expires_at);
        continue;
      }
      failsafe_a = evse.failsafe_a;
      ++setpoints_expired_total_;
    }
    kLog.Warning("bus %s EVSE %s: setpoint expired; falling back to the failsafe %s", bus_id_,
                 d->evse->config.id, Amps(failsafe_a));
    absl::Status s = WriteLimit(*d, failsafe_a, v1::SETPOINT_SOURCE_FAILSAFE, std::nullopt, "");
    if (!s.ok()) {
      // The box cannot be reached: its own watchdog takes it to the same
      // failsafe; record that, and program it when it is back.
      std::vector<v1::WatchDevicesResponse> events;
      {
        absl::MutexLock lock(&mu_);
        Evse& evse = *d->evse;
        evse.in_force_a = failsafe_a;
        evse.source = v1::SETPOINT_SOURCE_FAILSAFE;
        evse.applied_at.reset();
        evse.expires_at.reset();
        evse.batch_id.clear();
        d->programmed = false;
        if (std::optional<DeviceStatus> status = owner_->Device(d->setup.polled.id)) {
          DiffEvseLocked(*d, *status, &events);
        }
      }
      Publish(std::move(events));
    }
  }
  return next;
}

v1::CommandResponse ModbusBackend::SetFailsafe(Device& device,
                                               const v1::SetFailsafeCommand& command) {
  v1::CommandResponse response;
  const site::EvseConfig& cfg = device.evse->config;
  const site::AcEvseLimits& ac = *cfg.ac;
  const auto rejected = [&](const std::string& message) {
    response.set_status(v1::COMMAND_STATUS_REJECTED);
    response.set_message(message);
    return response;
  };
  double amps = 0;
  if (command.value().has_current_limit_a()) {
    std::optional<double> lowest;
    for (site::Phase p : cfg.phases) {
      std::optional<double> a = GetPhase(command.value().current_limit_a(), p);
      if (!a || !std::isfinite(*a) || *a < 0) {
        return rejected(
            absl::StrCat("no valid failsafe current for wired phase ", site::PhaseName(p)));
      }
      lowest = lowest ? std::min(*lowest, *a) : *a;
    }
    amps = QuantiseDown(*lowest, ac.current_step_a);
    if (amps != 0 && (amps < ac.min_current_a || amps > ac.max_current_a)) {
      return rejected(absl::StrCat("failsafe ", Amps(amps), " must be 0 (pause) or ",
                                   ac.min_current_a, "-", ac.max_current_a, " A"));
    }
  } else if (!command.value().has_pause()) {
    return rejected("failsafe value must be current_limit_a or pause");
  }
  absl::Duration watchdog;
  bool limit_is_failsafe;
  {
    absl::MutexLock lock(&mu_);
    watchdog = device.evse->watchdog;
    if (command.has_watchdog_timeout()) {
      const absl::Duration asked = absl::Seconds(command.watchdog_timeout().seconds()) +
                                   absl::Nanoseconds(command.watchdog_timeout().nanos());
      const absl::Duration lowest = 3 * device.setup.polled.poll_period;
      if (asked < lowest || asked > kMaxWatchdog) {
        return rejected(absl::StrCat("watchdog timeout ", absl::FormatDuration(asked), " outside ",
                                     absl::FormatDuration(lowest), "-",
                                     absl::FormatDuration(kMaxWatchdog),
                                     " (at least 3 poll periods, at most 65.535 s)"));
      }
      watchdog = asked;
    }
    limit_is_failsafe = device.evse->source != v1::SETPOINT_SOURCE_CONTROLLER;
  }
  WriteResult w = WriteField(device, Quantity::kFailsafeCurrent, amps);
  if (w.status.ok()) {
    w = WriteField(device, Quantity::kWatchdogTimeout, absl::ToDoubleSeconds(watchdog));
  }
  if (w.status.ok()) {
    absl::MutexLock lock(&mu_);
    device.evse->failsafe_a = amps;
    device.evse->watchdog = watchdog;
  }
  absl::Status s = w.status;
  if (s.ok() && limit_is_failsafe) {
    s = WriteLimit(device, amps, v1::SETPOINT_SOURCE_FAILSAFE, std::nullopt, "");
  }
  if (!s.ok()) {
    response.set_status(absl::IsFailedPrecondition(s) ? v1::COMMAND_STATUS_REJECTED
                                                      : v1::COMMAND_STATUS_FAILED);
    response.set_message(std::string(s.message()));
    return response;
  }
  response.set_status(v1::COMMAND_STATUS_ACCEPTED);
  response.set_message(absl::StrCat("failsafe ", Amps(amps), " after ",
                                    absl::FormatDuration(watchdog), " without the driver"));
  return response;
}

v1::CommandResponse ModbusBackend::Command(const v1::CommandRequest& request) {
  v1::CommandResponse response;
  Device* device = Find(request.device_id());
  if (device == nullptr) {
    response.set_status(v1::COMMAND_STATUS_REJECTED);
    response.set_message(absl::StrCat("no device '", request.device_id(), "' on bus ", bus_id_));
    return response;
  }
  const auto not_supported = [&](const std::string& what) {
    response.set_status(v1::COMMAND_STATUS_NOT_SUPPORTED);
    response.set_message(absl::StrCat(device->setup.profile, " has no ", what));
    return response;
  };
  const auto wrong_evse = [&](const std::string& evse_id) {
    return !evse_id.empty() && evse_id != device->evse->config.id;
  };
  switch (request.command_case()) {
    case v1::CommandRequest::kTriggerStatusReport:
      owner_->PollNow(device->setup.polled.id);
      response.set_status(v1::COMMAND_STATUS_ACCEPTED);
      response.set_message("polled now; the answer arrives as events");
      return response;
    case v1::CommandRequest::kChangeAvailability: {
      if (!device->evse) return not_supported("availability");
      const v1::ChangeAvailabilityCommand& c = request.change_availability();
      if (wrong_evse(c.evse_id())) return not_supported("EVSE " + c.evse_id());
      if (c.availability() == v1::AVAILABILITY_UNSPECIFIED) {
        response.set_status(v1::COMMAND_STATUS_REJECTED);
        response.set_message("availability must be OPERATIVE or INOPERATIVE");
        return response;
      }
      absl::MutexLock control(&control_mu_);
      const bool inoperative = c.availability() == v1::AVAILABILITY_INOPERATIVE;
      const WriteResult w =
          WriteField(*device, Quantity::kRemoteLock, inoperative ? kLocked : kUnlocked);
      if (!w.status.ok()) {
        response.set_status(v1::COMMAND_STATUS_FAILED);
        response.set_message(std::string(w.status.message()));
        return response;
      }
      std::vector<v1::WatchDevicesResponse> events;
      {
        absl::MutexLock lock(&mu_);
        device->availability = c.availability();
        if (std::optional<DeviceStatus> status = owner_->Device(device->setup.polled.id)) {
          DiffEvseLocked(*device, *status, &events);
        }
      }
      Publish(std::move(events));
      response.set_status(v1::COMMAND_STATUS_ACCEPTED);
      response.set_message(inoperative ? "remote lock on: the box does not charge"
                                       : "remote lock off");
      return response;
    }
    case v1::CommandRequest::kSetFailsafe: {
      if (!device->evse) return not_supported("failsafe");
      if (wrong_evse(request.set_failsafe().evse_id())) {
        return not_supported("EVSE " + request.set_failsafe().evse_id());
      }
      absl::MutexLock control(&control_mu_);
      return SetFailsafe(*device, request.set_failsafe());
    }
    case v1::CommandRequest::kOffGridBox:
      return OffGridBoxCommand(request.device_id(), request.off_grid_box());
    case v1::CommandRequest::kReset:
      return not_supported("remote reset over Modbus");
    case v1::CommandRequest::kUnlockConnector:
      return not_supported("connector unlock over Modbus");
    case v1::CommandRequest::COMMAND_NOT_SET:
      break;
  }
  response.set_status(v1::COMMAND_STATUS_REJECTED);
  response.set_message("no command given");
  return response;
}

v1::CommandResponse ModbusBackend::OffGridBoxCommand(const std::string& device_id,
                                                     const v1::OffGridBoxCommand& command) {
  absl::Status status;
  std::string done;
  switch (command.command_case()) {
    case v1::OffGridBoxCommand::kTransfer:
      if (command.transfer() == v1::OffGridBoxCommand::TRANSFER_TO_OFF_GRID) {
        status = TransferToOffGrid(device_id);
        done = "transferring the loads to the island";
      } else if (command.transfer() == v1::OffGridBoxCommand::TRANSFER_TO_ON_GRID) {
        status = TransferToOnGrid(device_id);
        done = "transferring the loads back to the grid";
      } else {
        status = absl::InvalidArgumentError("transfer must be TO_OFF_GRID or TO_ON_GRID");
      }
      break;
    case v1::OffGridBoxCommand::kPnPullInEnabled:
      status = SetPnPullIn(device_id, command.pn_pull_in_enabled());
      done = command.pn_pull_in_enabled() ? "P-N pull-in enabled off grid" : "P-N pull-in off";
      break;
    case v1::OffGridBoxCommand::kStandbyCountdown: {
      const absl::Duration countdown = api::FromProto(command.standby_countdown());
      status = SetStandbyCountdown(device_id, countdown);
      done = absl::StrCat("standby countdown ", absl::FormatDuration(countdown));
      break;
    }
    case v1::OffGridBoxCommand::COMMAND_NOT_SET:
      status = absl::InvalidArgumentError("no off-grid box command given");
      break;
  }
  v1::CommandResponse response;
  response.set_message(status.ok() ? done : std::string(status.message()));
  switch (status.code()) {
    case absl::StatusCode::kOk:
      response.set_status(v1::COMMAND_STATUS_ACCEPTED);
      break;
    case absl::StatusCode::kNotFound:
      response.set_status(v1::COMMAND_STATUS_NOT_SUPPORTED);
      break;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kInvalidArgument:
      response.set_status(v1::COMMAND_STATUS_REJECTED);
      break;
    default:  // stale box, no answer
      response.set_status(v1::COMMAND_STATUS_FAILED);
      break;
  }
  return response;
}

absl::Status ModbusBackend::BoxWrite(const std::string& device_id, Quantity quantity,
                                     double value) {
  Device* device = Find(device_id);
  if (device == nullptr || device->setup.kind != site::DeviceKind::kOffgridBox) {
    return absl::NotFoundError(absl::StrCat("no off-grid box '", device_id, "' on bus ", bus_id_));
  }
  const std::optional<DeviceStatus> status = owner_->Device(device_id);
  if (!status || status->stale) {
    return absl::UnavailableError(absl::StrCat("off-grid box ", device_id, " is stale (",
                                               status ? status->last_error : "", ")"));
  }
  absl::MutexLock control(&control_mu_);
  WriteResult w = WriteField(*device, quantity, value);
  if (w.status.ok()) owner_->PollNow(device_id);  // report the new state soon
  return w.status;
}

absl::Status ModbusBackend::TransferToOffGrid(const std::string& device_id) {
  return BoxWrite(device_id, Quantity::kTransferCommand, kTransferToOffGrid);
}

absl::Status ModbusBackend::TransferToOnGrid(const std::string& device_id) {
  return BoxWrite(device_id, Quantity::kTransferCommand, kTransferToOnGrid);
}

absl::Status ModbusBackend::SetPnPullIn(const std::string& device_id, bool enable) {
  return BoxWrite(device_id, Quantity::kPnPullInEnable, enable ? 1 : 0);
}

absl::Status ModbusBackend::SetStandbyCountdown(const std::string& device_id,
                                                absl::Duration countdown) {
  return BoxWrite(device_id, Quantity::kStandbyCountdown,
                  std::round(absl::ToDoubleSeconds(countdown)));
}

std::optional<OffGridBoxStatus> ModbusBackend::OffGridBox(const std::string& device_id) const {
  const Device* device = Find(device_id);
  if (device == nullptr || device->setup.kind != site::DeviceKind::kOffgridBox) {
    return std::nullopt;
  }
  const std::optional<DeviceStatus> status = owner_->Device(device_id);
  if (!status) return std::nullopt;
  OffGridBoxStatus box;
  box.state = BoxStateOf(*status);
  box.stale = status->stale;
  if (auto s = status->values.Get(Quantity::kStandbyRemaining); s && *s > 0) {
    box.standby_remaining = absl::Seconds(*s);
  }
  if (auto s = status->values.Get(Quantity::kStandbyCountdown)) {
    box.standby_countdown = absl::Seconds(*s);
  }
  return box;
}

absl::Time ModbusBackend::PollOnce() {
  const absl::Time next = owner_->PollOnce();
  return std::min(next, CheckExpiry());
}

void ModbusBackend::RunTimer() {
  for (;;) {
    const absl::Time next = CheckExpiry();
    const absl::Duration wait = std::min(next - clock_.Now(), kTimerIdle);
    absl::MutexLock lock(&timer_mu_);
    if (wait > absl::ZeroDuration()) {
      timer_mu_.AwaitWithTimeout(absl::Condition(&timer_stop_), wait);
    }
    if (timer_stop_) return;
  }
}

absl::Status ModbusBackend::Start() {
  if (started_) return absl::OkStatus();
  // A serial port that cannot be opened is a configuration error; a TCP
  // gateway that is not up yet is a device that is not there yet (stale).
  if (absl::StartsWith(transport_->Describe(), "modbus rtu")) {
    if (absl::Status s = transport_->Connect(); !s.ok()) return s;
  }
  owner_->Start();
  {
    absl::MutexLock lock(&timer_mu_);
    timer_stop_ = false;
  }
  timer_ = std::thread([this] { RunTimer(); });
  started_ = true;
  return absl::OkStatus();
}

void ModbusBackend::Stop() {
  if (!started_) return;
  {
    absl::MutexLock lock(&timer_mu_);
    timer_stop_ = true;
  }
  if (timer_.joinable()) timer_.join();
  owner_->Stop();
  started_ = false;
}

absl::StatusOr<std::unique_ptr<ModbusBackend>> MakeModbusBackendOn(
    const site::SiteConfig& site, const site::BusConfig& bus, const Clock& clock,
    std::unique_ptr<ModbusTransport> transport, ModbusBackendOptions options) {
  BusOptions bus_options;
  bus_options.bus_id = bus.id;
  if (bus.modbus_rtu) {
    bus_options.retries = bus.modbus_rtu->retries;
    bus_options.inter_frame_gap = bus.modbus_rtu->inter_frame_gap_ms
                                      ? absl::Milliseconds(*bus.modbus_rtu->inter_frame_gap_ms)
                                      : RtuInterFrameGap(bus.modbus_rtu->baud);
  } else if (bus.modbus_tcp) {
    bus_options.retries = bus.modbus_tcp->retries;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("bus ", bus.id, " is a ", site::BusTypeName(bus.type), " bus, not Modbus"));
  }
  std::vector<ModbusDeviceSetup> setups;
  std::vector<std::unique_ptr<RegisterMap>> owned;
  std::vector<std::string> errors;
  for (const site::DeviceConfig& d : site.devices) {
    if (d.bus != bus.id) continue;
    ModbusDeviceSetup setup;
    setup.profile = d.profile_name;
    setup.kind = d.profile != nullptr ? d.profile->kind : site::DeviceKind::kMeter;
    PolledDevice& p = setup.polled;
    p.id = d.id;
    p.unit_id = d.address.value_or(1);
    p.poll_period = absl::Milliseconds(d.poll_period_ms);
    // Energy counters and settings: every 10 polls, at least every 10 s.
    p.slow_poll_period = std::max(10 * p.poll_period, absl::Seconds(10));
    p.stale_after_missed_polls = d.stale_after_missed_polls;
    if (d.register_map) {
      absl::StatusOr<RegisterMap> map = LoadRegisterMapFile(*d.register_map);
      if (!map.ok()) {
        errors.push_back(absl::StrCat("device ", d.id, ": ", map.status().message()));
        continue;
      }
      owned.push_back(std::make_unique<RegisterMap>(*std::move(map)));
      p.map = owned.back().get();
    } else {
      absl::StatusOr<const RegisterMap*> map = BuiltinRegisterMap(d.profile_name);
      if (!map.ok()) {
        errors.push_back(absl::StrCat("device ", d.id, " (", d.profile_name,
                                      "): no Modbus register map: ", map.status().message()));
        continue;
      }
      p.map = *map;
    }
    // Priorities: what the control loop and the grid-mode logic need first.
    const bool grid_meter = site.grid.meter == d.id;
    bool circuit_meter = false;
    for (const site::CircuitConfig& c : site.circuits) circuit_meter |= c.meter == d.id;
    switch (setup.kind) {
      case site::DeviceKind::kMeter:
        p.priority = grid_meter ? 100 : circuit_meter ? 50 : 10;
        break;
      case site::DeviceKind::kOffgridBox:
        p.priority = 80;
        break;
      case site::DeviceKind::kAcWallbox:
        p.priority = 40;
        break;
      case site::DeviceKind::kDcCharger:
        break;
    }
    if (setup.kind == site::DeviceKind::kAcWallbox) {
      for (const site::StationConfig& station : site.stations) {
        if (station.device != d.id || station.evses.empty()) continue;
        setup.station_id = station.id;
        setup.evse = station.evses.front();
      }
      if (!setup.evse || !setup.evse->ac) {
        errors.push_back(absl::StrCat("device ", d.id, ": no station with an AC EVSE uses it"));
        continue;
      }
    }
    setups.push_back(std::move(setup));
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
  return std::make_unique<ModbusBackend>(std::move(bus_options), std::move(setups),
                                         std::move(transport), clock, options, std::move(owned));
}

absl::StatusOr<std::unique_ptr<devices::DeviceBackend>> MakeModbusBackend(
    const site::SiteConfig& site, const site::BusConfig& bus, const Clock& clock) {
  std::unique_ptr<ModbusTransport> transport;
  if (bus.modbus_rtu) {
    const site::ModbusRtuSettings& s = *bus.modbus_rtu;
    RtuOptions rtu;
    rtu.port = s.port;
    rtu.baud = s.baud;
    rtu.parity = s.parity == site::Parity::kEven ? 'E' : s.parity == site::Parity::kOdd ? 'O' : 'N';
    rtu.data_bits = s.data_bits;
    rtu.stop_bits = s.stop_bits;
    rtu.rs485 = s.rs485;
    rtu.timeout = absl::Milliseconds(s.timeout_ms);
    absl::StatusOr<std::unique_ptr<LibmodbusTransport>> t = LibmodbusTransport::Rtu(rtu);
    if (!t.ok()) return t.status();
    transport = *std::move(t);
  } else if (bus.modbus_tcp) {
    const site::ModbusTcpSettings& s = *bus.modbus_tcp;
    absl::StatusOr<std::unique_ptr<LibmodbusTransport>> t =
        LibmodbusTransport::Tcp({s.host, s.port, absl::Milliseconds(s.timeout_ms)});
    if (!t.ok()) return t.status();
    transport = *std::move(t);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("bus ", bus.id, " is a ", site::BusTypeName(bus.type), " bus, not Modbus"));
  }
  absl::StatusOr<std::unique_ptr<ModbusBackend>> backend =
      MakeModbusBackendOn(site, bus, clock, std::move(transport));
  if (!backend.ok()) return backend.status();
  return std::unique_ptr<devices::DeviceBackend>(*std::move(backend));
}

}  // namespace evgate::modbus
