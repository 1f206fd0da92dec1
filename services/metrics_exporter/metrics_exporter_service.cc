#include "services/metrics_exporter/metrics_exporter_service.h"

#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "evgate/v1/load_balancer.grpc.pb.h"
#include "evgate/v1/session.grpc.pb.h"
#include "runtime/log.h"
#include "runtime/peer_channel.h"
#include "runtime/version.h"

namespace evgate::metrics {

namespace {

constexpr log::Logger kLog("metrics_exporter");

}  // namespace

MetricsExporterService::MetricsExporterService(const site::SiteConfig& config,
                                               MetricsExporterOptions options)
    : config_(config), options_(options) {}

MetricsExporterService::~MetricsExporterService() { Stop(); }

void MetricsExporterService::OnHosted(const HostInfo& host) {
  auto channel = [&](const char* service,
                     const char* health_name) -> std::shared_ptr<grpc::Channel> {
    absl::StatusOr<PeerChannel> peer = ChannelToPeer(config_, host, service, health_name);
    if (!peer.ok()) {
      if (peers_status_.ok()) peers_status_ = peer.status();
      return nullptr;
    }
    if (peer->channel != nullptr) {
      kLog.Info("reads %s (%s)", service, peer->where);
    } else {
      kLog.Info("%s is neither configured nor in this process: no metrics of it", service);
    }
    return peer->channel;
  };
  peers_.load_balancer = channel("load_balancer", "evgate.v1.LoadBalancer");
  peers_.device_drivers = channel("device_drivers", "evgate.v1.DeviceDriver");
  peers_.session = channel("session", "evgate.v1.SessionService");
  peers_.ocpp_bridge = channel("ocpp_bridge", "evgate.v1.OcppBridge");
  peers_.grid_controller = channel("grid_controller", "evgate.v1.GridController");
}

absl::Status MetricsExporterService::Start() {
  if (!peers_status_.ok()) return peers_status_;
  collector_ = std::make_shared<SiteCollector>(
      peers_, streams_, BuildInfo{kEvgateVersion, kEvgateRevision}, options_.peer_deadline);
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(config_.services.metrics_listen, 2);
  } catch (const std::exception& e) {
    // civetweb throws when the address is taken or invalid.
    return absl::UnavailableError(absl::StrCat("metrics exporter: cannot listen on ",
                                               config_.services.metrics_listen, ": ", e.what()));
  }
  exposer_->RegisterCollectable(collector_);
  const std::vector<int> ports = exposer_->GetListeningPorts();
  port_ = ports.empty() ? 0 : ports.front();
  kLog.Info("serves /metrics on %s (port %d)", config_.services.metrics_listen, port_);

  if (peers_.load_balancer != nullptr) {
    auto stub =
        std::shared_ptr<v1::LoadBalancer::Stub>(v1::LoadBalancer::NewStub(peers_.load_balancer));
    allocations_ = std::make_unique<StreamFollower<v1::WatchAllocationsResponse>>(
        "load balancer allocations",
        [stub](grpc::ClientContext* context) {
          return stub->WatchAllocations(context, v1::WatchAllocationsRequest());
        },
        "metrics_exporter");
    allocations_->Start(
        [streams = streams_](const v1::WatchAllocationsResponse& r) {
          streams->OnAllocation(r.allocation());
        },
        [streams = streams_](const absl::Status&) { streams->SetAllocationsFollowed(false); });
  }
  if (peers_.session != nullptr) {
    auto stub =
        std::shared_ptr<v1::SessionService::Stub>(v1::SessionService::NewStub(peers_.session));
    sessions_ = std::make_unique<StreamFollower<v1::WatchSessionsResponse>>(
        "session events",
        [stub](grpc::ClientContext* context) {
          return stub->WatchSessions(context, v1::WatchSessionsRequest());
        },
        "metrics_exporter");
    sessions_->Start(
        [streams = streams_](const v1::WatchSessionsResponse& r) { streams->OnSessionEvent(r); },
        [streams = streams_](const absl::Status&) { streams->SetSessionsFollowed(false); });
  }
  return absl::OkStatus();
}

void MetricsExporterService::Stop() {
  if (allocations_) allocations_->Stop();
  if (sessions_) sessions_->Stop();
  // Stops civetweb's threads: no scrape runs after this.
  exposer_.reset();
}

}  // namespace evgate::metrics
