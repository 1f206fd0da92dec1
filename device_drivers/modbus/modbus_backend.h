// ModbusBackend: the DeviceBackend (device_drivers/driver/device_backend.h)
// of one Modbus bus, an RS-485 port or a Modbus TCP link, with every device
// site.yaml puts on it. It owns the bus through a ModbusBusOwner and
// translates between the devices' registers and the public protos.
//
// Meters (eastron_sdm630, generic_meter): a MeterReading from every fast
// poll; LinkHealth from the owner's counters.
//
// Heidelberg Energy Control wallboxes (heidelberg_energy_control), one AC
// EVSE each:
//   - State: IEC 61851 state from the charging-state register (2/3 A, 4/5 B,
//     6/7 C; 9 E, 10 F; the odd code = the box allows charging), connector
//     status (A available, or unavailable when locked by an operator; B
//     preparing, or suspended by the EV when allowed, by the EVSE when paused;
//     C charging, or suspended by the EVSE when not allowed; E/F and unknown
//     codes faulted, with a fault), relay closed in state C2, measurements
//     mapped to site phases through the EVSE's `phases`, capabilities from
//     site.yaml.
//   - Programming: when the box is first seen and whenever it comes back
//     (stale -> live, or its settings read back different, as after a power
//     cycle) the driver writes, in order: the watchdog timeout (about the
//     setpoint TTL, never below 3 poll periods), standby disabled (258 = 4, a
//     sleeping box stops answering), the remote lock (from the operator's
//     availability), the failsafe current (262), and the current limit in
//     force (261): the controller's setpoint while it is valid, else the
//     failsafe. So a box the driver cannot reach, or whose gateway died,
//     runs at its failsafe within one watchdog period.
//   - ApplySetpoints: current_limit_a -> the minimum over the EVSE's wired
//     site phases (a wired phase without a value is INVALID_VALUE), rounded
//     down to the EVSE's step, clamped to [min, max] (CLAMPED); > 0 but
//     below min after rounding is rejected (INVALID_VALUE; pause instead);
//     pause -> 0 A; power_limit_w -> NOT_SUPPORTED; a stale box ->
//     DEVICE_OFFLINE; a box in fault or locked -> EVSE_UNAVAILABLE. The value
//     is written to 261 and read back; a refused write is DEVICE_REJECTED, a
//     write without answer TIMEOUT. A refresh with the value in force reads
//     261 back (one read, no write) and extends the validity only when the
//     box holds that value; a box holding another value gets it written
//     again, a box that does not answer the read is rejected as for a write
//     (TIMEOUT, ...) and its validity is not extended. The slow poll checks
//     261 too, between refreshes.
//   - TTL: a setpoint not refreshed within `ttl` falls back to the failsafe:
//     the driver writes it and publishes the change (source FAILSAFE).
//   - Commands: set_failsafe (value + watchdog timeout, programmed at once),
//     change_availability (remote lock), trigger_status_report (poll now);
//     reset and unlock_connector are NOT_SUPPORTED.
//
// V2X off-grid boxes (v2x_offgrid_box, docs/protocols/offgrid-box.md): an
// OffGridBoxState, `off_grid_box_change` when grid presence, the transfer
// switch, QF1/QF2, the backup battery output or the P-N pull-in change. Its
// commands (TransferToOffGrid() ... below) are DeviceDriver.Command
// `off_grid_box`, for the grid controller.
//
// Events: `telemetry` after every successful poll of a device,
// `link_state_change` when a device turns stale or recovers,
// `evse_state_change` when an EVSE's state, connector status, relay,
// setpoint in force or faults change, `fault_raised` / `fault_cleared`.
//
// Threads: the bus owner's polling thread (polls, programming, events) and a
// timer thread (setpoint expiry), both started by Start(). Tests leave them
// off and call PollOnce() / CheckExpiry() with a FakeClock. Thread-safe.
#ifndef EVGATE_DEVICE_DRIVERS_MODBUS_MODBUS_BACKEND_H_
#define EVGATE_DEVICE_DRIVERS_MODBUS_MODBUS_BACKEND_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "device_drivers/driver/device_backend.h"
#include "device_drivers/modbus/bus_owner.h"
#include "device_drivers/modbus/modbus_transport.h"
#include "device_drivers/modbus/register_map.h"
#include "runtime/clock.h"
#include "site_controller/config/site_config.h"

namespace evgate::modbus {

// One device of the bus and what the backend needs to drive it.
struct ModbusDeviceSetup {
  PolledDevice polled;  // id, unit, register map, periods, priority
  std::string profile;  // site.yaml profile name
  site::DeviceKind kind = site::DeviceKind::kMeter;
  // AC wallboxes: the station and its EVSE from site.yaml.
  std::string station_id;
  std::optional<site::EvseConfig> evse;
};

struct ModbusBackendOptions {
  // Watchdog timeout programmed before any setpoint brought a TTL.
  absl::Duration default_watchdog = absl::Seconds(10);
};

// The state of an off-grid box the grid controller needs beyond the proto.
struct OffGridBoxStatus {
  evgate::v1::OffGridBoxState state;
  std::optional<absl::Duration> standby_remaining;  // countdown running
  std::optional<absl::Duration> standby_countdown;  // the setting
  bool stale = true;
};

class ModbusBackend final : public devices::DeviceBackend {
 public:
  // `devices` must use maps that outlive the backend (the built-in maps, or
  // maps passed in `owned_maps`).
  ModbusBackend(BusOptions bus, std::vector<ModbusDeviceSetup> devices,
                std::unique_ptr<ModbusTransport> transport, const Clock& clock,
                ModbusBackendOptions options = {},
                std::vector<std::unique_ptr<RegisterMap>> owned_maps = {});
  ~ModbusBackend() override;
  ModbusBackend(const ModbusBackend&) = delete;
  ModbusBackend& operator=(const ModbusBackend&) = delete;

  // devices::DeviceBackend
  std::string bus_id() const override;
  std::vector<std::string> DeviceIds() const override;
  std::optional<evgate::v1::DeviceState> GetDevice(const std::string& device_id) const override;
  evgate::v1::BusHealth GetBusHealth() const override;
  std::vector<std::string> EvseIds() const override;
  std::vector<std::optional<evgate::v1::SetpointValue>> SetpointsInForce(
      const std::vector<std::string>& evse_ids) const override;
  std::vector<evgate::v1::SetpointResult> ApplySetpoints(
      const std::vector<evgate::v1::Setpoint>& setpoints, absl::Duration ttl,
      const std::string& batch_id) override;
  evgate::v1::CommandResponse Command(const evgate::v1::CommandRequest& request) override;
  void SetSink(devices::DeviceEventSink* sink) override;
  absl::Status Start() override;
  void Stop() override;

  // Off-grid box commands (docs/protocols/offgrid-box.md), for the grid
  // controller. Errors: kNotFound (no such box on this bus), kUnavailable
  // (the box is stale), kFailedPrecondition (the box refused: no grid for a
  // transfer back, QF1 open), kOutOfRange (a countdown outside 0-900 s),
  // kDeadlineExceeded (no answer).
  absl::Status TransferToOffGrid(const std::string& device_id);
  absl::Status TransferToOnGrid(const std::string& device_id);
  absl::Status SetPnPullIn(const std::string& device_id, bool enable);
  absl::Status SetStandbyCountdown(const std::string& device_id, absl::Duration countdown);
  std::optional<OffGridBoxStatus> OffGridBox(const std::string& device_id) const;

  // Without Start(): one bus transaction (see ModbusBusOwner::PollOnce),
  // then CheckExpiry(). Returns when the next transaction is due.
  absl::Time PollOnce();
  // Falls back to the failsafe on every EVSE whose setpoint expired.
  // Returns the next expiry (InfiniteFuture if none).
  absl::Time CheckExpiry();

 private:
  struct Evse;
  struct Device;

  Device* Find(const std::string& device_id);
  const Device* Find(const std::string& device_id) const;
  Device* FindByEvse(const std::string& evse_id);

  void OnBusEvent(const DeviceStatus& status, BusEvent event);
  // Events and bookkeeping of one bus event; true when the wallbox needs
  // programming.
  bool HandleBusEvent(Device* device, const DeviceStatus& status, BusEvent event);
  // Reads one field of `device`'s map now (ModbusBusOwner::Read).
  absl::StatusOr<double> ReadField(const Device& device, Quantity quantity);
  // Writes one writable field of `device`'s map.
  WriteResult WriteField(const Device& device, Quantity quantity, double value);
  // Programs a wallbox (see the header comment). Needs control_mu_.
  absl::Status ProgramWallbox(Device& device) ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_);
  // Writes `amps` (0 = pause) to 261 and records it as in force from `source`.
  absl::Status WriteLimit(Device& device, double amps, evgate::v1::SetpointSource source,
                          std::optional<absl::Time> expires_at, const std::string& batch_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_);
  evgate::v1::SetpointResult ApplyOne(const evgate::v1::Setpoint& setpoint, absl::Duration ttl,
                                      const std::string& batch_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_);
  // DeviceDriver.Command's off_grid_box: the commands below, as a CommandResponse.
  evgate::v1::CommandResponse OffGridBoxCommand(const std::string& device_id,
                                                const evgate::v1::OffGridBoxCommand& command);
  evgate::v1::CommandResponse SetFailsafe(Device& device,
                                          const evgate::v1::SetFailsafeCommand& command)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_);
  absl::Status BoxWrite(const std::string& device_id, Quantity quantity, double value);

  // Builders of the public messages; need mu_.
  evgate::v1::DeviceState StateLocked(const Device& device, const DeviceStatus& status) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  evgate::v1::EvseState EvseStateLocked(const Device& device, const DeviceStatus& status) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Collects evse_state_change / fault events when the EVSE's published
  // state differs from what it is now.
  void DiffEvseLocked(Device& device, const DeviceStatus& status,
                      std::vector<evgate::v1::WatchDevicesResponse>* events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Publish(std::vector<evgate::v1::WatchDevicesResponse> events) ABSL_LOCKS_EXCLUDED(mu_);
  void RunTimer();

  const std::string bus_id_;
  const Clock& clock_;
  const ModbusBackendOptions options_;
  const std::vector<std::unique_ptr<RegisterMap>> owned_maps_;
  ModbusTransport* const transport_;              // owned by owner_
  std::vector<std::unique_ptr<Device>> devices_;  // site.yaml order; fixed after construction
  std::unique_ptr<ModbusBusOwner> owner_;

  // Serialises everything that writes to the devices (setpoints, expiry,
  // programming, commands), so what is recorded as in force is what was
  // written last. Held across bus writes; acquired before mu_.
  absl::Mutex control_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  devices::DeviceEventSink* sink_ ABSL_GUARDED_BY(mu_) = nullptr;
  uint64_t setpoints_expired_total_ ABSL_GUARDED_BY(mu_) = 0;

  absl::Mutex timer_mu_;
  bool timer_stop_ ABSL_GUARDED_BY(timer_mu_) = false;
  std::thread timer_;
  bool started_ = false;
};

// The backend of `bus` (a modbus_rtu or modbus_tcp bus of `site`) with every
// device site.yaml puts on it, on a libmodbus transport. Fails
// (kInvalidArgument) for a CAN bus, a device whose profile has no Modbus
// register map, or a generic_meter map that does not load (with its errors).
absl::StatusOr<std::unique_ptr<devices::DeviceBackend>> MakeModbusBackend(
    const site::SiteConfig& site, const site::BusConfig& bus, const Clock& clock);

// The same on a given transport (tests: a fake transport), returning the
// concrete type (the grid controller uses the off-grid box API).
absl::StatusOr<std::unique_ptr<ModbusBackend>> MakeModbusBackendOn(
    const site::SiteConfig& site, const site::BusConfig& bus, const Clock& clock,
    std::unique_ptr<ModbusTransport> transport, ModbusBackendOptions options = {});

}  // namespace evgate::modbus

#endif  // EVGATE_DEVICE_DRIVERS_MODBUS_MODBUS_BACKEND_H_
