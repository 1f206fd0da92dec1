#include "services/grid_controller/grid_controller_entry.h"

#include "runtime/clock.h"
#include "services/grid_controller/grid_controller_service.h"

namespace evgate::grid_controller {

ServiceEntry GridControllerEntry() {
  return {"grid_controller",
          "V2X grid modes: outage, off-grid discharge, resync (GridController API)",
          [](const site::SiteConfig& config,
             ProcessParts&) -> absl::StatusOr<std::unique_ptr<Service>> {
            auto service = GridControllerService::Create(config, SystemClock::Get());
            if (!service.ok()) return service.status();
            return std::unique_ptr<Service>(*std::move(service));
          },
          ""};
}

}  // namespace evgate::grid_controller
