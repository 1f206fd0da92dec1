#include "services/session/testing/device_events.h"

namespace evgate::session::testing {

v1::EvseMeasurements Meter(std::optional<double> import_wh, std::optional<double> power_w,
                           std::optional<double> export_wh) {
  v1::EvseMeasurements m;
  if (import_wh) m.set_energy_import_wh(*import_wh);
  if (power_w) m.set_power_w(*power_w);
  if (export_wh) m.set_energy_export_wh(*export_wh);
  return m;
}

v1::EvseState Evse(const std::string& evse_id, v1::ConnectorStatus status, v1::Iec61851State iec,
                   const v1::EvseMeasurements& measurements, uint32_t connector_id) {
  v1::EvseState state;
  state.set_evse_id(evse_id);
  state.set_connector_id(connector_id);
  state.set_connector_status(status);
  state.set_iec61851_state(iec);
  *state.mutable_measurements() = measurements;
  return state;
}

v1::WatchDevicesResponse Snapshot(const std::string& device_id,
                                  const std::vector<v1::EvseState>& evses, bool stale) {
  v1::WatchDevicesResponse event;
  event.set_device_id(device_id);
  v1::DeviceState* device = event.mutable_snapshot();
  device->set_device_id(device_id);
  device->mutable_link()->set_stale(stale);
  for (const v1::EvseState& e : evses) *device->add_evses() = e;
  return event;
}

v1::WatchDevicesResponse SnapshotComplete() {
  v1::WatchDevicesResponse event;
  event.mutable_initial_snapshot_complete();
  return event;
}

v1::WatchDevicesResponse StateChange(const std::string& device_id, const v1::EvseState& state) {
  v1::WatchDevicesResponse event;
  event.set_device_id(device_id);
  *event.mutable_evse_state_change()->mutable_state() = state;
  return event;
}

v1::WatchDevicesResponse Telemetry(const std::string& device_id, const std::string& evse_id,
                                   const v1::EvseMeasurements& measurements) {
  v1::WatchDevicesResponse event;
  event.set_device_id(device_id);
  v1::EvseTelemetry* evse = event.mutable_telemetry()->add_evses();
  evse->set_evse_id(evse_id);
  *evse->mutable_measurements() = measurements;
  return event;
}

v1::WatchDevicesResponse Tap(const std::string& device_id, const std::string& evse_id,
                             const std::string& id_tag) {
  v1::WatchDevicesResponse event;
  event.set_device_id(device_id);
  event.mutable_rfid_tap()->set_evse_id(evse_id);
  event.mutable_rfid_tap()->set_id_tag(id_tag);
  return event;
}

v1::WatchDevicesResponse TransactionStarted(const std::string& device_id,
                                            const std::string& evse_id, const std::string& id_tag,
                                            const std::string& transaction_id) {
  v1::WatchDevicesResponse event;
  event.set_device_id(device_id);
  v1::TransactionStarted* started = event.mutable_transaction_started();
  started->set_evse_id(evse_id);
  started->set_id_tag(id_tag);
  started->set_transaction_id(transaction_id);
  return event;
}

v1::WatchDevicesResponse FaultRaised(const std::string& device_id, const std::string& evse_id,
                                     const std::string& vendor, const std::string& vendor_code,
                                     bool blocks_charging, const std::string& description) {
  v1::WatchDevicesResponse event;
  event.set_device_id(device_id);
  event.mutable_fault_raised()->set_evse_id(evse_id);
  v1::Fault* fault = event.mutable_fault_raised()->mutable_fault();
  fault->set_code("TEST_FAULT");
  fault->set_vendor(vendor);
  fault->set_vendor_code(vendor_code);
  fault->set_blocks_charging(blocks_charging);
  fault->set_description(description);
  return event;
}

v1::WatchDevicesResponse FaultCleared(const std::string& device_id, const std::string& evse_id,
                                      const std::string& vendor, const std::string& vendor_code) {
  v1::WatchDevicesResponse event;
  event.set_device_id(device_id);
  event.mutable_fault_cleared()->set_evse_id(evse_id);
  v1::Fault* fault = event.mutable_fault_cleared()->mutable_fault();
  fault->set_code("TEST_FAULT");
  fault->set_vendor(vendor);
  fault->set_vendor_code(vendor_code);
  return event;
}

v1::WatchDevicesResponse LinkChange(const std::string& device_id, bool stale) {
  v1::WatchDevicesResponse event;
  event.set_device_id(device_id);
  event.mutable_link_state_change()->mutable_link()->set_stale(stale);
  return event;
}

}  // namespace evgate::session::testing
