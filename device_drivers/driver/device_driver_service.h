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
//     checking the batch as a whole (duplicate EVSEs, empty values, TTL);
//   - keeps a sequence per `controller_id` (GetControllerSequence tells a
//     caller where it stands). A batch's sequence must be newer than the
//     caller's last applied one (else ABORTED: a late retry never overrides a
//     newer decision), at most `sequence_window` past it, at most
//     `max_first_sequence` for a caller not seen yet, and not 0 (else
//     INVALID_ARGUMENT: nobody can push a caller's counter so far that it is
//     locked out, and there is no bypass). Sequences are not persisted: a
//     restarted driver knows no caller, and a caller continues at
//     last_applied + 1 after asking;
//   - caps every batch's TTL at `setpoint_ttl_cap`. Clamped rather than
//     refused: a caller whose site.yaml asks for more (a configuration
//     being rolled out) keeps control, its setpoints simply expire at the
//     cap, which is the safety property; the result messages and the
//     backends' `in_force.expires_at` show the TTL that was applied.
//
// Dispatch. The buses share nothing but a short critical section
// (sequence_mu_) in which a batch's sequence is accepted and the batch takes
// one ticket per backend it has setpoints for, from a counter per backend.
// Then each backend's part runs on its own thread and waits only until that
// backend has finished every earlier ticket (its "lane"). So one bus never
// waits for another; on each bus, batches are applied in the order they
// were accepted, hence a caller's batches in sequence order and never a
// later batch before an earlier one; the RPC answers once every part is
// done. A backend that hangs holds up later batches on its bus only.
// Within its part, a backend gets the decreases first (pauses, values lower
// on any phase than what DeviceBackend::SetpointsInForce reports, read once
// the earlier batches on that bus are done), then setpoints for EVSEs whose
// value in force is unknown, then the rest, each group in request order.
//
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
  // Setpoint validity when a batch has no `ttl` (at most the cap).
  absl::Duration default_setpoint_ttl = absl::Seconds(10);
  // The longest validity any batch gets, whoever sends it: a longer `ttl` is
  // clamped to it and each result's message says so. A site sets both to the
  // controller's setpoint TTL (control::SetpointTtl: 3 ticks, at least 3 s),
  // the validity the load balancer itself asks for, so its own batches are
  // never clamped and nobody can leave a setpoint in force for longer than a
  // stopped load balancer would.
  absl::Duration setpoint_ttl_cap = absl::Seconds(10);
  // How far past a caller's last applied sequence its next one may be.
  uint64_t sequence_window = uint64_t{1} << 20;
  // The largest first sequence taken from a caller not seen yet.
  uint64_t max_first_sequence = uint64_t{1} << 62;
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
  grpc::Status ListBuses(grpc::ServerContext* context, const v1::ListBusesRequest* request,
                         v1::ListBusesResponse* response) override;
  grpc::Status GetDevice(grpc::ServerContext* context, const v1::GetDeviceRequest* request,
                         v1::GetDeviceResponse* response) override;
  grpc::Status WatchDevices(grpc::ServerContext* context, const v1::WatchDevicesRequest* request,
                            grpc::ServerWriter<v1::WatchDevicesResponse>* writer) override;
  grpc::Status ApplySetpoints(grpc::ServerContext* context,
                              const v1::ApplySetpointsRequest* request,
                              v1::ApplySetpointsResponse* response) override;
  grpc::Status GetControllerSequence(grpc::ServerContext* context,
                                     const v1::GetControllerSequenceRequest* request,
                                     v1::GetControllerSequenceResponse* response) override;
  grpc::Status Command(grpc::ServerContext* context, const v1::CommandRequest* request,
                       v1::CommandResponse* response) override;

 private:
  class Stream;

  // DeviceEventSink
  void Publish(v1::WatchDevicesResponse event) override;

  // OK, or why `request.sequence` is not acceptable from its caller now.
  grpc::Status CheckSequenceLocked(const v1::ApplySetpointsRequest& request)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(sequence_mu_);

  // The order in which batches reach one backend (see "Dispatch" above).
  struct Lane {
    absl::Mutex mu;
    // The ticket whose part may run now; its part increments it when done.
    uint64_t now_serving ABSL_GUARDED_BY(mu) = 0;
  };
  // One backend's share of an accepted batch.
  struct Part {
    size_t lane;               // index in backends_ and lanes_
    uint64_t ticket;           // its turn on that lane
    std::vector<int> indices;  // into the request's setpoints, in request order
  };
  // What every part of one batch shares; `results` is written by each part
  // at its own indices only.
  struct BatchContext {
    const v1::ApplySetpointsRequest* request;
    absl::Duration ttl;
    std::string ttl_note;
    std::vector<v1::SetpointResult>* results;
  };
  // Waits for `part`'s turn on its lane, applies it, passes the turn on.
  void ApplyPart(const Part& part, const BatchContext& batch);

  DeviceBackend* BackendOfDevice(const std::string& device_id) const;

  const std::vector<std::unique_ptr<DeviceBackend>> backends_;
  const Clock& clock_;
  const DeviceDriverOptions options_;
  // Built once in the constructor; read-only afterwards.
  std::map<std::string, DeviceBackend*> device_owner_;
  std::map<std::string, size_t> evse_lane_;  // EVSE id -> index in backends_
  std::vector<std::unique_ptr<Lane>> lanes_;

  absl::Mutex streams_mu_;
  std::set<Stream*> streams_ ABSL_GUARDED_BY(streams_mu_);
  bool stopping_ ABSL_GUARDED_BY(streams_mu_) = false;

  absl::Mutex sequence_mu_;
  // Last applied ApplySetpoints sequence per controller_id (accepted; its
  // parts may still be waiting for their lanes).
  std::map<std::string, uint64_t> last_sequence_ ABSL_GUARDED_BY(sequence_mu_);
  // The next ticket of each lane.
  std::vector<uint64_t> next_ticket_ ABSL_GUARDED_BY(sequence_mu_);

  size_t started_ = 0;  // backends started, for Stop()
};

}  // namespace evgate::devices

#endif  // EVGATE_DEVICE_DRIVERS_DRIVER_DEVICE_DRIVER_SERVICE_H_
