// DeviceEventSource over gRPC: a client of evgate.v1.DeviceDriver.WatchDevices
// that reconnects with exponential backoff (with jitter) whenever the stream
// ends, for whatever reason (server not up yet, restarted, stream ended with
// RESOURCE_EXHAUSTED because this client fell behind).
//
// Thread-safe: Start() and Stop() from the owner's thread; events are
// delivered from the source's own thread.
#ifndef EVGATE_SERVICES_SESSION_GRPC_DEVICE_EVENTS_H_
#define EVGATE_SERVICES_SESSION_GRPC_DEVICE_EVENTS_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/security/credentials.h"
#include "services/session/device_events.h"
#include "site_controller/config/site_config.h"

namespace evgate::session {

struct GrpcDeviceEventsOptions {
  // host:port of the DeviceDriver service (named in logs).
  std::string endpoint;
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // A channel to use instead of one to `endpoint` (e.g. the host's
  // in-process channel when the DeviceDriver service runs in this process).
  std::shared_ptr<grpc::Channel> channel;
  // Period of telemetry per device (live energy in the sessions).
  absl::Duration telemetry_interval = absl::Seconds(1);
  // Wait before reconnecting: doubles from initial to max after each failed
  // attempt (±20 % jitter); back to initial once a stream delivered events.
  absl::Duration initial_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(10);
};

// The DeviceDriver service of a split deployment:
// `services.device_drivers.endpoint` of `config`; NOT_FOUND when it is not
// set (then the drivers are expected in this process). Credentials follow
// services.tls: plaintext without it (insecure_demo); otherwise TLS trusting
// the site CA (client_ca_file, else the server's own cert_file), presenting
// services.tls.client_cert_file/client_key_file when set. The drivers
// authorize the call by that certificate (docs/security.md).
absl::StatusOr<GrpcDeviceEventsOptions> DeviceDriverEndpoint(const site::SiteConfig& config);

class GrpcDeviceEvents final : public DeviceEventSource {
 public:
  explicit GrpcDeviceEvents(GrpcDeviceEventsOptions options);
  ~GrpcDeviceEvents() override;

  void Start(DeviceEventHandler* handler) override;
  void Stop() override;

 private:
  void Run(DeviceEventHandler* handler);
  // One stream: true if it delivered at least one event.
  bool RunStream(DeviceEventHandler* handler, grpc::Status* status);

  const GrpcDeviceEventsOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::thread thread_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace evgate::session

#endif  // EVGATE_SERVICES_SESSION_GRPC_DEVICE_EVENTS_H_
