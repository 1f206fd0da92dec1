// The seam between a bus owner and the DeviceDriver gRPC service.
//
// Every bus owner (the Modbus owner of an RS-485 port or Modbus TCP link, the
// CAN owner of a CAN interface, later the OCPP bridge for its chargers)
// implements DeviceBackend for the devices on its bus. DeviceDriverService
// (device_driver_service.h) hosts any number of backends behind the one public
// `evgate.v1.DeviceDriver` API: it merges their inventories, fans their events
// out to every WatchDevices stream (numbering them, filtering by device,
// rate-limiting telemetry), and splits an ApplySetpoints batch into one call
// per backend.
//
// The public protos are the vocabulary here on purpose: a backend's job is to
// translate its bus into exactly what integrators see, and a unit test of a
// backend checks the same messages a client gets.
//
// Thread-safety: every method may be called from any thread, concurrently
// with the backend's own threads, except SetSink(), Start() and Stop(), which
// the service calls once each, in that order, from one thread.
#ifndef EVGATE_DEVICE_DRIVERS_DRIVER_DEVICE_BACKEND_H_
#define EVGATE_DEVICE_DRIVERS_DRIVER_DEVICE_BACKEND_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "evgate/v1/device.pb.h"

namespace evgate::devices {

// Where a backend reports what happens on its bus.
class DeviceEventSink {
 public:
  virtual ~DeviceEventSink() = default;

  // One event about one device: `device_id`, `at` (when it happened, driver
  // clock) and exactly one member of the `event` oneof are set; `sequence` is
  // left 0 and numbered per stream by the service. Backends publish:
  //   - `telemetry` each time fresh measurements arrive (every successful
  //     poll or measurement frame; the service throttles per stream),
  //   - `evse_state_change` when an EVSE's IEC 61851 state, connector status,
  //     relay, setpoint in force (also a failsafe fallback) or capabilities
  //     change,
  //   - `link_state_change` when a device turns stale or recovers,
  //   - `fault_raised` / `fault_cleared`, `rfid_tap`, `off_grid_box_change`,
  //   - `snapshot` when a device's identity or configuration changes.
  // Called from the backend's threads; must not block for long and must not
  // call back into the backend.
  virtual void Publish(evgate::v1::WatchDevicesResponse event) = 0;
};

class DeviceBackend {
 public:
  virtual ~DeviceBackend() = default;

  // The site.yaml id of the bus this backend owns, e.g. "rs485-1".
  virtual std::string bus_id() const = 0;

  // The site.yaml ids of the devices on this bus, in site.yaml order.
  virtual std::vector<std::string> DeviceIds() const = 0;

  // The full current state of one device (stale values flagged in
  // `link.stale`), or nullopt when this backend does not own `device_id`.
  virtual std::optional<evgate::v1::DeviceState> GetDevice(const std::string& device_id) const = 0;

  // The bus's traffic and error counters since Start() (ListBuses), with
  // `bus_id` and `kind` set. Cheap: no bus traffic.
  virtual evgate::v1::BusHealth GetBusHealth() const = 0;

  // The site.yaml ids of the EVSEs this backend controls.
  virtual std::vector<std::string> EvseIds() const = 0;

  // What each of `evse_ids` runs with now, in order, as this backend last
  // wrote or read it (a failsafe fallback included); nullopt where that is
  // not known (nothing written or read yet, or not an EVSE of this backend).
  // The service reads it just before handing this backend a batch, to put
  // the batch's decreases first. Cheap: no bus traffic.
  virtual std::vector<std::optional<evgate::v1::SetpointValue>> SetpointsInForce(
      const std::vector<std::string>& evse_ids) const = 0;

  // Applies setpoints for EVSEs of this backend (the service routes each
  // setpoint to the backend that owns its EVSE, checks sequence numbers and
  // orders them: decreases first). Applies them in the order given — on a
  // bus, writes one after another in that order. Returns one result per
  // setpoint, in order. `ttl`: if an EVSE gets no new setpoint within it,
  // the backend (and the device's own watchdog where it has one) falls back
  // to the EVSE's failsafe and publishes the change. The service calls it
  // for one batch at a time per backend.
  virtual std::vector<evgate::v1::SetpointResult> ApplySetpoints(
      const std::vector<evgate::v1::Setpoint>& setpoints, absl::Duration ttl,
      const std::string& batch_id) = 0;

  // Runs an operator command on one of this backend's devices.
  virtual evgate::v1::CommandResponse Command(const evgate::v1::CommandRequest& request) = 0;

  // Called once before Start(). The sink outlives the backend's Stop().
  virtual void SetSink(DeviceEventSink* sink) = 0;

  // Opens the bus and starts the backend's threads. An error (port missing,
  // interface down at start) stops the process with that message.
  virtual absl::Status Start() = 0;

  // Stops polling and closes the bus within about a second. Devices with a
  // watchdog fall back to their programmed failsafe on their own.
  virtual void Stop() = 0;
};

}  // namespace evgate::devices

#endif  // EVGATE_DEVICE_DRIVERS_DRIVER_DEVICE_BACKEND_H_
