// The Simulator API side of SiteSimulator: what it shows of each simulated
// device (List, the Describe* views) and the gRPC handlers that serve it.
// The physics, the buses and the controls are in site_simulator.cc.
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "device_drivers/can/wallbox_protocol.h"
#include "device_drivers/sim/site_simulator.h"
#include "google/protobuf/util/time_util.h"
#include "runtime/grpc_status.h"
#include "site_controller/config/api_conversions.h"

namespace evgate::sim {
namespace {

using ::evgate::api::ToProto;
using ::google::protobuf::util::TimeUtil;
namespace wb = can::wallbox;

constexpr uint16_t kSdmImportKwh = 0x0048;
constexpr uint16_t kSdmExportKwh = 0x004A;

// The control pilot state an OCPP connector status implies.
v1::Iec61851State IecStateOfOcppStatus(const std::string& status) {
  if (status == "Charging") return v1::IEC61851_STATE_C;
  if (status == "Faulted") return v1::IEC61851_STATE_F;
  if (status == "Preparing" || status == "SuspendedEV" || status == "SuspendedEVSE" ||
      status == "Finishing") {
    return v1::IEC61851_STATE_B;
  }
  return v1::IEC61851_STATE_A;
}

v1::Iec61851State ToProto(wb::IecState state) {
  return static_cast<v1::Iec61851State>(static_cast<int>(state) + 1);
}

v1::TransferSwitchPosition ToProto(OffGridBoxSimulator::Switch position) {
  switch (position) {
    case OffGridBoxSimulator::Switch::kOnGrid:
      return v1::TRANSFER_SWITCH_POSITION_ON_GRID;
    case OffGridBoxSimulator::Switch::kOffGrid:
      return v1::TRANSFER_SWITCH_POSITION_OFF_GRID;
    case OffGridBoxSimulator::Switch::kOpen:
      return v1::TRANSFER_SWITCH_POSITION_OPEN;
    case OffGridBoxSimulator::Switch::kUnknown:
      break;
  }
  return v1::TRANSFER_SWITCH_POSITION_UNSPECIFIED;
}

// A float32 of an SDM630 register image, high word first.
double RegisterFloat(const std::vector<uint16_t>& registers, uint16_t address) {
  if (address + 1u >= registers.size()) return 0;
  const uint32_t bits = (static_cast<uint32_t>(registers[address]) << 16) | registers[address + 1];
  float value = 0;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

}  // namespace

// ---- describing ----------------------------------------------------------------

v1::SimulatedEvse SiteSimulator::DescribeEvseLocked(const Evse& evse) {
  v1::SimulatedEvse out;
  out.set_evse_id(evse.config->id);
  const Device& device = *evse.device;
  std::array<double, 3> offered{};
  std::array<double, 3> drawn{};
  if (device.kind == Kind::kCabur) {
    std::optional<CaburWallboxSnapshot> snap =
        device.can->host->Snapshot(device.config->address.value_or(0));
    if (snap) {
      out.set_iec61851_state(ToProto(snap->state));
      out.set_relay_closed(snap->relay_closed);
      offered = snap->offered_current_a;
      drawn = snap->current_a;
      out.set_failsafe_active(snap->failsafe_active);
      out.set_failsafe_current_a(snap->failsafe_current_a);
      *out.mutable_watchdog_timeout() = TimeUtil::MillisecondsToDuration(snap->watchdog_timeout_ms);
      out.set_watchdog_configured(snap->watchdog_configured);
      out.set_paused(snap->paused);
      out.set_session_energy_wh(snap->session_energy_wh);
      out.set_lifetime_energy_wh(snap->lifetime_energy_wh);
      for (int i = 0; i < wb::kErrorCodeCount; ++i) {
        const auto code = static_cast<wb::ErrorCode>(i);
        if (snap->errors & wb::ErrorBit(code)) {
          out.add_active_faults(std::string(wb::ErrorCodeName(code)));
        }
      }
    }
  } else if (device.kind == Kind::kOcpp) {
    const absl::Time now = clock_.Now();
    if (std::optional<OcppSimConnectorView> view =
            device.ocpp->Describe(evse.config->connector, now)) {
      drawn = device.ocpp->AcCurrent(evse.config->connector);
      // The limit, as the AC current per phase it allows.
      const int phases = std::clamp(static_cast<int>(evse.config->phases.size()), 1, 3);
      const double efficiency = evse.config->dc ? evse.config->dc->efficiency : 1.0;
      for (int p = 0; p < phases; ++p) {
        offered[p] =
            view->limit_w / std::max(0.01, efficiency) / (phases * config_.grid.nominal_voltage_v);
      }
      out.set_iec61851_state(IecStateOfOcppStatus(view->status));
      out.set_relay_closed(view->power_w > 0);
      out.set_paused(view->status == "SuspendedEVSE");
      out.set_session_energy_wh(view->session_energy_wh);
      out.set_lifetime_energy_wh(view->energy_register_wh);
      out.set_ocpp_status(view->status);
      out.set_power_w(view->power_w);
      out.set_offered_power_w(view->limit_w);
      out.set_transaction_id(view->transaction_id.value_or(0));
      if (!view->vendor_error_code.empty()) out.add_active_faults(view->vendor_error_code);
      if (evse.vehicle && view->vehicle) {
        out.mutable_vehicle()->set_max_power_w(view->vehicle->max_power_w);
        out.mutable_vehicle()->set_soc_pct(view->soc_pct);
      }
    }
  } else if (device.kind == Kind::kHeidelberg) {
    HeidelbergSimulator& box = *device.heidelberg;
    drawn = box.PhaseCurrents();
    const double limit = box.current_limit_a();
    const int phases = evse.config->phases.size() == 1 ? 1 : 3;
    for (int p = 0; p < phases; ++p) offered[p] = limit;
    const std::set<std::string>& faults = faults_[&device];
    v1::Iec61851State state = v1::IEC61851_STATE_A;
    if (faults.count("STATE_E")) {
      state = v1::IEC61851_STATE_E;
    } else if (faults.count("STATE_F")) {
      state = v1::IEC61851_STATE_F;
    } else if (drawn[0] > 0 || drawn[1] > 0 || drawn[2] > 0) {
      state = v1::IEC61851_STATE_C;
    } else if (evse.vehicle) {
      state = v1::IEC61851_STATE_B;
    }
    out.set_iec61851_state(state);
    out.set_relay_closed(state == v1::IEC61851_STATE_C);
    out.set_failsafe_active(box.in_failsafe());
    // Registers 261/262: 0.1 A, below 6 A means 0.
    const uint16_t failsafe = box.holding(262);
    out.set_failsafe_current_a(failsafe < 60 ? 0.0 : failsafe / 10.0);
    if (const uint16_t watchdog_ms = box.holding(257); watchdog_ms > 0) {
      *out.mutable_watchdog_timeout() = TimeUtil::MillisecondsToDuration(watchdog_ms);
    }
    out.set_paused(!box.in_failsafe() && limit == 0);
    out.set_lifetime_energy_wh(box.energy_wh());
    if (evse.vehicle) {
      out.set_session_energy_wh(box.energy_wh() - evse.vehicle->energy_at_plug_in_wh);
    }
    for (const std::string& code : faults) out.add_active_faults(code);
  }
  const PhaseArray offered_site = ToSitePhases(evse, offered);
  const PhaseArray drawn_site = ToSitePhases(evse, drawn);
  for (site::Phase phase : evse.config->phases) {
    api::SetPhase(out.mutable_offered_current_a(), phase, offered_site[site::PhaseIndex(phase)]);
    api::SetPhase(out.mutable_current_a(), phase, drawn_site[site::PhaseIndex(phase)]);
  }
  if (evse.vehicle) {
    v1::SimulatedVehicle* vehicle = out.mutable_vehicle();
    vehicle->set_max_current_a(evse.vehicle->max_current_a);
    vehicle->set_phases(evse.vehicle->phases);
    vehicle->set_energy_to_full_wh(evse.vehicle->energy_to_full_wh);
    vehicle->set_full(evse.vehicle->full);
    vehicle->set_pending_id_tag(evse.vehicle->card_text);
  }
  return out;
}

v1::SimulatedDevice SiteSimulator::DescribeLocked(const Device& device) {
  v1::SimulatedDevice out;
  const site::DeviceConfig& config = *device.config;
  out.set_device_id(config.id);
  out.set_profile(std::string(config.profile->name));
  out.set_kind(ToProto(config.profile->kind));
  out.set_bus_id(config.bus.value_or(""));
  if (config.address) {
    out.set_address(absl::StrCat(*config.address));
  } else if (config.charge_point_id) {
    out.set_address(*config.charge_point_id);
  }
  if (device.kind == Kind::kNone) {
    out.set_simulated(false);
    out.set_not_simulated_reason(device.not_simulated_reason);
    return out;
  }
  out.set_simulated(true);
  out.set_endpoint(device.modbus != nullptr ? device.modbus->endpoint
                   : device.can != nullptr  ? device.can->endpoint
                                            : device.ocpp_endpoint);
  auto responding = responding_.find(&device);
  out.set_responding(responding == responding_.end() || responding->second);
  const std::set<std::string>& faults = faults_[&device];
  switch (device.kind) {
    case Kind::kSdm630: {
      out.set_measures_circuit_id(device.measures);
      const MeterState& state = meter_state_[&device];
      v1::MeterReading* meter = out.mutable_meter();
      double total_w = 0;
      for (site::Phase phase : config_.grid.phases) {
        const int p = site::PhaseIndex(phase);
        api::SetPhase(meter->mutable_current_a(), phase, state.current_a[p]);
        api::SetPhase(meter->mutable_voltage_v(), phase, state.voltage_v[p]);
        api::SetPhase(meter->mutable_power_w(), phase, state.voltage_v[p] * state.current_a[p]);
        total_w += state.voltage_v[p] * state.current_a[p];
      }
      meter->set_total_power_w(total_w);
      meter->set_frequency_hz(kGridFrequencyHz);
      const std::vector<uint16_t> registers = device.meter->InputRegisters();
      meter->set_energy_import_wh(RegisterFloat(registers, kSdmImportKwh) * 1000);
      meter->set_energy_export_wh(RegisterFloat(registers, kSdmExportKwh) * 1000);
      *meter->mutable_measured_at() = ToProto(clock_.Now());
      break;
    }
    case Kind::kOffGridBox: {
      v1::SimulatedOffGridBox* box = out.mutable_off_grid_box();
      box->set_grid_present(grid_present_ && faults.count("GRID_LOSS") == 0);
      box->set_transfer_switch(ToProto(device.box->transfer_switch()));
      box->set_shut_down(device.box->shut_down());
      break;
    }
    case Kind::kCabur:
    case Kind::kHeidelberg:
    case Kind::kOcpp:
      for (const Evse* evse : device.evses) *out.add_evses() = DescribeEvseLocked(*evse);
      break;
    case Kind::kNone:
      break;
  }
  if (device.kind != Kind::kCabur && device.kind != Kind::kHeidelberg) {
    for (const std::string& code : faults) out.add_active_faults(code);
  }
  return out;
}

v1::ListSimulatedDevicesResponse SiteSimulator::List() {
  absl::MutexLock lock(&mu_);
  v1::ListSimulatedDevicesResponse out;
  for (const auto& device : devices_) *out.add_devices() = DescribeLocked(*device);
  v1::BuildingLoad* building = out.mutable_building_load();
  for (site::Phase phase : config_.grid.phases) {
    api::SetPhase(building->mutable_current_a(), phase, building_a_[site::PhaseIndex(phase)]);
  }
  building->set_from_profile(!building_override_.has_value());
  *out.mutable_at() = ToProto(clock_.Now());
  return out;
}

// ---- gRPC ----------------------------------------------------------------------

grpc::Status SiteSimulator::ListSimulatedDevices(grpc::ServerContext* /*context*/,
                                                 const v1::ListSimulatedDevicesRequest* /*request*/,
                                                 v1::ListSimulatedDevicesResponse* response) {
  *response = List();
  return grpc::Status::OK;
}

grpc::Status SiteSimulator::PlugIn(grpc::ServerContext* /*context*/,
                                   const v1::PlugInRequest* request, v1::PlugInResponse* response) {
  absl::StatusOr<v1::SimulatedEvse> evse =
      PlugIn(request->evse_id(),
             {request->max_current_a(), request->phases(), request->energy_to_full_wh(),
              request->id_tag(), request->max_power_w(),
              request->has_soc_pct() ? std::optional<double>(request->soc_pct()) : std::nullopt});
  if (!evse.ok()) return ToGrpc(evse.status());
  *response->mutable_evse() = *std::move(evse);
  return grpc::Status::OK;
}

grpc::Status SiteSimulator::Unplug(grpc::ServerContext* /*context*/,
                                   const v1::UnplugRequest* request, v1::UnplugResponse* response) {
  absl::StatusOr<v1::SimulatedEvse> evse = Unplug(request->evse_id());
  if (!evse.ok()) return ToGrpc(evse.status());
  *response->mutable_evse() = *std::move(evse);
  return grpc::Status::OK;
}

grpc::Status SiteSimulator::TapCard(grpc::ServerContext* /*context*/,
                                    const v1::TapCardRequest* request,
                                    v1::TapCardResponse* /*response*/) {
  return ToGrpc(TapCard(request->evse_id(), request->id_tag()));
}

grpc::Status SiteSimulator::InjectFault(grpc::ServerContext* /*context*/,
                                        const v1::InjectFaultRequest* request,
                                        v1::InjectFaultResponse* response) {
  absl::StatusOr<v1::SimulatedDevice> device =
      SetFault(request->target_id(), request->vendor_code(), true);
  if (!device.ok()) return ToGrpc(device.status());
  *response->mutable_device() = *std::move(device);
  return grpc::Status::OK;
}

grpc::Status SiteSimulator::ClearFault(grpc::ServerContext* /*context*/,
                                       const v1::ClearFaultRequest* request,
                                       v1::ClearFaultResponse* response) {
  absl::StatusOr<v1::SimulatedDevice> device =
      SetFault(request->target_id(), request->vendor_code(), false);
  if (!device.ok()) return ToGrpc(device.status());
  *response->mutable_device() = *std::move(device);
  return grpc::Status::OK;
}

grpc::Status SiteSimulator::SetDeviceResponding(grpc::ServerContext* /*context*/,
                                                const v1::SetDeviceRespondingRequest* request,
                                                v1::SetDeviceRespondingResponse* response) {
  absl::StatusOr<v1::SimulatedDevice> device =
      SetResponding(request->target_id(), request->responding());
  if (!device.ok()) return ToGrpc(device.status());
  *response->mutable_device() = *std::move(device);
  return grpc::Status::OK;
}

grpc::Status SiteSimulator::SetBuildingLoad(grpc::ServerContext* /*context*/,
                                            const v1::SetBuildingLoadRequest* request,
                                            v1::SetBuildingLoadResponse* response) {
  std::optional<std::array<double, 3>> load;
  switch (request->load_case()) {
    case v1::SetBuildingLoadRequest::kCurrentA: {
      const v1::PhaseValues& a = request->current_a();
      load = std::array<double, 3>{a.l1(), a.l2(), a.l3()};
      break;
    }
    case v1::SetBuildingLoadRequest::kFollowProfile:
      if (!request->follow_profile()) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "follow_profile must be true when set");
      }
      break;
    case v1::SetBuildingLoadRequest::LOAD_NOT_SET:
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "give current_a (per phase) or follow_profile");
  }
  absl::StatusOr<v1::BuildingLoad> building = SetBuildingLoad(load);
  if (!building.ok()) return ToGrpc(building.status());
  *response->mutable_building_load() = *std::move(building);
  return grpc::Status::OK;
}

grpc::Status SiteSimulator::SetGrid(grpc::ServerContext* /*context*/,
                                    const v1::SetGridRequest* request,
                                    v1::SetGridResponse* /*response*/) {
  SetGridPresent(request->present());
  return grpc::Status::OK;
}

grpc::Status SiteSimulator::PressBackupBatteryButton(
    grpc::ServerContext* /*context*/, const v1::PressBackupBatteryButtonRequest* request,
    v1::PressBackupBatteryButtonResponse* /*response*/) {
  return ToGrpc(PressBackupBatteryButton(request->device_id()));
}

}  // namespace evgate::sim
