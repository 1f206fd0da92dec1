#include "services/ocpp_bridge/ocpp_bridge_service.h"

#include <filesystem>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "device_drivers/driver/shared_backend.h"
#include "device_drivers/driver/site_driver_options.h"
#include "google/protobuf/util/time_util.h"
#include "runtime/grpc_status.h"
#include "runtime/log.h"
#include "runtime/peer_channel.h"
#include "runtime/secret_file.h"
#include "services/ocpp_bridge/charger_commands.h"
#include "services/ocpp_bridge/ocpp_schemas.h"
#include "services/ocpp_bridge/session_authorizer.h"

namespace evgate::ocpp {
namespace {

using google::protobuf::util::TimeUtil;

constexpr log::Logger kLog("ocpp_bridge");

constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;
constexpr absl::Duration kDefaultCommandTimeout = absl::Seconds(30);
constexpr absl::Duration kMaxCommandTimeout = absl::Minutes(5);

// OCPP 1.6 security whitepaper: an AuthorizationKey is 16 to 40 characters.
constexpr size_t kMinPasswordLength = 16;
constexpr size_t kMaxPasswordLength = 40;

std::string TransactionBookPath(const site::SiteConfig& config) {
  std::filesystem::path dir = std::filesystem::path(config.services.session_database).parent_path();
  return (dir / "ocpp_transactions.db").string();
}

}  // namespace

absl::StatusOr<std::unique_ptr<OcppBridgeService>> OcppBridgeService::Create(
    const site::SiteConfig& config, const Clock& clock, OcppBridgeOptions options) {
  std::unique_ptr<OcppBridgeService> service(
      new OcppBridgeService(config, clock, std::move(options)));
  WsServerOptions& server = service->options_.server;
  if (config.ocpp.local) {
    const site::OcppLocalConfig& local = *config.ocpp.local;
    server.listen = local.listen;
    server.security_profile = local.security_profile;
    server.tls_cert_file = local.tls_cert_file.value_or("");
    server.tls_key_file = local.tls_key_file.value_or("");
    server.ca_file = local.ca_file.value_or("");
  }
  server.charge_points.clear();
  for (const site::DeviceConfig& device : config.devices) {
    if (!device.charge_point_id) continue;
    std::string password;
    if (device.password_file) {
      absl::StatusOr<std::string> secret = ReadSecretFile(*device.password_file);
      if (!secret.ok()) {
        return absl::FailedPreconditionError(
            absl::StrCat("devices '", device.id, "' password_file: ", secret.status().message()));
      }
      if (secret->size() < kMinPasswordLength || secret->size() > kMaxPasswordLength) {
        return absl::FailedPreconditionError(absl::StrCat(
            "devices '", device.id, "' password_file ", *device.password_file, ": the password is ",
            secret->size(), " characters; OCPP asks for ", kMinPasswordLength, " to ",
            kMaxPasswordLength, " (generate one with 'openssl rand -hex 16')"));
      }
      password = *std::move(secret);
    }
    server.charge_points[*device.charge_point_id] = std::move(password);
  }

  const std::string path = TransactionBookPath(config);
  std::error_code error;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), error);
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create the directory of ", path, " (", error.message(),
                     "); it is the directory of services.session_database"));
  }
  absl::StatusOr<std::unique_ptr<TransactionBook>> book = TransactionBook::Open(path, clock);
  if (!book.ok()) return book.status();
  service->book_ = *std::move(book);
  service->authorizer_.chosen = std::make_unique<NoAuthorizer>();
  service->central_system_ = std::make_shared<CentralSystem>(
      config, clock, service->options_.central_system, &service->authorizer_, service->book_.get());
  service->backend_ = std::make_shared<OcppDeviceBackend>(config, service->central_system_, clock,
                                                          service->options_.device_backend);
  service->central_system_->SetListener(service->backend_.get());
  if (service->options_.serve_device_driver) {
    std::vector<std::unique_ptr<devices::DeviceBackend>> backends;
    backends.push_back(std::make_unique<devices::SharedBackend>(service->backend_));
    service->drivers_ = std::make_unique<devices::DeviceDriverService>(
        std::move(backends), clock, devices::SiteDeviceDriverOptions(config));
  }
  return service;
}

OcppBridgeService::OcppBridgeService(const site::SiteConfig& config, const Clock& clock,
                                     OcppBridgeOptions options)
    : config_(config), clock_(clock), options_(std::move(options)) {}

OcppBridgeService::~OcppBridgeService() { Stop(); }

std::vector<grpc::Service*> OcppBridgeService::grpc_services() {
  std::vector<grpc::Service*> services = {this};
  if (drivers_ != nullptr) {
    for (grpc::Service* s : drivers_->grpc_services()) services.push_back(s);
  }
  return services;
}

std::vector<std::string> OcppBridgeService::health_names() const {
  std::vector<std::string> names = {"evgate.v1.OcppBridge"};
  if (drivers_ != nullptr) {
    for (const std::string& n : drivers_->health_names()) names.push_back(n);
  }
  return names;
}

int OcppBridgeService::ocpp_port() const { return server_ != nullptr ? server_->port() : 0; }

void OcppBridgeService::OnHosted(const HostInfo& host) {
  absl::StatusOr<PeerChannel> peer =
      ChannelToPeer(config_, host, "session", "evgate.v1.SessionService");
  if (!peer.ok()) {
    kLog.Error("%s; chargers' idTags cannot be authorized", peer.status().message());
  } else if (peer->channel == nullptr) {
    kLog.Warning(
        "no session service in this process and services.endpoints.session.endpoint is not set: "
        "chargers' Authorize and StartTransaction get InternalError");
  } else {
    kLog.Info("idTags authorized by the session service (%s)", peer->where);
    authorizer_.chosen = std::make_unique<SessionAuthorizer>(peer->channel, peer->where);
  }
}

absl::Status OcppBridgeService::Start() {
  if (config_.ocpp.upstream) {
    kLog.Warning(
        "ocpp.upstream is configured, but the upstream CSMS client is not part of this "
        "build yet: the site is not reported to %s",
        config_.ocpp.upstream->url);
  }
  if (!config_.ocpp.local) {
    kLog.Info("no ocpp.local in site.yaml: the local Central System does not listen");
  } else {
    absl::StatusOr<std::unique_ptr<WsServer>> server =
        WsServer::Start(options_.server, OcppSchemas::Ocpp16(), clock_, central_system_.get());
    if (!server.ok()) {
      return absl::Status(server.status().code(),
                          absl::StrCat("ocpp.local: ", server.status().message()));
    }
    server_ = *std::move(server);
    kLog.Info("local Central System: %d charge points configured",
              static_cast<int>(options_.server.charge_points.size()));
  }
  if (drivers_ != nullptr) {
    if (absl::Status s = drivers_->Start(); !s.ok()) return s;
  }
  ticker_ = std::thread([this] {
    while (!stopping_.WaitForNotificationWithTimeout(options_.tick)) central_system_->Tick();
  });
  return absl::OkStatus();
}

void OcppBridgeService::Stop() {
  if (!stopping_.HasBeenNotified()) stopping_.Notify();
  if (ticker_.joinable()) ticker_.join();
  if (drivers_ != nullptr) drivers_->Stop();
  if (server_ != nullptr) server_->Stop();
}

grpc::Status OcppBridgeService::ListChargePoints(grpc::ServerContext* /*context*/,
                                                 const v1::ListChargePointsRequest* request,
                                                 v1::ListChargePointsResponse* response) {
  if (request->page_size() < 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "page_size must not be negative");
  }
  const int page_size =
      request->page_size() == 0 ? kDefaultPageSize : std::min(request->page_size(), kMaxPageSize);
  size_t offset = 0;
  if (!request->page_token().empty() && !absl::SimpleAtoi(request->page_token(), &offset)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "page_token is not one this service returned");
  }
  std::vector<v1::ChargePoint> all = central_system_->ListChargePoints();
  for (size_t i = offset; i < all.size() && i < offset + page_size; ++i) {
    *response->add_charge_points() = std::move(all[i]);
  }
  if (offset + page_size < all.size())
    response->set_next_page_token(absl::StrCat(offset + page_size));
  return grpc::Status::OK;
}

grpc::Status OcppBridgeService::GetUpstreamStatus(grpc::ServerContext* /*context*/,
                                                  const v1::GetUpstreamStatusRequest* /*request*/,
                                                  v1::GetUpstreamStatusResponse* response) {
  if (!config_.ocpp.upstream) {
    response->set_state(v1::UPSTREAM_CONNECTION_STATE_DISABLED);
    return grpc::Status::OK;
  }
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      "ocpp.upstream is configured, but the upstream CSMS client is not part of "
                      "this build yet");
}

grpc::Status OcppBridgeService::SendChargerCommand(grpc::ServerContext* context,
                                                   const v1::SendChargerCommandRequest* request,
                                                   v1::SendChargerCommandResponse* response) {
  if (request->charge_point_id().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "charge_point_id must be set");
  }
  absl::StatusOr<ChargerCall> call = ToCharger(*request);
  if (!call.ok()) return ToGrpc(call.status());
  absl::Duration timeout = kDefaultCommandTimeout;
  if (request->has_timeout()) {
    timeout = absl::Milliseconds(TimeUtil::DurationToMilliseconds(request->timeout()));
    if (timeout <= absl::ZeroDuration() || timeout > kMaxCommandTimeout) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrCat("timeout must be more than 0 and at most ",
                                       absl::FormatDuration(kMaxCommandTimeout)));
    }
  }
  // The answer may come after this RPC gave up: the callback owns its slot.
  struct Slot {
    absl::Notification done;
    CallOutcome outcome;
  };
  auto slot = std::make_shared<Slot>();
  absl::Status sent = central_system_->Call(request->charge_point_id(), call->action, call->payload,
                                            [slot](CallOutcome outcome) {
                                              slot->outcome = std::move(outcome);
                                              slot->done.Notify();
                                            });
  if (!sent.ok()) return ToGrpc(sent);
  const absl::Time deadline =
      std::min(absl::Now() + timeout, absl::FromChrono(context->deadline()));
  while (!slot->done.WaitForNotificationWithDeadline(
      std::min(deadline, absl::Now() + absl::Milliseconds(200)))) {
    if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    if (absl::Now() >= deadline) {
      return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                          absl::StrCat(request->charge_point_id(), " did not answer ", call->action,
                                       " within ", absl::FormatDuration(timeout)));
    }
  }
  if (!slot->outcome.status.ok()) return ToGrpc(slot->outcome.status);
  *response = FromCharger(*call, slot->outcome);
  return grpc::Status::OK;
}

}  // namespace evgate::ocpp
