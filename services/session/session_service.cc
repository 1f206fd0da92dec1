#include "services/session/session_service.h"

#include <filesystem>
#include <random>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "runtime/grpc_status.h"
#include "runtime/log.h"
#include "services/session/grpc_device_events.h"

namespace evgate::session {
namespace {

constexpr log::Logger kLog("session");

}  // namespace

SessionService::SessionService(const site::SiteConfig& config, const Clock& clock,
                               SessionServiceOptions options)
    : config_(config), clock_(clock), options_(options) {}

absl::StatusOr<std::unique_ptr<SessionService>> SessionService::Create(
    const site::SiteConfig& config, const Clock& clock, std::unique_ptr<DeviceEventSource> source,
    SessionServiceOptions options) {
  std::unique_ptr<SessionService> service(new SessionService(config, clock, options));
  const std::string& path = config.services.session_database;
  const std::filesystem::path directory = std::filesystem::path(path).parent_path();
  std::error_code error;
  if (!directory.empty() && !std::filesystem::is_directory(directory, error)) {
    std::filesystem::create_directories(directory, error);
    if (error) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create ", directory.string(), " for services.session_database (",
                       error.message(), "); create it and let evgate write there"));
    }
    kLog.Info("created %s for the charge records", directory.string());
  }
  absl::StatusOr<std::unique_ptr<SessionStore>> store = SessionStore::Open(path, clock);
  if (!store.ok()) return store.status();
  service->store_ = *std::move(store);
  service->authorizer_ =
      std::make_unique<Authorizer>(service->config_, service->store_.get(), clock);

  SessionManagerOptions manager_options = options.manager;
  manager_options.connection_timeout = absl::Seconds(config.authorization.connection_timeout_s);
  if (manager_options.random_seed == 0) {
    std::random_device device;
    manager_options.random_seed = (uint64_t{device()} << 32) | device();
  }
  absl::StatusOr<std::unique_ptr<SessionManager>> manager = SessionManager::Create(
      service->config_, service->store_.get(), service->authorizer_.get(), clock, manager_options);
  if (!manager.ok()) return manager.status();
  service->manager_ = *std::move(manager);

  service->source_ = std::move(source);
  return service;
}

void SessionService::OnHosted(const HostInfo& host) {
  if (source_ != nullptr) return;
  absl::StatusOr<GrpcDeviceEventsOptions> endpoint = DeviceDriverEndpoint(config_);
  if (endpoint.ok()) {
    kLog.Info("device events from DeviceDriver at %s", endpoint->endpoint);
    source_ = std::make_unique<GrpcDeviceEvents>(*std::move(endpoint));
  } else if (!absl::IsNotFound(endpoint.status())) {
    kLog.Error("cannot connect to the DeviceDriver service: %s", endpoint.status().message());
  } else if (host.Hosts("evgate.v1.DeviceDriver") && host.in_process_channel) {
    GrpcDeviceEventsOptions options;
    options.endpoint = "this process";
    options.channel = host.in_process_channel();
    source_ = std::make_unique<GrpcDeviceEvents>(std::move(options));
  } else {
    kLog.Warning(
        "no device driver in this process and services.device_drivers.endpoint is not set: "
        "sessions start only through the API, without plug-in, taps or live energy");
  }
}

SessionService::~SessionService() { Stop(); }

absl::Status SessionService::Start() {
  worker_ = std::thread([this] { RunWorker(); });
  if (source_ != nullptr) source_->Start(this);
  return absl::OkStatus();
}

void SessionService::Stop() {
  if (source_ != nullptr) source_->Stop();
  if (manager_ != nullptr) {
    manager_->EndAllWatches(
        absl::UnavailableError("the session service is shutting down; reconnect later"));
  }
  {
    absl::MutexLock lock(&queue_mu_);
    stopping_ = true;
  }
  if (worker_.joinable()) worker_.join();
}

void SessionService::Enqueue(SessionManager::DeviceInput input) {
  absl::MutexLock lock(&queue_mu_);
  if (queue_.size() >= options_.max_queued_device_events &&
      input.kind == SessionManager::DeviceInput::Kind::kEvent &&
      input.event.event_case() == v1::WatchDevicesResponse::kTelemetry) {
    if (!dropping_) {
      kLog.Error("%d device events waiting for the charge-record database; dropping telemetry",
                 queue_.size());
      dropping_ = true;
    }
    return;
  }
  dropping_ = false;
  queue_.push_back(std::move(input));
}

void SessionService::OnStreamStarted() {
  Enqueue({SessionManager::DeviceInput::Kind::kStreamStarted, {}, {}});
}

void SessionService::OnDeviceEvent(const v1::WatchDevicesResponse& event) {
  Enqueue({SessionManager::DeviceInput::Kind::kEvent, event, {}});
}

void SessionService::OnStreamLost(const absl::Status& status) {
  Enqueue({SessionManager::DeviceInput::Kind::kStreamLost, {}, status});
}

void SessionService::RunWorker() {
  absl::Time next_tick = clock_.Now() + options_.tick;
  while (true) {
    std::vector<SessionManager::DeviceInput> batch;
    {
      absl::MutexLock lock(&queue_mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) {
        return stopping_ || !queue_.empty();
      };
      queue_mu_.AwaitWithTimeout(absl::Condition(&ready), options_.tick);
      if (stopping_) return;
      batch.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
      queue_.clear();
    }
    if (!batch.empty()) manager_->HandleDeviceInputs(batch);
    if (clock_.Now() >= next_tick) {
      manager_->Tick();
      next_tick = clock_.Now() + options_.tick;
    }
  }
}

grpc::Status SessionService::Authorize(grpc::ServerContext*, const v1::AuthorizeRequest* request,
                                       v1::AuthorizeResponse* response) {
  absl::StatusOr<v1::AuthorizeResponse> result = manager_->Authorize(*request);
  if (!result.ok()) return ToGrpc(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

grpc::Status SessionService::StartSession(grpc::ServerContext*,
                                          const v1::StartSessionRequest* request,
                                          v1::StartSessionResponse* response) {
  absl::StatusOr<v1::Session> session = manager_->StartSession(*request);
  if (!session.ok()) return ToGrpc(session.status());
  *response->mutable_session() = *std::move(session);
  return grpc::Status::OK;
}

grpc::Status SessionService::StopSession(grpc::ServerContext*,
                                         const v1::StopSessionRequest* request,
                                         v1::StopSessionResponse* response) {
  absl::StatusOr<v1::Session> session = manager_->StopSession(*request);
  if (!session.ok()) return ToGrpc(session.status());
  *response->mutable_session() = *std::move(session);
  return grpc::Status::OK;
}

grpc::Status SessionService::GetSession(grpc::ServerContext*, const v1::GetSessionRequest* request,
                                        v1::GetSessionResponse* response) {
  if (request->session_id().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "session_id is empty");
  }
  absl::StatusOr<SessionRecord> record = store_->GetSession(request->session_id());
  if (!record.ok()) return ToGrpc(record.status());
  *response->mutable_session() = std::move(record->session);
  return grpc::Status::OK;
}

grpc::Status SessionService::ListSessions(grpc::ServerContext*,
                                          const v1::ListSessionsRequest* request,
                                          v1::ListSessionsResponse* response) {
  absl::StatusOr<v1::ListSessionsResponse> result = store_->ListSessions(*request);
  if (!result.ok()) return ToGrpc(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

grpc::Status SessionService::WatchSessions(grpc::ServerContext* context,
                                           const v1::WatchSessionsRequest* request,
                                           grpc::ServerWriter<v1::WatchSessionsResponse>* writer) {
  absl::StatusOr<std::shared_ptr<SessionWatch>> watch = manager_->Watch(
      std::vector<std::string>(request->evse_ids().begin(), request->evse_ids().end()));
  if (!watch.ok()) return ToGrpc(watch.status());
  grpc::Status result = grpc::Status::OK;
  while (true) {
    v1::WatchSessionsResponse event;
    absl::Status end;
    const SessionWatch::Next next = (*watch)->Wait(absl::Milliseconds(200), &event, &end);
    if (next == SessionWatch::Next::kEvent) {
      if (!writer->Write(event)) break;  // the client went away
    } else if (next == SessionWatch::Next::kEnded) {
      result = ToGrpc(end);
      break;
    } else if (context->IsCancelled()) {
      break;
    }
  }
  manager_->EndWatch(*watch);
  return result;
}

grpc::Status SessionService::ListCards(grpc::ServerContext*, const v1::ListCardsRequest* request,
                                       v1::ListCardsResponse* response) {
  absl::StatusOr<v1::ListCardsResponse> result = authorizer_->ListCards(*request);
  if (!result.ok()) return ToGrpc(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

grpc::Status SessionService::UpsertCards(grpc::ServerContext*,
                                         const v1::UpsertCardsRequest* request,
                                         v1::UpsertCardsResponse* response) {
  absl::StatusOr<v1::UpsertCardsResponse> result = authorizer_->UpsertCards(*request);
  if (!result.ok()) return ToGrpc(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

grpc::Status SessionService::DeleteCard(grpc::ServerContext*, const v1::DeleteCardRequest* request,
                                        v1::DeleteCardResponse*) {
  return ToGrpc(authorizer_->DeleteCard(request->uid()));
}

}  // namespace evgate::session
