#include "device_drivers/driver/device_drivers_entry.h"

#include "device_drivers/driver/shared_backend.h"
#include "device_drivers/driver/site_drivers.h"
#include "runtime/clock.h"

namespace evgate::devices {

ServiceEntry DeviceDriversEntry() {
  return {"device_drivers",
          "Modbus and CAN bus owners (and the OCPP chargers) serving DeviceDriver",
          [](const site::SiteConfig& config,
             ProcessParts& parts) -> absl::StatusOr<std::unique_ptr<Service>> {
            std::vector<std::unique_ptr<DeviceBackend>> extra;
            for (const auto& backend : parts.device_backends) {
              extra.push_back(std::make_unique<SharedBackend>(backend));
            }
            auto service = MakeSiteDeviceDrivers(config, SystemClock::Get(), std::move(extra));
            if (!service.ok()) return service.status();
            return std::unique_ptr<Service>(*std::move(service));
          },
          ""};
}

}  // namespace evgate::devices
