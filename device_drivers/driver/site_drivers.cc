#include "device_drivers/driver/site_drivers.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "device_drivers/can/can_bus_owner.h"
#include "device_drivers/driver/site_driver_options.h"
#include "device_drivers/modbus/modbus_backend.h"
#include "site_controller/control/site_model.h"

namespace evgate::devices {

absl::StatusOr<std::unique_ptr<DeviceDriverService>> MakeSiteDeviceDrivers(
    const site::SiteConfig& config, const Clock& clock,
    std::vector<std::unique_ptr<DeviceBackend>> extra_backends) {
  std::vector<std::unique_ptr<DeviceBackend>> backends;
  for (const site::BusConfig& bus : config.buses) {
    const bool used = std::any_of(config.devices.begin(), config.devices.end(),
                                  [&](const site::DeviceConfig& d) { return d.bus == bus.id; });
    if (!used) continue;  // never open a port nothing is wired to
    absl::StatusOr<std::unique_ptr<DeviceBackend>> backend =
        bus.type == site::BusType::kCan ? can::MakeCanBackend(config, bus, clock)
                                        : modbus::MakeModbusBackend(config, bus, clock);
    if (!backend.ok()) {
      return absl::Status(backend.status().code(),
                          absl::StrCat("bus ", bus.id, ": ", backend.status().message()));
    }
    backends.push_back(*std::move(backend));
  }
  for (auto& backend : extra_backends) backends.push_back(std::move(backend));
  return std::make_unique<DeviceDriverService>(std::move(backends), clock,
                                               SiteDeviceDriverOptions(config));
}

}  // namespace evgate::devices
