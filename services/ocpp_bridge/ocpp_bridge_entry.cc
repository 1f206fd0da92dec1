#include "services/ocpp_bridge/ocpp_bridge_entry.h"

#include "runtime/clock.h"
#include "services/ocpp_bridge/ocpp_bridge_service.h"

namespace evgate::ocpp {

ServiceEntry OcppBridgeEntry() {
  return {"ocpp_bridge", "local OCPP 1.6J Central System for DC chargers (OcppBridge API)",
          [](const site::SiteConfig& config,
             ProcessParts& parts) -> absl::StatusOr<std::unique_ptr<Service>> {
            OcppBridgeOptions options;
            // With the drivers in this process, its chargers are devices of
            // their DeviceDriver service (one API for every device); alone,
            // it serves DeviceDriver for them itself.
            options.serve_device_driver = !parts.Hosts("device_drivers");
            auto service = OcppBridgeService::Create(config, SystemClock::Get(), options);
            if (!service.ok()) return service.status();
            if (!options.serve_device_driver) {
              parts.device_backends.push_back((*service)->device_backend());
            }
            return std::unique_ptr<Service>(*std::move(service));
          },
          ""};
}

}  // namespace evgate::ocpp
