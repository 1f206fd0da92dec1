// A DeviceBackend handed to a DeviceDriverService while another owner keeps
// it alive too: `evgate run` gives the OCPP bridge's backend to the site's
// DeviceDriver service, and the bridge keeps using it. Forwards every call.
// Thread-safety: that of the backend.
#ifndef EVGATE_DEVICE_DRIVERS_DRIVER_SHARED_BACKEND_H_
#define EVGATE_DEVICE_DRIVERS_DRIVER_SHARED_BACKEND_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "device_drivers/driver/device_backend.h"

namespace evgate::devices {

class SharedBackend final : public DeviceBackend {
 public:
  explicit SharedBackend(std::shared_ptr<DeviceBackend> backend) : backend_(std::move(backend)) {}

  std::string bus_id() const override { return backend_->bus_id(); }
  std::vector<std::string> DeviceIds() const override { return backend_->DeviceIds(); }
  std::optional<evgate::v1::DeviceState> GetDevice(const std::string& device_id) const override {
    return backend_->GetDevice(device_id);
  }
  evgate::v1::BusHealth GetBusHealth() const override { return backend_->GetBusHealth(); }
  std::vector<std::string> EvseIds() const override { return backend_->EvseIds(); }
  std::vector<std::optional<evgate::v1::SetpointValue>> SetpointsInForce(
      const std::vector<std::string>& evse_ids) const override {
    return backend_->SetpointsInForce(evse_ids);
  }
  std::vector<evgate::v1::SetpointResult> ApplySetpoints(
      const std::vector<evgate::v1::Setpoint>& setpoints, absl::Duration ttl,
      const std::string& batch_id) override {
    return backend_->ApplySetpoints(setpoints, ttl, batch_id);
  }
  evgate::v1::CommandResponse Command(const evgate::v1::CommandRequest& request) override {
    return backend_->Command(request);
  }
  void SetSink(DeviceEventSink* sink) override { backend_->SetSink(sink); }
  absl::Status Start() override { return backend_->Start(); }
  void Stop() override { backend_->Stop(); }

 private:
  std::shared_ptr<DeviceBackend> backend_;
};

}  // namespace evgate::devices

#endif  // EVGATE_DEVICE_DRIVERS_DRIVER_SHARED_BACKEND_H_
