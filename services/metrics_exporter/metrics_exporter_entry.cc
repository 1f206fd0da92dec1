#include "services/metrics_exporter/metrics_exporter_entry.h"

#include "services/metrics_exporter/metrics_exporter_service.h"

namespace evgate::metrics {

ServiceEntry MetricsExporterEntry() {
  return {"metrics_exporter", "Prometheus /metrics of the whole site, read from the other services",
          [](const site::SiteConfig& config,
             ProcessParts&) -> absl::StatusOr<std::unique_ptr<Service>> {
            return std::unique_ptr<Service>(std::make_unique<MetricsExporterService>(config));
          },
          ""};
}

}  // namespace evgate::metrics
