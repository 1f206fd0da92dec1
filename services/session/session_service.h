// The SessionService gRPC API (proto/evgate/v1/session.proto) as an evgate
// Service: authorization, the session lifecycle and the charge records.
//
// Object graph: SessionStore (SQLite at site.yaml
// `services.session_database`) ← Authorizer (card list, cache, CSMS) ←
// SessionManager (lifecycle) ← this class (RPC handlers, device events,
// ticks). Device events arrive from a DeviceEventSource (by default a gRPC
// client of DeviceDriver.WatchDevices, see grpc_device_events.h) into a
// queue; one worker thread hands them to the manager in batches (one
// database transaction per batch, so a busy site costs one fsync per batch
// rather than one per telemetry sample) and calls SessionManager::Tick()
// every second.
//
// Thread-safe: RPCs run on gRPC's threads.
#ifndef EVGATE_SERVICES_SESSION_SESSION_SERVICE_H_
#define EVGATE_SERVICES_SESSION_SESSION_SERVICE_H_

#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "evgate/v1/session.grpc.pb.h"
#include "runtime/clock.h"
#include "runtime/service.h"
#include "services/session/authorizer.h"
#include "services/session/device_events.h"
#include "services/session/session_manager.h"
#include "services/session/session_store.h"
#include "site_controller/config/site_config.h"

namespace evgate::session {

struct SessionServiceOptions {
  SessionManagerOptions manager;  // connection_timeout is taken from site.yaml
  // How often timeouts and limits are checked.
  absl::Duration tick = absl::Seconds(1);
  // Device events waiting for the worker beyond which telemetry is dropped
  // (state changes, taps and faults are always kept).
  size_t max_queued_device_events = 100000;
};

class SessionService final : public Service,
                             public v1::SessionService::Service,
                             private DeviceEventHandler {
 public:
  // Opens the database (creating its directory if needed) and loads the
  // open sessions. `source` null: OnHosted() connects a GrpcDeviceEvents to
  // `services.device_drivers.endpoint`, else to the DeviceDriver service of
  // this process; with neither, the service runs without device events and
  // says so. `clock` must outlive the service.
  static absl::StatusOr<std::unique_ptr<SessionService>> Create(
      const site::SiteConfig& config, const Clock& clock,
      std::unique_ptr<DeviceEventSource> source = nullptr, SessionServiceOptions options = {});
  ~SessionService() override;

  // Plugs in the upstream CSMS (the OCPP bridge); nullptr = local only.
  void SetRemoteAuthorizer(RemoteAuthorizer* remote) { authorizer_->SetRemoteAuthorizer(remote); }
  SessionManager& manager() { return *manager_; }
  SessionStore& store() { return *store_; }

  // evgate::Service
  std::string_view name() const override { return "session"; }
  std::vector<grpc::Service*> grpc_services() override { return {this}; }
  std::vector<std::string> health_names() const override { return {"evgate.v1.SessionService"}; }
  void OnHosted(const HostInfo& host) override;
  absl::Status Start() override;
  void Stop() override;

  // evgate.v1.SessionService
  grpc::Status Authorize(grpc::ServerContext* context, const v1::AuthorizeRequest* request,
                         v1::AuthorizeResponse* response) override;
  grpc::Status StartSession(grpc::ServerContext* context, const v1::StartSessionRequest* request,
                            v1::StartSessionResponse* response) override;
  grpc::Status StopSession(grpc::ServerContext* context, const v1::StopSessionRequest* request,
                           v1::StopSessionResponse* response) override;
  grpc::Status GetSession(grpc::ServerContext* context, const v1::GetSessionRequest* request,
                          v1::GetSessionResponse* response) override;
  grpc::Status ListSessions(grpc::ServerContext* context, const v1::ListSessionsRequest* request,
                            v1::ListSessionsResponse* response) override;
  grpc::Status WatchSessions(grpc::ServerContext* context, const v1::WatchSessionsRequest* request,
                             grpc::ServerWriter<v1::WatchSessionsResponse>* writer) override;
  grpc::Status ListCards(grpc::ServerContext* context, const v1::ListCardsRequest* request,
                         v1::ListCardsResponse* response) override;
  grpc::Status UpsertCards(grpc::ServerContext* context, const v1::UpsertCardsRequest* request,
                           v1::UpsertCardsResponse* response) override;
  grpc::Status DeleteCard(grpc::ServerContext* context, const v1::DeleteCardRequest* request,
                          v1::DeleteCardResponse* response) override;

 private:
  SessionService(const site::SiteConfig& config, const Clock& clock, SessionServiceOptions options);

  // DeviceEventHandler: queues for the worker.
  void OnStreamStarted() override;
  void OnDeviceEvent(const v1::WatchDevicesResponse& event) override;
  void OnStreamLost(const absl::Status& status) override;
  void Enqueue(SessionManager::DeviceInput input);
  void RunWorker();

  const site::SiteConfig config_;
  const Clock& clock_;
  const SessionServiceOptions options_;
  std::unique_ptr<SessionStore> store_;
  std::unique_ptr<Authorizer> authorizer_;
  std::unique_ptr<SessionManager> manager_;
  std::unique_ptr<DeviceEventSource> source_;
  std::thread worker_;

  absl::Mutex queue_mu_;
  std::deque<SessionManager::DeviceInput> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  bool dropping_ ABSL_GUARDED_BY(queue_mu_) = false;
};

}  // namespace evgate::session

#endif  // EVGATE_SERVICES_SESSION_SESSION_SERVICE_H_
