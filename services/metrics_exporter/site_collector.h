// The exporter's prometheus::Collectable: at every scrape it reads the other
// services' current state over gRPC (LoadBalancer.GetSiteStatus,
// DeviceDriver.ListDevices, SessionService.ListSessions,
// OcppBridge.ListChargePoints + GetUpstreamStatus, GridController.GetGridState),
// one after the other,
// each with a deadline, and turns it into the catalogue's metrics, together with
// the stream-fed counters and histograms and its own process figures.
//
// Values are never older than the scrape: a peer that does not answer in
// time is `evgate_up{service=...} 0` and its metrics are absent; a device,
// EVSE or charge point that disappeared from its service is gone from the
// next scrape. Thread-safe (Prometheus may scrape concurrently).
#ifndef EVGATE_SERVICES_METRICS_EXPORTER_SITE_COLLECTOR_H_
#define EVGATE_SERVICES_METRICS_EXPORTER_SITE_COLLECTOR_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "services/metrics_exporter/stream_metrics.h"

namespace evgate::metrics {

// nullptr: the service is neither configured nor hosted here (no evgate_up
// series for it).
struct PeerChannels {
  std::shared_ptr<grpc::Channel> load_balancer;
  std::shared_ptr<grpc::Channel> device_drivers;
  std::shared_ptr<grpc::Channel> session;
  std::shared_ptr<grpc::Channel> ocpp_bridge;
  std::shared_ptr<grpc::Channel> grid_controller;
};

struct BuildInfo {
  std::string version;
  std::string revision;
};

class SiteCollector final : public prometheus::Collectable {
 public:
  // `streams` may be null (no stream-fed metrics).
  SiteCollector(PeerChannels peers, std::shared_ptr<const StreamMetrics> streams, BuildInfo build,
                absl::Duration deadline);

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const PeerChannels peers_;
  const std::shared_ptr<const StreamMetrics> streams_;
  const BuildInfo build_;
  const absl::Duration deadline_;
};

}  // namespace evgate::metrics

#endif  // EVGATE_SERVICES_METRICS_EXPORTER_SITE_COLLECTOR_H_
