// A DeviceBackend for tests: devices and answers are set by the test, events
// are published on request, and every ApplySetpoints batch is recorded.
// Thread-safe.
#ifndef EVGATE_DEVICE_DRIVERS_DRIVER_FAKE_BACKEND_H_
#define EVGATE_DEVICE_DRIVERS_DRIVER_FAKE_BACKEND_H_

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "device_drivers/driver/device_backend.h"

namespace evgate::devices {

class FakeBackend final : public DeviceBackend {
 public:
  struct Batch {
    std::vector<v1::Setpoint> setpoints;
    absl::Duration ttl;
    std::string batch_id;
  };

  explicit FakeBackend(std::string bus_id) : bus_id_(std::move(bus_id)) {}

  // Adds or replaces a device; its EVSEs become controllable here.
  void SetDevice(const v1::DeviceState& state) {
    absl::MutexLock lock(&mu_);
    if (devices_.count(state.device_id()) == 0) order_.push_back(state.device_id());
    devices_[state.device_id()] = state;
  }

  // Publishes `event` to the sink as the bus owner's thread would.
  void Emit(const v1::WatchDevicesResponse& event) {
    DeviceEventSink* sink;
    {
      absl::MutexLock lock(&mu_);
      sink = sink_;
    }
    if (sink != nullptr) sink->Publish(event);
  }

  std::vector<Batch> batches() const {
    absl::MutexLock lock(&mu_);
    return batches_;
  }
  bool started() const {
    absl::MutexLock lock(&mu_);
    return started_;
  }
  // Called (on the caller's thread, without the fake's lock, so it may block
  // on a latch of the test) at the start of every ApplySetpoints.
  void OnApply(std::function<void(const std::vector<v1::Setpoint>&)> hook) {
    absl::MutexLock lock(&mu_);
    on_apply_ = std::move(hook);
  }
  // What GetBusHealth() reports besides the bus id (kind "fake" unless set).
  void SetBusHealth(v1::BusHealth health) {
    absl::MutexLock lock(&mu_);
    bus_health_ = std::move(health);
  }

  void FailStartWith(absl::Status status) {
    absl::MutexLock lock(&mu_);
    start_status_ = std::move(status);
  }

  // DeviceBackend
  std::string bus_id() const override { return bus_id_; }
  std::vector<std::string> DeviceIds() const override {
    absl::MutexLock lock(&mu_);
    return order_;
  }
  std::optional<v1::DeviceState> GetDevice(const std::string& device_id) const override {
    absl::MutexLock lock(&mu_);
    auto it = devices_.find(device_id);
    if (it == devices_.end()) return std::nullopt;
    return it->second;
  }
  v1::BusHealth GetBusHealth() const override {
    absl::MutexLock lock(&mu_);
    v1::BusHealth health = bus_health_;
    health.set_bus_id(bus_id_);
    if (health.kind().empty()) health.set_kind("fake");
    return health;
  }
  std::vector<std::string> EvseIds() const override {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> ids;
    for (const std::string& id : order_) {
      for (const v1::EvseState& evse : devices_.at(id).evses()) ids.push_back(evse.evse_id());
    }
    return ids;
  }
  // What it last accepted per EVSE.
  std::vector<std::optional<v1::SetpointValue>> SetpointsInForce(
      const std::vector<std::string>& evse_ids) const override {
    absl::MutexLock lock(&mu_);
    std::vector<std::optional<v1::SetpointValue>> values;
    for (const std::string& id : evse_ids) {
      auto it = in_force_.find(id);
      values.push_back(it == in_force_.end() ? std::nullopt
                                             : std::optional<v1::SetpointValue>(it->second));
    }
    return values;
  }
  std::vector<v1::SetpointResult> ApplySetpoints(const std::vector<v1::Setpoint>& setpoints,
                                                 absl::Duration ttl,
                                                 const std::string& batch_id) override {
    std::function<void(const std::vector<v1::Setpoint>&)> hook;
    {
      absl::MutexLock lock(&mu_);
      hook = on_apply_;
    }
    if (hook) hook(setpoints);
    absl::MutexLock lock(&mu_);
    batches_.push_back({setpoints, ttl, batch_id});
    std::vector<v1::SetpointResult> results;
    for (const v1::Setpoint& setpoint : setpoints) {
      v1::SetpointResult& result = results.emplace_back();
      result.set_evse_id(setpoint.evse_id());
      result.set_status(v1::SETPOINT_STATUS_ACCEPTED);
      *result.mutable_in_force()->mutable_value() = setpoint.value();
      result.mutable_in_force()->set_source(v1::SETPOINT_SOURCE_CONTROLLER);
      result.mutable_in_force()->set_batch_id(batch_id);
      in_force_[setpoint.evse_id()] = setpoint.value();
    }
    return results;
  }
  v1::CommandResponse Command(const v1::CommandRequest&) override {
    v1::CommandResponse response;
    response.set_status(v1::COMMAND_STATUS_NOT_SUPPORTED);
    response.set_message("fake backend");
    return response;
  }
  void SetSink(DeviceEventSink* sink) override {
    absl::MutexLock lock(&mu_);
    sink_ = sink;
  }
  absl::Status Start() override {
    absl::MutexLock lock(&mu_);
    started_ = start_status_.ok();
    return start_status_;
  }
  void Stop() override {
    absl::MutexLock lock(&mu_);
    started_ = false;
  }

 private:
  const std::string bus_id_;
  mutable absl::Mutex mu_;
  std::vector<std::string> order_ ABSL_GUARDED_BY(mu_);
  v1::BusHealth bus_health_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::DeviceState> devices_ ABSL_GUARDED_BY(mu_);
  std::vector<Batch> batches_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::SetpointValue> in_force_ ABSL_GUARDED_BY(mu_);
  DeviceEventSink* sink_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::function<void(const std::vector<v1::Setpoint>&)> on_apply_ ABSL_GUARDED_BY(mu_);
  absl::Status start_status_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace evgate::devices

#endif  // EVGATE_DEVICE_DRIVERS_DRIVER_FAKE_BACKEND_H_
