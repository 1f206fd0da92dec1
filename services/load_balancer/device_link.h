// The load balancer's connection to one device driver process: its
// WatchDevices stream in, its ApplySetpoints and GetControllerSequence calls
// out.
//
// A site in one process (`evgate run`) has one link, to its own
// DeviceDriver service; a split deployment (one driver container per bus)
// has one link per driver. The control loop learns from the snapshots which
// link owns which EVSE, and sends each driver one batch.
//
// GrpcDeviceLink keeps the stream up (StreamFollower): when it breaks
// (driver restarted, network) it reports the loss and reconnects with
// backoff; the new stream starts with fresh snapshots.
//
// Thread-safety: Start()/Stop() from one thread; Apply() and
// ControllerSequence() from any thread. The callbacks run on the link's own
// thread, one at a time.
#ifndef EVGATE_SERVICES_LOAD_BALANCER_DEVICE_LINK_H_
#define EVGATE_SERVICES_LOAD_BALANCER_DEVICE_LINK_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "evgate/v1/device.grpc.pb.h"
#include "grpcpp/channel.h"
#include "runtime/stream_follower.h"

namespace evgate::load_balancer {

class DeviceLink {
 public:
  using EventHandler = std::function<void(const v1::WatchDevicesResponse&)>;
  // Called when the stream is lost; everything learned from it is outdated.
  using DownHandler = std::function<void(const absl::Status&)>;

  virtual ~DeviceLink() = default;

  // Where the driver is, for messages ("127.0.0.1:50051").
  virtual std::string name() const = 0;

  virtual void Start(EventHandler on_event, DownHandler on_down) = 0;
  virtual void Stop() = 0;

  // One batch; fails after `deadline` (DEADLINE_EXCEEDED: it may or may not
  // have been applied).
  virtual absl::StatusOr<v1::ApplySetpointsResponse> Apply(const v1::ApplySetpointsRequest& request,
                                                           absl::Duration deadline) = 0;
  // Where `controller_id`'s sequence stands on the driver.
  virtual absl::StatusOr<v1::GetControllerSequenceResponse> ControllerSequence(
      const std::string& controller_id, absl::Duration deadline) = 0;
};

class GrpcDeviceLink final : public DeviceLink {
 public:
  // `telemetry_interval`: asked of the driver; short enough that every meter
  // poll reaches the control loop at once.
  GrpcDeviceLink(std::string endpoint, std::shared_ptr<grpc::Channel> channel,
                 absl::Duration telemetry_interval = absl::Milliseconds(100));
  ~GrpcDeviceLink() override;

  std::string name() const override { return endpoint_; }
  void Start(EventHandler on_event, DownHandler on_down) override;
  void Stop() override;
  absl::StatusOr<v1::ApplySetpointsResponse> Apply(const v1::ApplySetpointsRequest& request,
                                                   absl::Duration deadline) override;
  absl::StatusOr<v1::GetControllerSequenceResponse> ControllerSequence(
      const std::string& controller_id, absl::Duration deadline) override;

 private:
  const std::string endpoint_;
  const std::unique_ptr<v1::DeviceDriver::Stub> stub_;
  const absl::Duration telemetry_interval_;
  StreamFollower<v1::WatchDevicesResponse> watch_;
};

}  // namespace evgate::load_balancer

#endif  // EVGATE_SERVICES_LOAD_BALANCER_DEVICE_LINK_H_
