// The DeviceDriver options a site's controller settings imply, for every
// process that hosts a DeviceDriver service (the device drivers, an OCPP
// bridge on its own). Pure; thread-safe.
#ifndef EVGATE_DEVICE_DRIVERS_DRIVER_SITE_DRIVER_OPTIONS_H_
#define EVGATE_DEVICE_DRIVERS_DRIVER_SITE_DRIVER_OPTIONS_H_

#include "device_drivers/driver/device_driver_service.h"
#include "site_controller/config/site_config.h"
#include "site_controller/control/site_model.h"

namespace evgate::devices {

// Setpoint TTL default and cap = the controller's own setpoint TTL: no
// caller can make a setpoint outlive what the load balancer asks for.
inline DeviceDriverOptions SiteDeviceDriverOptions(const site::SiteConfig& config) {
  DeviceDriverOptions options;
  options.default_setpoint_ttl = control::SetpointTtl(config.controller);
  options.setpoint_ttl_cap = options.default_setpoint_ttl;
  return options;
}

}  // namespace evgate::devices

#endif  // EVGATE_DEVICE_DRIVERS_DRIVER_SITE_DRIVER_OPTIONS_H_
