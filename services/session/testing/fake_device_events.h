// A DeviceEventSource for tests: the test pushes events, they reach the
// handler synchronously on the test's thread, as one batch each.
#ifndef EVGATE_SERVICES_SESSION_TESTING_FAKE_DEVICE_EVENTS_H_
#define EVGATE_SERVICES_SESSION_TESTING_FAKE_DEVICE_EVENTS_H_

#include "services/session/device_events.h"

namespace evgate::session::testing {

// Thread-compatible.
class FakeDeviceEvents final : public DeviceEventSource {
 public:
  void Start(DeviceEventHandler* handler) override { handler_ = handler; }
  void Stop() override { handler_ = nullptr; }

  bool started() const { return handler_ != nullptr; }
  void StreamStarted() { handler_->OnStreamStarted(); }
  void Event(const v1::WatchDevicesResponse& event) { handler_->OnDeviceEvent(event); }
  void StreamLost(const absl::Status& status) { handler_->OnStreamLost(status); }

 private:
  DeviceEventHandler* handler_ = nullptr;
};

}  // namespace evgate::session::testing

#endif  // EVGATE_SERVICES_SESSION_TESTING_FAKE_DEVICE_EVENTS_H_
