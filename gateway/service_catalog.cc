#include "gateway/service_catalog.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "device_drivers/driver/shared_backend.h"
#include "device_drivers/driver/site_drivers.h"
#include "device_drivers/sim/site_simulator.h"
#include "runtime/clock.h"
#include "services/load_balancer/load_balancer_service.h"
#include "services/metrics_exporter/metrics_exporter_service.h"
#include "services/ocpp_bridge/ocpp_bridge_service.h"
#include "services/session/session_service.h"

namespace evgate::gateway {

const std::vector<ServiceEntry>& ServiceCatalog() {
  static const auto* catalog = new std::vector<ServiceEntry>{
      {"simulator", "simulated meters, wallboxes and boxes for demo sites (Simulator API)",
       [](const site::SiteConfig& config,
          ProcessParts&) -> absl::StatusOr<std::unique_ptr<Service>> {
         auto simulator = sim::SiteSimulator::Create(config, SystemClock::Get());
         if (!simulator.ok()) return simulator.status();
         return std::unique_ptr<Service>(*std::move(simulator));
       },
       ""},
      {"ocpp_bridge", "local OCPP 1.6J Central System for DC chargers (OcppBridge API)",
       [](const site::SiteConfig& config,
          ProcessParts& parts) -> absl::StatusOr<std::unique_ptr<Service>> {
         ocpp::OcppBridgeOptions options;
         // With the drivers in this process, its chargers are devices of
         // their DeviceDriver service (one API for every device); alone,
         // it serves DeviceDriver for them itself.
         options.serve_device_driver = !parts.Hosts("device_drivers");
         auto service = ocpp::OcppBridgeService::Create(config, SystemClock::Get(), options);
         if (!service.ok()) return service.status();
         if (!options.serve_device_driver) {
           parts.device_backends.push_back((*service)->device_backend());
         }
         return std::unique_ptr<Service>(*std::move(service));
       },
       ""},
      {"device_drivers", "Modbus and CAN bus owners (and the OCPP chargers) serving DeviceDriver",
       [](const site::SiteConfig& config,
          ProcessParts& parts) -> absl::StatusOr<std::unique_ptr<Service>> {
         std::vector<std::unique_ptr<devices::DeviceBackend>> extra;
         for (const auto& backend : parts.device_backends) {
           extra.push_back(std::make_unique<devices::SharedBackend>(backend));
         }
         auto service =
             devices::MakeSiteDeviceDrivers(config, SystemClock::Get(), std::move(extra));
         if (!service.ok()) return service.status();
         return std::unique_ptr<Service>(*std::move(service));
       },
       ""},
      {"load_balancer", "allocation engine and control loop (LoadBalancer API)",
       [](const site::SiteConfig& config,
          ProcessParts&) -> absl::StatusOr<std::unique_ptr<Service>> {
         return std::unique_ptr<Service>(
             std::make_unique<load_balancer::LoadBalancerService>(config, SystemClock::Get()));
       },
       ""},
      {"session", "authorization, sessions and charge records (SessionService API)",
       [](const site::SiteConfig& config,
          ProcessParts&) -> absl::StatusOr<std::unique_ptr<Service>> {
         auto service = session::SessionService::Create(config, SystemClock::Get());
         if (!service.ok()) return service.status();
         return std::unique_ptr<Service>(*std::move(service));
       },
       ""},
      {"metrics_exporter", "Prometheus /metrics of the whole site, read from the other services",
       [](const site::SiteConfig& config,
          ProcessParts&) -> absl::StatusOr<std::unique_ptr<Service>> {
         return std::unique_ptr<Service>(std::make_unique<metrics::MetricsExporterService>(config));
       },
       ""},
  };
  return *catalog;
}

const ServiceEntry* FindService(const std::string& name) {
  for (const ServiceEntry& entry : ServiceCatalog()) {
    if (entry.name == name) return &entry;
  }
  return nullptr;
}

absl::StatusOr<std::vector<const ServiceEntry*>> SelectServices(const std::string& names) {
  std::vector<std::string> available;
  for (const ServiceEntry& entry : ServiceCatalog()) {
    if (entry.create) available.push_back(entry.name);
  }
  std::vector<const ServiceEntry*> selected;
  if (names.empty()) {
    for (const ServiceEntry& entry : ServiceCatalog()) {
      if (entry.create) selected.push_back(&entry);
    }
    return selected;
  }
  std::vector<std::string> wanted = absl::StrSplit(names, ',', absl::SkipWhitespace());
  for (const ServiceEntry& entry : ServiceCatalog()) {  // catalog order = start order
    for (const std::string& name : wanted) {
      if (name == entry.name) {
        if (!entry.create) {
          return absl::UnimplementedError(
              absl::StrCat("service '", name, "': ", entry.not_yet,
                           "; available: ", absl::StrJoin(available, ", ")));
        }
        selected.push_back(&entry);
      }
    }
  }
  for (const std::string& name : wanted) {
    if (FindService(name) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown service '", name, "'; available: ", absl::StrJoin(available, ", ")));
    }
  }
  return selected;
}

}  // namespace evgate::gateway
