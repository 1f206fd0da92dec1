// The device_drivers service's entry for a process's service catalog
// (runtime/service_catalog.h): its own binary and `evgate run` host it
// through this.
#ifndef EVGATE_DEVICE_DRIVERS_DRIVER_DEVICE_DRIVERS_ENTRY_H_
#define EVGATE_DEVICE_DRIVERS_DRIVER_DEVICE_DRIVERS_ENTRY_H_

#include "runtime/service_catalog.h"

namespace evgate::devices {

ServiceEntry DeviceDriversEntry();

}  // namespace evgate::devices

#endif  // EVGATE_DEVICE_DRIVERS_DRIVER_DEVICE_DRIVERS_ENTRY_H_
