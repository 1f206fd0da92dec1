// What the grid controller knows of the devices it needs: the off-grid box, the chargers of
// the bidirectional EVSEs and the grid meter, kept from DeviceDriver.WatchDevices (snapshots,
// then changes) and read as the grid-mode machine's Observation.
//
// Reading rules:
//   - a device is reachable while a snapshot of it arrived on the current stream and its link
//     has answered (last_seen) and is not stale; a lost stream makes everything unknown
//     (unreachable) until new snapshots;
//   - a vehicle is connected while its EVSE's connector status is Preparing, Charging,
//     SuspendedEV, SuspendedEVSE or Finishing;
//   - a vehicle's SOC is known from the first telemetry after it arrived (the state change of
//     its arrival carries the previous vehicle's last reading, which is dropped);
//   - a blocking fault is any active fault with blocks_charging on the EVSE or its device;
//   - an unspecified transfer switch position is reported as unknown, never as on grid.
//
// Thread-compatible.
#ifndef EVGATE_SERVICES_GRID_CONTROLLER_GRID_INPUTS_H_
#define EVGATE_SERVICES_GRID_CONTROLLER_GRID_INPUTS_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "evgate/v1/device.pb.h"
#include "site_controller/grid/grid_mode_machine.h"

namespace evgate::grid_controller {

class GridInputs {
 public:
  GridInputs(std::string box_device_id, std::string grid_meter_device_id,
             std::vector<std::string> v2x_evse_ids);

  // A new stream: everything known so far may be out of date.
  void Reset();
  // Applies one event. Returns true when it concerned a device the grid controller watches.
  bool Apply(const v1::WatchDevicesResponse& event);

  grid::Observation Observe() const;

  // The box's last state (nullopt before its first snapshot).
  std::optional<v1::OffGridBoxState> box() const;
  bool box_reachable() const;
  std::optional<v1::MeterReading> grid_meter() const;
  std::optional<v1::EvseState> evse(const std::string& evse_id) const;

 private:
  const v1::DeviceState* Device(const std::string& device_id) const;
  v1::EvseState* MutableEvse(const std::string& device_id, const std::string& evse_id);
  bool Watched(const v1::DeviceState& device) const;
  static bool Reachable(const v1::DeviceState& device);

  const std::string box_device_id_;
  const std::string grid_meter_device_id_;
  const std::vector<std::string> v2x_evse_ids_;
  // Snapshots of the watched devices, with the changes applied, by device id.
  std::map<std::string, v1::DeviceState> devices_;
  // The device of each V2X EVSE, as the snapshots say.
  std::map<std::string, std::string> evse_device_;
};

}  // namespace evgate::grid_controller

#endif  // EVGATE_SERVICES_GRID_CONTROLLER_GRID_INPUTS_H_
