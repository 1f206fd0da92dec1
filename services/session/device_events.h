// Where the session service hears about the devices: RFID taps, EVSE state
// changes, telemetry and faults, in the vocabulary of
// evgate.v1.DeviceDriver.WatchDevices.
//
// The real source is a gRPC client of DeviceDriver.WatchDevices
// (grpc_device_events.h); tests use FakeDeviceEvents
// (testing/fake_device_events.h) and push events themselves.
#ifndef EVGATE_SERVICES_SESSION_DEVICE_EVENTS_H_
#define EVGATE_SERVICES_SESSION_DEVICE_EVENTS_H_

#include "absl/status/status.h"
#include "evgate/v1/device.pb.h"

namespace evgate::session {

// Receives the events of a source, from one thread at a time, in stream
// order.
class DeviceEventHandler {
 public:
  virtual ~DeviceEventHandler() = default;

  // A (new) stream starts: the source sends a `snapshot` of every device,
  // then `initial_snapshot_complete`, then changes. Everything learnt from
  // an earlier stream may be out of date.
  virtual void OnStreamStarted() = 0;

  // One event, as WatchDevices sends it.
  virtual void OnDeviceEvent(const v1::WatchDevicesResponse& event) = 0;

  // The stream ended; the source tries again by itself. Device state is
  // unknown until the next stream's snapshots.
  virtual void OnStreamLost(const absl::Status& status) = 0;
};

// A stream of device events that reconnects by itself.
// Start() and Stop() are called once each, from one thread.
class DeviceEventSource {
 public:
  virtual ~DeviceEventSource() = default;

  // Starts delivering to `handler` (which outlives Stop()) from the source's
  // own thread.
  virtual void Start(DeviceEventHandler* handler) = 0;

  // Stops delivering within about a second; no handler call is made after
  // it returns.
  virtual void Stop() = 0;
};

}  // namespace evgate::session

#endif  // EVGATE_SERVICES_SESSION_DEVICE_EVENTS_H_
