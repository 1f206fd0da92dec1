// The metrics exporter as an evgate Service: Prometheus `/metrics` on
// site.yaml `services.metrics_listen` (prometheus-cpp's civetweb Exposer),
// serving the catalogue's metrics (metric_catalogue.h) read from the other
// services over gRPC — in-process in `evgate run`, over the network from
// `services.endpoints` in a split deployment.
//
// At each scrape the SiteCollector reads the services' current state; two
// StreamFollowers keep WatchAllocations and WatchSessions open for the
// counters and histograms. It serves no gRPC API of its own.
#ifndef EVGATE_SERVICES_METRICS_EXPORTER_METRICS_EXPORTER_SERVICE_H_
#define EVGATE_SERVICES_METRICS_EXPORTER_METRICS_EXPORTER_SERVICE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "evgate/v1/load_balancer.pb.h"
#include "evgate/v1/session.pb.h"
#include "prometheus/exposer.h"
#include "runtime/service.h"
#include "runtime/stream_follower.h"
#include "services/metrics_exporter/site_collector.h"
#include "services/metrics_exporter/stream_metrics.h"
#include "site_controller/config/site_config.h"

namespace evgate::metrics {

struct MetricsExporterOptions {
  // How long a scrape waits for each service.
  absl::Duration peer_deadline = absl::Seconds(2);
};

class MetricsExporterService final : public Service {
 public:
  explicit MetricsExporterService(const site::SiteConfig& config,
                                  MetricsExporterOptions options = {});
  ~MetricsExporterService() override;

  // The port /metrics is served on (after Start(); useful with port 0).
  int port() const { return port_; }

  std::string_view name() const override { return "metrics_exporter"; }
  std::vector<grpc::Service*> grpc_services() override { return {}; }
  std::vector<std::string> health_names() const override { return {"evgate.MetricsExporter"}; }
  void OnHosted(const HostInfo& host) override;
  absl::Status Start() override;
  void Stop() override;

 private:
  const site::SiteConfig config_;
  const MetricsExporterOptions options_;
  PeerChannels peers_;
  absl::Status peers_status_;
  std::shared_ptr<StreamMetrics> streams_ = std::make_shared<StreamMetrics>();
  std::shared_ptr<SiteCollector> collector_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::unique_ptr<StreamFollower<v1::WatchAllocationsResponse>> allocations_;
  std::unique_ptr<StreamFollower<v1::WatchSessionsResponse>> sessions_;
  int port_ = 0;
};

}  // namespace evgate::metrics

#endif  // EVGATE_SERVICES_METRICS_EXPORTER_METRICS_EXPORTER_SERVICE_H_
