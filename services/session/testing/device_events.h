// Builders of DeviceDriver.WatchDevices events for the session service's
// tests and for the fake DeviceDriver peer of the crash test.
#ifndef EVGATE_SERVICES_SESSION_TESTING_DEVICE_EVENTS_H_
#define EVGATE_SERVICES_SESSION_TESTING_DEVICE_EVENTS_H_

#include <optional>
#include <string>
#include <vector>

#include "evgate/v1/device.pb.h"

namespace evgate::session::testing {

// Measured values of an EVSE; absent arguments are left unset.
v1::EvseMeasurements Meter(std::optional<double> import_wh, std::optional<double> power_w = {},
                           std::optional<double> export_wh = {});

// State of one EVSE.
v1::EvseState Evse(const std::string& evse_id, v1::ConnectorStatus status,
                   v1::Iec61851State iec = v1::IEC61851_STATE_UNSPECIFIED,
                   const v1::EvseMeasurements& measurements = {}, uint32_t connector_id = 1);

v1::WatchDevicesResponse Snapshot(const std::string& device_id,
                                  const std::vector<v1::EvseState>& evses, bool stale = false);
v1::WatchDevicesResponse SnapshotComplete();
v1::WatchDevicesResponse StateChange(const std::string& device_id, const v1::EvseState& state);
v1::WatchDevicesResponse Telemetry(const std::string& device_id, const std::string& evse_id,
                                   const v1::EvseMeasurements& measurements);
// `evse_id` empty: a station-wide reader.
v1::WatchDevicesResponse Tap(const std::string& device_id, const std::string& evse_id,
                             const std::string& id_tag);
// The device started transaction `transaction_id` for `id_tag` (OCPP).
v1::WatchDevicesResponse TransactionStarted(const std::string& device_id,
                                            const std::string& evse_id, const std::string& id_tag,
                                            const std::string& transaction_id = "1");
// `evse_id` empty: a device-wide fault.
v1::WatchDevicesResponse FaultRaised(const std::string& device_id, const std::string& evse_id,
                                     const std::string& vendor, const std::string& vendor_code,
                                     bool blocks_charging, const std::string& description = "");
v1::WatchDevicesResponse FaultCleared(const std::string& device_id, const std::string& evse_id,
                                      const std::string& vendor, const std::string& vendor_code);
v1::WatchDevicesResponse LinkChange(const std::string& device_id, bool stale);

}  // namespace evgate::session::testing

#endif  // EVGATE_SERVICES_SESSION_TESTING_DEVICE_EVENTS_H_
