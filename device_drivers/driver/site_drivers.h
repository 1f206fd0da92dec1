// Builds the DeviceDriver service of a site from site.yaml: one bus owner
// (DeviceBackend) per Modbus or CAN bus that has devices on it. OCPP chargers
// are the OCPP bridge's backend: `evgate run` passes it in as an extra
// backend; a bridge on its own serves DeviceDriver for them itself.
//
// Thread-safety: a pure function of its arguments.
#ifndef EVGATE_DEVICE_DRIVERS_DRIVER_SITE_DRIVERS_H_
#define EVGATE_DEVICE_DRIVERS_DRIVER_SITE_DRIVERS_H_

#include <memory>

#include "absl/status/statusor.h"
#include "device_drivers/driver/device_driver_service.h"
#include "runtime/clock.h"
#include "site_controller/config/site_config.h"

namespace evgate::devices {

// `config` and `clock` must outlive the service. Fails with the first bus
// whose owner cannot be built, naming it. `extra_backends` are hosted after
// the site's buses.
absl::StatusOr<std::unique_ptr<DeviceDriverService>> MakeSiteDeviceDrivers(
    const site::SiteConfig& config, const Clock& clock,
    std::vector<std::unique_ptr<DeviceBackend>> extra_backends = {});

}  // namespace evgate::devices

#endif  // EVGATE_DEVICE_DRIVERS_DRIVER_SITE_DRIVERS_H_
