// A DeviceDriver gRPC service for tests, in the role of the real drivers: it
// keeps the current state of its devices, sends every WatchDevices stream
// the snapshots first (then `initial_snapshot_complete`), then every event
// the test publishes, and applies those events to the state, so a client
// that reconnects sees the devices as they are now.
//
// Thread-safe.
#ifndef EVGATE_SERVICES_SESSION_TESTING_FAKE_DEVICE_DRIVER_H_
#define EVGATE_SERVICES_SESSION_TESTING_FAKE_DEVICE_DRIVER_H_

#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "evgate/v1/device.grpc.pb.h"

namespace evgate::session::testing {

class FakeDeviceDriver final : public v1::DeviceDriver::Service {
 public:
  // Adds or replaces a device (sent as a snapshot to streams already open).
  void SetDevice(const v1::DeviceState& device);
  // Sends `event` to every open stream and applies it to the state.
  void Publish(const v1::WatchDevicesResponse& event);
  // Ends every open stream with `status` (the client should reconnect).
  void EndStreams(const grpc::Status& status);
  // Streams opened so far, and open now.
  int streams_opened() const;
  int streams_open() const;

  grpc::Status WatchDevices(grpc::ServerContext* context, const v1::WatchDevicesRequest* request,
                            grpc::ServerWriter<v1::WatchDevicesResponse>* writer) override;

 private:
  struct Stream {
    std::deque<v1::WatchDevicesResponse> queue;
    std::optional<grpc::Status> end;
  };
  void Apply(const v1::WatchDevicesResponse& event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, v1::DeviceState> devices_ ABSL_GUARDED_BY(mu_);
  std::set<Stream*> streams_ ABSL_GUARDED_BY(mu_);
  int opened_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace evgate::session::testing

#endif  // EVGATE_SERVICES_SESSION_TESTING_FAKE_DEVICE_DRIVER_H_
