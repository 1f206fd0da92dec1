#include "device_drivers/can/can_bus_owner.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "device_drivers/can/cabur_faults.h"
#include "device_drivers/can/socketcan_bus.h"
#include "device_drivers/can/udp_can_bus.h"
#include "runtime/log.h"
#include "site_controller/config/api_conversions.h"

namespace evgate::can {
namespace {

using ::evgate::api::GetPhase;
using ::evgate::api::SetPhase;
using ::evgate::api::ToProto;

namespace v1 = evgate::v1;
using google::protobuf::util::TimeUtil;

constexpr log::Logger kLog("can-owner");

// Bad frames of one wallbox are logged individually up to this many, then
// every kBadFrameLogEvery-th (a babbling node must not flood the log).
constexpr uint64_t kBadFrameLogFirst = 10;
constexpr uint64_t kBadFrameLogEvery = 100;

v1::Iec61851State ToProto(wallbox::IecState state) {
  switch (state) {
    case wallbox::IecState::kA:
      return v1::IEC61851_STATE_A;
    case wallbox::IecState::kB:
      return v1::IEC61851_STATE_B;
    case wallbox::IecState::kC:
      return v1::IEC61851_STATE_C;
    case wallbox::IecState::kD:
      return v1::IEC61851_STATE_D;
    case wallbox::IecState::kE:
      return v1::IEC61851_STATE_E;
    case wallbox::IecState::kF:
      return v1::IEC61851_STATE_F;
  }
  return v1::IEC61851_STATE_UNSPECIFIED;
}

// Rounds `value` down to a multiple of `step`, then to the protocol's 0.1 A
// (removing binary noise such as 15.999999).
double QuantiseDown(double value, double step) {
  if (step <= 0) step = 0.1;
  const double steps = std::floor(value / step + 1e-9);
  // Down again to 0.1 A (the protocol's resolution), for a step that is not
  // a multiple of it.
  return std::floor(steps * step * 10.0 + 1e-6) / 10.0;
}

bool IsPauseOrZero(const v1::SetpointValue& value) {
  if (value.has_pause()) return true;
  if (!value.has_current_limit_a()) return false;
  const v1::PhaseValues& c = value.current_limit_a();
  return (!c.has_l1() || c.l1() == 0) && (!c.has_l2() || c.l2() == 0) &&
         (!c.has_l3() || c.l3() == 0);
}

v1::SetpointResult Rejected(const std::string& evse_id, v1::SetpointRejectReason reason,
                            std::string message) {
  v1::SetpointResult result;
  result.set_evse_id(evse_id);
  result.set_status(v1::SETPOINT_STATUS_REJECTED);
  result.set_reason(reason);
  result.set_message(std::move(message));
  return result;
}

std::string FormatAmps(double a) { return absl::StrFormat("%.1f A", a); }

// A send error that says the bus takes no frames now (queue full, interface
// down, not open), as opposed to a problem with one frame.
bool BusRefused(const absl::Status& status) {
  return status.code() == absl::StatusCode::kDeadlineExceeded ||
         status.code() == absl::StatusCode::kUnavailable ||
         status.code() == absl::StatusCode::kFailedPrecondition;
}

}  // namespace

CanBusOwner::CanBusOwner(CanBusOwnerOptions options, std::vector<CanWallboxConfig> wallboxes,
                         std::unique_ptr<CanBus> bus, const Clock& clock)
    : options_(std::move(options)), bus_(std::move(bus)), clock_(clock) {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  for (CanWallboxConfig& config : wallboxes) {
    Wallbox w;
    w.config = std::move(config);
    w.watchdog_timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(options_.watchdog_timeout));
    w.failsafe_current_a = w.config.failsafe_current_a;
    w.status_at = now;  // staleness counts from the start until the first Status
    wallboxes_.push_back(std::move(w));
  }
  next_broadcast_ = now;
}

CanBusOwner::~CanBusOwner() { Stop(); }

// ---------------------------------------------------------------------------
// Lookups

int CanBusOwner::FindByAddress(int address) const {
  for (size_t i = 0; i < wallboxes_.size(); ++i) {
    if (wallboxes_[i].config.address == address) return static_cast<int>(i);
  }
  return -1;
}

int CanBusOwner::FindByEvse(const std::string& evse_id) const {
  for (size_t i = 0; i < wallboxes_.size(); ++i) {
    if (wallboxes_[i].config.evse_id == evse_id) return static_cast<int>(i);
  }
  return -1;
}

int CanBusOwner::FindByDevice(const std::string& device_id) const {
  for (size_t i = 0; i < wallboxes_.size(); ++i) {
    if (wallboxes_[i].config.device_id == device_id) return static_cast<int>(i);
  }
  return -1;
}

std::vector<std::string> CanBusOwner::DeviceIds() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> ids;
  for (const Wallbox& w : wallboxes_) ids.push_back(w.config.device_id);
  return ids;
}

std::vector<std::string> CanBusOwner::EvseIds() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> ids;
  for (const Wallbox& w : wallboxes_) ids.push_back(w.config.evse_id);
  return ids;
}

std::vector<std::optional<v1::SetpointValue>> CanBusOwner::SetpointsInForce(
    const std::vector<std::string>& evse_ids) const {
  absl::MutexLock lock(&mu_);
  std::vector<std::optional<v1::SetpointValue>> values;
  values.reserve(evse_ids.size());
  for (const std::string& id : evse_ids) {
    const int index = FindByEvse(id);
    std::optional<v1::SetpointValue> value;
    if (index >= 0) {
      v1::SetpointInForce in_force = InForce(wallboxes_[index]);
      if (in_force.has_value()) value = std::move(*in_force.mutable_value());
    }
    values.push_back(std::move(value));
  }
  return values;
}

CanWallboxCounters CanBusOwner::Counters(const std::string& device_id) const {
  absl::MutexLock lock(&mu_);
  const int index = FindByDevice(device_id);
  return index < 0 ? CanWallboxCounters{} : wallboxes_[index].counters;
}

CanBusCounters CanBusOwner::BusCounters() const {
  absl::MutexLock lock(&mu_);
  return bus_counters_;
}

// ---------------------------------------------------------------------------
// State -> proto

v1::SetpointValue CanBusOwner::ValueFor(const Wallbox& w, double current_a, bool pause) const {
  v1::SetpointValue value;
  if (pause) {
    value.mutable_pause();
    return value;
  }
  for (site::Phase phase : w.config.phases) {
    SetPhase(value.mutable_current_limit_a(), phase, current_a);
  }
  return value;
}

absl::Duration CanBusOwner::RefreshPeriod(const Wallbox& w) const {
  // Four refreshes per watchdog period at least, also for a short watchdog
  // programmed with SetFailsafe.
  return std::min(options_.setpoint_refresh_period, absl::Milliseconds(w.watchdog_timeout_ms) / 4);
}

double CanBusOwner::MaxCurrent(const Wallbox& w) const {
  double max = w.config.max_current_a;
  if (w.identity.has_value() && w.identity->info.max_current_a > 0) {
    max = std::min<double>(max, w.identity->info.max_current_a);  // the wallbox's Max Current
  }
  return max;
}

v1::SetpointInForce CanBusOwner::InForce(const Wallbox& w) const {
  if (w.status.has_value() && w.status->failsafe_active) {
    v1::SetpointInForce in_force;
    const bool configured = w.status->watchdog_configured;
    const double failsafe = configured ? w.failsafe_current_a : kPowerUpFailsafeCurrentA;
    *in_force.mutable_value() =
        ValueFor(w, std::min(failsafe, w.config.max_current_a), failsafe == 0);
    in_force.set_source(configured ? v1::SETPOINT_SOURCE_FAILSAFE
                                   : v1::SETPOINT_SOURCE_DEVICE_DEFAULT);
    if (w.failsafe_since.has_value()) *in_force.mutable_applied_at() = ToProto(*w.failsafe_since);
    return in_force;
  }
  if (w.command.has_value()) return w.command->in_force;
  return v1::SetpointInForce();  // nothing known yet
}

v1::EvseMeasurements CanBusOwner::BuildMeasurements(const Wallbox& w, absl::Time now) const {
  v1::EvseMeasurements m;
  const size_t phases = w.config.phases.size();
  if (w.status.has_value()) {
    for (size_t i = 0; i < phases && i < 3; ++i) {
      SetPhase(m.mutable_current_a(), w.config.phases[i], w.status->current_a[i]);
    }
    *m.mutable_measured_at() = ToProto(w.status_at);
  }
  // While the link is up, values whose own frames stopped are left out; a
  // stale wallbox shows its last values (LinkHealth.stale flags them).
  auto fresh = [&](absl::Time at) {
    return w.stale || now - at <= options_.measurements_stale_after;
  };
  if (w.measurements.has_value() && fresh(w.measurements_at)) {
    for (size_t i = 0; i < phases && i < 3; ++i) {
      SetPhase(m.mutable_voltage_v(), w.config.phases[i], w.measurements->voltage_v[i]);
    }
    m.set_power_w(w.measurements->active_power_w);
  }
  if (w.energy.has_value() && fresh(w.energy_at)) {
    m.set_session_energy_wh(static_cast<double>(w.energy->session_energy_wh));
    m.set_energy_import_wh(static_cast<double>(w.energy->lifetime_energy_wh));
    v1::Temperature* relay = m.add_temperatures();
    relay->set_name("relay");
    relay->set_temperature_c(w.energy->relay_temperature_c);
    v1::Temperature* ambient = m.add_temperatures();
    ambient->set_name("ambient");
    ambient->set_temperature_c(w.energy->ambient_temperature_c);
  }
  return m;
}

v1::EvseState CanBusOwner::BuildEvseState(const Wallbox& w, absl::Time now) const {
  v1::EvseState evse;
  evse.set_evse_id(w.config.evse_id);
  evse.set_connector_id(static_cast<uint32_t>(w.config.connector));
  evse.set_kind(v1::EVSE_KIND_AC);
  v1::EvseCapabilities* caps = evse.mutable_capabilities();
  for (site::Phase phase : w.config.phases) caps->add_phases(ToProto(phase));
  caps->set_min_current_a(w.config.min_current_a);
  caps->set_max_current_a(MaxCurrent(w));
  caps->set_current_step_a(w.config.current_step_a);
  caps->set_per_phase_current_limit(false);

  *evse.mutable_setpoint() = InForce(w);
  for (const auto& [code, since] : w.faults) *evse.add_faults() = CaburFault(code, since);
  if (!w.status.has_value()) return evse;

  const wallbox::Status& s = *w.status;
  evse.set_iec61851_state(ToProto(s.state));
  evse.set_relay_closed(s.relay_closed);
  *evse.mutable_measurements() = BuildMeasurements(w, now);
  evse.set_connector_status(ConnectorStatusOf(w, evse.setpoint()));
  return evse;
}

v1::ConnectorStatus CanBusOwner::ConnectorStatusOf(const Wallbox& w,
                                                   const v1::SetpointInForce& in_force) const {
  if (!w.status.has_value()) return v1::CONNECTOR_STATUS_UNSPECIFIED;
  const wallbox::Status& s = *w.status;
  if (s.errors != 0 || s.state == wallbox::IecState::kE || s.state == wallbox::IecState::kF) {
    return v1::CONNECTOR_STATUS_FAULTED;
  }
  if (w.inoperative) return v1::CONNECTOR_STATUS_UNAVAILABLE;
  if (s.state == wallbox::IecState::kA) return v1::CONNECTOR_STATUS_AVAILABLE;
  if (s.paused || IsPauseOrZero(in_force.value())) return v1::CONNECTOR_STATUS_SUSPENDED_EVSE;
  if (s.state == wallbox::IecState::kB) {
    // Connected, not asking: before the first charge it is preparing, after
    // it the vehicle has stopped on its own.
    return w.charged_this_plug ? v1::CONNECTOR_STATUS_SUSPENDED_EV : v1::CONNECTOR_STATUS_PREPARING;
  }
  return s.relay_closed ? v1::CONNECTOR_STATUS_CHARGING : v1::CONNECTOR_STATUS_PREPARING;
}

v1::LinkHealth CanBusOwner::BuildLink(const Wallbox& w) const {
  v1::LinkHealth link;
  if (w.last_seen.has_value()) *link.mutable_last_seen() = ToProto(*w.last_seen);
  link.set_requests_total(w.counters.frames_sent_total);
  link.set_errors_total(w.errors_total);
  link.set_timeouts_total(w.timeouts_total);
  const absl::Time now = clock_.Now();
  const int64_t missed = w.status.has_value() ? (now - w.status_at) / kStatusPeriod : 0;
  link.set_consecutive_failures(static_cast<uint32_t>(std::clamp<int64_t>(missed, 0, UINT32_MAX)));
  link.set_stale(w.stale);
  link.set_last_error(w.last_error);
  if (w.last_error_at.has_value()) *link.mutable_last_error_at() = ToProto(*w.last_error_at);
  return link;
}

v1::DeviceState CanBusOwner::BuildDevice(const Wallbox& w, absl::Time now) const {
  v1::DeviceState device;
  device.set_device_id(w.config.device_id);
  device.set_kind(v1::DEVICE_KIND_AC_WALLBOX);
  device.set_profile(w.config.profile);
  device.set_bus_id(options_.bus_id);
  device.set_address(absl::StrCat(w.config.address));
  device.set_station_id(w.config.station_id);
  if (w.identity.has_value()) {
    v1::DeviceIdentity* identity = device.mutable_identity();
    identity->set_vendor("Cabur");
    identity->set_model(std::string(wallbox::ModelName(w.identity->info.model)));
    identity->set_serial_number(w.identity->serial);
    const auto& fw = w.identity->info.firmware;
    identity->set_firmware_version(absl::StrFormat("%d.%d.%d", fw[0], fw[1], fw[2]));
  }
  *device.mutable_link() = BuildLink(w);
  *device.add_evses() = BuildEvseState(w, now);
  device.set_availability(w.inoperative ? v1::AVAILABILITY_INOPERATIVE
                                        : v1::AVAILABILITY_OPERATIVE);
  return device;
}

std::optional<v1::DeviceState> CanBusOwner::GetDevice(const std::string& device_id) const {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  const int index = FindByDevice(device_id);
  if (index < 0) return std::nullopt;
  return BuildDevice(wallboxes_[index], now);
}

// ---------------------------------------------------------------------------
// Events

void CanBusOwner::Emit(const std::string& device_id, absl::Time at,
                       v1::WatchDevicesResponse event) {
  event.set_device_id(device_id);
  *event.mutable_at() = ToProto(at);
  outbox_.push_back(std::move(event));
}

void CanBusOwner::EmitStateChangeIfChanged(Wallbox& w, absl::Time now) {
  // Called on every Status frame: compare a small key, build the full
  // EvseState only for a change.
  PublishedState key;
  const v1::SetpointInForce in_force = InForce(w);
  key.in_force = in_force.SerializeAsString();
  key.max_current_a = MaxCurrent(w);
  key.connector_status = ConnectorStatusOf(w, in_force);
  if (w.status.has_value()) {
    key.iec61851_state = ToProto(w.status->state);
    key.relay_closed = w.status->relay_closed ? 1 : 0;
  }
  v1::Iec61851State previous_state = v1::IEC61851_STATE_UNSPECIFIED;
  v1::ConnectorStatus previous_status = v1::CONNECTOR_STATUS_UNSPECIFIED;
  if (w.published.has_value()) {
    if (*w.published == key) return;
    previous_state = w.published->iec61851_state;
    previous_status = w.published->connector_status;
  }
  w.published = std::move(key);
  v1::WatchDevicesResponse event;
  v1::EvseStateChange* change = event.mutable_evse_state_change();
  *change->mutable_state() = BuildEvseState(w, now);
  change->set_previous_iec61851_state(previous_state);
  change->set_previous_connector_status(previous_status);
  Emit(w.config.device_id, now, std::move(event));
}

void CanBusOwner::EmitTelemetry(const Wallbox& w, absl::Time now) {
  v1::WatchDevicesResponse event;
  v1::Telemetry* telemetry = event.mutable_telemetry();
  *telemetry->mutable_link() = BuildLink(w);
  v1::EvseTelemetry* evse = telemetry->add_evses();
  evse->set_evse_id(w.config.evse_id);
  *evse->mutable_measurements() = BuildMeasurements(w, now);
  Emit(w.config.device_id, now, std::move(event));
}

void CanBusOwner::Flush() {
  std::vector<v1::WatchDevicesResponse> events;
  {
    absl::MutexLock lock(&mu_);
    events.swap(outbox_);
  }
  if (sink_ == nullptr) return;
  for (v1::WatchDevicesResponse& event : events) sink_->Publish(std::move(event));
}

void CanBusOwner::SetSink(devices::DeviceEventSink* sink) { sink_ = sink; }

void CanBusOwner::RecordError(Wallbox& w, const std::string& error, absl::Time now) {
  ++w.errors_total;
  w.last_error = error;
  w.last_error_at = now;
}

// ---------------------------------------------------------------------------
// Receiving

void CanBusOwner::HandleEvent(const BusEvent& event) {
  absl::MutexLock send_lock(&send_mu_);
  std::vector<Outgoing> out;
  {
    const absl::Time now = clock_.Now();
    absl::MutexLock lock(&mu_);
    switch (event.kind) {
      case BusEventKind::kFrame:
        if (event.frame.has_value()) HandleFrame(*event.frame, now, &out);
        break;
      case BusEventKind::kTimeout:
        break;
      case BusEventKind::kRestarted:
        ++bus_counters_.bus_events_total;
        bus_down_ = false;
        kLog.Info("bus %s: %s", options_.bus_id, event.detail);
        break;
      default: {
        ++bus_counters_.bus_events_total;
        // A down interface is reported on every Receive() until it is
        // back, and a broken bus can produce error frames in bulk: log the
        // change, then a sample.
        const bool down = event.kind == BusEventKind::kInterfaceDown;
        CountBusErrorLocked(event.kind, down && !bus_down_);
        if (down ? !bus_down_
                 : (bus_counters_.bus_events_total <= kBadFrameLogFirst ||
                    bus_counters_.bus_events_total % kBadFrameLogEvery == 0)) {
          kLog.Warning("bus %s: %s", options_.bus_id, event.detail);
        }
        if (down) bus_down_ = true;
        // Tell the operator why every wallbox may go quiet; the staleness
        // itself follows from the missing Status frames.
        if (event.kind == BusEventKind::kBusOff || event.kind == BusEventKind::kInterfaceDown) {
          for (Wallbox& w : wallboxes_) {
            w.last_error = event.detail;
            w.last_error_at = now;
          }
        }
        break;
      }
    }
  }
  SendAll(out).IgnoreError();  // recorded per wallbox
  Flush();
}

void CanBusOwner::CountBusErrorLocked(BusEventKind kind, bool newly_down) {
  switch (kind) {
    case BusEventKind::kErrorWarning:
      ++bus_counters_.error_warning_total;
      break;
    case BusEventKind::kErrorPassive:
      ++bus_counters_.error_passive_total;
      break;
    case BusEventKind::kBusOff:
      ++bus_counters_.bus_off_total;
      break;
    case BusEventKind::kOtherError:
      ++bus_counters_.other_error_frames_total;
      break;
    case BusEventKind::kInterfaceDown:
      // Reported on every Receive() while down: one loss per outage.
      if (newly_down) ++bus_counters_.interface_down_total;
      break;
    case BusEventKind::kFrame:
    case BusEventKind::kTimeout:
    case BusEventKind::kRestarted:
      break;
  }
}

v1::BusHealth CanBusOwner::GetBusHealth() const {
  absl::MutexLock lock(&mu_);
  const CanBusCounters& c = bus_counters_;
  v1::BusHealth health;
  health.set_bus_id(options_.bus_id);
  health.set_kind("can");
  health.set_frames_sent_total(c.frames_sent_total);
  health.set_frames_received_total(c.frames_received_total);
  health.set_error_warning_total(c.error_warning_total);
  health.set_error_passive_total(c.error_passive_total);
  health.set_bus_off_total(c.bus_off_total);
  health.set_other_error_frames_total(c.other_error_frames_total);
  health.set_interface_down_total(c.interface_down_total);
  health.set_setpoints_expired_total(c.setpoints_expired_total);
  return health;
}

void CanBusOwner::HandleBadFrame(const CanFrame& frame, const absl::Status& status,
                                 absl::Time now) {
  // Only standard ids of the wallbox → controller types name a wallbox.
  const int type = frame.extended ? 0 : static_cast<int>(frame.id >> 6);
  const int address = static_cast<int>(frame.id & 0x3F);
  const int index = (type >= static_cast<int>(wallbox::MessageType::kStatus) &&
                     type <= static_cast<int>(wallbox::MessageType::kIdentity))
                        ? FindByAddress(address)
                        : -1;
  if (index < 0) {
    ++bus_counters_.unknown_address_frames_total;
    kLog.Debug("bus %s: dropped %s: %s", options_.bus_id, FrameToString(frame), status.message());
    return;
  }
  Wallbox& w = wallboxes_[index];
  ++w.counters.bad_frames_total;
  if (status.code() == absl::StatusCode::kOutOfRange) {
    ++w.counters.bad_frames_out_of_range_total;
  } else {
    ++w.counters.bad_frames_invalid_total;
  }
  const std::string error =
      absl::StrCat("bad ", wallbox::MessageTypeName(static_cast<wallbox::MessageType>(type)),
                   " frame ", FrameToString(frame), ": ", status.message());
  RecordError(w, error, now);
  const uint64_t count = w.counters.bad_frames_total;
  if (count <= kBadFrameLogFirst || count % kBadFrameLogEvery == 0) {
    kLog.Warning("bus %s device %s (address %d): %s (%d bad frames so far)", options_.bus_id,
                 w.config.device_id, w.config.address, error, count);
  }
}

void CanBusOwner::HandleFrame(const CanFrame& frame, absl::Time now, std::vector<Outgoing>* out) {
  ++bus_counters_.frames_received_total;
  absl::StatusOr<wallbox::Message> decoded = wallbox::Decode(frame);
  if (!decoded.ok()) {
    if (decoded.status().code() == absl::StatusCode::kNotFound) {
      ++bus_counters_.foreign_frames_total;  // another protocol on the bus
      return;
    }
    HandleBadFrame(frame, decoded.status(), now);
    return;
  }
  const int address = wallbox::AddressOf(*decoded);
  if (std::holds_alternative<wallbox::AvailableCurrent>(*decoded) ||
      std::holds_alternative<wallbox::Setpoint>(*decoded) ||
      std::holds_alternative<wallbox::WatchdogConfig>(*decoded)) {
    ++bus_counters_.other_controller_frames_total;
    if (!warned_other_controller_) {
      warned_other_controller_ = true;
      kLog.Warning(
          "bus %s: another controller is sending (%s): two masters on one bus fight over the "
          "wallboxes; check that only evgate owns this bus",
          options_.bus_id, FrameToString(frame));
    }
    return;
  }
  const int index = FindByAddress(address);
  if (index < 0) {
    ++bus_counters_.unknown_address_frames_total;
    if (!warned_unknown_address_[address]) {
      warned_unknown_address_[address] = true;
      kLog.Warning("bus %s: frames from CAN address %d, which site.yaml does not list",
                   options_.bus_id, address);
    }
    return;
  }
  Wallbox& w = wallboxes_[index];
  ++w.counters.frames_received_total;
  w.last_seen = now;

  if (const auto* status = std::get_if<wallbox::Status>(&*decoded)) {
    OnStatus(index, *status, now, out);
  } else if (const auto* m = std::get_if<wallbox::Measurements>(&*decoded)) {
    w.measurements = *m;
    w.measurements_at = now;
    EmitTelemetry(w, now);
  } else if (const auto* e = std::get_if<wallbox::Energy>(&*decoded)) {
    w.energy = *e;
    w.energy_at = now;
    EmitTelemetry(w, now);
  } else if (const auto* fragment = std::get_if<wallbox::RfidFragment>(&*decoded)) {
    if (std::optional<wallbox::RfidTap> tap = rfid_.Add(*fragment)) {
      std::string uid;
      for (uint8_t byte : tap->uid) absl::StrAppendFormat(&uid, "%02X", byte);
      v1::WatchDevicesResponse event;
      event.mutable_rfid_tap()->set_evse_id(w.config.evse_id);
      event.mutable_rfid_tap()->set_id_tag(uid);
      Emit(w.config.device_id, now, std::move(event));
    }
  } else if (const auto* info = std::get_if<wallbox::IdentityInfo>(&*decoded)) {
    // Page 0 at power-up: program the watchdog now rather than after the
    // first Status shows it unconfigured.
    if (!w.status.has_value() || !w.status->watchdog_configured) {
      MaybeConfigureWatchdog(index, now, out);
    }
    if (std::optional<wallbox::Identity> identity = identity_.Add(*info)) {
      OnIdentity(index, *identity, now);
    }
  } else if (const auto* serial = std::get_if<wallbox::IdentitySerial>(&*decoded)) {
    if (std::optional<wallbox::Identity> identity = identity_.Add(*serial)) {
      OnIdentity(index, *identity, now);
    }
  }
}

void CanBusOwner::OnIdentity(int index, const wallbox::Identity& identity, absl::Time now) {
  Wallbox& w = wallboxes_[index];
  if (w.identity.has_value() && *w.identity == identity) return;
  const bool first = !w.identity.has_value();
  w.identity = identity;
  const int model_phases = wallbox::ModelPhases(identity.info.model);
  if (model_phases < static_cast<int>(w.config.phases.size())) {
    RecordError(
        w,
        absl::StrCat("the wallbox reports model ", wallbox::ModelName(identity.info.model), " (",
                     model_phases, " phase), site.yaml wires ", w.config.phases.size(), " phases"),
        now);
    kLog.Warning("bus %s device %s: %s", options_.bus_id, w.config.device_id, w.last_error);
  }
  kLog.Info("bus %s device %s: %s %s, serial %s, firmware %d.%d.%d, max current %d A",
            options_.bus_id, w.config.device_id,
            first ? "found" : "identity changed:", wallbox::ModelName(identity.info.model),
            identity.serial, identity.info.firmware[0], identity.info.firmware[1],
            identity.info.firmware[2], identity.info.max_current_a);
  v1::WatchDevicesResponse event;
  *event.mutable_snapshot() = BuildDevice(w, now);
  Emit(w.config.device_id, now, std::move(event));
  EmitStateChangeIfChanged(w, now);  // capabilities may have narrowed
}

void CanBusOwner::OnStatus(int index, const wallbox::Status& status, absl::Time now,
                           std::vector<Outgoing>* out) {
  Wallbox& w = wallboxes_[index];
  const std::optional<wallbox::Status> previous = w.status;
  w.status = status;
  w.status_at = now;
  if (w.stale) {
    w.stale = false;
    kLog.Info("bus %s device %s: reporting%s", options_.bus_id, w.config.device_id,
              previous.has_value() ? " again" : "");
    v1::WatchDevicesResponse event;
    *event.mutable_link_state_change()->mutable_link() = BuildLink(w);
    Emit(w.config.device_id, now, std::move(event));
  }
  if (previous.has_value() && previous->watchdog_configured && !status.watchdog_configured) {
    ++w.counters.reboots_total;
    kLog.Warning("bus %s device %s: restarted (watchdog no longer configured); reprogramming",
                 options_.bus_id, w.config.device_id);
    w.watchdog_sent_at.reset();
    if (w.command.has_value() && w.command->refresh) w.next_refresh = now;  // resend at once
  }
  // Unconfigured (power-up, reboot), or configured by someone else: a
  // previous evgate process may have programmed another failsafe, so this
  // owner programs every wallbox once when it first hears from it.
  if (!status.watchdog_configured || !w.watchdog_sent_at.has_value()) {
    MaybeConfigureWatchdog(index, now, out);
  }

  if (status.failsafe_active) {
    if (!w.failsafe_since.has_value()) w.failsafe_since = now;
  } else {
    w.failsafe_since.reset();
  }
  if (w.command.has_value() && !w.command->confirmed &&
      status.applied_sequence == w.command->frame.sequence) {
    w.command->confirmed = true;
  }
  if (status.state == wallbox::IecState::kA) {
    w.charged_this_plug = false;
    if (w.inoperative_pending) ApplyInoperative(index, now, out);  // the session ended
  } else if ((status.state == wallbox::IecState::kC || status.state == wallbox::IecState::kD) &&
             status.relay_closed) {
    w.charged_this_plug = true;
  }

  // Faults: one event per ERR bit that appears or goes.
  for (int bit = 0; bit < wallbox::kErrorCodeCount; ++bit) {
    const auto code = static_cast<wallbox::ErrorCode>(bit);
    const bool active = status.HasError(code);
    auto it = w.faults.find(code);
    if (active && it == w.faults.end()) {
      w.faults.emplace(code, now);
      v1::WatchDevicesResponse event;
      event.mutable_fault_raised()->set_evse_id(w.config.evse_id);
      *event.mutable_fault_raised()->mutable_fault() = CaburFault(code, now);
      Emit(w.config.device_id, now, std::move(event));
      kLog.Warning("bus %s device %s: ERR %s", options_.bus_id, w.config.device_id,
                   wallbox::ErrorCodeName(code));
    } else if (!active && it != w.faults.end()) {
      v1::WatchDevicesResponse event;
      event.mutable_fault_cleared()->set_evse_id(w.config.evse_id);
      *event.mutable_fault_cleared()->mutable_fault() = CaburFault(code, it->second);
      Emit(w.config.device_id, now, std::move(event));
      w.faults.erase(it);
      kLog.Info("bus %s device %s: ERR %s cleared", options_.bus_id, w.config.device_id,
                wallbox::ErrorCodeName(code));
    }
  }
  EmitTelemetry(w, now);
  EmitStateChangeIfChanged(w, now);
}

void CanBusOwner::MaybeConfigureWatchdog(int index, absl::Time now, std::vector<Outgoing>* out) {
  Wallbox& w = wallboxes_[index];
  if (w.watchdog_sent_at.has_value() &&
      now - *w.watchdog_sent_at < options_.watchdog_config_min_interval) {
    return;
  }
  wallbox::WatchdogConfig config;
  config.address = w.config.address;
  config.timeout_ms = w.watchdog_timeout_ms;
  config.failsafe_current_a = std::min(w.failsafe_current_a, w.config.max_current_a);
  absl::StatusOr<CanFrame> frame = wallbox::Encode(config);
  if (!frame.ok()) {
    // Config validation keeps this from happening; never send a guess.
    RecordError(w, absl::StrCat("cannot encode WatchdogConfig: ", frame.status().message()), now);
    return;
  }
  w.watchdog_sent_at = now;
  ++w.counters.watchdog_configs_total;
  out->push_back({index, *frame, "WatchdogConfig"});
}

void CanBusOwner::ApplyInoperative(int index, absl::Time now, std::vector<Outgoing>* out) {
  Wallbox& w = wallboxes_[index];
  w.inoperative = true;
  w.inoperative_pending = false;
  SentSetpoint command;
  command.frame.address = w.config.address;
  command.frame.max_current_a = 0;
  command.frame.pause = true;
  command.frame.phase_enabled = {false, false, false};
  for (size_t i = 0; i < w.config.phases.size() && i < 3; ++i)
    command.frame.phase_enabled[i] = true;
  w.sequence = (w.sequence + 1) % 16;
  command.frame.sequence = w.sequence;
  command.first_sent_at = now;
  *command.in_force.mutable_value() = ValueFor(w, 0, /*pause=*/true);
  command.in_force.set_source(v1::SETPOINT_SOURCE_CONTROLLER);
  *command.in_force.mutable_applied_at() = ToProto(now);
  command.in_force.set_batch_id("availability:inoperative");
  absl::StatusOr<CanFrame> frame = wallbox::Encode(command.frame);
  if (frame.ok()) out->push_back({index, *frame, "Setpoint (inoperative)"});
  w.command = command;
  w.next_refresh = now + RefreshPeriod(w);
  kLog.Info("bus %s device %s: inoperative (operator); paused", options_.bus_id,
            w.config.device_id);
  EmitStateChangeIfChanged(w, now);
}

// ---------------------------------------------------------------------------
// Periodic work

void CanBusOwner::RunDueLocked(absl::Time now, std::vector<Outgoing>* out) {
  for (size_t i = 0; i < wallboxes_.size(); ++i) {
    Wallbox& w = wallboxes_[i];
    // Staleness.
    if (!w.stale && now - w.status_at > w.config.stale_after) {
      w.stale = true;
      ++w.counters.stale_total;
      ++w.timeouts_total;
      // A timeout, not an error: last_error without errors_total.
      w.last_error =
          absl::StrCat("no Status frame for ", absl::FormatDuration(now - w.status_at),
                       " (stale after ", absl::FormatDuration(w.config.stale_after), ")");
      w.last_error_at = now;
      kLog.Warning("bus %s device %s: stale: %s", options_.bus_id, w.config.device_id,
                   w.last_error);
      v1::WatchDevicesResponse event;
      *event.mutable_link_state_change()->mutable_link() = BuildLink(w);
      Emit(w.config.device_id, now, std::move(event));
    }
    if (!w.command.has_value()) continue;
    SentSetpoint& command = *w.command;
    // TTL expiry: the failsafe current, once; the wallbox watchdog keeps it.
    if (command.refresh && command.expires_at.has_value() && now >= *command.expires_at) {
      const double failsafe = std::min(w.failsafe_current_a, w.config.max_current_a);
      wallbox::Setpoint setpoint = command.frame;
      setpoint.max_current_a = failsafe;
      setpoint.pause = false;
      w.sequence = (w.sequence + 1) % 16;
      setpoint.sequence = w.sequence;
      absl::StatusOr<CanFrame> frame = wallbox::Encode(setpoint);
      SentSetpoint expired;
      expired.frame = setpoint;
      expired.refresh = false;
      expired.first_sent_at = now;
      *expired.in_force.mutable_value() = ValueFor(w, failsafe, failsafe == 0);
      expired.in_force.set_source(v1::SETPOINT_SOURCE_FAILSAFE);
      *expired.in_force.mutable_applied_at() = ToProto(now);
      kLog.Info("bus %s device %s: setpoint of batch %s expired; failsafe %s", options_.bus_id,
                w.config.device_id, command.in_force.batch_id(), FormatAmps(failsafe));
      w.command = expired;
      ++bus_counters_.setpoints_expired_total;
      if (frame.ok()) {
        out->push_back({static_cast<int>(i), *frame, "failsafe Setpoint"});
      } else {
        RecordError(w, absl::StrCat("cannot encode failsafe Setpoint: ", frame.status().message()),
                    now);
      }
      EmitStateChangeIfChanged(w, now);
      continue;
    }
    // Refresh, so the wallbox watchdog never fires while we are alive.
    if (command.refresh && now >= w.next_refresh) {
      absl::StatusOr<CanFrame> frame = wallbox::Encode(command.frame);
      if (frame.ok()) out->push_back({static_cast<int>(i), *frame, "Setpoint"});
      w.next_refresh = now + RefreshPeriod(w);
    }
    // Not applied: Status keeps coming but does not echo our sequence.
    if (!command.confirmed && !command.not_applied_reported && !w.stale &&
        now - command.first_sent_at > options_.not_applied_after) {
      command.not_applied_reported = true;
      ++w.counters.not_applied_total;
      RecordError(w,
                  absl::StrCat("setpoint sequence ", command.frame.sequence, " not applied after ",
                               absl::FormatDuration(now - command.first_sent_at),
                               " (wallbox reports sequence ",
                               w.status.has_value() ? w.status->applied_sequence : -1, ")"),
                  now);
      kLog.Warning("bus %s device %s: %s", options_.bus_id, w.config.device_id, w.last_error);
    }
  }

  if (now >= next_broadcast_) {
    wallbox::AvailableCurrent available;
    for (const Wallbox& w : wallboxes_) {
      if (!w.command.has_value() || w.command->frame.pause ||
          w.command->in_force.source() != v1::SETPOINT_SOURCE_CONTROLLER ||
          w.command->frame.max_current_a <= 0) {
        continue;
      }
      ++available.active_wallboxes;
      for (site::Phase phase : w.config.phases) {
        available.available_current_a[static_cast<int>(phase)] += w.command->frame.max_current_a;
      }
    }
    for (double& a : available.available_current_a) a = std::min(a, 3000.0);
    available.counter = broadcast_counter_;
    broadcast_counter_ = (broadcast_counter_ + 1) % 16;
    absl::StatusOr<CanFrame> frame = wallbox::Encode(available);
    if (frame.ok()) {
      out->push_back({-1, *frame, "AvailableCurrent"});
    } else {
      kLog.Error("bus %s: cannot encode AvailableCurrent: %s", options_.bus_id,
                 frame.status().message());
    }
    next_broadcast_ = now + options_.available_current_period;
  }
}

absl::Time CanBusOwner::NextDueLocked() const {
  absl::Time next = next_broadcast_;
  for (const Wallbox& w : wallboxes_) {
    if (!w.stale) next = std::min(next, w.status_at + w.config.stale_after);
    if (!w.command.has_value() || !w.command->refresh) continue;
    next = std::min(next, w.next_refresh);
    if (w.command->expires_at.has_value()) next = std::min(next, *w.command->expires_at);
    if (!w.command->confirmed && !w.command->not_applied_reported) {
      next = std::min(next, w.command->first_sent_at + options_.not_applied_after);
    }
  }
  return next;
}

absl::Time CanBusOwner::RunDue() {
  absl::MutexLock send_lock(&send_mu_);
  std::vector<Outgoing> out;
  absl::Time next;
  {
    const absl::Time now = clock_.Now();
    absl::MutexLock lock(&mu_);
    RunDueLocked(now, &out);
    next = NextDueLocked();
  }
  SendAll(out).IgnoreError();  // recorded per wallbox
  Flush();
  return next;
}

absl::Status CanBusOwner::SendAll(const std::vector<Outgoing>& out) {
  absl::Status first_error;
  absl::Status bus_refused;
  for (const Outgoing& o : out) {
    // As in ApplySetpoints: once the bus refuses, the rest are not tried.
    const absl::Status status = bus_refused.ok() ? bus_->Send(o.frame) : bus_refused;
    if (!status.ok() && BusRefused(status)) bus_refused = status;
    if (first_error.ok()) first_error = status;
    const absl::Time now = clock_.Now();
    absl::MutexLock lock(&mu_);
    if (status.ok()) ++bus_counters_.frames_sent_total;
    if (o.wallbox < 0) {
      if (status.ok()) {
        ++bus_counters_.available_current_sent_total;
      } else {
        ++bus_counters_.send_errors_total;
        kLog.Warning("bus %s: sending %s failed: %s", options_.bus_id, o.what, status.message());
      }
      continue;
    }
    Wallbox& w = wallboxes_[o.wallbox];
    if (status.ok()) {
      ++w.counters.frames_sent_total;
    } else {
      ++w.counters.send_errors_total;
      ++bus_counters_.send_errors_total;
      RecordError(w, absl::StrCat("sending ", o.what, " failed: ", status.message()), now);
    }
  }
  return first_error;
}

bool CanBusOwner::PollOnce(absl::Duration max_wait) {
  const BusEvent event = bus_->Receive(max_wait);
  const bool got = event.kind != BusEventKind::kTimeout;
  if (got) HandleEvent(event);
  RunDue();
  return got;
}

// ---------------------------------------------------------------------------
// Control

std::vector<v1::SetpointResult> CanBusOwner::ApplySetpoints(
    const std::vector<v1::Setpoint>& setpoints, absl::Duration ttl, const std::string& batch_id) {
  if (ttl <= absl::ZeroDuration()) ttl = options_.default_ttl;
  absl::MutexLock send_lock(&send_mu_);
  std::vector<v1::SetpointResult> results;
  absl::Status bus_refused;
  for (const v1::Setpoint& setpoint : setpoints) {
    const std::string& evse_id = setpoint.evse_id();
    // 1. Validate and build the frame under the state lock.
    int index;
    v1::SetpointResult result;
    wallbox::Setpoint frame_value;
    CanFrame frame;
    double current = 0;
    bool pause = false;
    {
      absl::MutexLock lock(&mu_);
      index = FindByEvse(evse_id);
      if (index < 0) {
        results.push_back(
            Rejected(evse_id, v1::SETPOINT_REJECT_REASON_UNKNOWN_EVSE,
                     absl::StrCat("EVSE ", evse_id, " is not on CAN bus ", options_.bus_id)));
        continue;
      }
      Wallbox& w = wallboxes_[index];
      auto reject = [&](v1::SetpointRejectReason reason, std::string message) {
        v1::SetpointResult r = Rejected(evse_id, reason, std::move(message));
        *r.mutable_in_force() = InForce(w);
        return r;
      };
      result.set_evse_id(evse_id);
      result.set_status(v1::SETPOINT_STATUS_ACCEPTED);
      const v1::SetpointValue& value = setpoint.value();
      if (value.has_power_limit_w()) {
        results.push_back(reject(v1::SETPOINT_REJECT_REASON_NOT_SUPPORTED,
                                 "an AC EVSE takes a current limit in A, not a power limit"));
        continue;
      }
      if (value.has_pause()) {
        pause = true;
      } else if (value.has_current_limit_a()) {
        std::optional<double> lowest;
        std::string problem;
        for (site::Phase phase : w.config.phases) {
          std::optional<double> v = GetPhase(value.current_limit_a(), phase);
          if (!v.has_value()) {
            problem = absl::StrCat("no current for wired phase ", site::PhaseName(phase));
            break;
          }
          if (!std::isfinite(*v) || *v < 0) {
            problem = absl::StrCat("current ", *v, " A on ", site::PhaseName(phase),
                                   " is not a non-negative number");
            break;
          }
          lowest = lowest.has_value() ? std::min(*lowest, *v) : *v;
        }
        if (!problem.empty() || !lowest.has_value()) {
          results.push_back(reject(v1::SETPOINT_REJECT_REASON_INVALID_VALUE,
                                   problem.empty() ? "no wired phase" : problem));
          continue;
        }
        const double requested = *lowest;
        current = QuantiseDown(requested, w.config.current_step_a);
        if (requested > 0 && current < w.config.min_current_a) {
          results.push_back(
              reject(v1::SETPOINT_REJECT_REASON_INVALID_VALUE,
                     absl::StrCat(FormatAmps(requested), " is below the EVSE minimum ",
                                  FormatAmps(w.config.min_current_a), " after the ",
                                  FormatAmps(w.config.current_step_a), " step; use pause")));
          continue;
        }
        const double max = MaxCurrent(w);
        if (current > max) {
          current = QuantiseDown(max, w.config.current_step_a);
          result.set_status(v1::SETPOINT_STATUS_CLAMPED);
          result.set_message(absl::StrCat(FormatAmps(requested), " clamped to the EVSE maximum ",
                                          FormatAmps(max)));
        }
      } else {
        results.push_back(reject(v1::SETPOINT_REJECT_REASON_INVALID_VALUE, "no value set"));
        continue;
      }
      if (w.inoperative) {
        results.push_back(
            reject(v1::SETPOINT_REJECT_REASON_EVSE_UNAVAILABLE,
                   absl::StrCat("EVSE ", evse_id, " is set inoperative by an operator")));
        continue;
      }
      if (w.stale) {
        results.push_back(
            reject(v1::SETPOINT_REJECT_REASON_DEVICE_OFFLINE,
                   absl::StrCat("wallbox ", w.config.device_id, " is stale (",
                                w.last_error.empty() ? "never reported" : w.last_error,
                                "); it runs on its failsafe")));
        continue;
      }
      frame_value.address = w.config.address;
      frame_value.max_current_a = current;
      frame_value.pause = pause;
      frame_value.phase_enabled = {false, false, false};
      for (size_t i = 0; i < w.config.phases.size() && i < 3; ++i) {
        frame_value.phase_enabled[i] = true;
      }
      frame_value.sequence = (w.sequence + 1) % 16;
      absl::StatusOr<CanFrame> encoded = wallbox::Encode(frame_value);
      if (!encoded.ok()) {
        results.push_back(reject(v1::SETPOINT_REJECT_REASON_INVALID_VALUE,
                                 std::string(encoded.status().message())));
        continue;
      }
      frame = *encoded;
    }

    // 2. Put it on the bus (not holding the state lock), unless the bus
    // already refused a frame of this batch: with a full transmit queue
    // every further frame would wait its whole send timeout.
    const absl::Status sent = bus_refused.ok() ? bus_->Send(frame) : bus_refused;
    if (!sent.ok() && BusRefused(sent)) bus_refused = sent;
    const absl::Time now = clock_.Now();

    // 3. Commit, or keep the previous setpoint in force.
    absl::MutexLock lock(&mu_);
    Wallbox& w = wallboxes_[index];
    if (!sent.ok()) {
      ++w.counters.send_errors_total;
      ++bus_counters_.send_errors_total;
      RecordError(w, absl::StrCat("sending Setpoint failed: ", sent.message()), now);
      v1::SetpointResult r = Rejected(evse_id,
                                      sent.code() == absl::StatusCode::kDeadlineExceeded
                                          ? v1::SETPOINT_REJECT_REASON_TIMEOUT
                                          : v1::SETPOINT_REJECT_REASON_DEVICE_OFFLINE,
                                      std::string(sent.message()));
      *r.mutable_in_force() = InForce(w);
      results.push_back(std::move(r));
      continue;
    }
    ++w.counters.frames_sent_total;
    ++bus_counters_.frames_sent_total;
    w.sequence = frame_value.sequence;
    SentSetpoint command;
    command.frame = frame_value;
    command.first_sent_at = now;
    if (ttl != absl::InfiniteDuration()) command.expires_at = now + ttl;
    *command.in_force.mutable_value() = ValueFor(w, current, pause);
    command.in_force.set_source(v1::SETPOINT_SOURCE_CONTROLLER);
    *command.in_force.mutable_applied_at() = ToProto(now);
    if (command.expires_at.has_value()) {
      *command.in_force.mutable_expires_at() = ToProto(*command.expires_at);
    }
    command.in_force.set_batch_id(batch_id);
    w.command = command;
    w.next_refresh = now + RefreshPeriod(w);
    *result.mutable_in_force() = InForce(w);
    results.push_back(std::move(result));
    EmitStateChangeIfChanged(w, now);
  }
  Flush();
  return results;
}

v1::CommandResponse CanBusOwner::Command(const v1::CommandRequest& request) {
  v1::CommandResponse response;
  absl::MutexLock send_lock(&send_mu_);
  std::vector<Outgoing> out;
  {
    const absl::Time now = clock_.Now();
    absl::MutexLock lock(&mu_);
    const int index = FindByDevice(request.device_id());
    if (index < 0) {
      response.set_status(v1::COMMAND_STATUS_REJECTED);
      response.set_message(
          absl::StrCat("device ", request.device_id(), " is not on CAN bus ", options_.bus_id));
      return response;
    }
    Wallbox& w = wallboxes_[index];
    switch (request.command_case()) {
      case v1::CommandRequest::kTriggerStatusReport: {
        // Status arrives every 200 ms anyway: answer with the state now.
        v1::WatchDevicesResponse event;
        *event.mutable_snapshot() = BuildDevice(w, now);
        Emit(w.config.device_id, now, std::move(event));
        response.set_status(v1::COMMAND_STATUS_ACCEPTED);
        break;
      }
      case v1::CommandRequest::kSetFailsafe: {
        const v1::SetFailsafeCommand& set = request.set_failsafe();
        if (!set.evse_id().empty() && set.evse_id() != w.config.evse_id) {
          response.set_status(v1::COMMAND_STATUS_REJECTED);
          response.set_message(
              absl::StrCat("EVSE ", set.evse_id(), " is not on device ", w.config.device_id));
          break;
        }
        double failsafe = 0;
        if (set.value().has_current_limit_a()) {
          std::optional<double> lowest;
          for (site::Phase phase : w.config.phases) {
            std::optional<double> v = GetPhase(set.value().current_limit_a(), phase);
            if (v.has_value() && std::isfinite(*v)) {
              lowest = lowest.has_value() ? std::min(*lowest, *v) : *v;
            }
          }
          failsafe = QuantiseDown(lowest.value_or(-1), w.config.current_step_a);
        } else if (!set.value().has_pause()) {
          response.set_status(v1::COMMAND_STATUS_REJECTED);
          response.set_message("failsafe value must be a current limit or pause");
          break;
        }
        const int64_t timeout_ms =
            set.has_watchdog_timeout()
                ? google::protobuf::util::TimeUtil::DurationToMilliseconds(set.watchdog_timeout())
                : w.watchdog_timeout_ms;
        if (failsafe < 0 || (failsafe > 0 && failsafe < w.config.min_current_a) ||
            failsafe > w.config.max_current_a || timeout_ms < 100 || timeout_ms > 60000) {
          response.set_status(v1::COMMAND_STATUS_REJECTED);
          response.set_message(absl::StrCat(
              "failsafe must be 0 or ", FormatAmps(w.config.min_current_a), "-",
              FormatAmps(w.config.max_current_a), " on every wired phase, watchdog 100-60000 ms"));
          break;
        }
        w.failsafe_current_a = failsafe;
        w.watchdog_timeout_ms = static_cast<int>(timeout_ms);
        w.watchdog_sent_at.reset();
        MaybeConfigureWatchdog(index, now, &out);
        response.set_status(v1::COMMAND_STATUS_ACCEPTED);
        response.set_message(
            absl::StrCat("watchdog ", timeout_ms, " ms, failsafe ", FormatAmps(failsafe)));
        break;
      }
      case v1::CommandRequest::kChangeAvailability: {
        const v1::ChangeAvailabilityCommand& change = request.change_availability();
        if (!change.evse_id().empty() && change.evse_id() != w.config.evse_id) {
          response.set_status(v1::COMMAND_STATUS_REJECTED);
          response.set_message(
              absl::StrCat("EVSE ", change.evse_id(), " is not on device ", w.config.device_id));
        } else if (change.availability() == v1::AVAILABILITY_INOPERATIVE) {
          const bool plugged = w.status.has_value() && w.status->state != wallbox::IecState::kA;
          if (w.inoperative) {
            response.set_status(v1::COMMAND_STATUS_ACCEPTED);
          } else if (plugged) {
            w.inoperative_pending = true;
            response.set_status(v1::COMMAND_STATUS_SCHEDULED);
            response.set_message("inoperative once the vehicle is unplugged");
          } else {
            ApplyInoperative(index, now, &out);
            response.set_status(v1::COMMAND_STATUS_ACCEPTED);
          }
        } else if (change.availability() == v1::AVAILABILITY_OPERATIVE) {
          w.inoperative = false;
          w.inoperative_pending = false;
          EmitStateChangeIfChanged(w, now);
          response.set_status(v1::COMMAND_STATUS_ACCEPTED);
          response.set_message("operative; paused until the next setpoint");
        } else {
          response.set_status(v1::COMMAND_STATUS_REJECTED);
          response.set_message("availability must be OPERATIVE or INOPERATIVE");
        }
        break;
      }
      case v1::CommandRequest::kReset:
      case v1::CommandRequest::kUnlockConnector:
        response.set_status(v1::COMMAND_STATUS_NOT_SUPPORTED);
        response.set_message("the evgate wallbox CAN protocol has no reset or unlock message");
        break;
      default:
        response.set_status(v1::COMMAND_STATUS_REJECTED);
        response.set_message("no command set");
        break;
    }
  }
  if (absl::Status sent = SendAll(out); !sent.ok()) {
    response.set_status(v1::COMMAND_STATUS_FAILED);
    response.set_message(absl::StrCat("sending WatchdogConfig failed: ", sent.message()));
  }
  Flush();
  return response;
}

// ---------------------------------------------------------------------------
// Lifecycle

absl::Status CanBusOwner::Open() {
  absl::Status status = bus_->Open();
  if (!status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat("CAN bus ", options_.bus_id, ": ", status.message()));
  }
  kLog.Info("bus %s: %s open, %d wallboxes", options_.bus_id, bus_->Describe(),
            static_cast<int>(DeviceIds().size()));
  return absl::OkStatus();
}

absl::Status CanBusOwner::Start() {
  if (absl::Status status = Open(); !status.ok()) return status;
  {
    absl::MutexLock lock(&run_mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void CanBusOwner::Run() {
  absl::Time next_due = RunDue();
  while (true) {
    {
      absl::MutexLock lock(&run_mu_);
      if (stop_) break;
    }
    const absl::Duration wait =
        std::clamp(next_due - clock_.Now(), absl::ZeroDuration(), options_.max_receive_wait);
    const BusEvent event = bus_->Receive(wait);
    if (event.kind != BusEventKind::kTimeout) HandleEvent(event);
    next_due = RunDue();
  }
}

void CanBusOwner::Stop() {
  if (thread_.joinable()) {
    {
      absl::MutexLock lock(&run_mu_);
      stop_ = true;
    }
    thread_.join();
    bus_->Close();
    kLog.Info(
        "bus %s: stopped; the wallboxes fall back to their failsafe when their watchdogs "
        "expire",
        options_.bus_id);
  }
}

// ---------------------------------------------------------------------------
// Site configuration

absl::StatusOr<std::vector<CanWallboxConfig>> CanWallboxesOnBus(const site::SiteConfig& site,
                                                                const site::BusConfig& bus) {
  std::vector<CanWallboxConfig> wallboxes;
  std::vector<std::string> errors;
  for (const site::DeviceConfig& device : site.devices) {
    if (!device.bus.has_value() || *device.bus != bus.id || device.profile == nullptr) continue;
    if (device.profile->bus != site::BusKind::kCan ||
        device.profile->kind != site::DeviceKind::kAcWallbox) {
      errors.push_back(
          absl::StrCat("device ", device.id, " (", device.profile_name, ") is not a CAN wallbox"));
      continue;
    }
    const site::StationConfig* station = nullptr;
    for (const site::StationConfig& s : site.stations) {
      if (s.device == device.id) station = &s;
    }
    if (station == nullptr || station->evses.size() != 1 || !station->evses[0].ac.has_value()) {
      errors.push_back(
          absl::StrCat("device ", device.id, " needs a station with exactly one AC EVSE"));
      continue;
    }
    const site::EvseConfig& evse = station->evses[0];
    CanWallboxConfig config;
    config.device_id = device.id;
    config.profile = device.profile_name;
    config.address = device.address.value_or(0);
    config.station_id = station->id;
    config.evse_id = evse.id;
    config.connector = evse.connector;
    config.phases = evse.phases;
    config.min_current_a = evse.ac->min_current_a;
    config.max_current_a = evse.ac->max_current_a;
    config.current_step_a = evse.ac->current_step_a;
    config.failsafe_current_a = evse.ac->failsafe_current_a;
    // The protocol's rule is 5 missed Status periods; site.yaml may ask for
    // more on a noisy bus, never for less.
    config.stale_after = kStatusPeriod * std::max(device.stale_after_missed_polls, 5);
    if (config.address < wallbox::kMinAddress || config.address > wallbox::kMaxAddress ||
        config.phases.empty() || config.phases.size() > 3) {
      errors.push_back(absl::StrCat("device ", device.id, ": address ", config.address,
                                    " or phases out of range"));
      continue;
    }
    wallboxes.push_back(std::move(config));
  }
  if (!errors.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("CAN bus ", bus.id, ": ", absl::StrJoin(errors, "; ")));
  }
  return wallboxes;
}

absl::StatusOr<std::unique_ptr<devices::DeviceBackend>> MakeCanBackend(const site::SiteConfig& site,
                                                                       const site::BusConfig& bus,
                                                                       const Clock& clock) {
  if (bus.type != site::BusType::kCan || !bus.can.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat("bus ", bus.id, " is not a CAN bus"));
  }
  absl::StatusOr<std::vector<CanWallboxConfig>> wallboxes = CanWallboxesOnBus(site, bus);
  if (!wallboxes.ok()) return wallboxes.status();
  const site::CanSettings& can = *bus.can;
  std::unique_ptr<CanBus> transport;
  if (can.transport == site::CanTransport::kUdp) {
    UdpCanBusOptions options;
    options.name = can.interface;
    options.group = can.udp_group;
    options.port = can.udp_port;
    transport = std::make_unique<UdpCanBus>(options, clock);
  } else {
    SocketCanOptions options;
    options.interface = can.interface;
    // The protocol uses standard ids below 0x400; the kernel drops the rest.
    options.filters = {{0x000, 0x400, false}};
    transport = std::make_unique<SocketCanBus>(options, clock);
  }
  CanBusOwnerOptions options;
  options.bus_id = bus.id;
  return std::make_unique<CanBusOwner>(options, *std::move(wallboxes), std::move(transport), clock);
}

}  // namespace evgate::can
