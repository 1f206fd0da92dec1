#include "services/grid_controller/grid_inputs.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "site_controller/config/api_conversions.h"

namespace evgate::grid_controller {
namespace {

bool VehicleConnected(v1::ConnectorStatus status) {
  switch (status) {
    case v1::CONNECTOR_STATUS_PREPARING:
    case v1::CONNECTOR_STATUS_CHARGING:
    case v1::CONNECTOR_STATUS_SUSPENDED_EV:
    case v1::CONNECTOR_STATUS_SUSPENDED_EVSE:
    case v1::CONNECTOR_STATUS_FINISHING:
      return true;
    default:
      return false;
  }
}

grid::TransferSwitch SwitchOf(v1::TransferSwitchPosition position) {
  switch (position) {
    case v1::TRANSFER_SWITCH_POSITION_ON_GRID:
      return grid::TransferSwitch::kOnGrid;
    case v1::TRANSFER_SWITCH_POSITION_OFF_GRID:
      return grid::TransferSwitch::kOffGrid;
    case v1::TRANSFER_SWITCH_POSITION_OPEN:
      return grid::TransferSwitch::kOpen;
    default:
      return grid::TransferSwitch::kUnknown;
  }
}

bool SameFault(const v1::Fault& a, const v1::Fault& b) {
  return a.code() == b.code() && a.vendor_code() == b.vendor_code();
}

void Raise(google::protobuf::RepeatedPtrField<v1::Fault>& faults, const v1::Fault& fault) {
  for (const v1::Fault& f : faults) {
    if (SameFault(f, fault)) return;
  }
  *faults.Add() = fault;
}

void Clear(google::protobuf::RepeatedPtrField<v1::Fault>& faults, const v1::Fault& fault) {
  for (int i = 0; i < faults.size(); ++i) {
    if (SameFault(faults.Get(i), fault)) {
      faults.DeleteSubrange(i, 1);
      return;
    }
  }
}

const v1::Fault* FirstBlocking(const google::protobuf::RepeatedPtrField<v1::Fault>& faults) {
  for (const v1::Fault& f : faults) {
    if (f.blocks_charging()) return &f;
  }
  return nullptr;
}

std::string FaultText(const v1::Fault& fault) {
  std::string text = fault.vendor_code().empty() ? fault.code() : fault.vendor_code();
  if (!fault.description().empty()) absl::StrAppend(&text, " ", fault.description());
  return text;
}

}  // namespace

GridInputs::GridInputs(std::string box_device_id, std::string grid_meter_device_id,
                       std::vector<std::string> v2x_evse_ids)
    : box_device_id_(std::move(box_device_id)),
      grid_meter_device_id_(std::move(grid_meter_device_id)),
      v2x_evse_ids_(std::move(v2x_evse_ids)) {}

void GridInputs::Reset() {
  devices_.clear();
  evse_device_.clear();
}

bool GridInputs::Watched(const v1::DeviceState& device) const {
  if (device.device_id() == box_device_id_) return true;
  if (!grid_meter_device_id_.empty() && device.device_id() == grid_meter_device_id_) return true;
  for (const v1::EvseState& evse : device.evses()) {
    if (std::find(v2x_evse_ids_.begin(), v2x_evse_ids_.end(), evse.evse_id()) !=
        v2x_evse_ids_.end()) {
      return true;
    }
  }
  return false;
}

// A device that never answered (no last_seen: a driver's snapshot before its first poll) says
// nothing yet; its default values (no grid, switch unknown) must not read as an outage.
bool GridInputs::Reachable(const v1::DeviceState& device) {
  return !device.link().stale() && device.link().has_last_seen();
}

const v1::DeviceState* GridInputs::Device(const std::string& device_id) const {
  auto it = devices_.find(device_id);
  return it == devices_.end() ? nullptr : &it->second;
}

v1::EvseState* GridInputs::MutableEvse(const std::string& device_id, const std::string& evse_id) {
  auto it = devices_.find(device_id);
  if (it == devices_.end()) return nullptr;
  for (v1::EvseState& evse : *it->second.mutable_evses()) {
    if (evse.evse_id() == evse_id) return &evse;
  }
  return nullptr;
}

bool GridInputs::Apply(const v1::WatchDevicesResponse& event) {
  if (event.event_case() == v1::WatchDevicesResponse::kSnapshot) {
    const v1::DeviceState& snapshot = event.snapshot();
    if (!Watched(snapshot)) return false;
    devices_[snapshot.device_id()] = snapshot;
    for (const v1::EvseState& evse : snapshot.evses()) {
      evse_device_[evse.evse_id()] = snapshot.device_id();
    }
    return true;
  }
  auto it = devices_.find(event.device_id());
  if (it == devices_.end()) return false;  // not watched, or no snapshot yet on this stream
  v1::DeviceState& device = it->second;
  switch (event.event_case()) {
    case v1::WatchDevicesResponse::kEvseStateChange:
      if (v1::EvseState* evse =
              MutableEvse(device.device_id(), event.evse_state_change().state().evse_id())) {
        const bool was_connected = VehicleConnected(evse->connector_status());
        *evse = event.evse_state_change().state();
        // A vehicle that just arrived (or left) has no SOC yet: the one in the state is the
        // previous vehicle's last reading; the next telemetry brings the new one.
        if (was_connected != VehicleConnected(evse->connector_status())) {
          evse->mutable_measurements()->clear_soc_pct();
        }
      }
      return true;
    case v1::WatchDevicesResponse::kTelemetry: {
      const v1::Telemetry& t = event.telemetry();
      if (t.has_link()) *device.mutable_link() = t.link();
      if (t.has_meter()) *device.mutable_meter() = t.meter();
      if (t.has_off_grid_box()) *device.mutable_off_grid_box() = t.off_grid_box();
      for (const v1::EvseTelemetry& e : t.evses()) {
        if (v1::EvseState* evse = MutableEvse(device.device_id(), e.evse_id())) {
          *evse->mutable_measurements() = e.measurements();
        }
      }
      return true;
    }
    case v1::WatchDevicesResponse::kLinkStateChange:
      *device.mutable_link() = event.link_state_change().link();
      return true;
    case v1::WatchDevicesResponse::kOffGridBoxChange:
      *device.mutable_off_grid_box() = event.off_grid_box_change();
      return true;
    case v1::WatchDevicesResponse::kFaultRaised:
    case v1::WatchDevicesResponse::kFaultCleared: {
      const bool raised = event.event_case() == v1::WatchDevicesResponse::kFaultRaised;
      const std::string& evse_id =
          raised ? event.fault_raised().evse_id() : event.fault_cleared().evse_id();
      const v1::Fault& fault =
          raised ? event.fault_raised().fault() : event.fault_cleared().fault();
      google::protobuf::RepeatedPtrField<v1::Fault>* faults = device.mutable_faults();
      if (!evse_id.empty()) {
        v1::EvseState* evse = MutableEvse(device.device_id(), evse_id);
        if (evse == nullptr) return true;
        faults = evse->mutable_faults();
      }
      raised ? Raise(*faults, fault) : Clear(*faults, fault);
      return true;
    }
    default:
      return false;
  }
}

grid::Observation GridInputs::Observe() const {
  grid::Observation o;
  if (const v1::DeviceState* box = Device(box_device_id_)) {
    const v1::OffGridBoxState& b = box->off_grid_box();
    o.box.reachable = Reachable(*box);
    o.box.grid_present = b.grid_present();
    o.box.transfer_switch = SwitchOf(b.transfer_switch());
    if (b.has_qf1_closed()) o.box.qf1_closed = b.qf1_closed();
    if (b.has_qf2_closed()) o.box.qf2_closed = b.qf2_closed();
    if (b.has_backup_load_power_w()) o.box.backup_load_power_w = b.backup_load_power_w();
    if (b.has_standby_remaining()) {
      o.box.standby_remaining = api::FromProto(b.standby_remaining());
    }
  }
  for (const std::string& evse_id : v2x_evse_ids_) {
    grid::V2xEvseObservation& seen = o.evses.emplace_back();
    seen.evse_id = evse_id;
    auto device_id = evse_device_.find(evse_id);
    if (device_id == evse_device_.end()) continue;
    const v1::DeviceState* device = Device(device_id->second);
    if (device == nullptr) continue;
    for (const v1::EvseState& evse : device->evses()) {
      if (evse.evse_id() != evse_id) continue;
      seen.reachable = Reachable(*device);
      seen.vehicle_connected = VehicleConnected(evse.connector_status());
      if (evse.measurements().has_soc_pct()) seen.soc_pct = evse.measurements().soc_pct();
      const v1::Fault* fault = FirstBlocking(evse.faults());
      if (fault == nullptr) fault = FirstBlocking(device->faults());
      if (fault != nullptr) {
        seen.blocking_fault = true;
        seen.fault_detail = FaultText(*fault);
      }
    }
  }
  return o;
}

std::optional<v1::OffGridBoxState> GridInputs::box() const {
  const v1::DeviceState* box = Device(box_device_id_);
  if (box == nullptr) return std::nullopt;
  return box->off_grid_box();
}

bool GridInputs::box_reachable() const {
  const v1::DeviceState* box = Device(box_device_id_);
  return box != nullptr && Reachable(*box);
}

std::optional<v1::MeterReading> GridInputs::grid_meter() const {
  const v1::DeviceState* meter = Device(grid_meter_device_id_);
  if (meter == nullptr || !meter->has_meter()) return std::nullopt;
  return meter->meter();
}

std::optional<v1::EvseState> GridInputs::evse(const std::string& evse_id) const {
  auto device_id = evse_device_.find(evse_id);
  if (device_id == evse_device_.end()) return std::nullopt;
  const v1::DeviceState* device = Device(device_id->second);
  if (device == nullptr) return std::nullopt;
  for (const v1::EvseState& evse : device->evses()) {
    if (evse.evse_id() == evse_id) return evse;
  }
  return std::nullopt;
}

}  // namespace evgate::grid_controller
