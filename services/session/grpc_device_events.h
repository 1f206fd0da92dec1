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
  // host:port of the DeviceDriver service.
  std::string endpoint;
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // Period of telemetry per device (live energy in the sessions).
  absl::Duration telemetry_interval = absl::Seconds(1);
  // Wait before reconnecting: doubles from initial to max after each failed
  // attempt (±20 % jitter); back to initial once a stream delivered events.
  absl::Duration initial_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(10);
};

// Where the DeviceDriver service of `config` is reached from the session
// service: `services.device_drivers.endpoint`, else `services.api_listen`
// (in `evgate run` every service shares one server), with a wildcard host
// replaced by loopback. FAILED_PRECONDITION when neither gives a usable
// port (api_listen with port 0). Credentials follow services.tls: plaintext
// without it (insecure_demo); otherwise TLS trusting the server's own
// certificate chain (cert_file), presenting it as client certificate when
// client certificates are required (client_ca_file).
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
