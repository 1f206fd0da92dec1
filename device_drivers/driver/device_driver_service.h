// The `evgate.v1.DeviceDriver` gRPC service over any number of bus owners.
//
// One process hosts one DeviceDriverService with one DeviceBackend per bus it
// owns (all buses of the site in `evgate run`, one bus per container in a
// split deployment). The service:
//   - merges the backends' inventories (ListDevices pages by device id,
//     GetDevice routes by device id);
//   - fans the backends' events out to every WatchDevices stream: first a
//     snapshot of every selected device, then `initial_snapshot_complete`,
//     then events with a per-stream sequence. Telemetry is passed on when it
//     arrives, at most one per device per `telemetry_interval` (latest wins;
//     a held-back sample is sent when the interval ends), so a control loop
//     asking for 100 ms sees every 1 s meter poll without delay;
//   - splits an ApplySetpoints batch into one call per backend, after
//     checking the batch as a whole (duplicate EVSEs, empty values, outdated
//     `sequence` per `controller_id` → ABORTED).
// A stream that falls more than `max_queued_events` behind is ended with
// RESOURCE_EXHAUSTED (the client reconnects and gets fresh snapshots) rather
// than letting memory grow or blocking the buses.
//
// Thread-safe. The gRPC handlers run on gRPC's threads; backends publish
// from their own threads.
#ifndef EVGATE_DEVICE_DRIVERS_DRIVER_DEVICE_DRIVER_SERVICE_H_
#define EVGATE_DEVICE_DRIVERS_DRIVER_DEVICE_DRIVER_SERVICE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "device_drivers/driver/device_backend.h"
#include "evgate/v1/device.grpc.pb.h"
#include "runtime/clock.h"
#include "runtime/service.h"

namespace evgate::devices {

struct DeviceDriverOptions {
  // Setpoint validity when a batch has no `ttl`.
  absl::Duration default_setpoint_ttl = absl::Seconds(10);
  // Telemetry period when a WatchDevices request has none.
  absl::Duration default_telemetry_interval = absl::Seconds(1);
  // Events a stream may have waiting before it is ended.
  size_t max_queued_events = 10000;
};

class DeviceDriverService final : public Service,
                                  public v1::DeviceDriver::Service,
                                  private DeviceEventSink {
 public:
  // Device ids must be unique across `backends` (site.yaml guarantees it).
  DeviceDriverService(std::vector<std::unique_ptr<DeviceBackend>> backends, const Clock& clock,
                      DeviceDriverOptions options = {});
  ~DeviceDriverService() override;

  // evgate::Service
  std::string_view name() const override { return "device_drivers"; }
  std::vector<grpc::Service*> grpc_services() override { return {this}; }
  std::vector<std::string> health_names() const override { return {"evgate.v1.DeviceDriver"}; }
  // Starts every backend; the first failure stops the ones already started.
  absl::Status Start() override;
  // Ends every stream, then stops the backends.
  void Stop() override;

  // evgate.v1.DeviceDriver
  grpc::Status ListDevices(grpc::ServerContext* context, const v1::ListDevicesRequest* request,
                           v1::ListDevicesResponse* response) override;
  grpc::Status GetDevice(grpc::ServerContext* context, const v1::GetDeviceRequest* request,
                         v1::GetDeviceResponse* response) override;
  grpc::Status WatchDevices(grpc::ServerContext* context, const v1::WatchDevicesRequest* request,
                            grpc::ServerWriter<v1::WatchDevicesResponse>* writer) override;
  grpc::Status ApplySetpoints(grpc::ServerContext* context,
                              const v1::ApplySetpointsRequest* request,
                              v1::ApplySetpointsResponse* response) override;
  grpc::Status Command(grpc::ServerContext* context, const v1::CommandRequest* request,
                       v1::CommandResponse* response) override;

 private:
  class Stream;

  // DeviceEventSink
  void Publish(v1::WatchDevicesResponse event) override;

  DeviceBackend* BackendOfDevice(const std::string& device_id) const;
  DeviceBackend* BackendOfEvse(const std::string& evse_id) const;

  const std::vector<std::unique_ptr<DeviceBackend>> backends_;
  const Clock& clock_;
  const DeviceDriverOptions options_;
  // Built once in the constructor; read-only afterwards.
  std::map<std::string, DeviceBackend*> device_owner_;
  std::map<std::string, DeviceBackend*> evse_owner_;

  absl::Mutex streams_mu_;
  std::set<Stream*> streams_ ABSL_GUARDED_BY(streams_mu_);
  bool stopping_ ABSL_GUARDED_BY(streams_mu_) = false;

  absl::Mutex sequence_mu_;
  // Last applied ApplySetpoints sequence per controller_id.
  std::map<std::string, uint64_t> last_sequence_ ABSL_GUARDED_BY(sequence_mu_);

  size_t started_ = 0;  // backends started, for Stop()
};

}  // namespace evgate::devices

#endif  // EVGATE_DEVICE_DRIVERS_DRIVER_DEVICE_DRIVER_SERVICE_H_
