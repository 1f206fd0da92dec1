#include "device_drivers/modbus/device_reports.h"

#include "absl/strings/str_cat.h"
#include "site_controller/config/api_conversions.h"

namespace evgate::modbus {
namespace {

using ::evgate::api::SetPhase;
using ::evgate::api::ToProto;

// Per-phase values on the site's phases L1..L3 in order (meters, boxes).
void FillPhases(const RegisterValues& values, const Quantity (&q)[3], v1::PhaseValues* out) {
  const site::Phase phases[3] = {site::Phase::kL1, site::Phase::kL2, site::Phase::kL3};
  for (int i = 0; i < 3; ++i) {
    if (auto v = values.Get(q[i])) SetPhase(out, phases[i], *v);
  }
}

}  // namespace

v1::MeterReading MeterReadingOf(const DeviceStatus& status) {
  const RegisterValues& v = status.values;
  v1::MeterReading m;
  FillPhases(v, kCurrent, m.mutable_current_a());
  FillPhases(v, kVoltage, m.mutable_voltage_v());
  FillPhases(v, kPower, m.mutable_power_w());
  if (auto x = v.Get(Quantity::kTotalPower)) m.set_total_power_w(*x);
  if (auto x = v.Get(Quantity::kFrequency)) m.set_frequency_hz(*x);
  if (auto x = v.Get(Quantity::kEnergyImport)) m.set_energy_import_wh(*x);
  if (auto x = v.Get(Quantity::kEnergyExport)) m.set_energy_export_wh(*x);
  if (status.measured_at) *m.mutable_measured_at() = ToProto(*status.measured_at);
  return m;
}

v1::LinkHealth LinkOf(const DeviceStatus& status) {
  v1::LinkHealth link;
  if (status.last_seen) *link.mutable_last_seen() = ToProto(*status.last_seen);
  link.set_requests_total(status.counters.requests_total);
  link.set_errors_total(status.counters.errors_total);
  link.set_timeouts_total(status.counters.timeouts_total);
  link.set_consecutive_failures(status.consecutive_failures);
  link.set_stale(status.stale);
  link.set_last_error(status.last_error);
  if (status.last_error_at) *link.mutable_last_error_at() = ToProto(*status.last_error_at);
  return link;
}

v1::OffGridBoxState BoxStateOf(const DeviceStatus& status) {
  const RegisterValues& v = status.values;
  v1::OffGridBoxState box;
  FillPhases(v, kVoltage, box.mutable_grid_voltage_v());
  const bool grid = v.Get(Quantity::kGridPresent).value_or(0) == 1;
  box.set_grid_present(grid);
  if (auto f = v.Get(Quantity::kFrequency); f && grid) box.set_grid_frequency_hz(*f);
  switch (static_cast<int>(v.Get(Quantity::kTransferSwitch).value_or(0))) {
    case 1:
      box.set_transfer_switch(v1::TRANSFER_SWITCH_POSITION_ON_GRID);
      break;
    case 2:
      box.set_transfer_switch(v1::TRANSFER_SWITCH_POSITION_OFF_GRID);
      break;
    case 3:
      box.set_transfer_switch(v1::TRANSFER_SWITCH_POSITION_OPEN);
      break;
    default:
      box.set_transfer_switch(v1::TRANSFER_SWITCH_POSITION_UNSPECIFIED);
      break;
  }
  if (auto x = v.Get(Quantity::kQf1Closed)) box.set_qf1_closed(*x == 1);
  if (auto x = v.Get(Quantity::kQf2Closed)) box.set_qf2_closed(*x == 1);
  v1::MeterReading* meter = box.mutable_meter_1();
  FillPhases(v, kCurrent, meter->mutable_current_a());
  FillPhases(v, kVoltage, meter->mutable_voltage_v());
  if (auto x = v.Get(Quantity::kTotalPower)) meter->set_total_power_w(*x);
  if (auto x = v.Get(Quantity::kEnergyImport)) meter->set_energy_import_wh(*x);
  if (auto x = v.Get(Quantity::kEnergyExport)) meter->set_energy_export_wh(*x);
  if (status.measured_at) *meter->mutable_measured_at() = ToProto(*status.measured_at);
  if (auto x = v.Get(Quantity::kBackupBatteryVoltage)) box.set_backup_battery_voltage_v(*x);
  if (auto x = v.Get(Quantity::kBackupBatteryOutput)) box.set_backup_battery_output_on(*x == 1);
  if (auto x = v.Get(Quantity::kPnPullInActive)) box.set_pn_pull_in_active(*x == 1);
  if (auto x = v.Get(Quantity::kStandbyRemaining); x && *x > 0) {
    box.mutable_standby_remaining()->set_seconds(static_cast<int64_t>(*x));
  }
  return box;
}

std::string BoxKey(const v1::OffGridBoxState& box) {
  return absl::StrCat(box.grid_present(), "|", box.transfer_switch(), "|",
                      box.has_qf1_closed() ? box.qf1_closed() : -1, "|",
                      box.has_qf2_closed() ? box.qf2_closed() : -1, "|",
                      box.has_backup_battery_output_on() ? box.backup_battery_output_on() : -1, "|",
                      box.has_pn_pull_in_active() ? box.pn_pull_in_active() : -1);
}

v1::Iec61851State IecOf(int code) {
  switch (code) {
    case 2:
    case 3:
      return v1::IEC61851_STATE_A;
    case 4:
    case 5:
      return v1::IEC61851_STATE_B;
    case 6:
    case 7:
      return v1::IEC61851_STATE_C;
    case 9:
      return v1::IEC61851_STATE_E;
    case 10:
      return v1::IEC61851_STATE_F;
    default:
      return v1::IEC61851_STATE_UNSPECIFIED;
  }
}

std::optional<v1::Fault> FaultOf(int code) {
  if (code >= 2 && code <= 7) return std::nullopt;
  v1::Fault f;
  f.set_severity(v1::FAULT_SEVERITY_ERROR);
  f.set_blocks_charging(true);
  f.set_vendor("Heidelberg");
  f.set_vendor_code(absl::StrCat("charging_state=", code));
  if (code == 9) {
    f.set_code("EVSE_STATE_E");
    f.set_component(v1::FAULT_COMPONENT_EV);
    f.set_description("control pilot in state E (no valid pilot / vehicle error)");
    f.set_ocpp_error_code(v1::OCPP_ERROR_CODE_EV_COMMUNICATION_ERROR);
  } else if (code == 10) {
    f.set_code("EVSE_STATE_F");
    f.set_component(v1::FAULT_COMPONENT_CONNECTOR);
    f.set_description("control pilot in state F (EVSE not available)");
    f.set_ocpp_error_code(v1::OCPP_ERROR_CODE_OTHER_ERROR);
  } else {
    f.set_code("EVSE_STATE_UNKNOWN");
    f.set_component(v1::FAULT_COMPONENT_OTHER);
    f.set_description(absl::StrCat("charging state code ", code, " is not one evgate knows"));
    f.set_ocpp_error_code(v1::OCPP_ERROR_CODE_INTERNAL_ERROR);
  }
  return f;
}

}  // namespace evgate::modbus
